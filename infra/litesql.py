"""Reading a SQLite store with the standard library alone: the read side's light path.

A query command on the embedded store needs neither SQLAlchemy nor eventsourcing when the views
are current (importing them costs more than the query: issue 12). `LiteConnection` runs the
read queries of projections/ (written as `conn.execute(text(sql), params)` with `:name`
parameters, which sqlite3 understands as they are) on a plain sqlite3 connection, inside one
WAL read transaction: it never takes the write lock, and writers never block it.

`text()` gives SQLAlchemy's text clause once SQLAlchemy is imported (a SQLAlchemy connection
exists only then) and otherwise the SQL string itself; `LiteConnection` takes either.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

# An originator id as the chain reads it (infra.sqlitestore._SAME_ID): case and ASCII whitespace do not count.
SAME_ID = (
    "lower("
    + "".join("replace(" for _ in range(6))
    + "originator_id"
    + "".join(f", char({code}), '')" for code in (9, 10, 11, 12, 13, 32))
    + ")"
)
EVENTS_TABLE = "stored_events"  # eventsourcing.sqlite's application table
ACTORS_ID = UUID("72868959-31f8-5d87-a7d2-cea898395fe3")  # domain.actors.ACTORS_ID (a test keeps them equal)


def text(sql: str) -> Any:
    """A query's SQL for `conn.execute`: SQLAlchemy's text clause when SQLAlchemy is loaded."""
    sqlalchemy = sys.modules.get("sqlalchemy")
    if sqlalchemy is not None and hasattr(sqlalchemy, "text"):
        return sqlalchemy.text(sql)
    return sql


class LiteResult:
    """The part of SQLAlchemy's Result the read queries use."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self._columns = [d[0] for d in cursor.description or ()]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._cursor)

    def keys(self) -> list[str]:
        return list(self._columns)

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self._columns, row, strict=True)) for row in self._cursor]

    def all(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()

    fetchall = all

    def first(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        self._cursor.close()
        return row

    def one(self) -> tuple[Any, ...]:
        rows = self._cursor.fetchall()
        if len(rows) != 1:
            raise LookupError(f"expected one row, got {len(rows)}")
        return rows[0]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]


class LiteConnection:
    """A sqlite3 connection inside one read transaction, used like a SQLAlchemy Connection."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, statement: Any, parameters: Mapping[str, Any] | Sequence[Any] | None = None) -> LiteResult:
        sql = statement if isinstance(statement, str) else getattr(statement, "text", None)
        if not isinstance(sql, str):
            if not hasattr(statement, "compile"):
                raise TypeError(f"LiteConnection runs SQL, not {type(statement).__name__}")
            # A Core construct (select(table)...): SQLAlchemy is loaded already, compile it for sqlite3.
            from sqlalchemy.dialects import sqlite

            compiled = statement.compile(dialect=sqlite.dialect())
            bound = compiled.construct_params(parameters if isinstance(parameters, Mapping) else None)
            sql, parameters = str(compiled), [bound[name] for name in compiled.positiontup or ()]
        return LiteResult(self.raw.execute(sql, parameters if parameters is not None else ()))

    def exec_driver_sql(self, sql: str, parameters: Sequence[Any] | None = None) -> LiteResult:
        return LiteResult(self.raw.execute(sql, parameters or ()))


def connect(path: Path, *, lock_wait: float = 30.0) -> sqlite3.Connection:
    """A read connection: autocommit mode (transactions are begun explicitly), query_only.

    `lock_wait` only matters in the rare moments a reader needs a lock at all (a WAL checkpoint
    after the last connection closes, recovery after a crash); reads themselves never wait.
    """
    raw = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=lock_wait)
    raw.execute("PRAGMA query_only = 1")
    return raw


class ViewState:
    """What a reader must know before it reads the views: are they there, and how far along.

    Read in one read transaction from the store's own tables, with sqlite3 only.
    """

    def __init__(self, head: int, positions: dict[str, int], versions: dict[str, int]) -> None:
        self.head = head
        self.positions = positions
        self.versions = versions

    def in_place(self, expected: Mapping[str, int]) -> bool:
        return all(self.versions.get(name) == version for name, version in expected.items())

    def position(self, names: Sequence[str]) -> int:
        return min((self.positions.get(name, 0) for name in names), default=0)


def view_state(raw: sqlite3.Connection) -> ViewState:
    """The head of the log and each projection's position and version (empty when there are no views)."""
    head = raw.execute(f"SELECT MAX(rowid) FROM {EVENTS_TABLE}").fetchone()[0] or 0
    try:
        rows = raw.execute("SELECT projection, position, version FROM ledger_tracking").fetchall()
    except sqlite3.OperationalError:  # no views yet, or views made before they had versions
        rows = []
    return ViewState(int(head), {r[0]: int(r[1]) for r in rows}, {r[0]: int(r[2]) for r in rows})


def settings(raw: sqlite3.Connection) -> dict[str, str]:
    try:
        return dict(raw.execute("SELECT key, value FROM taizhang_settings").fetchall())
    except sqlite3.OperationalError:
        return {}


def has_events_of(raw: sqlite3.Connection, aggregate: UUID) -> bool:
    """Whether the log holds any event of `aggregate`, under its id in any form (infra.sqlitestore)."""
    # The canonical form by the primary key, any other form by the partial index of odd ids
    # (infra.sqlitestore): `WHERE SAME_ID = ?` alone scanned the whole log on every command.
    if raw.execute(f"SELECT 1 FROM {EVENTS_TABLE} WHERE originator_id = ? LIMIT 1", (aggregate.hex,)).fetchone():
        return True
    odd = f"SELECT 1 FROM {EVENTS_TABLE} WHERE {SAME_ID} = ? AND originator_id <> {SAME_ID} LIMIT 1"
    return raw.execute(odd, (aggregate.hex,)).fetchone() is not None
