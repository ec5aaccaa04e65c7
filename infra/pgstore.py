"""The server store: eventsourcing's PostgreSQL recorder plus taizhang's write-time hook.

The hook runs after `LOCK TABLE … IN EXCLUSIVE MODE` and the events' `INSERT …
RETURNING`, inside the same transaction: writers are serialised there, so the
recorded time can be made non-decreasing along the log. Imported
only when the URL is PostgreSQL (psycopg costs ~200 ms to import).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

STORE_TABLES = [
    "CREATE TABLE IF NOT EXISTS taizhang_settings (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS taizhang_commits ("
    " first_position bigint PRIMARY KEY,"
    " last_position bigint NOT NULL,"
    " recorded_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS taizhang_commits_recorded_at ON taizhang_commits (recorded_at)",
    "CREATE TABLE IF NOT EXISTS record_claims (record_id text PRIMARY KEY, community_id text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS community_units (code text PRIMARY KEY, county text NOT NULL, township text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS data_keys (key_id text PRIMARY KEY, master_key_id text NOT NULL, wrapped bytea NOT NULL)",
]


def utc_text(value: Any) -> str:
    """A timestamptz as the same fixed-width UTC text the SQLite store keeps."""

    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


INSERT_CHUNK = 2000  # events per INSERT statement within one transaction


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.extend(SQL(statement) for statement in STORE_TABLES)  # type: ignore[arg-type]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """All events in one transaction, inserted in chunks, without psycopg's pipeline mode.

        eventsourcing sends every event of a save as one array parameter inside a pipeline;
        with a few tens of thousands of events (an import) that stalls for good: the server
        waits for the rest of the message while the client waits for the sync. Chunked
        statements in an ordinary transaction keep the same atomicity and ordering.
        """
        positions: list[int] = []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            if stored_events:
                self._lock_table(curs)
                self._notify_channel(curs)
                for start in range(0, len(stored_events), INSERT_CHUNK):
                    chunk = stored_events[start : start + INSERT_CHUNK]
                    PostgresAggregateRecorder._insert_stored_events(self, curs, chunk, **kwargs)
                    positions.extend(row["notification_id"] for row in curs.fetchall())
                self._write_hook(curs, positions, **kwargs)
        return positions

    def _write_hook(self, curs: Cursor[DictRow], positions: Sequence[int], **kwargs: Any) -> None:
        if positions:
            curs.execute(
                "INSERT INTO taizhang_commits (first_position, last_position, recorded_at) "
                "SELECT %s, %s, greatest(date_trunc('milliseconds', clock_timestamp()), "
                " coalesce((SELECT recorded_at FROM taizhang_commits ORDER BY first_position DESC LIMIT 1), '-infinity'))",
                (positions[0], positions[-1]),
            )
        claims = kwargs.get("claims")
        if claims:
            curs.executemany("INSERT INTO record_claims (record_id, community_id) VALUES (%s, %s)", claims)
        data_keys = kwargs.get("data_keys")
        if data_keys:
            curs.executemany(
                "INSERT INTO data_keys (key_id, master_key_id, wrapped) VALUES (%s, %s, %s)", data_keys
            )
        units = kwargs.get("units")
        if units:
            curs.executemany("INSERT INTO community_units (code, county, township) VALUES (%s, %s, %s)", units)

    # ---- reads the application needs ---------------------------------------------------
    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(sql, params)
            return list(curs.fetchall())

    def claims(self, record_ids: Iterable[str]) -> dict[str, str]:
        ids = list(record_ids)
        if not ids:
            return {}
        rows = self._select("SELECT record_id, community_id FROM record_claims WHERE record_id = ANY(%s)", (ids,))
        return {row["record_id"]: row["community_id"] for row in rows}

    def data_keys(self, key_ids: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        ids = list(key_ids)
        if not ids:
            return {}
        rows = self._select("SELECT key_id, master_key_id, wrapped FROM data_keys WHERE key_id = ANY(%s)", (ids,))
        return {row["key_id"]: (row["master_key_id"], bytes(row["wrapped"])) for row in rows}

    def settings(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in self._select("SELECT key, value FROM taizhang_settings")}

    def put_settings(self, values: dict[str, str]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(
                "INSERT INTO taizhang_settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def recorded_times(self, first: int, last: int) -> list[tuple[int, int, str]]:
        rows = self._select(
            "SELECT first_position, last_position, recorded_at FROM taizhang_commits "
            "WHERE last_position >= %s AND first_position <= %s ORDER BY first_position",
            (first, last),
        )
        return [(row["first_position"], row["last_position"], utc_text(row["recorded_at"])) for row in rows]

    def units(self) -> list[tuple[str, str, str]]:
        rows = self._select("SELECT code, county, township FROM community_units ORDER BY code")
        return [(r["code"], r["county"], r["township"]) for r in rows]

    def upgrade_schema(self) -> None:
        """Create the tables added since the store was made (each statement is IF NOT EXISTS)."""
        with self.datastore.transaction(commit=True) as curs:
            for statement in STORE_TABLES:
                curs.execute(statement)  # type: ignore[arg-type]

    def count_after(self, position: int) -> int:
        sql = f"SELECT count(*) AS n FROM {self.events_table_name} WHERE notification_id > %s"
        return int(self._select(sql, (position,))[0]["n"])

    def event_count(self) -> int:
        return int(self._select(f"SELECT count(*) AS n FROM {self.events_table_name}")[0]["n"])

    def stream(self, originator_id: Any) -> list[tuple[int, int, str, bytes, str | None]]:
        """(position, version, topic, payload, recorded_at) of every event of one aggregate, in order."""
        rows = self._select(
            "SELECT e.notification_id AS position, e.originator_version AS version, e.topic, e.state,"
            " (SELECT c.recorded_at FROM taizhang_commits c WHERE c.first_position <= e.notification_id"
            "  ORDER BY c.first_position DESC LIMIT 1) AS recorded_at"
            f" FROM {self.events_table_name} e WHERE e.originator_id = %s ORDER BY e.originator_version",
            (originator_id,),
        )
        return [
            (r["position"], r["version"], r["topic"], bytes(r["state"]), None if r["recorded_at"] is None else utc_text(r["recorded_at"]))
            for r in rows
        ]
