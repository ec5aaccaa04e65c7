"""`audit verify|keygen|seal|prove|check` as an auditor runs them (README "Proving the ledger")."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import (
    COMMUNITY,
    Cli,
    error_line,
    establish_args,
    record_args,
    sqlite_path,
    store_counts,
    store_tables,
)
from tests.integration.test_service import sql

pytestmark = pytest.mark.clock  # sealed and recorded times


@pytest.fixture
def office(tmp_path: Path) -> Path:
    return tmp_path / "office" / "seal.key"


def history(store: Cli) -> str:
    store.ok(*establish_args(COMMUNITY))
    store.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    store.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    record_id = str(store.json(*record_args("HZ-001", "--note", "送米送油"))["record_id"])
    store.ok(*record_args("HZ-001", "--minutes", "20"))
    store.ok("service", "correct", "HZ-001", record_id, "--minutes", "60", "--reason", "时长登记有误")
    return record_id


def test_keygen_writes_a_private_key_for_its_owner_only_and_never_overwrites(run: Cli, office: Path) -> None:
    office.parent.mkdir()
    result = run.json("audit", "keygen", "--key-file", str(office), actor=None)
    assert stat.S_IMODE(office.stat().st_mode) == 0o600
    pub = Path(str(office) + ".pub")
    assert pub.read_text() == result["public_key"] and "BEGIN PUBLIC KEY" in result["public_key"]
    assert len(result["key_id"]) == 64
    before = office.read_bytes()
    error_line(run("audit", "keygen", "--key-file", str(office)), 1, "already exists")
    assert office.read_bytes() == before
    assert store_tables(run.url) == set()  # keygen never opens (or creates) a store


def test_keygen_words_a_name_the_file_system_cannot_hold(run: Cli, tmp_path: Path) -> None:
    """A name longer than the file system allows (found by the CLI fuzzer): exit 2 naming the option, nothing written."""
    name = tmp_path / ("A" * 300 + ".key")
    error_line(run("audit", "keygen", "--key-file", str(name)), 2, "--key-file: cannot create")
    assert list(tmp_path.iterdir()) == []


def test_seal_prove_check_and_verify_against_the_checkpoint(store: Cli, office: Path, tmp_path: Path) -> None:
    record_id = history(store)
    office.parent.mkdir()
    store.ok("audit", "keygen", "--key-file", str(office))
    pub = str(office) + ".pub"
    checkpoint = tmp_path / "2026-03.checkpoint"
    counts = store_counts(store.url)
    store.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint), actor=None)
    assert store_counts(store.url) == counts  # sealing writes nothing to the store
    sealed = orjson.loads(checkpoint.read_bytes())
    assert sealed["log_size"] == counts[next(iter(counts))]
    error_line(store("audit", "seal", "--key-file", str(office), "--output", str(checkpoint)), 1, "already exists")

    store.ok("service", "void", "HZ-001", record_id, "--reason", "重复登记")  # after the seal
    verified = store.json("audit", "verify", "--checkpoint", str(checkpoint), "--public-key", pub, actor=None)
    assert verified["appended_since"] == 1

    bundle = tmp_path / "record.bundle"
    store.ok("audit", "prove", record_id, "--checkpoint", str(checkpoint), "--output", str(bundle), actor=None)
    # No store at all: only the bundle and the public key.
    nowhere = f"sqlite:///{tmp_path / 'nowhere' / 'none.db'}"
    checked = store.json("audit", "check", str(bundle), "--public-key", pub, db=nowhere, actor=None)
    assert not (tmp_path / "nowhere").exists()
    assert checked["record_id"] == record_id
    assert [e["event"] for e in checked["events"]] == ["ServiceRecorded", "ServiceCorrected"]  # the void came later
    text = store.ok("audit", "check", str(bundle), "--public-key", pub, db=nowhere).stdout
    assert text.startswith(f"verified: record {record_id} has exactly these 2 event(s)")

    changed = bytearray(bundle.read_bytes())
    changed[len(changed) // 2] ^= 1
    (tmp_path / "changed.bundle").write_bytes(bytes(changed))
    error_line(store("audit", "check", str(tmp_path / "changed.bundle"), "--public-key", pub, db=nowhere), 1, "does not verify")
    other = tmp_path / "other.key"
    store.ok("audit", "keygen", "--key-file", str(other))
    error_line(store("audit", "check", str(bundle), "--public-key", str(other) + ".pub"), 1, "not with this public key")


def test_verify_names_the_event_tampered_in_a_copy_of_the_database(store: Cli, tmp_path: Path, backend: str) -> None:
    history(store)
    assert store.ok("audit", "verify", actor=None).stdout.startswith("intact: ")
    assert store.ok("audit", "verify", "--community", "HZ-001", actor=None).stdout.startswith("intact: community HZ-001")
    if backend == "sqlite":
        copy = tmp_path / "copy.db"
        shutil.copy(sqlite_path(store.url), copy)
        conn = sqlite3.connect(copy)
        conn.execute("UPDATE stored_events SET state = replace(state, '\"minutes\":20', '\"minutes\":90') WHERE rowid = 5")
        conn.commit()
        conn.close()
        url = f"sqlite:///{copy}"
    else:
        state = bytes(sql(store.url, "SELECT state FROM taizhang_events WHERE notification_id = 5")[0][0])
        sql(store.url, "UPDATE taizhang_events SET state = ? WHERE notification_id = 5 RETURNING 1", (state.replace(b'"minutes":20', b'"minutes":90'),))
        url = store.url
    error_line(store("audit", "verify", db=url), 1, "position 5: event changed")
    error_line(store("audit", "verify", "--community", "HZ-001", db=url), 1, "community HZ-001: position 5:")
    if backend == "sqlite":
        store.ok("audit", "verify")  # the original is untouched


def test_bad_audit_options_exit_2_and_a_missing_store_exits_1(store: Cli, run: Cli, tmp_path: Path) -> None:
    history(store)
    error_line(store("audit", "verify", "--checkpoint", str(tmp_path / "x")), 2, "--public-key")
    error_line(store("audit", "seal", "--key-file", str(tmp_path / "missing.key")), 2, "--key-file", "missing.key")
    (tmp_path / "cp").write_text("{}")
    (tmp_path / "k.pub").write_text("not a key")
    error_line(store("audit", "verify", "--checkpoint", str(tmp_path / "cp"), "--public-key", str(tmp_path / "k.pub")), 2, "--public-key")
    error_line(store("audit", "check", str(tmp_path / "nothing.bundle"), "--public-key", str(tmp_path / "k.pub")), 2, "--public-key")
    error_line(store("audit", "verify", "--community", "NOPE"), 1, "NOPE")
    missing = f"sqlite:///{tmp_path / 'absent' / 'x.db'}"
    error_line(store("audit", "verify", db=missing), 1, "no store at")
