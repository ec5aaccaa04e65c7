"""A snapshot is a cache: one that does not decode is skipped, the aggregate replayed, and it is said once.

On PostgreSQL a writer's login may add snapshots; on SQLite a damaged page can leave one
unreadable. Either way the community must stay writable and readable.
"""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from domain.ids import community_id
from tests.e2e.conftest import COMMUNITY, Cli, backend_of, establish_args, event_count, sqlite_path

GARBAGE = [
    ("taizhang:Community.Snapshot", b"\xff not json"),
    ("taizhang:Community.Snapshot", b'{"topic": "taizhang:Community", "state": {"nonsense": 1}}'),
    ("taizhang:NoSuch.Snapshot", b"{}"),
]


def _plant(url: str, version: int, topic: str, state: bytes) -> None:
    originator = community_id(COMMUNITY["code"])
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(sqlite_path(url))
        with conn:
            conn.execute("DELETE FROM stored_snapshots WHERE originator_id = ?", (originator.hex,))
            conn.execute("INSERT INTO stored_snapshots VALUES (?, ?, ?, ?)", (originator.hex, version, topic, state))
        conn.close()
        return
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM taizhang_snapshots WHERE originator_id = %s", (originator,))
        conn.execute("INSERT INTO taizhang_snapshots VALUES (%s, %s, %s, %s)", (originator, version, topic, state))


@pytest.mark.parametrize("garbage", GARBAGE, ids=["not-json", "no-aggregate", "unknown-topic"])
def test_a_garbage_snapshot_does_not_block_its_community(store: Cli, garbage: tuple[str, bytes]) -> None:
    store.ok(*establish_args(COMMUNITY))
    store.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    _plant(store.url, 2, *garbage)
    before = event_count(store.url)
    result = store.ok("resident", "update", "HZ-001", "R1", "--grid", "G1")
    notes = [line for line in result.stderr.splitlines() if "snapshot" in line]
    assert notes == [
        f"Note: ignored the snapshot of aggregate {community_id('HZ-001')} at version 2: it does not decode "
        + notes[0].split("it does not decode ", 1)[1]
    ]
    assert event_count(store.url) == before + 1
    store.ok("resident", "depart", "HZ-001", "R1", "--reason", "moved", "--on", "2026-03-01")
    assert event_count(store.url) == before + 2
    assert "intact: " in store.ok("audit", "verify").stdout
