"""Erasure, key rotation, the access log and backups, end to end on SQLite and PostgreSQL.

- `resident erase`: the wrapped keys are gone from `data_keys` and from the bytes the
  database keeps, the master key opens nothing of the resident, every output shows
  "(erased)", and every count, total and assessment is what it was. Stored events are
  not modified (erasure only destroys keys and appends its own event).
- `keys rotate`: every data key is re-wrapped in one transaction; every name opens with
  the new key file and none with the old one.
- the access log: each command that prints personal data appends who, what, when; the
  tables refuse UPDATE and DELETE; `audit access` filters by resident, actor and day.
- `backup`: a consistent copy of a SQLite store taken while another process writes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra import crypto
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import (
    COMMUNITY,
    EVENTS_TABLE,
    Cli,
    backend_of,
    error_line,
    establish_args,
    sqlite_path,
    store_counts,
)
from tests.integration.test_service import sql

NAME_1 = "擦除姓名甲乙丙"
NAME_2 = "保留姓名丁戊己"
NOTE_1 = "只属于R1的备注 EraseMe-QX7"
NOTE_BOTH = "R1和R2共同的备注 EraseToo-ZK4"
NOTE_2 = "只属于R2的备注 KeepMe-PL3"
PERIOD = "2026-03"


def _record(cli: Cli, *residents: str, at: str, minutes: int, note: str | None = None, kind: str = "life_care") -> str:
    args = ["service", "record", "HZ-001", "--kind", kind, "--provider", "P1", "--at", at, "--minutes", str(minutes)]
    for code in residents:
        args += ["--resident", code]
    if note is not None:
        args += ["--note", note]
    return str(cli.json(*args)["record_id"])


def build(cli: Cli) -> dict[str, str]:
    cli.ok("init")
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", NAME_1, "--birth-date", "2015-06-01", "--category", "留守儿童")
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", NAME_2, "--birth-date", "1950-01-01", "--category", "留守老人")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    records = {
        "r1": _record(cli, "R1", at="2026-03-02 09:00", minutes=30, note=NOTE_1),
        "both": _record(cli, "R1", "R2", at="2026-03-03 09:00", minutes=45, note=NOTE_BOTH, kind="family_care"),
        "r2": _record(cli, "R2", at="2026-03-04 09:00", minutes=20, note=NOTE_2),
        "plain": _record(cli, "R1", at="2026-03-05 09:00", minutes=15),
    }
    # R1 was on this record once; a correction took them off. Its note may still be about them.
    records["moved"] = _record(cli, "R1", at="2026-03-06 09:00", minutes=10, note="曾经属于R1")
    cli.ok("service", "correct", "HZ-001", records["moved"], "--resident", "R2", "--reason", "登记错了对象")
    return records


def read(cli: Cli, *args: str, **kwargs: Any) -> Any:
    cli.ok("projections", "run", **kwargs)
    return cli.json(*args, **kwargs)


def totals(cli: Cli) -> dict[str, Any]:
    """Every number the ledgers and the assessment give."""
    return {
        "summary": read(cli, "ledger", "summary", "--by", "community", "--per", "month"),
        "county": read(cli, "ledger", "summary", "--by", "county", "--category", "留守儿童"),
        "entries": [
            {k: v for k, v in row.items() if k != "note"}
            for row in read(cli, "ledger", "entries", "--include-voided")
        ],
        "residents": [
            {k: v for k, v in row.items() if k not in ("name", "birth_date")}
            for row in read(cli, "resident", "list", "HZ-001")
        ],
        "assessment": read(cli, "assess", "run", "--period", PERIOD, "--level", "township")["units"],
    }


def stored(url: str) -> list[tuple[Any, ...]]:
    table = EVENTS_TABLE[backend_of(url)]
    return sql(url, f"SELECT originator_id, originator_version, topic, state FROM {table} ORDER BY 1, 2")


def raw_table_bytes(url: str) -> bytes:
    """What the database keeps on disk for data_keys: the whole SQLite store (database and WAL),
    or the PostgreSQL table's relation file (read through the server after a CHECKPOINT)."""
    if backend_of(url) == "sqlite":
        path = sqlite_path(url)
        return b"".join(f.read_bytes() for f in sorted(path.parent.glob(path.name + "*")))
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        (path,) = conn.execute("SELECT pg_relation_filepath('data_keys')").fetchone()  # type: ignore[misc]
        (data,) = conn.execute("SELECT pg_read_binary_file(%s)", (path,)).fetchone()  # type: ignore[misc]
    return bytes(data)


# ---- erasure -----------------------------------------------------------------------------------
def test_erasure_destroys_the_keys_and_changes_no_number(run: Cli) -> None:
    records = build(run)
    url = run.url
    master = crypto.load_key_file(run.key)
    before = totals(run)
    events_before = stored(url)
    erased_ids = {"res:HZ-001/R1", *(f"note:{records[k]}" for k in ("r1", "both", "moved"))}
    wrapped = {row[0]: bytes(row[1]) for row in sql(url, "SELECT key_id, wrapped FROM data_keys")}
    assert erased_ids <= wrapped.keys()
    envelope_r1 = next(
        orjson.loads(bytes(state))["name"]
        for _o, _v, topic, state in events_before
        if topic.endswith("ResidentEnrolled") and orjson.loads(bytes(state))["code"] == "R1"
    )
    r1_key = master.unwrap("res:HZ-001/R1", wrapped["res:HZ-001/R1"])
    assert crypto.open_sealed(envelope_r1, r1_key, crypto.Binding("HZ-001", "R1", "name")) == NAME_1

    result = run.json("resident", "erase", "HZ-001", "R1", "--reason", "本人申请删除", actor="admin")
    assert result["records"] == sorted([records["r1"], records["both"], records["plain"], records["moved"]])
    assert result["keys_destroyed"] == 4  # R1's key and three notes ("plain" has none)
    assert result["scrubbed"] is True

    # The wrapped keys are gone, from the table and from the bytes the database keeps.
    left = {row[0] for row in sql(url, "SELECT key_id FROM data_keys")}
    assert left == set(wrapped) - erased_ids
    assert {"res:HZ-001/R2", f"note:{records['r2']}"} <= left
    raw = raw_table_bytes(url)
    for key_id in erased_ids:
        assert wrapped[key_id] not in raw, f"the wrapped key {key_id} is still in the database's bytes"
    assert wrapped["res:HZ-001/R2"] in raw, "the scan does not see the wrapped keys that remain"

    # Stored events are untouched: the old ones byte for byte, plus one erasure event.
    events_after = stored(url)
    assert [e for e in events_after if e in events_before] == events_before
    (new,) = [e for e in events_after if e not in events_before]
    payload = orjson.loads(bytes(new[3]))
    assert new[2] == "taizhang:Community.ResidentErased"
    assert (payload["code"], payload["reason"], payload["actor"]) == ("R1", "本人申请删除", "admin")

    # The master key opens nothing of R1 any more: the data key to unwrap does not exist.
    assert crypto.resident_key_id("HZ-001", "R1") not in {row[0] for row in sql(url, "SELECT key_id FROM data_keys")}
    # Every output shows the erasure, even with the master key; R2 is still readable.
    people = {row["code"]: row for row in read(run, "resident", "list", "HZ-001")}
    assert (people["R1"]["name"], people["R1"]["birth_date"]) == ("(erased)", "(erased)")
    assert (people["R2"]["name"], people["R2"]["birth_date"]) == (NAME_2, "1950-01-01")
    notes = {row["record_id"]: row["note"] for row in read(run, "ledger", "entries")}
    assert notes[records["r1"]] == notes[records["both"]] == notes[records["moved"]] == "(erased)"
    assert notes[records["r2"]] == NOTE_2 and notes[records["plain"]] is None
    table = run.ok("resident", "list", "HZ-001", lang="zh").stdout
    assert "（已删除）" in table and NAME_2 in table and NAME_1 not in table
    csv_text = run.ok("ledger", "entries", "--format", "csv").stdout
    assert "(erased)" in csv_text and NOTE_1 not in csv_text and NOTE_BOTH not in csv_text

    # Every count, total and assessment is what it was, and the hash chain still verifies.
    assert totals(run) == before
    assert run.ok("audit", "verify").exit_code == 0


def test_erasing_twice_an_unknown_resident_or_without_reason_is_refused(run: Cli) -> None:
    build(run)
    run.ok("resident", "erase", "HZ-001", "R1", "--reason", "申请", actor="admin")
    counts = store_counts(run.url)
    error_line(run("resident", "erase", "HZ-001", "R1", "--reason", "again", actor="admin"), 1, "R1", "already erased")
    error_line(run("resident", "erase", "HZ-001", "R9", "--reason", "x", actor="admin"), 1, "R9")
    error_line(run("resident", "erase", "HZ-009", "R1", "--reason", "x", actor="admin"), 1, "HZ-009")
    error_line(run("resident", "erase", "HZ-001", "R2", "--reason", "  ", actor="admin"), 2, "--reason")
    error_line(run("resident", "erase", "HZ-001", "R2", "--reason", "x", actor=None), 2, "--actor")
    assert store_counts(run.url) == counts


def test_nothing_new_is_recorded_about_an_erased_resident(run: Cli) -> None:
    records = build(run)
    run.ok("resident", "erase", "HZ-001", "R1", "--reason", "申请", actor="admin")
    counts = store_counts(run.url)
    refused = [
        ["service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
         "--at", "2026-03-09 09:00", "--minutes", "30"],
        ["service", "correct", "HZ-001", records["r2"], "--resident", "R1", "--resident", "R2", "--reason", "x"],
        ["service", "correct", "HZ-001", records["plain"], "--note", "新备注", "--reason", "补备注"],
        ["resident", "update", "HZ-001", "R1", "--grid", "G9"],
        ["visit-plan", "set", "HZ-001", "R1", "--every", "7", "--provider", "P1"],
        ["pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R1"],
    ]  # fmt: skip
    for args in refused:
        result = run(*args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert "erased" in result.stderr, (args, result.stderr)
    assert store_counts(run.url) == counts
    # Codes-only changes to existing records stay possible: the ledger can still be corrected.
    run.ok("service", "correct", "HZ-001", records["both"], "--minutes", "50", "--reason", "时长更正")
    run.ok("service", "void", "HZ-001", records["plain"], "--reason", "重复登记")
    run.ok("resident", "depart", "HZ-001", "R1", "--reason", "moved", "--on", "2026-04-01")


def test_an_import_row_about_an_erased_resident_is_refused(run: Cli, tmp_path: Path) -> None:
    build(run)
    run.ok("resident", "erase", "HZ-001", "R1", "--reason", "申请", actor="admin")
    services = tmp_path / "services.csv"
    services.write_text(
        "社区,服务类型,服务对象,服务人员,服务时间,时长(分钟),备注\n"
        "HZ-001,生活照料,R1,P1,2026-03-10 10:00,20,新备注\n"
        "HZ-001,生活照料,R2,P1,2026-03-10 11:00,20,\n",
        encoding="utf-8",
    )
    counts = store_counts(run.url)
    result = run("import", "services", str(services))
    assert result.exit_code == 1 and "row 2" in result.stderr and "erased" in result.stderr, result.stderr
    assert store_counts(run.url) == counts
    added = run.json("import", "services", str(services), "--skip-invalid")
    assert (added["added"], added["skipped"]) == (1, 1)
    assert "res:HZ-001/R1" not in {row[0] for row in sql(run.url, "SELECT key_id FROM data_keys")}


# ---- rotation ----------------------------------------------------------------------------------
def test_rotation_rewraps_every_key_so_only_the_new_key_file_opens_them(run: Cli, tmp_path: Path) -> None:
    build(run)
    old = crypto.load_key_file(run.key)
    names_before = {row["code"]: row["name"] for row in read(run, "resident", "list", "HZ-001")}
    notes_before = {row["record_id"]: row["note"] for row in read(run, "ledger", "entries")}
    count = len(sql(run.url, "SELECT key_id FROM data_keys"))
    old_wrapped = [bytes(row[0]) for row in sql(run.url, "SELECT wrapped FROM data_keys")]

    new_path = tmp_path / "keys" / "rotated.key"
    result = run.json("keys", "rotate", "--new-key-file", str(new_path), actor="admin")
    new = crypto.load_key_file(new_path)
    assert (result["data_keys"], result["old_master_key"], result["new_master_key"]) == (count, old.key_id, new.key_id)
    rows = sql(run.url, "SELECT key_id, master_key_id, wrapped FROM data_keys")
    assert len(rows) == count and {row[1] for row in rows} == {new.key_id}
    for key_id, _master, blob in rows:
        new.unwrap(key_id, bytes(blob))
        with pytest.raises(crypto.KeyFileError):
            old.unwrap(key_id, bytes(blob))
    # The keys as the old master key wrapped them are not left in the database's bytes either.
    raw = raw_table_bytes(run.url)
    assert not [blob for blob in old_wrapped if blob in raw]
    assert bytes(rows[0][2]) in raw
    # Every name and note reads with the new key file; the old one opens nothing.
    assert {r["code"]: r["name"] for r in read(run, "resident", "list", "HZ-001", key=new_path)} == names_before
    assert {r["record_id"]: r["note"] for r in read(run, "ledger", "entries", key=new_path)} == notes_before
    run.ok("projections", "run")
    for args in (["resident", "list", "HZ-001"], ["ledger", "entries"]):
        error_line(run(*args), 1, old.key_id, "rotated")
    # A writer still holding the old key cannot add a data key wrapped by it.
    counts = store_counts(run.url)
    error_line(run("resident", "enroll", "HZ-001", "R3", "--name", "新人"), 1, new.key_id)
    assert store_counts(run.url) == counts
    run.ok("resident", "enroll", "HZ-001", "R3", "--name", "新人", key=new_path)
    # The default new key file goes beside the old one, and no key file is ever overwritten.
    fresh = run.json("keys", "rotate", actor="admin", key=new_path)
    assert Path(fresh["new_key_file"]) == new_path.with_name("rotated.key.new")
    error_line(run("keys", "rotate", "--new-key-file", str(run.key), actor="admin", key=new_path.with_name("rotated.key.new")),
               1, "never overwritten")  # fmt: skip
    error_line(run("keys", "rotate", "--new-key-file", str(tmp_path / "nowhere" / "k"), actor="admin"), 2, "nowhere")


def test_rotation_with_a_key_file_that_is_not_the_stores_is_refused(run: Cli, tmp_path: Path) -> None:
    build(run)
    stranger = tmp_path / "stranger.key"
    crypto.create_key_file(stranger)
    target = tmp_path / "new.key"
    error_line(run("keys", "rotate", "--new-key-file", str(target), actor="admin", key=stranger), 1, "--key-file")
    assert not target.exists()
    assert {row[0] for row in sql(run.url, "SELECT master_key_id FROM data_keys")} == {
        crypto.load_key_file(run.key).key_id
    }


# ---- the access log -------------------------------------------------------------------------------
def access(cli: Cli, *args: str) -> list[dict[str, Any]]:
    return list(cli.json("audit", "access", *args, actor="auditor"))


def test_every_command_that_prints_personal_data_is_logged(run: Cli, tmp_path: Path) -> None:
    build(run)
    run.ok("projections", "run")
    assert access(run) == []
    reads = [
        (["resident", "list", "HZ-001"], "resident list", {"R1", "R2"}),
        (["resident", "list", "HZ-001", "--category", "留守儿童", "--format", "json"], "resident list", {"R1"}),
        (["ledger", "entries", "--format", "csv"], "ledger entries", {"R1", "R2"}),
        (["ledger", "entries", "--from", "2026-03-04", "--to", "2026-03-04"], "ledger entries", {"R2"}),
        (["ledger", "entries", "--format", "xlsx", "--output", str(tmp_path / "ledger.xlsx")], "ledger entries", {"R1", "R2"}),
    ]  # fmt: skip
    for args, _command, _residents in reads:
        run.ok(*args, actor="clerk07")
    run.ok("resident", "list", "HZ-001", actor=None)  # access control off: no actor, still logged
    run.ok("audit", "history", "HZ-001", actor="auditor")
    log = access(run)
    assert [row["command"] for row in log] == [command for _a, command, _r in reads] + [
        "resident list",
        "audit history",
    ]
    assert [row["actor"] for row in log] == ["clerk07"] * len(reads) + [None, "auditor"]
    assert [row["residents"] for row in log] == [len(r) for _a, _c, r in reads] + [2, 2]
    assert log[-1]["records"] == 4  # the four recordings with a note (the correction changed no note)
    assert "--category=留守儿童" in log[1]["detail"] and "--format=json" in log[1]["detail"]
    assert "ledger.xlsx" in log[4]["detail"] and str(tmp_path) not in log[4]["detail"]
    assert log[2]["records"] == 4  # notes shown: four records have one
    # Commands that print no personal data are not logged.
    for args in (["ledger", "summary", "--by", "county"], ["provider", "list", "HZ-001"], ["community", "list"]):
        run.ok(*args)
    assert len(access(run)) == len(log)
    # Every read of the child's data is found by the child's code.
    child = access(run, "--resident", "HZ-001/R1")
    assert [row["id"] for row in child] == [log[i]["id"] for i in (0, 1, 2, 4, 5, 6)]
    assert access(run, "--actor", "clerk07", "--resident", "HZ-001/R2") == [log[i] for i in (0, 2, 3, 4)]
    assert access(run, "--resident", "HZ-001/R9") == []


@pytest.mark.clock  # the access log's local days
def test_audit_access_filters_by_day_and_checks_its_options(run: Cli) -> None:
    build(run)
    run.ok("projections", "run")
    run.ok("resident", "list", "HZ-001")
    (entry,) = access(run)
    day = entry["at"][:10]
    assert access(run, "--from", day, "--to", day) == [entry]
    assert access(run, "--from", day) == [entry] and access(run, "--to", day) == [entry]
    next_day = f"{int(day[:4]) + 1}{day[4:]}"
    assert access(run, "--from", next_day) == []
    assert access(run, "--to", "2000-01-01") == []
    csv_lines = run.ok("audit", "access", "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == "id,at,actor,command,detail,residents,records" and len(csv_lines) == 2
    assert "涉及对象" in run.ok("audit", "access", lang="zh").stdout
    error_line(run("audit", "access", "--resident", "R1"), 2, "--resident", "COMMUNITY/CODE")
    error_line(run("audit", "access", "--from", "2026-13-01"), 2, "--from")
    error_line(run("audit", "access", "--from", "2026-03-02", "--to", "2026-03-01"), 2, "--from")


def test_the_access_log_refuses_update_and_delete(run: Cli) -> None:
    build(run)
    run.ok("projections", "run")
    run.ok("resident", "list", "HZ-001")
    statements = [
        "UPDATE access_log SET actor = 'someone-else'",
        "DELETE FROM access_log",
        "UPDATE access_log_residents SET resident = 'R2'",
        "DELETE FROM access_log_residents",
    ]
    if backend_of(run.url) == "postgres":
        statements.append("TRUNCATE access_log")
    for statement in statements:
        with pytest.raises(Exception, match="append-only"):
            sql(run.url, statement)
    assert len(access(run)) == 1 and access(run)[0]["actor"] == "clerk01"


def test_a_read_whose_access_cannot_be_logged_prints_nothing(run: Cli) -> None:
    build(run)
    run.ok("projections", "run")
    if backend_of(run.url) == "sqlite":
        sql(run.url, "CREATE TRIGGER refuse BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'log full'); END")
    else:
        import psycopg

        with psycopg.connect(run.url, autocommit=True) as conn:
            conn.execute("ALTER TABLE access_log ADD CONSTRAINT refuse CHECK (id < 0) NOT VALID")
    for args in (["resident", "list", "HZ-001"], ["ledger", "entries", "--format", "json"]):
        result = run(*args)
        assert result.exit_code == 1 and result.stdout == "", (args, result.stdout)
        assert NAME_1 not in result.output and NOTE_1 not in result.output


# ---- backup ------------------------------------------------------------------------------------
WRITER = """
import sys, uuid
from commands.cli import cli
url, key, stop = sys.argv[1], sys.argv[2], sys.argv[3]
import pathlib
i = 0
while not pathlib.Path(stop).exists():
    i += 1
    code = cli.main(["--db", url, "--key-file", key, "--actor", "writer", "service", "record", "HZ-001",
                     "--kind", "life_care", "--resident", "R2", "--provider", "P1", "--at", "2026-03-07 09:00",
                     "--minutes", str(1 + i % 600), "--note", f"note {i}"], standalone_mode=False)
    assert code == 0, code
"""


def test_backup_while_a_writer_runs_is_a_consistent_store(sqlite_url: str, tmp_path: Path) -> None:
    cli = Cli(sqlite_url, tmp_path / "taizhang.key")
    build(cli)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, sqlite_url, str(cli.key), str(stop)],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        start = len(stored(sqlite_url))
        deadline = time.monotonic() + 60
        while len(stored(sqlite_url)) < start + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        backups = [tmp_path / f"backup-{n}.db" for n in range(3)]
        for target in backups:
            result = cli.json("backup", str(target), actor=None)
            assert result["key_file_included"] is False and result["events"] == len(stored(f"sqlite:///{target}"))
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    original = stored(sqlite_url)
    sizes = []
    for target in backups:
        copy_url = f"sqlite:///{target}"
        events = stored(copy_url)
        sizes.append(len(events))
        # The same events as the original, up to the backup's size (the log is append-only).
        positions = sql(copy_url, "SELECT max(rowid) FROM stored_events")
        assert events == sorted(
            sql(
                sqlite_url,
                "SELECT originator_id, originator_version, topic, state FROM stored_events WHERE rowid <= ?",
                (positions[0][0],),
            )
        )
        assert len(events) > start
        # A restored backup opens with the same key file and queries like the original.
        copy = Cli(copy_url, cli.key)
        entries = read(copy, "ledger", "entries")
        assert len(entries) == len([e for e in events if e[2].endswith("ServiceRecorded")])
        assert {row["note"] for row in entries} >= {NOTE_1, NOTE_2}
        assert read(copy, "resident", "list", "HZ-001")[0]["name"] == NAME_1
        # ...and its hash chain verifies: a backup is a consistent prefix of the log.
        assert copy.ok("audit", "verify").exit_code == 0
    assert sizes == sorted(sizes) and sizes[-1] <= len(original)
    # Refusals: an existing file, a missing folder; the key file is not beside the backup.
    error_line(cli("backup", str(backups[0])), 1, "already exists")
    error_line(cli("backup", str(tmp_path / "missing" / "b.db")), 2, "missing")
    assert not list(tmp_path.glob("backup-*.key")) and not list(tmp_path.glob(".backup-*"))


def test_backup_of_a_postgresql_store_points_to_pg_dump(pg_admin_url: str, tmp_path: Path) -> None:
    url = make_pg_database(pg_admin_url)
    try:
        cli = Cli(url, tmp_path / "taizhang.key")
        cli.ok("init")
        target = tmp_path / "backup.db"
        error_line(cli("backup", str(target)), 1, "pg_dump")
        assert not target.exists()
    finally:
        drop_pg_database(pg_admin_url, url)
