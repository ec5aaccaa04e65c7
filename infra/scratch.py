"""A scratch place to recompute the views from the log, beside the live ones.

- SQLite: a new database file in a private temporary folder, deleted afterwards; compared
  through a connection to the store with the scratch file ATTACHed as `scratch`.
- PostgreSQL: the session's temporary schema (`pg_temp`): one connection holds it, so the
  tables vanish with it, and a login that may not create tables in the store (an auditor)
  can still recompute. Unqualified names resolve to `pg_temp` only (search_path), so the
  projections, which name their tables unqualified, write there and never see the live
  views; the comparison reads the live views by their schema.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool, StaticPool

from infra.runner import engines
from infra.store import StoreURL


@dataclass
class Scratch:
    builder: Engine  # the projections run on this engine: their tables are the scratch ones
    live_schema: str
    scratch_schema: str
    _compare: Engine

    @contextmanager
    def compare(self) -> Iterator[Connection]:
        """One consistent read transaction that sees both the live and the scratch tables."""
        with self._compare.connect() as conn:
            if self._compare.dialect.name == "postgresql":
                conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            else:
                conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")


@contextmanager
def scratch(store: StoreURL) -> Iterator[Scratch]:
    if store.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="taizhang-views-") as folder:
            path = Path(folder) / "scratch.db"
            builder = create_engine(f"sqlite:///{path}", poolclass=NullPool)
            _manual_transactions(builder, "BEGIN IMMEDIATE")
            compare = create_engine(f"sqlite:///{store.path}", poolclass=NullPool)
            _manual_transactions(compare, None, attach=str(path))
            try:
                yield Scratch(builder, "main", "scratch", compare)
            finally:
                builder.dispose()
                compare.dispose()
        return
    live, _ = engines(store)
    try:
        with live.connect() as conn:
            live_schema = str(conn.execute(text("SELECT current_schema()")).scalar())
    finally:
        live.dispose()
    # One connection for building and comparing: the temporary schema belongs to it.
    session = create_engine(
        live.url, poolclass=StaticPool, isolation_level="AUTOCOMMIT", connect_args={"options": "-c search_path=pg_temp"}
    )
    builder = session.execution_options(isolation_level="READ COMMITTED")
    try:
        yield Scratch(builder, live_schema, "pg_temp", session)
    finally:
        session.dispose()


def _manual_transactions(engine: Engine, begin: str | None, attach: str | None = None) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        if attach is not None:
            dbapi_connection.execute("ATTACH DATABASE ? AS scratch", (attach,))

    if begin is not None:

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(begin)
