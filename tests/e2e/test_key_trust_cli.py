"""Attacks on the key file and on where a ciphertext sits, on SQLite and PostgreSQL.

- A key file whose key id is right but whose key material was damaged: the store's check
  value refuses it, in one line naming the file (exit 1), before any write and any read of
  personal data; nothing is written. The intact file keeps working.
- An envelope copied to another place (R1's name into R2's row, a record's note into
  another record, a birth date into a name), in the events or in the views: it never shows
  as that place's data, only as "(cannot be opened)". Envelopes of version 1 (the v1
  fixture store) still open where they belong, and only there.
"""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra import crypto
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import (
    COMMUNITY,
    COMMUNITY_2,
    EVENTS_TABLE,
    Cli,
    backend_of,
    error_line,
    establish_args,
    store_counts,
)
from tests.integration.test_service import _execute, sql

NAME_1 = "黄秀英甲"
NAME_2 = "覃小明乙"
BIRTH_1 = "1948-05-02"
NOTE_A = "只属于A的备注 MoveMe-7Q"
NOTE_B = "只属于B的备注 StayHere-3K"
UNOPENED = "(cannot be opened)"
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "store_v1"


def build(cli: Cli) -> dict[str, str]:
    """HZ-001 with residents R1, R2 (names, birth dates), provider P1 and records a (R1) and b (R2) with notes."""
    cli.ok("init")
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", NAME_1, "--birth-date", BIRTH_1)
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", NAME_2, "--birth-date", "2016-09-01")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    records = {}
    for label, resident, at, note in (("a", "R1", "2026-03-02 09:00", NOTE_A), ("b", "R2", "2026-03-03 09:00", NOTE_B)):
        args = ["service", "record", "HZ-001", "--kind", "life_care", "--resident", resident, "--provider", "P1"]
        records[label] = str(cli.json(*args, "--at", at, "--minutes", "30", "--note", note)["record_id"])
    return records


def read(cli: Cli, *args: str, **kwargs: Any) -> Any:
    cli.ok("projections", "run", **kwargs)  # PostgreSQL: bring the views up to the log first
    return cli.json(*args, **kwargs)


def by(rows: list[dict[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    return {row[field]: row for row in rows}


# ---- a damaged key file ------------------------------------------------------------------------
def damaged_copy(key: Path, target: Path) -> Path:
    """The key file with one bit of its key material flipped; its key id and everything else kept."""
    document = orjson.loads(key.read_bytes())
    material = bytearray(base64.b64decode(document["key"]))
    material[7] ^= 0x01
    document["key"] = base64.b64encode(bytes(material)).decode("ascii")
    target.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    assert crypto.load_key_file(target).key_id == crypto.load_key_file(key).key_id
    return target


def written(url: str) -> dict[str, Any]:
    """Everything a command could write besides the views: events, side tables, settings, access log."""
    return {
        **store_counts(url),
        "settings": sorted(sql(url, "SELECT key, value FROM taizhang_settings")),
        "access_log": sql(url, "SELECT count(*) FROM access_log")[0][0],
    }


def test_a_damaged_key_file_is_refused_before_any_write_or_read_of_personal_data(run: Cli, tmp_path: Path) -> None:
    records = build(run)
    run.ok("projections", "run")
    settings = dict(sql(run.url, "SELECT key, value FROM taizhang_settings"))
    master = crypto.load_key_file(run.key)
    assert settings["master_key_id"] == master.key_id
    assert settings["master_key_check"] == crypto.key_check(master)  # written by init
    damaged = damaged_copy(run.key, tmp_path / "damaged.key")
    residents = tmp_path / "residents.csv"
    residents.write_text("社区,编号,姓名\nHZ-001,R7,新来的人\n", encoding="utf-8")
    service = ["service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1"]
    attempts = [
        establish_args(COMMUNITY_2),
        ["resident", "enroll", "HZ-001", "R3", "--name", "新入册"],
        ["resident", "update", "HZ-001", "R1", "--grid", "第9网格"],
        ["provider", "register", "HZ-001", "P2", "--name", "陈丽", "--role", "志愿者"],
        [*service, "--at", "2026-03-09 10:00", "--minutes", "20"],
        [*service, "--at", "2026-03-10 10:00", "--minutes", "20", "--note", "新的备注"],
        ["service", "correct", "HZ-001", records["a"], "--note", "改过的备注", "--reason", "更正"],
        ["import", "residents", str(residents)],
        ["keys", "rotate", "--new-key-file", str(tmp_path / "new.key")],
        ["resident", "list", "HZ-001"],
        ["ledger", "entries", "--community", "HZ-001"],
        ["audit", "history", "HZ-001"],
    ]
    before = written(run.url)
    for args in attempts:
        line = error_line(run(*args, key=damaged, actor="admin"), 1, str(damaged), master.key_id, "check")
        assert "\n" not in line
        assert written(run.url) == before, f"{args} wrote to the store"
    assert not (tmp_path / "new.key").exists()
    error_line(run("resident", "list", "HZ-001", key=damaged, lang="zh"), 1, str(damaged), "校验", prefix="错误：")
    # The intact key file works as before, and what it wrote opens.
    run.ok("resident", "enroll", "HZ-001", "R3", "--name", "新入册")
    names = {r["code"]: r["name"] for r in read(run, "resident", "list", "HZ-001")}
    assert names == {"R1": NAME_1, "R2": NAME_2, "R3": "新入册"}
    assert by(read(run, "ledger", "entries"), "record_id")[records["a"]]["note"] == NOTE_A


def test_a_key_file_of_another_key_id_still_names_the_rotation(run: Cli, tmp_path: Path) -> None:
    """Only a damaged key under the store's key id meets the check value; another id is refused as before."""
    build(run)
    other = tmp_path / "other.key"
    crypto.create_key_file(other)
    before = written(run.url)
    error_line(run("resident", "enroll", "HZ-001", "R3", "--name", "新入册", key=other), 1, "rotated")
    assert written(run.url) == before


def test_rotation_writes_the_new_keys_check_value(run: Cli, tmp_path: Path) -> None:
    build(run)
    new = tmp_path / "new.key"
    run.ok("keys", "rotate", "--new-key-file", str(new))
    settings = dict(sql(run.url, "SELECT key, value FROM taizhang_settings"))
    assert settings["master_key_check"] == crypto.key_check(crypto.load_key_file(new))
    assert {r["code"]: r["name"] for r in read(run, "resident", "list", "HZ-001", key=new)}["R1"] == NAME_1
    damaged = damaged_copy(new, tmp_path / "damaged-new.key")
    error_line(run("resident", "list", "HZ-001", key=damaged), 1, str(damaged))


# ---- envelopes moved to another place -----------------------------------------------------------
def events(url: str, topic: str) -> list[tuple[Any, int, dict[str, Any]]]:
    """(originator_id, version, payload) of the stored events of a topic (`ResidentEnrolled`)."""
    table = EVENTS_TABLE[backend_of(url)]
    rows = sql(
        url,
        f"SELECT originator_id, originator_version, state FROM {table} WHERE topic = ?",
        (f"taizhang:Community.{topic}",),
    )
    return [(row[0], row[1], orjson.loads(bytes(row[2]))) for row in rows]


def rewrite_event(url: str, originator: Any, version: int, payload: dict[str, Any]) -> None:
    """The attack: rewrite one stored event's state in place, outside the application."""
    table = EVENTS_TABLE[backend_of(url)]
    _execute(
        url,
        f"UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
        (orjson.dumps(payload), originator, version),
    )


def test_a_name_copied_to_another_resident_never_shows_as_theirs(run: Cli) -> None:
    build(run)
    before = by(read(run, "resident", "list", "HZ-001"), "code")
    assert (before["R1"]["name"], before["R2"]["name"], before["R1"]["birth_date"]) == (NAME_1, NAME_2, BIRTH_1)
    name_1 = sql(run.url, "SELECT name FROM ledger_residents WHERE code = 'R1'")[0][0]
    birth_1 = sql(run.url, "SELECT birth_date FROM ledger_residents WHERE code = 'R1'")[0][0]
    assert orjson.loads(name_1)["v"] == 2

    # In the resident directory (a view row): R1's name into R2's row, R1's birth date into R1's name.
    _execute(run.url, "UPDATE ledger_residents SET name = ? WHERE code = 'R2'", (name_1,))
    listed = by(read(run, "resident", "list", "HZ-001"), "code")
    assert (listed["R1"]["name"], listed["R2"]["name"]) == (NAME_1, UNOPENED)
    table = run.ok("resident", "list", "HZ-001").stdout
    assert table.count(NAME_1) == 1 and NAME_2 not in table
    assert "（无法打开）" in run.ok("resident", "list", "HZ-001", lang="zh").stdout
    _execute(run.url, "UPDATE ledger_residents SET name = ? WHERE code = 'R1'", (birth_1,))
    assert by(read(run, "resident", "list", "HZ-001"), "code")["R1"]["name"] == UNOPENED

    # In the event log: R2's enrolment carries R1's name; the history and the rebuilt views refuse it.
    enrolled = {
        payload["code"]: (originator, version, payload)
        for originator, version, payload in events(run.url, "ResidentEnrolled")
    }
    originator, version, payload = enrolled["R2"]
    rewrite_event(run.url, originator, version, {**payload, "name": enrolled["R1"][2]["name"]})
    rows = run.json("audit", "history", "HZ-001")
    shown = {r["fields"]["code"]: r["fields"]["name"] for r in rows if r["event"] == "resident_enrolled"}
    assert shown == {"R1": NAME_1, "R2": UNOPENED}
    run.ok("projections", "rebuild")
    listed = by(read(run, "resident", "list", "HZ-001"), "code")
    assert (listed["R1"]["name"], listed["R2"]["name"], listed["R2"]["birth_date"]) == (NAME_1, UNOPENED, "2016-09-01")


def test_a_note_moved_to_another_record_never_shows_there(run: Cli) -> None:
    records = build(run)
    a, b = records["a"], records["b"]
    entries = by(read(run, "ledger", "entries"), "record_id")
    assert (entries[a]["note"], entries[b]["note"]) == (NOTE_A, NOTE_B)

    # In the ledger view: a's note on b's current revision.
    note_a = sql(run.url, "SELECT note FROM ledger_revisions WHERE record_id = ?", (a,))[0][0]
    _execute(run.url, "UPDATE ledger_revisions SET note = ? WHERE record_id = ?", (note_a, b))
    entries = by(read(run, "ledger", "entries"), "record_id")
    assert (entries[a]["note"], entries[b]["note"]) == (NOTE_A, UNOPENED)
    # Altered in place (its version stripped, its algorithm renamed, or not an envelope at all): the same.
    envelope = orjson.loads(note_a)
    for altered in ({k: v for k, v in envelope.items() if k != "v"}, {**envelope, "alg": "none"}, "not json", "[1]"):
        text = altered if isinstance(altered, str) else orjson.dumps(altered).decode()
        _execute(run.url, "UPDATE ledger_revisions SET note = ? WHERE record_id = ?", (text, a))
        assert by(read(run, "ledger", "entries"), "record_id")[a]["note"] == UNOPENED, altered

    # In the event log: b's ServiceRecorded carries a's note.
    recorded = {payload["record_id"]: (o, v, payload) for o, v, payload in events(run.url, "ServiceRecorded")}
    originator, version, payload = recorded[b]
    rewrite_event(run.url, originator, version, {**payload, "note": recorded[a][2]["note"]})
    rows = run.json("audit", "history", "HZ-001")
    notes = {r["fields"]["record_id"]: r["fields"]["note"] for r in rows if r["event"] == "service_recorded"}
    assert notes == {a: NOTE_A, b: UNOPENED}
    run.ok("projections", "rebuild")
    entries = by(read(run, "ledger", "entries"), "record_id")
    assert (entries[a]["note"], entries[b]["note"]) == (NOTE_A, UNOPENED)


def test_a_stored_note_opens_only_as_its_community_records_note(run: Cli) -> None:
    """The key id names the record only; version 2 binds the community and the field too."""
    a = build(run)["a"]
    envelope = next(
        payload["note"] for _o, _v, payload in events(run.url, "ServiceRecorded") if payload["record_id"] == a
    )
    where = crypto.note_of("HZ-001", a)
    wrapped = bytes(sql(run.url, "SELECT wrapped FROM data_keys WHERE key_id = ?", (where.key_id,))[0][0])
    data_key = crypto.load_key_file(run.key).unwrap(where.key_id, wrapped)
    assert crypto.open_sealed(envelope, data_key, where) == NOTE_A
    with pytest.raises(crypto.Unopenable):
        crypto.open_sealed(envelope, data_key, crypto.note_of("HZ-002", a))
    with pytest.raises(crypto.Unopenable):
        crypto.open_sealed(envelope, data_key, crypto.Binding("HZ-001", a, "name"))


# ---- the store written by version 1 -------------------------------------------------------------
@pytest.fixture
def v1(tmp_path: Path) -> Cli:
    """A copy of the v1 fixture store (SQLite) with its key file."""
    shutil.copy(FIXTURE / "taizhang.db", tmp_path / "taizhang.db")
    shutil.copy(FIXTURE / "taizhang.key", tmp_path / "taizhang.key")
    return Cli(f"sqlite:///{tmp_path / 'taizhang.db'}", tmp_path / "taizhang.key")


def test_v1_envelopes_open_where_they_belong_and_nowhere_else(v1: Cli) -> None:
    listed = by(v1.json("resident", "list", "HZ-P01"), "code")
    assert (listed["R001"]["name"], listed["R002"]["name"], listed["R001"]["birth_date"]) == (
        "张秀英",
        "王小明",
        "1948-05-02",
    )
    name_1 = sql(v1.url, "SELECT name FROM ledger_residents WHERE code = 'R001'")[0][0]
    assert "v" not in orjson.loads(name_1)  # version 1
    _execute(v1.url, "UPDATE ledger_residents SET name = ? WHERE code = 'R002'", (name_1,))
    listed = by(v1.json("resident", "list", "HZ-P01"), "code")
    assert (listed["R001"]["name"], listed["R002"]["name"]) == ("张秀英", UNOPENED)
    history = v1.json("audit", "history", "HZ-P01")
    assert {r["fields"]["code"]: r["fields"]["name"] for r in history if r["event"] == "resident_enrolled"} == {
        "R001": "张秀英",
        "R002": "王小明",
    }


def test_a_v1_store_gains_its_key_check_value_and_refuses_a_damaged_key_before_and_after(
    v1: Cli, tmp_path: Path
) -> None:
    master = crypto.load_key_file(v1.key)
    damaged = damaged_copy(v1.key, tmp_path / "damaged.key")
    enroll = ("resident", "enroll", "HZ-P01", "R009", "--name", "新入册")
    v1.ok("community", "list")  # opening upgrades the schema; this command needs no key
    before = written(v1.url)
    assert "master_key_check" not in dict(before["settings"])
    # Before the upgrade: the damaged key fails to unwrap the store's data keys; no check value is recorded.
    error_line(v1(*enroll, key=damaged), 1, str(damaged), master.key_id)
    assert written(v1.url) == before
    # The intact key: the store gains its check value (and master key id) and keeps working.
    v1.ok(*enroll)
    settings = dict(sql(v1.url, "SELECT key, value FROM taizhang_settings"))
    assert settings["master_key_check"] == crypto.key_check(master) and settings["master_key_id"] == master.key_id
    assert by(v1.json("resident", "list", "HZ-P01"), "code")["R009"]["name"] == "新入册"
    # After it: the check value refuses the damaged key, for reads of personal data too.
    after = written(v1.url)
    for args in (enroll, ("resident", "list", "HZ-P01"), ("audit", "history", "HZ-P01")):
        error_line(v1(*args, key=damaged), 1, str(damaged), "check")
    assert written(v1.url) == after


def test_a_store_without_data_keys_records_the_first_key_it_meets(run: Cli, tmp_path: Path) -> None:
    """A store made before the check value, with nothing sealed yet: the first key is recorded, then enforced."""
    run.ok("init")
    _execute(run.url, "DELETE FROM taizhang_settings WHERE key IN ('master_key_check', 'master_key_id')", ())
    run.ok(*establish_args(COMMUNITY))
    run.ok("resident", "enroll", "HZ-001", "R1", "--name", NAME_1)
    assert dict(sql(run.url, "SELECT key, value FROM taizhang_settings"))["master_key_check"] == crypto.key_check(
        crypto.load_key_file(run.key)
    )
    damaged = damaged_copy(run.key, tmp_path / "damaged.key")
    error_line(run("resident", "enroll", "HZ-001", "R2", "--name", NAME_2, key=damaged), 1, str(damaged))


def test_a_login_that_may_not_record_the_check_value_is_still_checked(pg_admin_url: str, tmp_path: Path) -> None:
    """PostgreSQL: only the owner writes settings. A clerk's login on a store without a check value
    cannot record it, keeps working with the intact key, and is refused a damaged one (a data key does not unwrap)."""
    import psycopg

    url = make_pg_database(pg_admin_url)
    role, password = f"tz_kclerk_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    try:
        owner = Cli(url, tmp_path / "taizhang.key")
        owner.ok("init", "--admin", "boss")
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE taizhang_writer")
        owner.ok(*establish_args(COMMUNITY), actor="boss")
        owner.ok(
            "actor", "add", "clerk01", "--role", "clerk", "--scope", "community:HZ-001", "--login", role, actor="boss"
        )
        clerk = Cli(f"postgresql://{role}:{password}@{url.split('@', 1)[1]}", owner.key)
        clerk.ok("resident", "enroll", "HZ-001", "R1", "--name", NAME_1)
        _execute(url, "DELETE FROM taizhang_settings WHERE key = 'master_key_check'", ())  # a store from before

        clerk.ok("resident", "enroll", "HZ-001", "R2", "--name", NAME_2)
        assert "master_key_check" not in dict(sql(url, "SELECT key, value FROM taizhang_settings"))
        damaged = damaged_copy(owner.key, tmp_path / "damaged.key")
        before = written(url)
        error_line(clerk("resident", "enroll", "HZ-001", "R3", "--name", "新入册", key=damaged), 1, str(damaged))
        assert written(url) == before
        owner.ok("projections", "run", actor="boss")
        assert {r["code"]: r["name"] for r in clerk.json("resident", "list", "HZ-001")} == {"R1": NAME_1, "R2": NAME_2}
        owner.ok("resident", "list", "HZ-001", actor="boss")  # the owner's login records it
        settings = dict(sql(url, "SELECT key, value FROM taizhang_settings"))
        assert settings["master_key_check"] == crypto.key_check(crypto.load_key_file(owner.key))
    finally:
        drop_pg_database(pg_admin_url, url)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
