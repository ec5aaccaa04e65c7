"""From a database URL to eventsourcing's infrastructure, and the store's own settings.

`sqlite:///PATH` is the embedded default (eventsourcing.sqlite); `postgresql://…`
the server (eventsourcing.postgres, imported only then). A store that does not
exist is never created here except by `init` and `demo` (create=True).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

DEFAULT_DB = "sqlite:///taizhang.db"
DEFAULT_TZ = "Asia/Shanghai"
FORMAT_VERSION = "1"
# 2: community_units; 3: erased_keys, access log; 4: taizhang_lock_events (PostgreSQL); 5: taizhang_chain;
# 6: access_chain, and on PostgreSQL taizhang_append (writers append only through it);
# 7: record_state and record_people (per-record state derived from the log, infra.recordstate),
#    and on SQLite the index of odd-form event ids holds only those rows;
# 8: record_claims dropped: record_state's primary key is the claim on a record id (docs/decisions/0027);
# 9: on PostgreSQL the append functions' cheaper bodies (same checks; CREATE OR REPLACE on upgrade)
SCHEMA_VERSION = "9"


class StoreError(Exception):
    """The store is missing, unreachable or not a taizhang store."""


class UpgradeNeedsOwner(StoreError):
    """A store made by an earlier version, opened by a login that may not upgrade it (PostgreSQL:
    only the owner creates and replaces tables and functions)."""


class HiddenEvent(StoreError):
    """An aggregate's event stored under its id in another form (SQLite): refused on read (exit 1)."""


class BadURL(ValueError):
    """The --db value cannot be understood (exit 2)."""


@dataclass(frozen=True)
class StoreURL:
    url: str
    backend: str  # "sqlite" | "postgres"
    path: Path | None = None
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""
    dbname: str = ""

    @property
    def display(self) -> str:
        if self.backend == "sqlite":
            return str(self.path)
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def default_key_file(self) -> Path:
        if self.backend == "sqlite" and self.path is not None:
            return self.path.parent / "taizhang.key"
        return Path("taizhang.key")


def _redacted(url: str) -> str:
    """The URL as an error may show it: a password in it is replaced by ***."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if sep and at and ":" in credentials:
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def parse_url(url: str) -> StoreURL:
    if "\x00" in url:
        raise BadURL(f"--db: contains a NUL character: {_redacted(url)!r}")
    if url.startswith("sqlite:///"):
        raw = url[len("sqlite:///") :]
        if not raw or "?" in raw:
            raise BadURL(f"--db: expected sqlite:///PATH, got {url!r}")
        return StoreURL(url=url, backend="sqlite", path=Path(raw))
    try:
        parts = urlsplit(url)
        hostname, port_number = parts.hostname, parts.port
    except ValueError as e:  # an unclosed [IPv6 bracket, a port out of range or not a number
        raise BadURL(f"--db: cannot read {_redacted(url)!r} ({e})") from None
    if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        dbname = parts.path.lstrip("/")
        if not hostname or not dbname:
            raise BadURL(f"--db: expected postgresql://USER:PASS@HOST:PORT/DB, got {_redacted(url)!r}")
        return StoreURL(
            url=url,
            backend="postgres",
            host=hostname,
            port=str(port_number or 5432),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            dbname=unquote(dbname),
        )
    raise BadURL(
        f"--db: unsupported URL {_redacted(url)!r} (use sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB)"
    )


def eventsourcing_env(store: StoreURL, *, create: bool) -> dict[str, str]:
    """The environment an eventsourcing Application is constructed with."""
    common = {"CREATE_TABLE": "y" if create else "n"}
    if store.backend == "sqlite":
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(store.path),
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "infra.sqlitestore:SQLiteLedgerRecorder",
        }
    return {
        **common,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": store.dbname,
        "POSTGRES_HOST": store.host,
        "POSTGRES_PORT": store.port,
        "POSTGRES_USER": store.user,
        "POSTGRES_PASSWORD": store.password,
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": "infra.pgstore:PostgresLedgerRecorder",
    }


def store_exists(store: StoreURL) -> bool:
    """True when the URL names an initialised taizhang store. Creates nothing."""
    if store.backend == "sqlite":
        assert store.path is not None
        if not store.path.is_file():
            return False
        try:
            conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
            try:
                row = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='taizhang_settings'"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise StoreError(f"{store.path} is not a readable SQLite database: {e}") from None
        return row is not None
    import psycopg

    try:
        with psycopg.connect(
            host=store.host,
            port=store.port,
            user=store.user,
            password=store.password,
            dbname=store.dbname,
            connect_timeout=10,
        ) as conn:
            row = conn.execute("SELECT to_regclass('taizhang_settings') IS NOT NULL").fetchone()
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to {store.display}: {str(e).strip().splitlines()[0]}") from None
    return bool(row and row[0])


def env_default(name: str, default: str) -> str:
    return os.environ.get(name) or default


def prune_snapshots(recorder: Any, originator_id: UUID, below_version: int) -> None:
    """Delete an aggregate's snapshots older than `below_version`.

    Loading reads only the newest snapshot at or below the version asked for, so
    the older ones are dead weight: kept, they grow the store quadratically (a
    snapshot holds every record id of its community). An old version of an
    aggregate is still loadable without them, by replaying its events.
    Snapshots are not events: nothing else refers to them.
    """
    prune_many_snapshots(recorder, [(originator_id, below_version)])


def prune_many_snapshots(recorder: Any, below: Sequence[tuple[UUID, int]]) -> None:
    """`prune_snapshots` of several aggregates (id, below_version) in one transaction."""
    from eventsourcing.sqlite import SQLiteAggregateRecorder

    table = recorder.events_table_name
    if isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=True) as c:
            c.executemany(
                f"DELETE FROM {table} WHERE originator_id = ? AND originator_version < ?",
                [(originator_id.hex, version) for originator_id, version in below],
            )
        return
    from psycopg.sql import SQL, Identifier

    statement = SQL("DELETE FROM {}.{} WHERE originator_id = %s AND originator_version < %s").format(
        Identifier(recorder.datastore.schema), Identifier(table)
    )
    with recorder.datastore.transaction(commit=True) as curs:
        curs.executemany(statement, list(below))


# One access-log entry to append: (actor, command, detail, residents as (community, code) in order, notes shown).
AccessEntry = tuple[str | None, str, str, Sequence[tuple[str, str]], int]


def access_log_query(
    *, resident: tuple[str, str] | None, actor: str | None, start: str | None, end: str | None, mark: str, at: str
) -> tuple[str, list[Any]]:
    """The access-log query of both stores, oldest first: `mark` is the driver's placeholder
    (`?` or `%s`), `at` how a UTC text compares with the `at` column (e.g. `%s::timestamptz`)."""
    sql = "SELECT a.id, a.at, a.actor, a.command, a.detail, a.residents, a.records FROM access_log a"
    where: list[str] = []
    params: list[Any] = []
    if resident is not None:
        sql += f" JOIN access_log_residents r ON r.access_id = a.id AND r.community = {mark} AND r.resident = {mark}"
        params += list(resident)
    if actor is not None:
        where.append(f"a.actor = {mark}")
        params.append(actor)
    if start is not None:
        where.append(f"a.at >= {at}")
        params.append(start)
    if end is not None:
        where.append(f"a.at < {at}")
        params.append(end)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY a.id", params
