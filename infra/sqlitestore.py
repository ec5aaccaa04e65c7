"""The embedded store: eventsourcing's SQLite recorder plus taizhang's write-time hook.

In the same transaction that inserts events (so there is no window in which an
event is stored without them) the hook writes:
- one `taizhang_commits` row per transaction: its first and last log position and
  the recorded time, taken from the database clock and never decreasing;
- the store-wide record-id claims (`record_claims`, primary key = uniqueness);
- new wrapped data keys (`data_keys`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

# Fixed-width UTC text with milliseconds, comparable as text.
SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

STORE_TABLES = [
    "CREATE TABLE IF NOT EXISTS taizhang_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS taizhang_commits ("
    " first_position INTEGER PRIMARY KEY,"
    " last_position INTEGER NOT NULL,"
    " recorded_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS taizhang_commits_recorded_at ON taizhang_commits (recorded_at)",
    "CREATE TABLE IF NOT EXISTS record_claims ("
    " record_id TEXT PRIMARY KEY,"
    " community_id TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS community_units ("
    " code TEXT PRIMARY KEY,"
    " county TEXT NOT NULL,"
    " township TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS data_keys ("
    " key_id TEXT PRIMARY KEY,"
    " master_key_id TEXT NOT NULL,"
    " wrapped BLOB NOT NULL) WITHOUT ROWID",
]


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *STORE_TABLES]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        if positions:
            c.execute(
                "INSERT INTO taizhang_commits (first_position, last_position, recorded_at) "
                f"SELECT ?, ?, max({SQLITE_NOW}, coalesce("
                " (SELECT recorded_at FROM taizhang_commits ORDER BY first_position DESC LIMIT 1), ''))",
                (positions[0], positions[-1]),
            )
        claims = kwargs.get("claims")
        if claims:
            c.executemany("INSERT INTO record_claims (record_id, community_id) VALUES (?, ?)", claims)
        data_keys = kwargs.get("data_keys")
        if data_keys:
            c.executemany("INSERT INTO data_keys (key_id, master_key_id, wrapped) VALUES (?, ?, ?)", data_keys)
        units = kwargs.get("units")
        if units:
            c.executemany("INSERT INTO community_units (code, county, township) VALUES (?, ?, ?)", units)
        return positions

    # ---- reads the application needs ---------------------------------------------------
    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return list(c.fetchall())

    def claims(self, record_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        ids = list(record_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._select(
                f"SELECT record_id, community_id FROM record_claims WHERE record_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({row[0]: row[1] for row in rows})
        return found

    def data_keys(self, key_ids: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        found: dict[str, tuple[str, bytes]] = {}
        ids = list(key_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._select(
                f"SELECT key_id, master_key_id, wrapped FROM data_keys WHERE key_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({row[0]: (row[1], bytes(row[2])) for row in rows})
        return found

    def settings(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self._select("SELECT key, value FROM taizhang_settings")}

    def put_settings(self, values: dict[str, str]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO taizhang_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def recorded_times(self, first: int, last: int) -> list[tuple[int, int, str]]:
        """(first_position, last_position, recorded_at) of the commits that overlap [first, last]."""
        return [
            (row[0], row[1], row[2])
            for row in self._select(
                "SELECT first_position, last_position, recorded_at FROM taizhang_commits "
                "WHERE last_position >= ? AND first_position <= ? ORDER BY first_position",
                (first, last),
            )
        ]

    def units(self) -> list[tuple[str, str, str]]:
        """(code, county, township) of every community, from the write-time index."""
        return [(r[0], r[1], r[2]) for r in self._select("SELECT code, county, township FROM community_units ORDER BY code")]

    def upgrade_schema(self) -> None:
        """Create tables added since the store was made (all statements are IF NOT EXISTS)."""
        self.create_table()

    def count_after(self, position: int) -> int:
        return int(self._select(f"SELECT count(*) FROM {self.events_table_name} WHERE rowid > ?", (position,))[0][0])

    def event_count(self) -> int:
        return int(self._select(f"SELECT count(*) FROM {self.events_table_name}")[0][0])

    def stream(self, originator_id: Any) -> list[tuple[int, int, str, bytes, str | None]]:
        """(position, version, topic, payload, recorded_at) of every event of one aggregate, in order."""
        return [
            (row[0], row[1], row[2], bytes(row[3]), row[4])
            for row in self._select(
                f"SELECT e.rowid, e.originator_version, e.topic, e.state, (SELECT c.recorded_at FROM taizhang_commits c"
                f" WHERE c.first_position <= e.rowid ORDER BY c.first_position DESC LIMIT 1)"
                f" FROM {self.events_table_name} e WHERE e.originator_id = ? ORDER BY e.originator_version",
                (originator_id.hex if hasattr(originator_id, "hex") else str(originator_id),),
            )
        ]
