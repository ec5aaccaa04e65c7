"""Personal data never reaches the database in clear (DESIGN §3 "Personal data").

A resident's name and birth date and a service's note are stored only as AES-GCM
envelopes; the master key stays in its key file. These tests read the raw bytes the
database keeps — every file of a SQLite store (database, WAL, shared memory), and a
`pg_dump` of a PostgreSQL store — and look for the clear values in every encoding a
careless write path could have used.
"""

from __future__ import annotations

import base64
import glob
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from commands import models
from commands.app import LedgerService
from commands.importer import import_file
from infra import crypto
from infra.store import parse_url
from tests import helpers
from tests.integration.test_service import correct, payloads, sql

NAME_ZH = "测试姓名甲乙丙"
NAME_ASCII = "Zhang Wei-Unique"
NAME_IMPORTED = "导入姓名庚辛壬"
BIRTHS = {"R1": (1937, 11, 23), "R2": (1941, 7, 19), "R3": (1929, 2, 14)}
NOTE = "隐私备注丁戊己 PrivateNote-QX7"
NOTE_CORRECTED = "更正备注壬癸子"
NOTE_IMPORTED = "导入备注丑寅卯 ImportedNote-ZK4"
COMMUNITY_NAME = "石门新型农村社区"  # not personal: stored in clear, so the scan must find it


def date_forms(year: int, month: int, day: int) -> list[str]:
    return [
        f"{year:04d}-{month:02d}-{day:02d}",
        f"{year:04d}{month:02d}{day:02d}",
        f"{year:04d}/{month:02d}/{day:02d}",
        f"{year}/{month}/{day}",
        f"{year}年{month}月{day}日",
        f"{day:02d}/{month:02d}/{year:04d}",
    ]


def encodings(text: str) -> dict[str, bytes]:
    """Every way a clear value could sit in a file: raw encodings and JSON escapes."""
    forms = {"utf-8": text.encode("utf-8"), "utf-16-le": text.encode("utf-16-le")}
    if not text.isascii():
        forms["gb18030"] = text.encode("gb18030")
        escaped = "".join(ch if ch.isascii() else f"\\u{ord(ch):04x}" for ch in text)
        forms["json-escaped"] = escaped.encode("ascii")
        forms["json-escaped-upper"] = "".join(
            ch if ch.isascii() else f"\\u{ord(ch):04X}" for ch in text
        ).encode("ascii")
        forms["json-orjson"] = orjson.dumps(text)[1:-1]
    return forms


def secrets_in_clear() -> dict[str, str]:
    found = {
        "name zh": NAME_ZH,
        "name ascii": NAME_ASCII,
        "name ascii part": "Wei-Unique",
        "name imported": NAME_IMPORTED,
    }
    for code, parts in BIRTHS.items():
        for form in date_forms(*parts):
            found[f"birth {code} {form}"] = form
    for label, note in (("note", NOTE), ("note corrected", NOTE_CORRECTED), ("note imported", NOTE_IMPORTED)):
        found[label] = note
        for part in note.split():
            found[f"{label} part {part}"] = part
    return found


def occurrences(raw: bytes, needle: bytes) -> list[str]:
    """Where `needle` appears in `raw`, as is or hex-encoded (pg_dump writes bytea as hex)."""
    where = []
    if needle in raw:
        where.append("raw")
    if needle.hex().encode() in raw.lower():
        where.append("hex")
    return where


def pg_dump_binary() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), key=lambda p: int(Path(p).parts[-3]))
    found = candidates[-1] if candidates else shutil.which("pg_dump")
    if found is None:
        pytest.fail("pg_dump is needed to read what a PostgreSQL store keeps")
    return found


def raw_store(url: str) -> dict[str, bytes]:
    """The bytes the database keeps: every file of the SQLite store, or a full pg_dump."""
    store = parse_url(url)
    if store.backend == "sqlite":
        assert store.path is not None
        files = sorted(store.path.parent.glob(store.path.name + "*"))
        assert store.path in files
        return {f.name: f.read_bytes() for f in files}
    command = [pg_dump_binary(), "--no-owner", "--dbname", url]
    dump = subprocess.run(command, capture_output=True, check=True, timeout=120)
    return {"pg_dump": dump.stdout}


@pytest.fixture
def private_store(service: LedgerService, tmp_path: Path) -> Iterator[tuple[LedgerService, str]]:
    """A store holding every kind of personal data, through every write path."""
    code = helpers.establish(service, name=COMMUNITY_NAME)
    helpers.enroll(service, code, "R1", name=NAME_ZH, birth_date="1937-11-23", gender="female")
    helpers.enroll(service, code, "R2", name=NAME_ASCII, birth_date="1941/7/19", gender="male")
    residents = tmp_path / "residents.csv"
    residents.write_text(f"社区,编号,姓名,出生日期,性别\n{code},R3,{NAME_IMPORTED},1929年2月14日,女\n", encoding="utf-8")
    assert import_file(service, "residents", residents, "clerk").added == 1
    helpers.register(service, code, "P1")
    record_id = helpers.record(service, code, residents=["R1", "R2", "R3"], note=NOTE)["record_id"]
    correct(service, code, record_id, note=NOTE_CORRECTED)
    services = tmp_path / "services.csv"
    services.write_text(
        f"社区,服务类型,服务对象,服务人员,服务时间,时长(分钟),备注\n{code},生活照料,R1、R3,P1,2026-03-06 10:00,20,{NOTE_IMPORTED}\n",
        encoding="utf-8",
    )
    assert import_file(service, "services", services, "clerk").added == 1
    yield service, code


@pytest.mark.parametrize("state", ["while-open", "after-close"])
def test_no_personal_value_is_in_the_database_in_clear(
    private_store: tuple[LedgerService, str], db_url: str, state: str
) -> None:
    service, code = private_store
    stored = [p for _n, p in payloads(service)]
    named = [(p["name"], helpers.where(code, p, "name")) for p in stored if "enrolled_on" in p]
    noted = [(p["note"], helpers.where(code, p, "note")) for p in stored if p.get("note")]
    noted += [(p["changes"]["note"], helpers.where(code, p, "note")) for p in stored if "changes" in p]
    envelopes, notes = [e for e, _ in named], [e for e, _ in noted]
    # The personal data really is in the store, sealed: the key opens every envelope.
    opened = sorted(service.open_envelope(e, where=place) or "" for e, place in named)
    assert opened == sorted([NAME_ZH, NAME_ASCII, NAME_IMPORTED])
    assert sorted(service.open_envelope(n, where=place) or "" for n, place in noted) == sorted(
        [NOTE, NOTE_CORRECTED, NOTE_IMPORTED]
    )
    if state == "after-close":
        service.close()

    files = raw_store(db_url)
    raw = b"".join(files.values())
    # The scan sees what the store holds: clear non-personal text and the sealed envelopes.
    assert occurrences(raw, COMMUNITY_NAME.encode()), f"the scan missed the community name in {list(files)}"
    for envelope in envelopes + notes:
        assert occurrences(raw, envelope["ct"].encode()), "the scan missed an envelope"
    leaks = {
        f"{label} as {encoding} ({', '.join(where)})"
        for label, value in secrets_in_clear().items()
        for encoding, needle in encodings(value).items()
        if (where := occurrences(raw, needle))
    }
    assert not leaks, f"clear personal data in {list(files)}: {sorted(leaks)}"


def test_neither_the_master_key_nor_a_data_key_is_in_the_database(
    private_store: tuple[LedgerService, str], db_url: str, key_file: Path
) -> None:
    service, _code = private_store
    master = crypto.load_key_file(key_file)
    document = orjson.loads(key_file.read_bytes())
    wrapped = sql(db_url, "SELECT key_id, master_key_id, wrapped FROM data_keys")
    assert len(wrapped) == 3 + 2  # a key per resident, a key per record with a note (its correction reuses it)
    assert {row[1] for row in wrapped} == {master.key_id}
    data_keys = [master.unwrap(key_id, bytes(blob)) for key_id, _m, blob in wrapped]
    raw = b"".join(raw_store(db_url).values())
    assert occurrences(raw, bytes(wrapped[0][2])), "the scan missed a wrapped data key"
    for label, key in [("master key", master.key), *(("data key", k) for k in data_keys)]:
        for form in (key, base64.b64encode(key), base64.urlsafe_b64encode(key), key.hex().encode()):
            assert not occurrences(raw, form), f"the {label} is in the database"
    assert not occurrences(raw, document["key"].encode())
    # The master key's id is public (it says which key wraps a data key); the key is not.
    assert occurrences(raw, master.key_id.encode())


def test_without_the_key_file_nothing_personal_can_be_read_back(
    private_store: tuple[LedgerService, str], db_url: str, tmp_path: Path
) -> None:
    service, code = private_store
    keyless = LedgerService.open(parse_url(db_url), tmp_path / "elsewhere" / "taizhang.key")
    try:
        stored = [p for _n, p in payloads(keyless)]
        sealed = [(p["name"], helpers.where(code, p, "name")) for p in stored if "enrolled_on" in p]
        sealed += [(p["note"], helpers.where(code, p, "note")) for p in stored if p.get("note")]
        assert len(sealed) == 5
        assert [keyless.open_envelope(e, where=place) for e, place in sealed] == [None] * 5
        # A command that would seal new personal data is refused without the key.
        with pytest.raises(crypto.KeyFileError):
            keyless.enroll_resident(
                keyless.validate(models.EnrollResident, {"community": code, "code": "R4", "name": NAME_ZH}), "clerk"
            )
    finally:
        keyless.close()
    assert service.get_community(code).residents.keys() == {"R1", "R2", "R3"}
