"""A store's logical state, to prove that a rejected command changed nothing.

Compared logically, not by file bytes (SQLite rewrites pages on reads: WAL
checkpoints, projections catching up): a digest of the events (originator id,
version, topic, state), of the snapshots, and of every side table a write
touches with its events — `STORE_TABLES` of the SQLite store, read from the
code so tables added later (actors, keys, closed periods …) are covered — plus
any table whose name says it holds actors, and the master key file. Projection
tables are left out: a query may bring them up to date. An access log is left
out as well: recording who tried to read is what it is for.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.sqlitestore import STORE_TABLES

EVENT_TABLES = ("stored_events", "taizhang_events")
SNAPSHOT_TABLES = ("stored_snapshots", "taizhang_snapshots")
SIDE_TABLES = tuple(
    name
    for statement in STORE_TABLES
    if (match := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", statement))
    for name in [match.group(1)]
    if "access" not in name
)


@dataclass(frozen=True)
class State:
    events: int
    digests: dict[str, str]  # table (or "key file") -> sha256 of its rows in order

    def differences(self, other: State) -> list[str]:
        changed = [name for name in sorted(set(self.digests) | set(other.digests)) if self.digests.get(name) != other.digests.get(name)]
        if self.events != other.events:
            changed.insert(0, f"events {self.events} -> {other.events}")
        return changed


def _digest(rows: list[tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for row in rows:
        for value in row:
            data = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else repr(value).encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _tables_to_compare(tables: set[str]) -> list[str]:
    wanted = [t for t in (*EVENT_TABLES, *SNAPSHOT_TABLES, *SIDE_TABLES) if t in tables]
    wanted += sorted(t for t in tables if "actor" in t and "access" not in t and t not in wanted)
    return wanted


def _key_digest(key_file: Path) -> str:
    return hashlib.sha256(key_file.read_bytes()).hexdigest() if key_file.exists() else "absent"


class StateReader:
    """Reads the logical state of one store; keeps its connection between reads."""

    def __init__(self, url: str, key_file: Path) -> None:
        self.url = url
        self.key_file = key_file
        self.sqlite = url.startswith("sqlite:///")
        self._conn: Any = None

    def _connect(self) -> Any:
        if self._conn is None:
            if self.sqlite:
                path = self.url[len("sqlite:///") :]
                self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            else:
                import psycopg

                self._conn = psycopg.connect(self.url, autocommit=True)
        return self._conn

    def _tables(self) -> set[str]:
        sql = (
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if self.sqlite
            else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return {row[0] for row in self._connect().execute(sql).fetchall()}

    def read(self) -> State:
        conn = self._connect()
        digests: dict[str, str] = {}
        events = 0
        for table in _tables_to_compare(self._tables()):
            columns = "*"
            if table in EVENT_TABLES or table in SNAPSHOT_TABLES:
                columns = "originator_id, originator_version, topic, state"
            rows = sorted((tuple(r) for r in conn.execute(f"SELECT {columns} FROM {table}").fetchall()), key=repr)
            if self.sqlite:
                conn.commit()  # end the read transaction so the next read sees new commits
            digests[table] = _digest(rows)
            if table in EVENT_TABLES:
                events = len(rows)
        digests["key file"] = _key_digest(self.key_file)
        return State(events, digests)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
