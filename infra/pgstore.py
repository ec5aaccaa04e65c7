"""The server store: eventsourcing's PostgreSQL recorder, appending through taizhang's functions.

Events and their side rows go through the SECURITY DEFINER functions of infra.pgappend
(`taizhang_append` and siblings), in one transaction: the function takes the events
table's EXCLUSIVE lock, so writers are serialised there, the recorded time is
non-decreasing along the log, and the chain is computed by the database from the stored
bytes. Imported only when the URL is PostgreSQL (psycopg costs ~200 ms to import).

An erasure deletes its keys from `data_keys` in that transaction; `scrub()` then
rewrites the table (VACUUM FULL: a plain VACUUM leaves a deleted tuple's bytes in
the page's free space). The access log is append-only: triggers refuse UPDATE,
DELETE and TRUNCATE, and `ACCESS_LOG_GRANTS` grants the taizhang roles only SELECT
and INSERT on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.errors import InsufficientPrivilege
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL

from infra import access_chain, chain, pgaccess, pgappend, recordstate
from infra.crypto import check_master
from infra.store import AccessEntry, UpgradeNeedsOwner, access_log_query

STORE_TABLES = [
    "CREATE TABLE IF NOT EXISTS taizhang_settings (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS taizhang_commits ("
    " first_position bigint PRIMARY KEY,"
    " last_position bigint NOT NULL,"
    " recorded_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS taizhang_commits_recorded_at ON taizhang_commits (recorded_at)",
    "CREATE TABLE IF NOT EXISTS community_units (code text PRIMARY KEY, county text NOT NULL, township text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS data_keys (key_id text PRIMARY KEY, master_key_id text NOT NULL, wrapped bytea NOT NULL)",
    # Writers serialise their inserts with an EXCLUSIVE lock on the events table (eventsourcing's
    # rule: commit order = log order). LOCK … EXCLUSIVE needs UPDATE, DELETE or TRUNCATE on the
    # table; this function takes the lock with the owner's rights, so writers need none of those.
    "CREATE OR REPLACE FUNCTION taizhang_lock_events() RETURNS void LANGUAGE plpgsql SECURITY DEFINER"
    " SET search_path FROM CURRENT AS $$ BEGIN LOCK TABLE taizhang_events IN EXCLUSIVE MODE; END $$",
    "CREATE TABLE IF NOT EXISTS taizhang_chain (position bigint PRIMARY KEY, hash bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS erased_keys (key_id text PRIMARY KEY, erased_at timestamptz NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access_log ("
    " id bigserial PRIMARY KEY,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " actor text,"
    " command text NOT NULL,"
    " detail text NOT NULL,"
    " residents integer NOT NULL,"
    " records integer NOT NULL)",
    "CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at)",
    "CREATE TABLE IF NOT EXISTS access_log_residents ("
    " community text NOT NULL,"
    " resident text NOT NULL,"
    " access_id bigint NOT NULL,"
    " PRIMARY KEY (community, resident, access_id))",
    "CREATE OR REPLACE FUNCTION taizhang_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only'; END $$",
    "CREATE TABLE IF NOT EXISTS access_chain (id bigint PRIMARY KEY, hash bytea NOT NULL)",
    # Per-record state, derived from the service events inside taizhang_append (infra.recordstate).
    "CREATE TABLE IF NOT EXISTS record_state ("
    " record_id text PRIMARY KEY, community_id uuid NOT NULL, status text NOT NULL, revision integer NOT NULL,"
    " digest text NOT NULL, occurred_at text NOT NULL, day text NOT NULL, kind text NOT NULL,"
    " minutes integer NOT NULL, place text, note_mac text, entered_on text, residents jsonb NOT NULL,"
    " providers jsonb NOT NULL, first_version bigint NOT NULL, version bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS record_people ("
    " community_id uuid NOT NULL, role text NOT NULL, code text NOT NULL, record_id text NOT NULL,"
    " current integer NOT NULL, PRIMARY KEY (community_id, role, code, record_id))",
    *(
        statement
        for table in ("access_log", "access_log_residents", "access_chain")
        for statement in (
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION taizhang_append_only()",
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION taizhang_append_only()",
            f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC",
        )
    ),
]

# What a role that runs taizhang commands needs on the access log: to read it and append to it.
ACCESS_LOG_GRANTS = [
    "GRANT SELECT, INSERT ON access_log, access_log_residents, access_chain TO {role}",
    "GRANT USAGE ON SEQUENCE access_log_id_seq TO {role}",
]

READER_GROUP = "taizhang_reader"
WRITER_GROUP = "taizhang_writer"
# Tables whose rows are the record: writers add rows only through infra.pgappend's functions,
# nobody but the owner may change them.
APPEND_ONLY = pgappend.FUNCTION_WRITTEN
# Snapshots are a cache of aggregate state, not the record: writers add them and prune older ones.
SNAPSHOTS = "taizhang_snapshots"


def utc_text(value: Any) -> str:
    """A timestamptz as the same fixed-width UTC text the SQLite store keeps."""

    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utc_micro(value: Any) -> str:
    """An access-log time as UTC text to the microsecond (as hashed in the access chain)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


ACCESS_CHAIN_LOCK = 7263540913  # the advisory lock that serialises access-log writers

INSERT_CHUNK = 2000  # events per taizhang_append call within one transaction
BULK_IDLE_SECONDS = 120  # how long a bulk transaction may wait for its next chunk


def _state_row(row: dict[str, Any]) -> dict[str, Any]:
    state = {column: row[column] for column in recordstate.COLUMNS}
    state["community_id"] = state["community_id"].hex
    return recordstate.row_from_db(state)


def _columns(rows: Sequence[Sequence[Any]], width: int) -> tuple[list[Any], ...]:
    """Rows as one list per column: the array parameters of an append function."""
    return tuple([row[i] for row in rows] for i in range(width))


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    chain_enabled = True  # PostgreSQL always chains (in taizhang_append); the benchmark's switch is SQLite's only

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.extend(SQL(statement) for statement in STORE_TABLES)  # type: ignore[arg-type]
        self.sql_create_statements.extend(SQL(s) for s in pgappend.function_statements(self.datastore.schema))  # type: ignore[arg-type]
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout),
            SQL("SELECT taizhang_lock_events()"),
        ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """All events in one transaction, appended in chunks through `taizhang_append` (infra.pgappend).

        eventsourcing sends every event of a save as one array parameter inside a pipeline;
        with a few tens of thousands of events (an import) that stalls for good: the server
        waits for the rest of the message while the client waits for the sync. Chunked
        calls in an ordinary transaction keep the same atomicity and ordering.
        """
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            if stored_events:
                curs.execute(self.lock_table_statements[0])  # the lock timeout; the function takes the lock
                self._notify_channel(curs)
            return self._append(curs, stored_events, **kwargs)

    def _append(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[int]:
        positions: list[int] = []
        if not stored_events:
            return positions
        for start in range(0, len(stored_events), INSERT_CHUNK):
            chunk = stored_events[start : start + INSERT_CHUNK]
            curs.execute(
                "SELECT taizhang_append(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) AS p",
                (
                    [e.originator_id for e in chunk],
                    [e.originator_version for e in chunk],
                    [e.topic for e in chunk],
                    [e.state for e in chunk],
                ),
            )
            row = curs.fetchone()
            assert row is not None
            positions.extend(row["p"])
        self._write_hook(curs, positions, stored_events, **kwargs)
        return positions

    @contextmanager
    def bulk_transaction(self) -> Iterator[Callable[..., Sequence[int] | None]]:
        """One transaction that chunks of events (with their side rows) are appended to: the
        append functions recognise a continuation by the commit row's xmin (infra.pgappend).
        Yields `append(stored_events, data_keys=…, units=…)`; commits when the block
        ends, rolls everything back when it raises. Nothing is begun (no connection held, no
        NOTIFY) until the first chunk."""
        with ExitStack() as stack:
            cursor: list[Cursor[DictRow]] = []

            def append(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
                if not cursor:
                    if not stored_events:
                        return []
                    conn = stack.enter_context(self.datastore.get_connection())
                    stack.enter_context(conn.transaction())
                    curs = stack.enter_context(conn.cursor())
                    curs.execute(self.lock_table_statements[0])
                    # Between two chunks the transaction is idle while the caller applies its rules: longer
                    # than the pool's few seconds (which end abandoned transactions), never for good.
                    curs.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{BULK_IDLE_SECONDS}s'")
                    self._notify_channel(curs)
                    cursor.append(curs)
                    # From now on the store's reads see what this transaction wrote so far.
                    self._bulk_reader = conn
                return self._append(cursor[0], stored_events, **kwargs)

            try:
                yield append
            finally:
                self._bulk_reader = None

    def _write_hook(
        self, curs: Cursor[DictRow], positions: Sequence[int], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """The side rows of this transaction, through the sibling append functions."""
        data_keys = kwargs.get("data_keys")
        if data_keys:
            if positions:
                # They belong to these events: the function checks them against these alone.
                curs.execute("SELECT set_config(%s, %s, true)", (pgappend.CHUNK_FIRST, str(positions[0])))
            curs.execute("SELECT taizhang_append_keys(%s::text[], %s::text[], %s::bytea[])", _columns(data_keys, 3))
            # After the insert: a rotation holding data_keys has committed by now, and its setting is visible.
            curs.execute("SELECT value FROM taizhang_settings WHERE key = 'master_key_id'")
            row = curs.fetchone()
            check_master(row["value"] if row else None, data_keys)
        erase_keys = kwargs.get("erase_keys")
        if erase_keys:
            curs.execute("DELETE FROM data_keys WHERE key_id = ANY(%s)", (list(erase_keys),))
            self._remember_xid(curs)
            curs.executemany(
                "INSERT INTO erased_keys (key_id, erased_at) VALUES (%s, clock_timestamp())", [(k,) for k in erase_keys]
            )
        units = kwargs.get("units")
        if units:
            curs.execute("SELECT taizhang_append_units(%s::text[], %s::text[], %s::text[])", _columns(units, 3))

    # ---- reads the application needs ---------------------------------------------------
    # The connection of an open bulk transaction that has written: reads go through it, so that an
    # import's later chunks see the records and keys of its earlier ones. The import's writer thread
    # (commands.importer._ChunkWriter) uses it too; psycopg runs one statement of a connection at a
    # time, and the import does its look-ups between two writes (docs/decisions/0029).
    _bulk_reader: Connection[DictRow] | None = None

    def _select(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._bulk_reader is not None:
            with self._bulk_reader.cursor() as curs:
                curs.execute(sql, params)
                return list(curs.fetchall())
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(sql, params)
            return list(curs.fetchall())

    def existing(self, ids: Iterable[UUID]) -> set[UUID]:
        """Which of these aggregate ids have events (their first, by the primary key)."""
        wanted = list(ids)
        if not wanted:
            return set()
        rows = self._select(
            f"SELECT originator_id FROM {self.events_table_name} WHERE originator_id = ANY(%s) AND originator_version = 1",
            (wanted,),
        )
        return {row["originator_id"] for row in rows}

    def claims(self, record_ids: Iterable[str]) -> dict[str, str]:
        """record id -> str(id) of the community that recorded it (its record_state row, written by
        taizhang_record_state from the event itself), for those recorded."""
        ids = list(record_ids)
        if not ids:
            return {}
        rows = self._select("SELECT record_id, community_id FROM record_state WHERE record_id = ANY(%s)", (ids,))
        return {row["record_id"]: str(row["community_id"]) for row in rows}

    # ---- record state (infra.recordstate; written by taizhang_record_state) ------------------
    _STATE_COLUMNS = ", ".join(recordstate.COLUMNS)

    def record_states(self, community: UUID | None, record_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The record_state rows of these records of this community, or of any community when None
        (missing ones are absent)."""
        ids = sorted(set(record_ids))
        if not ids:
            return {}
        rows = self._select(
            f"SELECT {self._STATE_COLUMNS} FROM record_state WHERE record_id = ANY(%s)"
            + ("" if community is None else " AND community_id = %s"),
            (ids,) if community is None else (ids, community),
        )
        return {row["record_id"]: _state_row(row) for row in rows}

    def records_of(self, community: UUID) -> dict[str, dict[str, Any]]:
        """Every record_state row of a community (tests and tools; no write path reads them all)."""
        rows = self._select(
            f"SELECT {self._STATE_COLUMNS} FROM record_state WHERE community_id = %s ORDER BY first_version",
            (community,),
        )
        return {row["record_id"]: _state_row(row) for row in rows}

    def first_active_record(self, community: UUID, role: str, code: str, from_day: str) -> dict[str, Any] | None:
        """The earliest-recorded active record whose current revision lists the person on or after a day."""
        cols = ", ".join(f"s.{col}" for col in recordstate.COLUMNS)
        rows = self._select(
            f"SELECT {cols} FROM record_people p JOIN record_state s ON s.record_id = p.record_id"
            " WHERE p.community_id = %s AND p.role = %s AND p.code = %s AND p.current = 1"
            " AND s.status = 'active' AND s.day >= %s ORDER BY s.first_version LIMIT 1",
            (community, role, code, from_day),
        )
        return _state_row(rows[0]) if rows else None

    def records_listing(self, community: UUID, code: str) -> list[str]:
        """Every record any revision of which listed the resident (erasure)."""
        rows = self._select(
            "SELECT record_id FROM record_people WHERE community_id = %s AND role = 'r' AND code = %s"
            " ORDER BY record_id",
            (community, code),
        )
        return [row["record_id"] for row in rows]

    def _service_events(self, conn: Connection[DictRow]) -> Iterator[tuple[str, int, str, bytes]]:
        with conn.cursor(name="taizhang_service_events", row_factory=tuple_row) as curs:  # type: ignore[call-overload]
            curs.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name}"
                " WHERE topic = ANY(%s) ORDER BY notification_id",
                (list(recordstate.TOPICS),),
            )
            while batch := curs.fetchmany(2000):
                for community, version, topic, state in batch:
                    yield community.hex, version, topic, bytes(state)

    def rebuild_record_state(self) -> int:
        """Derive record_state / record_people from the whole log, under the events lock (an upgrade)."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            states = recordstate.from_events(self._service_events(conn))
            curs.execute("DELETE FROM record_state")
            curs.execute("DELETE FROM record_people")
            marks = ", ".join(["%s"] * len(recordstate.COLUMNS))
            rows = [states.state_tuple(r) for r in states.rows]
            curs.executemany(
                f"INSERT INTO record_state ({self._STATE_COLUMNS}) VALUES ({marks})",
                [(*row[:1], UUID(row[1]), *row[2:]) for row in rows],
            )
            curs.executemany(
                "INSERT INTO record_people (community_id, role, code, record_id, current) VALUES (%s, %s, %s, %s, %s)",
                [(UUID(c), role, code, r, cur) for c, role, code, r, cur in states.people_tuples()],
            )
            return len(rows)

    def record_state_problem(self) -> str | None:
        """The first record whose stored record_state / record_people rows disagree with the log, or
        None; one community at a time, in one snapshot (recordstate.first_problem)."""
        topics = list(recordstate.TOPICS)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor(row_factory=tuple_row) as curs:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

            def events_of(community: str) -> list[tuple[str, int, str, bytes]]:
                curs.execute(
                    f"SELECT originator_version, topic, state FROM {self.events_table_name}"
                    " WHERE originator_id = %s AND topic = ANY(%s) ORDER BY originator_version",
                    (UUID(community), topics),
                )
                return [(community, version, topic, bytes(state)) for version, topic, state in curs.fetchall()]

            def stored_of(record_ids: list[str]) -> dict[str, dict[str, Any]]:
                curs.execute(f"SELECT {self._STATE_COLUMNS} FROM record_state WHERE record_id = ANY(%s)", (record_ids,))
                rows = (dict(zip(recordstate.COLUMNS, values, strict=True)) for values in curs.fetchall())
                return {row["record_id"]: _state_row(row) for row in rows}

            def people_of(community: str) -> dict[tuple[str, str, str, str], int]:
                curs.execute(
                    "SELECT role, code, record_id, current FROM record_people WHERE community_id = %s",
                    (UUID(community),),
                )
                return {(community, role, code, r): cur for role, code, r, cur in curs.fetchall()}

            curs.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} WHERE topic = ANY(%s)", (topics,))
            communities = {row[0].hex for row in curs.fetchall()}
            curs.execute("SELECT DISTINCT community_id FROM record_people")
            communities |= {row[0].hex for row in curs.fetchall()}
            curs.execute("SELECT count(*) FROM record_state")
            count = curs.fetchone()[0]  # type: ignore[index]

            def stored_ids() -> Iterator[str]:
                with conn.cursor(name="taizhang_record_ids", row_factory=tuple_row) as ids:  # type: ignore[call-overload]
                    ids.execute("SELECT record_id FROM record_state ORDER BY record_id")
                    while batch := ids.fetchmany(5000):
                        yield from (row[0] for row in batch)

            return recordstate.first_problem(communities, events_of, stored_of, people_of, count, stored_ids)

    def data_keys(self, key_ids: Iterable[str]) -> dict[str, tuple[str, bytes]]:
        ids = list(key_ids)
        if not ids:
            return {}
        rows = self._select("SELECT key_id, master_key_id, wrapped FROM data_keys WHERE key_id = ANY(%s)", (ids,))
        return {row["key_id"]: (row["master_key_id"], bytes(row["wrapped"])) for row in rows}

    def sample_data_key(self, master_key_id: str) -> tuple[str, str, bytes] | None:
        """One data key (key_id, master_key_id, wrapped), one wrapped by `master_key_id` if any; None if none."""
        for sql, params in (
            ("SELECT key_id, master_key_id, wrapped FROM data_keys WHERE master_key_id = %s LIMIT 1", (master_key_id,)),
            ("SELECT key_id, master_key_id, wrapped FROM data_keys LIMIT 1", ()),
        ):
            rows = self._select(sql, params)
            if rows:
                return rows[0]["key_id"], rows[0]["master_key_id"], bytes(rows[0]["wrapped"])
        return None

    def erased_keys(self, key_ids: Iterable[str]) -> set[str]:
        ids = list(key_ids)
        if not ids:
            return set()
        return {row["key_id"] for row in self._select("SELECT key_id FROM erased_keys WHERE key_id = ANY(%s)", (ids,))}

    _changed_by_xid: str | None = None

    def _remember_xid(self, curs: Cursor[DictRow]) -> None:
        curs.execute("SELECT pg_current_xact_id()::text AS xid")
        row = curs.fetchone()
        self._changed_by_xid = str(row["xid"]) if row else None

    def scrub(self, patience: float = 20.0) -> bool:
        """Rewrite data_keys so no deleted or replaced wrapped key stays in the table's pages.

        A plain VACUUM leaves a removed tuple's bytes in the page's free space; VACUUM FULL
        then copies only the live tuples into new files. Neither removes a tuple that a
        running transaction might still see, so first wait (up to `patience` seconds) until
        no other session of this database holds a snapshot from before our change (an
        autovacuum ANALYZE, a long report). False when this login does not own the table,
        or when such a session outlasted the wait (the next VACUUM FULL completes it).
        """
        xid = self._changed_by_xid
        with self.datastore.get_connection() as conn:
            owner = conn.execute(
                "SELECT pg_has_role(current_user, relowner, 'MEMBER') AS ok FROM pg_class WHERE oid = 'data_keys'::regclass"
            ).fetchone()
            if not owner or not owner["ok"]:
                return False
            clear = True
            if xid is not None:
                deadline = time.monotonic() + patience
                while True:
                    row = conn.execute(
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND ("
                        " (backend_xmin IS NOT NULL AND age(backend_xmin) >= age(%(x)s::xid)) OR"
                        " (backend_xid IS NOT NULL AND age(backend_xid) >= age(%(x)s::xid)))",
                        {"x": str(int(xid) % 2**32)},
                    ).fetchone()
                    if not row or not row["n"]:
                        break
                    if time.monotonic() > deadline:
                        clear = False
                        break
                    time.sleep(0.1)
            # The pool's connections are in autocommit mode. A plain VACUUM first: it prunes the dead
            # tuples as soon as no session of THIS database can see them, whereas VACUUM FULL alone keeps
            # them while any transaction of the whole server that started before ours still runs.
            conn.execute("VACUUM data_keys")
            conn.execute("VACUUM FULL data_keys")
        return clear

    def rotate(self, rewrap: Callable[[str, str, bytes], bytes], new_master_id: str, new_check: str) -> int:
        """Re-wrap every data key, and record the new master key and its check value, in ONE transaction."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("LOCK TABLE data_keys IN EXCLUSIVE MODE")
            self._remember_xid(curs)
            curs.executemany(
                "INSERT INTO taizhang_settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [("master_key_id", new_master_id), ("master_key_check", new_check)],
            )
            curs.execute("SELECT key_id, master_key_id, wrapped FROM data_keys")
            rows = curs.fetchall()
            curs.executemany(
                "UPDATE data_keys SET master_key_id = %s, wrapped = %s WHERE key_id = %s",
                [
                    (new_master_id, rewrap(r["key_id"], r["master_key_id"], bytes(r["wrapped"])), r["key_id"])
                    for r in rows
                ],
            )
            return len(rows)

    def log_access_many(self, entries: Sequence[AccessEntry]) -> list[int]:
        """Append access-log entries in order, each with its residents and chain link, in ONE transaction
        (one commit for all: the web's group commit); returns their ids."""
        ids: list[int] = []
        with self.datastore.transaction(commit=True) as curs:
            # Serialise the access log's writers before the ids are drawn: ids then follow the chain.
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (ACCESS_CHAIN_LOCK,))
            curs.execute("SELECT hash FROM access_chain ORDER BY id DESC LIMIT 1")
            last = curs.fetchone()
            prev = bytes(last["hash"]) if last else access_chain.GENESIS
            for actor, command, detail, residents, records in entries:
                curs.execute(
                    "INSERT INTO access_log (at, actor, command, detail, residents, records) "
                    "VALUES (clock_timestamp(), %s, %s, %s, %s, %s) RETURNING id, at",
                    (actor, command, detail, len(residents), records),
                )
                row = curs.fetchone()
                assert row is not None
                access_id = int(row["id"])
                if residents:
                    curs.executemany(
                        "INSERT INTO access_log_residents (community, resident, access_id) VALUES (%s, %s, %s)",
                        [(community, code, access_id) for community, code in residents],
                    )
                prev = access_chain.link(
                    prev, access_id, utc_micro(row["at"]), actor, command, detail, len(residents), records, residents
                )
                curs.execute("INSERT INTO access_chain (id, hash) VALUES (%s, %s)", (access_id, prev))
                ids.append(access_id)
        return ids

    def access_backlog(self) -> int:
        """Chain the access-log entries written before the access chain existed; returns how many."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (ACCESS_CHAIN_LOCK,))
            curs.execute("SELECT id, hash FROM access_chain ORDER BY id DESC LIMIT 1")
            row = curs.fetchone()
            after, prev = (int(row["id"]), bytes(row["hash"])) if row else (0, access_chain.GENESIS)
            reader = PostgresLogReader(conn, self.events_table_name)
            subjects = reader.access_subjects(after)
            pending = next(subjects, None)
            links = []
            for access_id, at, actor, command, detail, residents, records, _hash in list(reader.access_rows(after)):
                mine = []
                while pending is not None and pending[0] <= access_id:
                    if pending[0] == access_id:
                        mine.append((pending[1], pending[2]))
                    pending = next(subjects, None)
                prev = access_chain.link(prev, access_id, at, actor, command, detail, residents, records, mine)
                links.append((access_id, prev))
            subjects.close()
            curs.executemany("INSERT INTO access_chain (id, hash) VALUES (%s, %s)", links)
            return len(links)

    def access_entries(
        self, *, resident: tuple[str, str] | None, actor: str | None, start: str | None, end: str | None
    ) -> list[dict[str, Any]]:
        sql, params = access_log_query(
            resident=resident, actor=actor, start=start, end=end, mark="%s", at="%s::timestamptz"
        )
        rows = self._select(sql, params)
        return [{**dict(row), "at": utc_text(row["at"])} for row in rows]

    def settings(self) -> dict[str, str]:
        return {row["key"]: row["value"] for row in self._select("SELECT key, value FROM taizhang_settings")}

    def put_settings(self, values: dict[str, str]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(
                "INSERT INTO taizhang_settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def put_settings_if_allowed(self, values: dict[str, str]) -> bool:
        """An upgrade that a reader's or a clerk's login may not write (only the owner may): False then."""
        try:
            self.put_settings(values)
        except (InsufficientPrivilege, PersistenceError) as e:
            if isinstance(e, InsufficientPrivilege) or isinstance(e.__cause__, InsufficientPrivilege):
                return False
            raise
        return True

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
        """Create the tables and functions added since the store was made (each statement is idempotent);
        a store with access control takes the writers' direct INSERT away (infra.pgappend). Only the
        owner's login may: any other gets UpgradeNeedsOwner, and nothing changes."""
        try:
            self._upgrade_schema()
        except PersistenceError as e:
            if isinstance(e.__cause__, InsufficientPrivilege):
                raise UpgradeNeedsOwner(str(e.__cause__).splitlines()[0]) from None
            raise

    def _upgrade_schema(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for statement in [*STORE_TABLES, *pgappend.function_statements(self.datastore.schema)]:
                curs.execute(statement)  # type: ignore[arg-type]
            # The record claims of schema 7 and before: record_state holds them now (docs/decisions/0027),
            # rebuilt from the log by the same upgrade (LedgerService.upgrade).
            curs.execute("DROP FUNCTION IF EXISTS taizhang_append_claims(text[], text[])")
            curs.execute("DROP TABLE IF EXISTS record_claims")
            # A store with access control (init --admin): its groups append to the new access chain too,
            # and writers append events and side rows only through taizhang_append (infra.pgappend).
            curs.execute(
                f"DO $$ BEGIN IF to_regrole('{READER_GROUP}') IS NOT NULL AND to_regrole('{WRITER_GROUP}') IS NOT NULL "
                f"THEN GRANT SELECT, INSERT ON access_chain TO {READER_GROUP}, {WRITER_GROUP}; END IF; END $$"
            )
            curs.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (WRITER_GROUP,))
            if curs.fetchone():
                for statement in pgappend.grant_statements(WRITER_GROUP):
                    curs.execute(statement)  # type: ignore[arg-type]

    # ---- the hash chain ---------------------------------------------------------------------
    def chain_hashes(self, positions: Sequence[int]) -> dict[int, bytes]:
        """position -> chain hash of the events at these positions (audit history: one community's
        events, which may span the whole log; never the links between them)."""
        rows = self._select("SELECT position, hash FROM taizhang_chain WHERE position = ANY(%s)", (list(positions),))
        return {int(row["position"]): bytes(row["hash"]) for row in rows}

    @contextmanager
    def log_reader(self) -> Iterator[PostgresLogReader]:
        """Reads from one REPEATABLE READ snapshot of the log, its chain and its commits."""
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PostgresLogReader(conn, self.events_table_name)

    def chain_backlog(self) -> int:
        """Chain the events stored before the chain existed (an upgraded store); returns how many."""
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            curs.execute("SELECT position, hash FROM taizhang_chain ORDER BY position DESC LIMIT 1")
            row = curs.fetchone()
            after, prev = (int(row["position"]), bytes(row["hash"])) if row else (0, chain.GENESIS)
            reader = PostgresLogReader(conn, self.events_table_name)
            rows, commits = reader.rows(after, chained=False), reader.commits()
            try:
                return chain.append_backlog(
                    prev,
                    rows,
                    commits,
                    lambda batch: curs.executemany(
                        "INSERT INTO taizhang_chain (position, hash) VALUES (%s, %s)", batch
                    ),
                )
            finally:
                rows.close()
                commits.close()

    def count_after(self, position: int) -> int:
        sql = f"SELECT count(*) AS n FROM {self.events_table_name} WHERE notification_id > %s"
        return int(self._select(sql, (position,))[0]["n"])

    def event_count(self) -> int:
        return int(self._select(f"SELECT count(*) AS n FROM {self.events_table_name}")[0]["n"])

    # ---- logins and groups (access control) -------------------------------------------------------
    def session_user(self) -> str:
        return str(self._select("SELECT session_user AS u")[0]["u"])

    def role_groups(self, login: str) -> set[str] | None:
        """The groups a login belongs to (directly or not); None when there is no such login."""
        rows = self._select("SELECT oid FROM pg_roles WHERE rolname = %s", (login,))
        if not rows:
            return None
        groups = self._select(
            "SELECT g.rolname AS g FROM pg_roles g WHERE pg_has_role(%s, g.oid, 'MEMBER') AND g.rolname <> %s",
            (login, login),
        )
        return {row["g"] for row in groups}

    def setup_access(self, view_tables: Sequence[str]) -> None:
        """Create the reader and writer groups and grant them what their roles need (run by the owner).

        Readers select; writers also append events and their side rows; only the owner may
        UPDATE, DELETE or TRUNCATE what is stored. Who writes the views and which rows each
        login reads: `setup_reads` (infra.pgaccess).
        """
        with self.datastore.transaction(commit=True) as curs:
            for group in (READER_GROUP, WRITER_GROUP):
                curs.execute(  # type: ignore[call-overload]
                    f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{group}') "
                    f"THEN CREATE ROLE {group} NOLOGIN; END IF; END $$"
                )
            groups = f"{READER_GROUP}, {WRITER_GROUP}"
            dbname = self.datastore.dbname if hasattr(self.datastore, "dbname") else None
            curs.execute("SELECT current_database() AS d")
            row = curs.fetchone()
            dbname = row["d"] if row else dbname
            statements = [
                f'GRANT CONNECT ON DATABASE "{dbname}" TO {groups}',
                f"GRANT USAGE ON SCHEMA public TO {groups}",
                "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC",
                f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {groups}",
                f"GRANT INSERT, DELETE ON {SNAPSHOTS} TO {WRITER_GROUP}",
                f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {WRITER_GROUP}",
                "REVOKE ALL ON FUNCTION taizhang_lock_events() FROM PUBLIC",
                f"GRANT EXECUTE ON FUNCTION taizhang_lock_events() TO {WRITER_GROUP}",
                # Views made later by the owner (a projection's new shape) are readable too.
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {groups}",
            ]
            # Readers print personal data too: both groups append to the access log (and only that).
            statements += [grant.format(role=groups) for grant in ACCESS_LOG_GRANTS]
            statements += pgappend.grant_statements(WRITER_GROUP)  # writers append only through its functions
            from infra.webauth import PG_PRIVATE_SQL

            statements.append(PG_PRIVATE_SQL)  # the web's password hashes and sessions stay the owner's
            for statement in statements:
                curs.execute(statement)  # type: ignore[call-overload]

    def setup_reads(self, view_tables: Sequence[str], logins: Sequence[tuple[str, str, str, str]]) -> bool:
        """The projector group, the views' grants, row-level security, and the bindings of the
        actors' logins (actor, login, role, scope of every active actor, replacing the old ones); idempotent.

        Only the owner can: False (and nothing done) when this login does not own the store.
        """
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT pg_has_role(current_user, relowner, 'MEMBER') AS ok FROM pg_class WHERE oid = 'data_keys'::regclass"
            )
            row = curs.fetchone()
            if not row or not row["ok"]:
                return False
            curs.execute("SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL", (list(view_tables),))
            existing = [r["t"] for r in curs.fetchall()]
            for statement in pgaccess.setup(existing):
                curs.execute(statement)  # type: ignore[call-overload]
            clear, bind = pgaccess.rebind()
            curs.execute(clear)  # type: ignore[call-overload]
            curs.executemany(bind, list(logins))  # type: ignore[call-overload]
        return True

    def may_write_views(self) -> bool:
        """Whether this login may keep the views (the projector's group, or the owner)."""
        rows = self._select("SELECT to_regclass('ledger_tracking') IS NULL AS missing")
        if rows[0]["missing"]:
            return True  # no views yet: whoever creates them owns them
        return bool(self._select("SELECT has_table_privilege('ledger_tracking', 'UPDATE') AS ok")[0]["ok"])

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
            (
                r["position"],
                r["version"],
                r["topic"],
                bytes(r["state"]),
                None if r["recorded_at"] is None else utc_text(r["recorded_at"]),
            )
            for r in rows
        ]


_END = 1 << 62


class PostgresLogReader:
    """Reads of the log, its chain and its commits inside one transaction (see infra.chain.walk)."""

    def __init__(self, conn: Connection[Any], events_table: str) -> None:
        self.conn = conn
        self.events = events_table
        self._cursors = 0

    def _named(self) -> Any:
        self._cursors += 1
        cursor = self.conn.cursor(name=f"taizhang_log_{self._cursors}", row_factory=tuple_row)
        cursor.itersize = 5000
        return cursor

    def rows(
        self, after: int = 0, *, chained: bool = True, before: int | None = None
    ) -> Generator[chain.Row, None, None]:
        """The events after a position (and before `before`) in log order, each with its chain hash (None without one)."""
        joined = (
            "c.hash FROM {0} e LEFT JOIN taizhang_chain c ON c.position = e.notification_id"
            if chained
            else "NULL::bytea FROM {0} e"
        )
        with self._named() as cursor:
            cursor.execute(
                "SELECT e.notification_id, uuid_send(e.originator_id), e.originator_version, e.topic, e.state, "
                + joined.format(self.events)
                + " WHERE e.notification_id > %s AND e.notification_id < %s ORDER BY e.notification_id",
                (after, _END if before is None else before),
            )
            yield from cursor

    def commits(self, before: int | None = None) -> Generator[tuple[int, int, str], None, None]:
        with self._named() as cursor:
            cursor.execute(
                "SELECT first_position, last_position, recorded_at FROM taizhang_commits WHERE first_position < %s "
                "ORDER BY first_position",
                (_END if before is None else before,),
            )
            for first, last, recorded_at in cursor:
                yield first, last, utc_text(recorded_at)

    def noncanonical(self) -> tuple[chain.Problem | None, int | None]:
        """The first stored value (in log order) that is not in its one canonical form, and the
        first position the walk cannot decode (None: none). The columns are typed (a uuid has
        one form), but the chain hashes recorded times to the millisecond, and negative
        positions or versions do not encode."""
        odd = self._first_odd(canonical=True)
        if odd is None or odd.kind == "malformed":
            return odd, None if odd is None else odd.position
        bad = self._first_odd(canonical=False)
        return odd, None if bad is None else bad.position

    def _first_odd(self, *, canonical: bool) -> chain.Problem | None:
        sub_ms = " OR recorded_at <> date_trunc('milliseconds', recorded_at)" if canonical else ""
        with self.conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(
                f"SELECT notification_id, originator_version FROM {self.events}"
                " WHERE notification_id < 1 OR originator_version < 1 ORDER BY notification_id LIMIT 1"
            )
            event = cursor.fetchone()
            cursor.execute(
                "SELECT first_position, recorded_at::text, last_position, isfinite(recorded_at) FROM taizhang_commits"
                f" WHERE NOT isfinite(recorded_at) OR last_position < first_position{sub_ms}"
                " ORDER BY first_position LIMIT 1"
            )
            commit = cursor.fetchone()
        if commit is None or (event is not None and event[0] <= commit[0]):
            if event is None:
                return None
            position, version = event
            if position < 1:
                return chain.Problem(position, "malformed", f"position {position} is not a log position (1 or more)")
            return chain.Problem(
                position, "malformed", f"originator version {version!r} is not a whole number of 1 or more"
            )
        first, recorded, last, finite = commit
        if last < first:
            return chain.Problem(
                first, "malformed", f"the commit's last position {last!r} is not a position at or after its first"
            )
        return chain.Problem(
            first,
            "noncanonical" if finite else "malformed",
            f"recorded time {recorded!r} is not stored in its canonical form (whole milliseconds)",
        )

    def chain_count(self) -> int:
        with self.conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute("SELECT count(*) FROM taizhang_chain")
            row = cursor.fetchone()
            return int(row[0]) if row else 0

    # ---- the access log and its chain (infra.access_chain) ----------------------------------
    def access_rows(self, after: int = 0) -> Generator[access_chain.Entry, None, None]:
        with self._named() as cursor:
            cursor.execute(
                "SELECT a.id, a.at, a.actor, a.command, a.detail, a.residents, a.records, c.hash"
                " FROM access_log a LEFT JOIN access_chain c ON c.id = a.id WHERE a.id > %s ORDER BY a.id",
                (after,),
            )
            for access_id, at, actor, command, detail, residents, records, hash_ in cursor:
                yield access_id, utc_micro(at), actor, command, detail, residents, records, hash_ and bytes(hash_)

    def access_subjects(self, after: int = 0) -> Generator[tuple[int, str, str], None, None]:
        with self._named() as cursor:
            cursor.execute(
                "SELECT access_id, community, resident FROM access_log_residents WHERE access_id > %s"
                ' ORDER BY access_id, community COLLATE "C", resident COLLATE "C"',
                (after,),
            )
            yield from cursor

    def access_orphans(self) -> list[int]:
        with self.conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(
                "SELECT id FROM access_chain c WHERE NOT EXISTS (SELECT 1 FROM access_log a WHERE a.id = c.id) ORDER BY id"
            )
            return [int(row[0]) for row in cursor.fetchall()]

    def orphans(self, before: int | None = None) -> list[int]:
        with self.conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(
                f"SELECT position FROM taizhang_chain c WHERE NOT EXISTS "
                f"(SELECT 1 FROM {self.events} e WHERE e.notification_id = c.position) AND position < %s ORDER BY position",
                (_END if before is None else before,),
            )
            return [int(row[0]) for row in cursor.fetchall()]

    def stream(self, originator_id: bytes) -> list[tuple[int, int, str, bytes, bytes | None, bytes | None, str]]:
        with self.conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(
                "SELECT e.notification_id, e.originator_version, e.topic, e.state, c.hash,"
                " (SELECT p.hash FROM taizhang_chain p WHERE p.position < e.notification_id"
                "  ORDER BY p.position DESC LIMIT 1),"
                " (SELECT m.recorded_at FROM taizhang_commits m WHERE m.first_position <= e.notification_id"
                "  AND m.last_position >= e.notification_id ORDER BY m.first_position DESC LIMIT 1)"
                f" FROM {self.events} e LEFT JOIN taizhang_chain c ON c.position = e.notification_id"
                " WHERE e.originator_id = %s ORDER BY e.originator_version",
                (UUID(bytes=originator_id),),
            )
            return [
                (
                    r[0],
                    r[1],
                    r[2],
                    bytes(r[3]),
                    r[4] and bytes(r[4]),
                    r[5] and bytes(r[5]),
                    utc_text(r[6]) if r[6] else "",
                )
                for r in cursor.fetchall()
            ]
