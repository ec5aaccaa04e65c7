"""A command whose events committed exits 0 even when the snapshot after them fails (issue 11 item 7).

A snapshot is a cache written after the events' transaction committed. Here the database
itself refuses the snapshot row — a trigger on the snapshots table, on SQLite and on
PostgreSQL, failing as a full disk does (an OperationalError) or as a constraint does (an
IntegrityError, which the write loop would take for a lost race) — at the very write that
takes the community to a snapshot version. The command must say it recorded the service
(exit 0, `created: true`, a note on stderr), store its event exactly once, and a retry of the
same `--record-id` must change nothing; the next write still works, and the community loads.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest

from commands.app import SNAPSHOT_INTERVAL
from tests.e2e.conftest import (
    COMMUNITY,
    Cli,
    backend_of,
    establish_args,
    event_count,
    record_args,
    sqlite_path,
    write_csv,
)

SNAPSHOTS = {"sqlite": "stored_snapshots", "postgres": "taizhang_snapshots"}
HEADER = ["community", "record_id", "kind", "residents", "providers", "occurred_at", "minutes"]


def _sqlite_trigger(url: str, failure: str) -> None:
    conn = sqlite3.connect(sqlite_path(url))
    try:
        if failure == "full":
            # The trigger reads a table that is gone: the INSERT fails to prepare, an
            # OperationalError like SQLITE_FULL's "database or disk is full".
            conn.execute("CREATE TABLE gone (x)")
            conn.execute("CREATE TRIGGER no_snapshots BEFORE INSERT ON stored_snapshots BEGIN SELECT x FROM gone; END")
            conn.execute("DROP TABLE gone")
        else:
            conn.execute(
                "CREATE TRIGGER no_snapshots BEFORE INSERT ON stored_snapshots "
                "BEGIN SELECT RAISE(ABORT, 'snapshots refused'); END"
            )
        conn.commit()
    finally:
        conn.close()


def _postgres_trigger(url: str, failure: str) -> None:
    import psycopg

    errcode = "disk_full" if failure == "full" else "unique_violation"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION no_snapshots() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '{errcode}'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER no_snapshots BEFORE INSERT ON taizhang_snapshots "
            "FOR EACH ROW EXECUTE FUNCTION no_snapshots()"
        )


def refuse_snapshots(url: str, failure: str) -> None:
    if backend_of(url) == "sqlite":
        _sqlite_trigger(url, failure)
    else:
        _postgres_trigger(url, failure)


def snapshot_versions(url: str) -> list[int]:
    table = SNAPSHOTS[backend_of(url)]
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            return [int(row[0]) for row in conn.execute(f"SELECT originator_version FROM {table}")]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return [int(row[0]) for row in conn.execute(f"SELECT originator_version FROM {table}").fetchall()]


def record_events(url: str, record_id: str) -> int:
    """How many stored events name this record id (its ServiceRecorded, and nothing else here)."""
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT state FROM stored_events").fetchall()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT state FROM taizhang_events").fetchall()
    return sum(record_id.encode() in bytes(row[0]) for row in rows)


def community_one_short_of_a_snapshot(store: Cli, tmp_path: Path) -> None:
    """HZ-001 at version SNAPSHOT_INTERVAL - 1: the next event is the one that is snapshotted."""
    store.ok(*establish_args(COMMUNITY))
    store.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    store.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    rows = [
        ["HZ-001", str(uuid.uuid4()), "life_care", "R1", "P1", f"2026-03-{1 + i // 24:02d} {i % 24:02d}:00", "30"]
        for i in range(SNAPSHOT_INTERVAL - 4)
    ]
    added = store.json("import", "services", str(write_csv(tmp_path / "services.csv", [HEADER, *rows])))
    assert added["added"] == len(rows)
    assert event_count(store.url) == SNAPSHOT_INTERVAL - 1
    assert snapshot_versions(store.url) == []


@pytest.mark.parametrize("failure", ["full", "refused"])
def test_a_failed_snapshot_does_not_fail_the_write_that_committed(store: Cli, tmp_path: Path, failure: str) -> None:
    community_one_short_of_a_snapshot(store, tmp_path)
    refuse_snapshots(store.url, failure)
    record_id = str(uuid.uuid4())

    first = store(*record_args("HZ-001", "--record-id", record_id, "--format", "json"))
    assert first.exit_code == 0, f"{first.stdout}\n{first.stderr}"
    assert orjson.loads(first.stdout) == {"record_id": record_id, "created": True}
    note = first.stderr.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("Note: community HZ-001 was saved, but its snapshot"), first.stderr
    assert "Traceback" not in first.output
    # The snapshot really was refused by the database, after the event committed.
    assert snapshot_versions(store.url) == []
    assert event_count(store.url) == SNAPSHOT_INTERVAL
    assert record_events(store.url, record_id) == 1

    again = store(*record_args("HZ-001", "--record-id", record_id))
    assert again.exit_code == 0, f"{again.stdout}\n{again.stderr}"
    assert again.stdout.strip() == f"already recorded (unchanged): {record_id}"
    assert event_count(store.url) == SNAPSHOT_INTERVAL
    assert record_events(store.url, record_id) == 1

    later = str(uuid.uuid4())
    assert store.json(*record_args("HZ-001", "--record-id", later)) == {"record_id": later, "created": True}
    assert event_count(store.url) == SNAPSHOT_INTERVAL + 1
    store.ok("projections", "run")
    entries = store.json("ledger", "entries", "--community", "HZ-001")
    ids = [entry["record_id"] for entry in entries]
    assert ids.count(record_id) == 1 and ids.count(later) == 1
    assert len(ids) == SNAPSHOT_INTERVAL - 2
