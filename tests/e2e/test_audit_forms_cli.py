"""Attacks the hash chain alone does not see, each named by `audit verify` (exit 1) with and
without `--community` and `--checkpoint`, on both stores.

The attacker can write the database and recomputes the chain after the change (as
`chain_backlog` does for an upgraded store), so only the new checks can catch it:
an originator id stored in another form (SQLite: it hashes alike but the application no
longer finds the event), a recorded time stored finer than the chain sees (PostgreSQL),
an aggregate's version repeated or skipped, a recorded time moved back. The changes
after the checkpoint are appended, so the log still extends the sealed one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from commands.app import LedgerService
from infra.store import parse_url
from tests.e2e.conftest import COMMUNITY, Cli, backend_of, error_line, establish_args, sqlite_path, store_counts
from tests.e2e.test_audit_chain_cli import history
from tests.integration.test_service import sql

EVENTS = {"sqlite": ("stored_events", "rowid"), "postgres": ("taizhang_events", "notification_id")}


@pytest.fixture
def sealed(store: Cli, tmp_path: Path) -> Iterator[tuple[Cli, list[str]]]:
    """A store with a history and the `--checkpoint … --public-key …` options of a seal of it."""
    history(store)
    office = tmp_path / "seal.key"
    store.ok("audit", "keygen", "--key-file", str(office))
    checkpoint = tmp_path / "sealed.checkpoint"
    store.ok("audit", "seal", "--key-file", str(office), "--output", str(checkpoint), actor=None)
    yield store, ["--checkpoint", str(checkpoint), "--public-key", str(office) + ".pub"]


def run_sql(url: str, *statements: str, params: tuple[object, ...] = ()) -> None:
    """Statements in one transaction, outside the application (`?` placeholders)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            for statement in statements:
                conn.execute(statement, params if "?" in statement else ())
            conn.commit()
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url) as conn:
        for statement in statements:
            conn.execute(statement.replace("?", "%s"), params if "?" in statement else ())  # type: ignore[arg-type]


def rechain(url: str, key: Path) -> None:
    """What a careful attacker does next: chain whatever is not chained yet."""
    service = LedgerService.open(parse_url(url), key)
    try:
        service.recorder.chain_backlog()
    finally:
        service.close()


def last_position(url: str, backend: str) -> int:
    table, pos = EVENTS[backend]
    return int(sql(url, f"SELECT max({pos}) FROM {table}")[0][0])


def append_forged(url: str, backend: str, key: Path, version_delta: int) -> int:
    """Append a copy of the log's last event (a correction in HZ-001) at version last + delta,
    with a commit row at the latest recorded time and a chain entry; returns its position."""
    table, pos = EVENTS[backend]
    last = last_position(url, backend)
    run_sql(
        url,
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
        f"SELECT originator_id, originator_version + ?, topic, state FROM {table} WHERE {pos} = {last}",
        params=(version_delta,),
    )
    forged = last_position(url, backend)
    run_sql(
        url,
        "INSERT INTO taizhang_commits (first_position, last_position, recorded_at) "
        f"SELECT {forged}, {forged}, max(recorded_at) FROM taizhang_commits",
    )
    rechain(url, key)
    return forged


def drop_version_key(url: str, backend: str) -> None:
    """Remove the (originator_id, originator_version) primary key, as the owner can."""
    if backend == "postgres":
        run_sql(url, "ALTER TABLE taizhang_events DROP CONSTRAINT taizhang_events_pkey")
        return
    run_sql(
        url,
        "CREATE TABLE bare (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB)",
        "INSERT INTO bare (rowid, originator_id, originator_version, topic, state) "
        "SELECT rowid, originator_id, originator_version, topic, state FROM stored_events",
        "DROP TABLE stored_events",
        "ALTER TABLE bare RENAME TO stored_events",
    )


def refused_everywhere(store: Cli, checkpoint: list[str], *needles: str) -> None:
    for extra in ([], ["--community", "HZ-001"], checkpoint):
        error_line(store("audit", "verify", *extra, actor=None), 1, *needles)


def test_an_untouched_store_verifies_every_way(sealed: tuple[Cli, list[str]]) -> None:
    store, checkpoint = sealed
    for extra in ([], ["--community", "HZ-001"], checkpoint):
        assert store.ok("audit", "verify", *extra, actor=None).stdout.startswith("intact: ")


def test_an_originator_id_stored_in_another_form_is_named(sealed: tuple[Cli, list[str]], backend: str) -> None:
    store, checkpoint = sealed
    position = last_position(store.url, backend)
    if backend == "sqlite":
        # Hashes like the canonical id (the chain decodes it), but the application looks events
        # up by the exact text: this correction is gone from HZ-001's history.
        run_sql(store.url, f"UPDATE stored_events SET originator_id = upper(originator_id) WHERE rowid = {position}")
        refused_everywhere(store, checkpoint, f"position {position}: originator id", "not stored in its canonical form")
        return
    # A uuid column has one form: the same attack changes nothing…
    run_sql(store.url, f"UPDATE taizhang_events SET originator_id = upper(originator_id::text)::uuid WHERE notification_id = {position}")
    store.ok("audit", "verify", *checkpoint, actor=None)
    # …but a recorded time finer than the millisecond the chain hashes is another form of it.
    run_sql(store.url, "UPDATE taizhang_commits SET recorded_at = recorded_at + interval '0.3 milliseconds' "
            f"WHERE first_position = {position}")  # fmt: skip
    refused_everywhere(store, checkpoint, f"position {position}: recorded time", "not stored in its canonical form")


def test_a_repeated_version_is_named(sealed: tuple[Cli, list[str]], backend: str) -> None:
    store, checkpoint = sealed
    drop_version_key(store.url, backend)
    store.ok("audit", "verify", *checkpoint, actor=None)  # the rebuilt table alone changes nothing
    forged = append_forged(store.url, backend, store.key, 0)
    error_line(store("audit", "verify", actor=None), 1, f"position {forged}: aggregate", "repeats the one at position")
    error_line(store("audit", "verify", *checkpoint, actor=None), 1, f"position {forged}: aggregate", "repeats")
    error_line(store("audit", "verify", "--community", "HZ-001", actor=None), 1,
               f"community HZ-001: position {forged}: version 6 repeats the one at position {forged - 1}")  # fmt: skip


def test_a_missing_version_is_named(sealed: tuple[Cli, list[str]], backend: str) -> None:
    store, checkpoint = sealed
    forged = append_forged(store.url, backend, store.key, 2)
    error_line(store("audit", "verify", actor=None), 1, f"position {forged}: aggregate", "version 8 follows version 6")
    error_line(store("audit", "verify", *checkpoint, actor=None), 1, f"position {forged}: aggregate", "a version is missing")
    error_line(store("audit", "verify", "--community", "HZ-001", actor=None), 1,
               f"community HZ-001: position {forged}: version 8 where 7 was expected")  # fmt: skip


def test_a_recorded_time_moved_back_is_named(sealed: tuple[Cli, list[str]], backend: str) -> None:
    store, checkpoint = sealed
    store.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
             "--at", "2026-03-06 09:30", "--minutes", "30")  # fmt: skip
    position = last_position(store.url, backend)
    run_sql(
        store.url,
        "UPDATE taizhang_commits SET recorded_at = ? WHERE first_position = ?",
        f"DELETE FROM taizhang_chain WHERE position = {position}",
        params=("2026-01-01T00:00:00.000Z", position),
    )
    rechain(store.url, store.key)
    refused_everywhere(store, checkpoint, f"position {position}: recorded time 2026-01-01T00:00:00.000Z is earlier than")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("originator_id = '{dashed}'", "originator id '{dashed}' is not stored in its canonical form"),
        ("originator_version = '6x'", "originator version '6x' is not a whole number of 1 or more"),
        ("topic = CAST(topic AS BLOB)", "the event's topic is stored as blob, not as text"),
        ("rowid = -1", "position -1 is not a log position"),
    ],
)
def test_a_sqlite_row_the_walk_cannot_decode_is_named_in_one_line(sqlite_url: str, tmp_path: Path, change: str, needle: str) -> None:
    """SQLite keeps any type in any column (PostgreSQL's typed columns refuse these)."""
    store = Cli(sqlite_url, tmp_path / "keys" / "taizhang.key")
    store.ok("init")
    history(store)
    position = last_position(store.url, "sqlite")
    oid = str(sql(store.url, f"SELECT originator_id FROM stored_events WHERE rowid = {position}")[0][0])
    dashed = f"{oid[:8]}-{oid[8:12]}-{oid[12:16]}-{oid[16:20]}-{oid[20:]}"
    run_sql(store.url, f"UPDATE stored_events SET {change.format(dashed=dashed)} WHERE rowid = {position}")
    for extra in ([], ["--community", "HZ-001"]):
        error_line(store("audit", "verify", *extra, actor=None), 1, needle.format(dashed=dashed))


@pytest.mark.parametrize("form", ["upper", "spaced"])
def test_an_event_hidden_under_another_form_of_its_id_is_refused_on_read(run: Cli, form: str) -> None:
    """The attack of the issue on SQLite: the revocation of a clerk stored under its id upper-cased
    (or with a space the chain's bytes.fromhex skips) would revive the clerk. Every command that loads
    the actors refuses instead, and nothing is written; the same for a community's hidden event."""
    if backend_of(run.url) != "sqlite":
        pytest.skip("a uuid column on PostgreSQL has one form (see the test above)")
    run.ok("init", "--admin", "admin01", actor=None)
    run.ok(*establish_args(COMMUNITY), actor="admin01")
    run.ok("actor", "add", "clerk01", "--role", "clerk", "--scope", "community:HZ-001", actor="admin01")
    run.ok("actor", "revoke", "clerk01", "--reason", "调离岗位", actor="admin01")
    error_line(run("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", actor="clerk01"), 1, "clerk01")
    revoked = last_position(run.url, "sqlite")
    edit = "upper(originator_id)" if form == "upper" else "substr(originator_id, 1, 8) || ' ' || substr(originator_id, 9)"
    run_sql(run.url, f"UPDATE stored_events SET originator_id = {edit} WHERE rowid = {revoked}")
    before = store_counts(run.url)
    for actor, args in (("clerk01", ("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")),
                        ("admin01", ("community", "list"))):  # fmt: skip
        error_line(run(*args, actor=actor), 1, "stored under its id in another form", f"position {revoked}")
    assert store_counts(run.url) == before
    error_line(run("audit", "verify", actor="admin01"), 1, f"position {revoked}: originator id")
