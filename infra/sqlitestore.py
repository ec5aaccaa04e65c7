"""The embedded store: eventsourcing's SQLite recorder plus taizhang's write-time hook.

In the same transaction that inserts events (so there is no window in which an
event is stored without them) the hook writes:
- one `taizhang_commits` row per transaction: its first and last log position and
  the recorded time, taken from the database clock and never decreasing;
- the record state of the service events (`record_state`, `record_people`; infra.recordstate),
  whose primary key `record_id` is also the store-wide claim on a record id: one community
  records it, no other (docs/decisions/0027; `record_claims` before schema 8);
- new wrapped data keys (`data_keys`);
- one `taizhang_chain` row per event: its link in the tamper-evident hash chain
  (infra.chain), which covers the event and its recorded time.
- an erasure's destroyed keys: deleted from `data_keys` with `secure_delete` on
  (the freed bytes are zeroed) and remembered in `erased_keys`, so a key id is never
  issued again and an erased field reads as erased rather than as missing.

The access log (`access_log`, `access_log_residents`) is append-only: triggers
refuse UPDATE and DELETE; and it is chained (`access_chain`, infra.access_chain) in
the transaction that writes each entry, so rows deleted behind the triggers' back are
found by `audit verify`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from re import fullmatch
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from infra import access_chain, chain, recordstate
from infra.crypto import check_master
from infra.store import AccessEntry, HiddenEvent, access_log_query

# Fixed-width UTC text with milliseconds, comparable as text.
SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

STORE_TABLES = [
    "CREATE TABLE IF NOT EXISTS taizhang_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS taizhang_commits ("
    " first_position INTEGER PRIMARY KEY,"
    " last_position INTEGER NOT NULL,"
    " recorded_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS taizhang_commits_recorded_at ON taizhang_commits (recorded_at)",
    "CREATE TABLE IF NOT EXISTS community_units ("
    " code TEXT PRIMARY KEY,"
    " county TEXT NOT NULL,"
    " township TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS data_keys ("
    " key_id TEXT PRIMARY KEY,"
    " master_key_id TEXT NOT NULL,"
    " wrapped BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS taizhang_chain (position INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erased_keys ("
    " key_id TEXT PRIMARY KEY,"
    " erased_at TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS access_log ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at TEXT NOT NULL,"
    " actor TEXT,"
    " command TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " residents INTEGER NOT NULL,"
    " records INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at)",
    "CREATE TABLE IF NOT EXISTS access_log_residents ("
    " community TEXT NOT NULL,"
    " resident TEXT NOT NULL,"
    " access_id INTEGER NOT NULL,"
    " PRIMARY KEY (community, resident, access_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS access_chain (id INTEGER PRIMARY KEY, hash BLOB NOT NULL)",
    # Per-record state, derived from the service events in their transaction (infra.recordstate).
    "CREATE TABLE IF NOT EXISTS record_state ("
    " record_id TEXT PRIMARY KEY, community_id TEXT NOT NULL, status TEXT NOT NULL, revision INTEGER NOT NULL,"
    " digest TEXT NOT NULL, occurred_at TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL,"
    " minutes INTEGER NOT NULL, place TEXT, note_mac TEXT, entered_on TEXT, residents TEXT NOT NULL,"
    " providers TEXT NOT NULL, first_version INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS record_people ("
    " community_id TEXT NOT NULL, role TEXT NOT NULL, code TEXT NOT NULL, record_id TEXT NOT NULL,"
    " current INTEGER NOT NULL, PRIMARY KEY (community_id, role, code, record_id)) WITHOUT ROWID",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for table in ("access_log", "access_log_residents", "access_chain")
        for verb in ("UPDATE", "DELETE")
    ),
]


# An originator id as bytes.fromhex (and so the chain) reads it: case and ASCII whitespace do not count.
_SAME_ID = "lower(" + "".join("replace(" for _ in range(6)) + "originator_id" + "".join(
    f", char({code}), '')" for code in (9, 10, 11, 12, 13, 32)
) + ")"


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    chain_enabled = True  # only the write-path benchmark turns this off, to measure what chaining costs

    def construct_create_table_statements(self) -> list[str]:
        # Only the events stored under an id in another form than the canonical one: normally none,
        # so the index costs nothing per event (it replaced one over every event's id, schema 7).
        odd_id = (
            f"CREATE INDEX IF NOT EXISTS taizhang_events_odd_id ON {self.events_table_name} ({_SAME_ID})"
            f" WHERE originator_id <> {_SAME_ID}"
        )
        return [
            *super().construct_create_table_statements(),
            *STORE_TABLES,
            odd_id,
            "DROP INDEX IF EXISTS taizhang_events_same_id",
        ]

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        """An aggregate's events, refused when the log also holds one of its events under its id in
        another form (the chain hashes the id's bytes, which case and spaces do not change, while the
        application finds events by the exact text: such a row would hide an event from every rule)."""
        events = super().select_events(originator_id, **kwargs)
        canonical = originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)
        hidden = self._select(
            # `originator_id <> canonical` said as the partial index's own condition, so that it is used.
            f"SELECT rowid FROM {self.events_table_name} WHERE {_SAME_ID} = ? AND originator_id <> {_SAME_ID} LIMIT 1",
            (canonical,),
        )
        if hidden:
            raise HiddenEvent(
                f"the log holds an event of aggregate {canonical} stored under its id in another form "
                f"(position {hidden[0][0]}); nothing was done: run taizhang audit verify"
            )
        return events

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = self._append_rows(c, stored_events)
        commit: dict[str, Any] | None = kwargs.get("commit")  # a bulk transaction's own commit row, if begun
        if positions:
            # The INSERT above holds the write lock: nobody can commit between these reads and ours.
            # Each commit's time is at least a millisecond after the one before (docs/decisions/0023), so
            # an --as-of at any printed recorded_at separates every commit from the next.
            c.execute(
                f"SELECT max({SQLITE_NOW}, coalesce(strftime('%Y-%m-%dT%H:%M:%fZ',"
                " (SELECT recorded_at FROM taizhang_commits ORDER BY first_position DESC LIMIT 1),"
                " '+0.001 seconds'), '')),"
                " (SELECT hash FROM taizhang_chain ORDER BY position DESC LIMIT 1)"
            )
            recorded_at, prev = c.fetchone()
            if commit is not None and "first" in commit:
                # A later chunk of the same transaction: its one commit row grows, its time stays.
                recorded_at = commit["recorded_at"]
                c.execute(
                    "UPDATE taizhang_commits SET last_position = ? WHERE first_position = ?",
                    (positions[-1], commit["first"]),
                )
            else:
                c.execute(
                    "INSERT INTO taizhang_commits (first_position, last_position, recorded_at) VALUES (?, ?, ?)",
                    (positions[0], positions[-1], recorded_at),
                )
                if commit is not None:
                    commit.update(first=positions[0], recorded_at=recorded_at)
            if self.chain_enabled:
                links = chain.chain_events(prev or chain.GENESIS, positions, stored_events, recorded_at)
                c.executemany("INSERT INTO taizhang_chain (position, hash) VALUES (?, ?)", links)
        service = [e.topic for e in stored_events if e.topic in recordstate.TOPICS]
        record_rows = kwargs.get("record_rows")
        if record_rows is not None and len(record_rows[0]) == len(service) == service.count(recordstate.RECORDED):
            self._insert_record_rows(c, *record_rows)  # an import's new records, made from the payloads it encoded
        elif service:
            self._write_record_state(c, stored_events)
        data_keys = kwargs.get("data_keys")
        if data_keys:
            c.executemany("INSERT INTO data_keys (key_id, master_key_id, wrapped) VALUES (?, ?, ?)", data_keys)
            # Read after the insert, under the write lock: a rotation either committed before (we refuse)
            # or starts after us (and re-wraps what we insert).
            c.execute("SELECT value FROM taizhang_settings WHERE key = 'master_key_id'")
            row = c.fetchone()
            check_master(row[0] if row else None, data_keys)
        erase_keys = kwargs.get("erase_keys")
        if erase_keys:
            c.execute("PRAGMA secure_delete = ON")  # zero the deleted cells, not just unlink them
            for start in range(0, len(erase_keys), 500):
                chunk = erase_keys[start : start + 500]
                c.execute(f"DELETE FROM data_keys WHERE key_id IN ({','.join('?' * len(chunk))})", chunk)
            c.executemany(
                f"INSERT INTO erased_keys (key_id, erased_at) VALUES (?, {SQLITE_NOW})", [(k,) for k in erase_keys]
            )
        units = kwargs.get("units")
        if units:
            c.executemany("INSERT INTO community_units (code, county, township) VALUES (?, ?, ?)", units)
        return positions

    def _write_record_state(self, c: Any, stored_events: Sequence[StoredEvent]) -> None:
        """Derive record_state / record_people from this transaction's service events (infra.recordstate)."""
        service = [
            (e.originator_id.hex if isinstance(e.originator_id, UUID) else str(e.originator_id),
             e.originator_version, e.topic, orjson.loads(e.state))
            for e in stored_events
            if e.topic in recordstate.TOPICS
        ]  # fmt: skip
        columns = recordstate.COLUMNS
        insert_state = f"INSERT INTO record_state ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        if all(topic == recordstate.RECORDED for _c, _v, topic, _p in service):  # an import: new records only
            self._insert_record_rows(
                c,
                [recordstate.recorded_tuple(*row) for row in service],
                [pair for row in service for pair in recordstate.recorded_people(row[0], row[3])],
            )
            return
        recorded = {p["record_id"] for _c, _v, t, p in service if t == recordstate.RECORDED}
        earlier = sorted({p["record_id"] for _c, _v, t, p in service if t != recordstate.RECORDED} - recorded)
        states = recordstate.RecordStates(self._record_rows(c, earlier))
        for community, version, topic, payload in service:
            states.apply(community, version, topic, payload)
        new = [states.state_tuple(r) for r in states.new]
        if new:
            c.executemany(insert_state, new)
        changed = [states.state_tuple(r) for r in states.touched - states.new]
        if changed:
            c.executemany(
                f"UPDATE record_state SET {', '.join(f'{col} = ?' for col in columns[1:])} WHERE record_id = ?",
                [(*row[1:], row[0]) for row in changed],
            )
        c.executemany(
            "INSERT INTO record_people (community_id, role, code, record_id, current) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (community_id, role, code, record_id) DO UPDATE SET current = excluded.current",
            states.people_tuples(),
        )

    @staticmethod
    def _insert_record_rows(c: Any, states: list[tuple[Any, ...]], people: list[tuple[Any, ...]]) -> None:
        """New records' record_state rows (recordstate.recorded_tuple) and record_people pairs
        (recordstate.recorded_people), in key order: each B-tree page is then visited once per
        batch, not once per row."""
        columns = recordstate.COLUMNS
        c.executemany(
            f"INSERT INTO record_state ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", sorted(states)
        )
        c.executemany(
            "INSERT INTO record_people (community_id, role, code, record_id, current) VALUES (?, ?, ?, ?, 1)",
            sorted(people),
        )

    @staticmethod
    def _record_rows(c: Any, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start : start + 500]
            c.execute(
                f"SELECT {', '.join(recordstate.COLUMNS)} FROM record_state"
                f" WHERE record_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for values in c.fetchall():
                row = recordstate.row_from_db(dict(zip(recordstate.COLUMNS, values, strict=True)))
                found[row["record_id"]] = row
        return found

    def _append_rows(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Insert the events with one executemany; their positions (rowids) follow the highest.

        A rowid table without AUTOINCREMENT gives each new row max(rowid) + 1, and the write
        lock is held from the first INSERT on: the positions are contiguous and read back once.
        """
        if not stored_events:
            return []
        c.executemany(
            self.insert_events_statement,
            [
                (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                 s.originator_version, s.topic, s.state)
                for s in stored_events
            ],
        )
        c.execute(f"SELECT max(rowid) FROM {self.events_table_name}")
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1))

    @contextmanager
    def bulk_transaction(self) -> Iterator[Callable[..., Sequence[int] | None]]:
        """One write transaction that chunks of events (with their side rows) are appended to.

        Yields `append(stored_events, data_keys=…, units=…)`; commits when the block
        ends, rolls everything back when it raises. The write lock is taken first (BEGIN
        IMMEDIATE) at the first append: a writer that committed since the caller loaded its
        aggregates makes that append fail (IntegrityError), as a lost race does in `save`.
        Nothing is begun when nothing is appended. One commit row covers every chunk, with
        the recorded time of the first.
        """
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            commit: dict[str, Any] = {}
            begun = False
            try:

                def append(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
                    nonlocal begun
                    if not begun:
                        cursor.execute("BEGIN IMMEDIATE")
                        begun = True
                        # From now on the store's reads see what this transaction wrote so far.
                        self._bulk_reader = conn
                    return self._insert_events(cursor, stored_events, commit=commit, **kwargs)

                yield append
                if begun:
                    conn.commit()
            except BaseException as e:
                if begun:
                    conn.rollback()
                if isinstance(e, sqlite3.IntegrityError):
                    raise IntegrityError(e) from e
                if isinstance(e, sqlite3.OperationalError):
                    raise OperationalError(e) from e
                raise
            finally:
                self._bulk_reader = None
                cursor.sqlite_cursor.close()

    # ---- reads the application needs ---------------------------------------------------
    def record_states(self, community: UUID | None, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The record_state rows of these records of this community, or of any community when None
        (missing ones are absent; `community_id` as stored: 32 hex digits)."""
        ids = sorted(set(record_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._select(
                f"SELECT {', '.join(recordstate.COLUMNS)} FROM record_state"
                f" WHERE record_id IN ({','.join('?' * len(chunk))})"
                + ("" if community is None else " AND community_id = ?"),
                chunk if community is None else [*chunk, community.hex],
            )
            for values in rows:
                row = recordstate.row_from_db(dict(zip(recordstate.COLUMNS, values, strict=True)))
                found[row["record_id"]] = row
        return found

    def records_of(self, community: UUID) -> dict[str, dict[str, Any]]:
        """Every record_state row of a community (tests and tools; no write path reads them all)."""
        rows = self._select(
            f"SELECT {', '.join(recordstate.COLUMNS)} FROM record_state WHERE community_id = ? ORDER BY first_version",
            (community.hex,),
        )
        return {row[0]: recordstate.row_from_db(dict(zip(recordstate.COLUMNS, row, strict=True))) for row in rows}

    def first_active_record(self, community: UUID, role: str, code: str, from_day: str) -> dict[str, Any] | None:
        """The earliest-recorded active record whose current revision lists the person on or after a day."""
        cols = ", ".join(f"s.{col}" for col in recordstate.COLUMNS)
        rows = self._select(
            f"SELECT {cols} FROM record_people p JOIN record_state s ON s.record_id = p.record_id"
            " WHERE p.community_id = ? AND p.role = ? AND p.code = ? AND p.current = 1"
            " AND s.status = 'active' AND s.day >= ? ORDER BY s.first_version LIMIT 1",
            (community.hex, role, code, from_day),
        )
        return recordstate.row_from_db(dict(zip(recordstate.COLUMNS, rows[0], strict=True))) if rows else None

    def records_listing(self, community: UUID, code: str) -> list[str]:
        """Every record any revision of which listed the resident (erasure)."""
        rows = self._select(
            "SELECT record_id FROM record_people WHERE community_id = ? AND role = 'r' AND code = ? ORDER BY record_id",
            (community.hex, code),
        )
        return [row[0] for row in rows]

    def rebuild_record_state(self) -> int:
        """Derive record_state / record_people from the whole log, under the write lock (an upgrade)."""
        with self._reader(write=True) as conn:
            states = recordstate.from_events(self._service_events(conn))
            conn.execute("DELETE FROM record_state")
            conn.execute("DELETE FROM record_people")
            columns = recordstate.COLUMNS
            conn.executemany(
                f"INSERT INTO record_state ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [states.state_tuple(r) for r in states.rows],
            )
            conn.executemany(
                "INSERT INTO record_people (community_id, role, code, record_id, current) VALUES (?, ?, ?, ?, ?)",
                states.people_tuples(),
            )
            return len(states.rows)

    def _service_events(self, conn: sqlite3.Connection) -> Iterator[tuple[str, int, str, bytes]]:
        marks = ",".join("?" * len(recordstate.TOPICS))
        cursor = conn.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name}"
            f" WHERE topic IN ({marks}) ORDER BY rowid",
            recordstate.TOPICS,
        )
        while batch := cursor.fetchmany(2000):
            yield from batch

    def record_state_problem(self) -> str | None:
        """The first record whose stored record_state / record_people rows disagree with the log, or
        None; one community at a time, in one snapshot (recordstate.first_problem)."""
        topics = ",".join("?" * len(recordstate.TOPICS))
        with self._reader() as conn:

            def events_of(community: str) -> Iterator[tuple[str, int, str, bytes]]:
                cursor = conn.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name}"
                    f" WHERE originator_id = ? AND topic IN ({topics}) ORDER BY originator_version",
                    (community, *recordstate.TOPICS),
                )
                while batch := cursor.fetchmany(2000):
                    yield from batch

            def stored_of(record_ids: list[str]) -> dict[str, dict[str, Any]]:
                return self._record_rows(conn.cursor(), record_ids)

            def people_of(community: str) -> dict[tuple[str, str, str, str], int]:
                rows = conn.execute(
                    "SELECT community_id, role, code, record_id, current FROM record_people WHERE community_id = ?",
                    (community,),
                )
                return {tuple(values[:4]): values[4] for values in rows}  # type: ignore[misc]

            communities = {
                row[0]
                for row in conn.execute(
                    f"SELECT DISTINCT originator_id FROM {self.events_table_name} WHERE topic IN ({topics})",
                    recordstate.TOPICS,
                )
            }
            communities |= {row[0] for row in conn.execute("SELECT DISTINCT community_id FROM record_people")}
            count = conn.execute("SELECT count(*) FROM record_state").fetchone()[0]
            return recordstate.first_problem(
                communities,
                events_of,
                stored_of,
                people_of,
                count,
                lambda: (row[0] for row in conn.execute("SELECT record_id FROM record_state ORDER BY record_id")),
            )

    # The connection of an open bulk transaction that has written: reads go through it, so that an
    # import's later chunks see the records and keys of its earlier ones (one thread).
    _bulk_reader: Any = None

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._bulk_reader is not None:
            with self._bulk_reader.cursor() as reader:
                reader.execute(sql, params)
                return list(reader.fetchall())
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return list(c.fetchall())

    def existing(self, ids: Iterable[UUID]) -> set[UUID]:
        """Which of these aggregate ids have events (their first, by the primary key): one query per 500."""
        wanted = [i.hex for i in ids]
        found: set[UUID] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._select(
                f"SELECT originator_id FROM {self.events_table_name}"
                f" WHERE originator_id IN ({','.join('?' * len(chunk))}) AND originator_version = 1",
                chunk,
            )
            found.update(UUID(row[0]) for row in rows)
        return found

    def claims(self, record_ids: Iterable[str]) -> dict[str, str]:
        """record id -> str(id) of the community that recorded it (its record_state row), for those recorded."""
        found: dict[str, str] = {}
        ids = list(record_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._select(
                f"SELECT record_id, community_id FROM record_state WHERE record_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({row[0]: str(UUID(row[1])) for row in rows})
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

    def sample_data_key(self, master_key_id: str) -> tuple[str, str, bytes] | None:
        """One data key (key_id, master_key_id, wrapped), one wrapped by `master_key_id` if any; None if none."""
        for sql, params in (
            ("SELECT key_id, master_key_id, wrapped FROM data_keys WHERE master_key_id = ? LIMIT 1", (master_key_id,)),
            ("SELECT key_id, master_key_id, wrapped FROM data_keys LIMIT 1", ()),
        ):
            rows = self._select(sql, params)
            if rows:
                return rows[0][0], rows[0][1], bytes(rows[0][2])
        return None

    def erased_keys(self, key_ids: Iterable[str]) -> set[str]:
        """Which of these key ids an erasure destroyed."""
        found: set[str] = set()
        ids = list(key_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._select(
                f"SELECT key_id FROM erased_keys WHERE key_id IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def scrub(self) -> bool:
        """After keys were destroyed: checkpoint the WAL into the database and truncate it.

        The deleted cells were zeroed in the new page images (secure_delete); the checkpoint
        writes those over the old pages of the database file and empties the WAL, which held
        older images of the page. False when a reader kept it from completing (the next
        checkpoint completes it).
        """
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = cursor.fetchone()[0]
            finally:
                cursor.sqlite_cursor.close()
        return not busy

    def rotate(self, rewrap: Callable[[str, str, bytes], bytes], new_master_id: str, new_check: str) -> int:
        """Re-wrap every data key, and record the new master key and its check value, in ONE transaction."""
        with self.datastore.transaction(commit=True) as c:
            # Write first so the transaction holds the write lock before it reads the keys.
            c.executemany(
                "INSERT INTO taizhang_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("master_key_id", new_master_id), ("master_key_check", new_check)],
            )
            c.execute("SELECT key_id, master_key_id, wrapped FROM data_keys")
            rows = c.fetchall()
            c.executemany(
                "UPDATE data_keys SET master_key_id = ?, wrapped = ? WHERE key_id = ?",
                [(new_master_id, rewrap(row[0], row[1], bytes(row[2])), row[0]) for row in rows],
            )
            return len(rows)

    def log_access_many(self, entries: Sequence[AccessEntry]) -> list[int]:
        """Append access-log entries in order, each with its residents and chain link, in ONE transaction
        (one commit, one disk flush for all: the web's group commit); returns their ids."""
        ids: list[int] = []
        with self.datastore.transaction(commit=True) as c:
            written = []
            for actor, command, detail, residents, records in entries:
                c.execute(
                    "INSERT INTO access_log (at, actor, command, detail, residents, records) "
                    f"VALUES ({SQLITE_NOW}, ?, ?, ?, ?, ?) RETURNING id, at",
                    (actor, command, detail, len(residents), records),
                )
                access_id, at = c.fetchone()
                c.executemany(
                    "INSERT INTO access_log_residents (community, resident, access_id) VALUES (?, ?, ?)",
                    [(community, code, access_id) for community, code in residents],
                )
                written.append((access_id, at))
            # The INSERTs above hold the write lock: the previous link cannot change under us.
            c.execute("SELECT hash FROM access_chain ORDER BY id DESC LIMIT 1")
            row = c.fetchone()
            prev = bytes(row[0]) if row else access_chain.GENESIS
            links = []
            for (access_id, at), (actor, command, detail, residents, records) in zip(written, entries, strict=True):
                prev = access_chain.link(
                    prev, access_id, at, actor, command, detail, len(residents), records, residents
                )
                links.append((access_id, prev))
                ids.append(int(access_id))
            c.executemany("INSERT INTO access_chain (id, hash) VALUES (?, ?)", links)
        return ids

    def access_backlog(self) -> int:
        """Chain the access-log entries written before the access chain existed; returns how many."""
        with self._reader(write=True) as conn:
            reader = SQLiteLogReader(conn, self.events_table_name)
            row = conn.execute("SELECT id, hash FROM access_chain ORDER BY id DESC LIMIT 1").fetchone()
            after, prev = (int(row[0]), bytes(row[1])) if row else (0, access_chain.GENESIS)
            links = []
            subjects = reader.access_subjects(after)
            pending = next(subjects, None)
            for access_id, at, actor, command, detail, residents, records, _hash in reader.access_rows(after):
                mine = []
                while pending is not None and pending[0] <= access_id:
                    if pending[0] == access_id:
                        mine.append((pending[1], pending[2]))
                    pending = next(subjects, None)
                prev = access_chain.link(prev, access_id, at, actor, command, detail, residents, records, mine)
                links.append((access_id, prev))
            conn.executemany("INSERT INTO access_chain (id, hash) VALUES (?, ?)", links)
            return len(links)

    def access_entries(
        self, *, resident: tuple[str, str] | None, actor: str | None, start: str | None, end: str | None
    ) -> list[dict[str, Any]]:
        """Access-log rows (oldest first); `start`/`end` are UTC texts, end exclusive."""
        sql, params = access_log_query(resident=resident, actor=actor, start=start, end=end, mark="?", at="?")
        rows = self._select(sql, params)
        keys = ("id", "at", "actor", "command", "detail", "residents", "records")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def settings(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self._select("SELECT key, value FROM taizhang_settings")}

    def put_settings(self, values: dict[str, str]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                "INSERT INTO taizhang_settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def put_settings_if_allowed(self, values: dict[str, str]) -> bool:
        """An upgrade a reader may not be able to write (a read-only file): False then."""
        try:
            self.put_settings(values)
        except (PersistenceError, sqlite3.Error):
            return False
        return True

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
        """Create tables added since the store was made (all statements are IF NOT EXISTS), and drop
        the record claims of schema 7 and before: record_state holds them now, rebuilt from the log by
        the same upgrade (LedgerService.upgrade)."""
        self.create_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute("DROP TABLE IF EXISTS record_claims")

    # ---- the hash chain ---------------------------------------------------------------------
    def chain_hashes(self, positions: Sequence[int]) -> dict[int, bytes]:
        """position -> chain hash of the events at these positions (audit history: one community's
        events, which may span the whole log; never the links between them)."""
        found: dict[int, bytes] = {}
        for at in range(0, len(positions), 500):
            chunk = list(positions[at : at + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._select(f"SELECT position, hash FROM taizhang_chain WHERE position IN ({marks})", chunk):
                found[int(row[0])] = bytes(row[1])
        return found

    @contextmanager
    def _reader(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A plain connection in one transaction: a single snapshot of the log (or the write lock)."""
        conn = sqlite3.connect(self.datastore.pool.db_name, uri=True, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def log_reader(self) -> Iterator[SQLiteLogReader]:
        with self._reader() as conn:
            yield SQLiteLogReader(conn, self.events_table_name)

    def chain_backlog(self) -> int:
        """Chain the events stored before the chain existed (an upgraded store); returns how many."""
        with self._reader(write=True) as conn:
            reader = SQLiteLogReader(conn, self.events_table_name)
            row = conn.execute("SELECT position, hash FROM taizhang_chain ORDER BY position DESC LIMIT 1").fetchone()
            after, prev = (int(row[0]), bytes(row[1])) if row else (0, chain.GENESIS)
            rows, commits = reader.rows(after, chained=False), reader.commits()
            try:
                return chain.append_backlog(
                    prev, rows, commits, lambda batch: conn.executemany(
                        "INSERT INTO taizhang_chain (position, hash) VALUES (?, ?)", batch
                    )
                )
            finally:
                rows.close()
                commits.close()

    def quick_check(self) -> str | None:
        """None when SQLite's `PRAGMA quick_check` finds the file sound, else its first finding.

        It reads every page (not the indexes' agreement with their tables, which the full
        integrity_check adds at several times the cost)."""
        try:
            conn = sqlite3.connect(self.datastore.pool.db_name, uri=True, isolation_level=None, timeout=30)
            try:
                row = conn.execute("PRAGMA quick_check(1)").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            return str(e)
        finding = str(row[0]) if row else "no answer"
        return None if finding == "ok" else finding

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

_END = 1 << 62
_UTC_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z"
_UTC_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _event_problem(row: tuple[Any, ...]) -> chain.Problem:
    position, oid, oid_type, version, version_type, topic_type, state_type = row
    if position < 1:
        return chain.Problem(position, "malformed", f"position {position} is not a log position (1 or more)")
    if oid_type != "text" or not fullmatch("[0-9a-f]{32}", oid):
        return chain.Problem(
            position,
            "noncanonical" if oid_type == "text" and fullmatch("[0-9a-fA-F]{32}", oid) else "malformed",
            f"originator id {oid!r} is not stored in its canonical form (32 lowercase hex digits): "
            "the application does not see this event",
        )
    if version_type != "integer" or version < 1:
        return chain.Problem(position, "malformed", f"originator version {version!r} is not a whole number of 1 or more")
    if topic_type != "text":
        return chain.Problem(position, "malformed", f"the event's topic is stored as {topic_type}, not as text")
    return chain.Problem(position, "noncanonical", f"the event's state is stored as {state_type}, not as blob")


class SQLiteLogReader:
    """Reads of the log, its chain and its commits, all from one snapshot (see infra.chain.walk)."""

    def __init__(self, conn: sqlite3.Connection, events_table: str) -> None:
        self.conn = conn
        self.events = events_table

    def rows(self, after: int = 0, *, chained: bool = True, before: int | None = None) -> Generator[chain.Row, None, None]:
        """The events after a position (and before `before`) in log order, each with its chain
        hash (None without one). Rows from `noncanonical()` on may not decode: stop before it."""
        joined = "c.hash FROM {0} e LEFT JOIN taizhang_chain c ON c.position = e.rowid" if chained else "NULL FROM {0} e"
        cursor = self.conn.execute(
            "SELECT e.rowid, e.originator_id, e.originator_version, CAST(e.topic AS TEXT), CAST(e.state AS BLOB), "
            + joined.format(self.events)
            + " WHERE e.rowid > ? AND e.rowid < ? ORDER BY e.rowid",
            (after, _END if before is None else before),
        )
        fromhex = bytes.fromhex
        while batch := cursor.fetchmany(2000):
            for position, oid, version, topic, state, hash_ in batch:
                yield position, fromhex(oid), version, topic, state, hash_

    def commits(self, before: int | None = None) -> sqlite3.Cursor:
        return self.conn.execute(
            "SELECT first_position, last_position, recorded_at FROM taizhang_commits WHERE first_position < ? "
            "ORDER BY first_position",
            (_END if before is None else before,),
        )

    def noncanonical(self) -> tuple[chain.Problem | None, int | None]:
        """The first stored value (in log order) that is not in the one form the application
        writes and reads, and the first position the walk cannot even decode (None: none).
        SQLite keeps any type in any column and the chain hashes decoded values:
        `upper(originator_id)` hashes alike but hides the event from the application."""
        odd = self._first_odd(canonical=True)
        if odd is None or odd.kind == "malformed":
            return odd, None if odd is None else odd.position
        bad = self._first_odd(canonical=False)
        return odd, None if bad is None else bad.position

    def _first_odd(self, *, canonical: bool) -> chain.Problem | None:
        hex_digits, utc = ("0-9a-f", f" AND recorded_at GLOB '{_UTC_GLOB}'") if canonical else ("0-9a-fA-F", "")
        row = self.conn.execute(
            "SELECT rowid, originator_id, typeof(originator_id), originator_version, typeof(originator_version),"
            f" typeof(topic), typeof(state) FROM {self.events} WHERE rowid < 1 OR NOT ("
            " typeof(originator_id) = 'text' AND length(originator_id) = 32"
            f" AND originator_id NOT GLOB '*[^{hex_digits}]*'"
            " AND typeof(originator_version) = 'integer' AND originator_version >= 1 AND typeof(topic) = 'text'"
            + (" AND typeof(state) = 'blob')" if canonical else ")")
            + " ORDER BY rowid LIMIT 1"
        ).fetchone()
        event = _event_problem(row) if row else None
        commit = self.conn.execute(
            "SELECT first_position, recorded_at, typeof(recorded_at), last_position FROM taizhang_commits"
            f" WHERE NOT (typeof(recorded_at) = 'text'{utc}"
            " AND typeof(last_position) = 'integer' AND last_position >= first_position)"
            " ORDER BY first_position LIMIT 1"
        ).fetchone()
        if commit is None or (event is not None and event.position <= commit[0]):
            return event
        first, recorded, recorded_type, last = commit
        if recorded_type != "text" or not fullmatch(_UTC_RE, recorded):
            return chain.Problem(
                first,
                "noncanonical" if recorded_type == "text" else "malformed",
                f"recorded time {recorded!r} is not stored in its canonical form (YYYY-MM-DDTHH:MM:SS.mmmZ)",
            )
        return chain.Problem(first, "malformed", f"the commit's last position {last!r} is not a position at or after its first")

    def chain_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM taizhang_chain").fetchone()[0])

    # ---- the access log and its chain (infra.access_chain) ----------------------------------
    def access_rows(self, after: int = 0) -> Iterator[access_chain.Entry]:
        cursor = self.conn.execute(
            "SELECT a.id, a.at, a.actor, a.command, a.detail, a.residents, a.records, c.hash"
            " FROM access_log a LEFT JOIN access_chain c ON c.id = a.id WHERE a.id > ? ORDER BY a.id",
            (after,),
        )
        while batch := cursor.fetchmany(2000):
            yield from batch

    def access_subjects(self, after: int = 0) -> Iterator[tuple[int, str, str]]:
        cursor = self.conn.execute(
            "SELECT access_id, community, resident FROM access_log_residents WHERE access_id > ?"
            " ORDER BY access_id, community, resident",
            (after,),
        )
        while batch := cursor.fetchmany(2000):
            yield from batch

    def access_orphans(self) -> list[int]:
        """Ids of access-chain rows whose entry is gone."""
        return [
            int(row[0])
            for row in self.conn.execute(
                "SELECT id FROM access_chain WHERE id NOT IN (SELECT id FROM access_log) ORDER BY id"
            )
        ]

    def orphans(self, before: int | None = None) -> list[int]:
        """Positions of chain entries whose event is gone."""
        return [
            int(row[0])
            for row in self.conn.execute(
                f"SELECT position FROM taizhang_chain WHERE position NOT IN (SELECT rowid FROM {self.events}) "
                "AND position < ? ORDER BY position",
                (_END if before is None else before,),
            )
        ]

    def stream(self, originator_id: bytes) -> list[tuple[int, int, str, bytes, bytes | None, bytes | None, str]]:
        """One aggregate's events in version order: (position, version, topic, state, chain hash,
        the chain hash before it, recorded time)."""
        return list(
            self.conn.execute(
                "SELECT e.rowid, e.originator_version, CAST(e.topic AS TEXT), CAST(e.state AS BLOB), c.hash,"
                " (SELECT p.hash FROM taizhang_chain p WHERE p.position < e.rowid ORDER BY p.position DESC LIMIT 1),"
                " coalesce((SELECT m.recorded_at FROM taizhang_commits m WHERE m.first_position <= e.rowid"
                "  AND m.last_position >= e.rowid ORDER BY m.first_position DESC LIMIT 1), '')"
                f" FROM {self.events} e LEFT JOIN taizhang_chain c ON c.position = e.rowid"
                " WHERE e.originator_id = ? ORDER BY e.originator_version",
                (originator_id.hex(),),
            )
        )
