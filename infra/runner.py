"""The projection runner: the notification log, in batches, into the read models, exactly once.

Each batch is one transaction holding the projection's row changes *and* its new
tracking position, so a crash at any point leaves the views as they were after
the previous batch, and the next run resumes there. Batches stay at or under
1,000 events (on SQLite the write lock is then held well under 100 ms).

On SQLite every write transaction starts with BEGIN IMMEDIATE (DESIGN §6: a read
followed by a write in a deferred transaction fails with SQLITE_BUSY_SNAPSHOT
when another process wrote in between). On PostgreSQL the tracking row is locked
FOR UPDATE, so several workers can run and each event is still projected once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import orjson
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from infra import outage
from infra.store import StoreError, StoreURL

BATCH_SIZE = 1000
INSUFFICIENT_PRIVILEGE = "42501"
"""PostgreSQL's SQLSTATE for a statement the login may not run (a clerk's login making views: only the owner may)."""
REBUILD_BATCH_SIZE = 5000
"""A rebuild's batches: larger (nobody reads views that are being rebuilt), still one transaction each."""
REBUILD_CACHE_KIB = 65536
"""SQLite page cache of the connection a rebuild holds (KiB): the ledger's indexes stay in memory."""
REBUILD_CHECKPOINT_PAGES = 16384
"""During a rebuild the WAL is copied back into the database every this many pages (not every 1,000)."""
REBUILD_DROPS_INDEXES = True
"""A rebuild drops the views' secondary indexes while it loads and makes them once at the end."""
REBUILD_DEFERS_TOTALS = True
"""A rebuild lets projections that can (`Deferring`) skip their running totals while it loads and count
them once at the end from the rows it loaded (each total is then written once, not once per batch)."""


class Event(NamedTuple):
    """A stored event as projections see it: a plain payload and its place in the log.

    A named tuple (made once per event of a rebuild: a frozen dataclass took four times as long).
    """

    position: int
    originator_id: str
    topic: str
    payload: dict[str, Any]
    recorded_at: str  # fixed-width UTC text, e.g. 2026-03-05T01:30:00.123Z


class Projection(Protocol):
    name: str
    version: int  # bump when the tables change shape: the views are then rebuilt
    metadata: MetaData

    def reset(self) -> None:
        """Forget anything cached between batches."""

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        """Write the rows for these events in the caller's transaction."""


class Deferring(Projection, Protocol):
    """A projection whose running totals a rebuild may defer (see `Runner.rebuild`).

    While its tracking row's version is the negative of its own, the runner sets `totals_deferred`
    before each batch and the projection writes everything but those totals; `count_totals` then
    writes them from its other tables (the runner calls it, and restores the version, in the
    transaction that ends the rebuild, or in `ensure_tables` after a rebuild that was killed).
    """

    totals_deferred: bool

    def count_totals(self, conn: Connection) -> None:
        """Replace the totals with those counted from the projection's other tables."""


def now_utc_text() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def engines(store: StoreURL, *, lock_wait: float = 30.0) -> tuple[Engine, Engine]:
    """(writer, reader) engines for the read models, in the same database as the events.

    On SQLite the writer waits up to `lock_wait` seconds for the write lock; 0 makes a batch
    fail at once with "database is locked" when another writer holds it (commands.views).
    """
    if store.backend == "sqlite":
        url = f"sqlite:///{store.path}"
        writer = create_engine(url, poolclass=NullPool)
        reader = create_engine(url, poolclass=NullPool)
        _sqlite_transactions(writer, "BEGIN IMMEDIATE", lock_wait)
        _sqlite_transactions(reader, "BEGIN", lock_wait)
        return writer, reader
    from sqlalchemy import URL

    url_object = URL.create(
        "postgresql+psycopg",
        username=store.user,
        password=store.password,
        host=store.host,
        port=int(store.port),
        database=store.dbname,
    )
    # A server that does not answer is an error after 10 s, never a hang (a follower then retries).
    writer = create_engine(url_object, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    return writer, writer


def _sqlite_transactions(engine: Engine, begin: str, lock_wait: float = 30.0) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        dbapi_connection.execute(f"PRAGMA busy_timeout = {int(lock_wait * 1000)}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


class Runner:
    """Moves projections along the log. One instance per process."""

    def __init__(
        self,
        recorder: Any,
        writer: Engine,
        projections: Sequence[Projection],
        backend: str,
        *,
        log_beside: bool = False,
    ) -> None:
        """`log_beside`: the views are in the store's own SQLite database, so a batch reads the
        events in its own transaction (not through the recorder)."""
        self.recorder = recorder
        self.log_beside = log_beside and backend == "sqlite" and hasattr(recorder, "events_table_name")
        self.writer = writer
        self.projections = list(projections)
        self.backend = backend
        self._last_positions: dict[str, int] | None = None
        self._ids: dict[str, str] = {}  # stored originator id -> canonical text

    # ---- schema ------------------------------------------------------------------------------
    def in_place(self) -> bool:
        """Whether every projection's tables exist at its current version (a read only)."""
        with self.writer.connect() as conn:
            if not inspect(conn).has_table("ledger_tracking"):
                return False
            try:
                rows = conn.execute(text("SELECT projection, version FROM ledger_tracking")).all()
            except DBAPIError:
                return False  # views made before projections had versions
            versions = {row[0]: int(row[1]) for row in rows}
            return all(versions.get(p.name) == p.version for p in self.projections) and self._indexes_in_place(conn)

    def _indexes(self) -> list[Any]:
        """The views' secondary indexes on this store (an index may be made for one kind of store only:
        `info["only_on"]`, projections.tables `by_month`)."""
        return [
            index
            for p in self.projections
            for table in p.metadata.sorted_tables
            for index in table.indexes
            if self._made_here(index)
        ]

    def _made_here(self, index: Any) -> bool:
        """Whether this kind of store has the index (`info["only_on"]` names the one kind that has it)."""
        return index.info.get("only_on", self.backend) == self.backend

    def _indexes_in_place(self, conn: Connection) -> bool:
        """Whether every secondary index exists (a rebuild killed while loading leaves them dropped)."""
        names = [index.name for index in self._indexes()]
        if not names:
            return True
        marks = ", ".join(f"'{name}'" for name in names)  # our own identifiers, not input
        if self.backend == "postgres":
            sql = f"SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN ({marks})"
        else:
            sql = f"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ({marks})"
        return int(conn.exec_driver_sql(sql).scalar() or 0) == len(names)

    def view_tables(self) -> list[str]:
        return ["ledger_tracking", *(t.name for p in self.projections for t in p.metadata.sorted_tables)]

    def ensure_tables(self) -> None:
        """Create missing views; a projection whose code changed shape (version) is dropped to rebuild.

        Writes nothing when they are in place, so a reader's login (PostgreSQL) can query.
        """
        if self.in_place():
            self._forget()
            return
        try:
            self._make_tables()
        except DBAPIError as e:
            if self.backend == "postgres" and getattr(e.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
                raise StoreError(
                    "the ledger views are missing or were made by an earlier version of taizhang, and only the"
                    " store owner's login can make them: run taizhang projections run as the owner, then try again"
                ) from None
            raise
        self._forget()

    def _make_tables(self) -> None:
        with self.writer.begin() as conn:
            if self.backend == "postgres":
                # Two processes creating the same tables at once would collide in the catalog.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7263540912)")
            inspector = inspect(conn)
            if inspector.has_table("ledger_tracking") and "version" not in {
                c["name"] for c in inspector.get_columns("ledger_tracking")
            }:
                # Views made before projections had versions: rebuild them all.
                for projection in self.projections:
                    projection.metadata.drop_all(conn, checkfirst=True)
                conn.exec_driver_sql("DROP TABLE ledger_tracking")
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS ledger_tracking ("
                "projection VARCHAR PRIMARY KEY, position INTEGER NOT NULL, updated_at VARCHAR NOT NULL, "
                "version INTEGER NOT NULL DEFAULT 1)"
            )
            # A rebuild killed while its totals were deferred: count them now (it restores the version).
            self._count_deferred_totals(conn)
            versions = {
                row[0]: int(row[1])
                for row in conn.execute(text("SELECT projection, version FROM ledger_tracking")).all()
            }
            for projection in self.projections:
                if projection.name in versions and versions[projection.name] != projection.version:
                    projection.metadata.drop_all(conn, checkfirst=True)
                    conn.execute(text("DELETE FROM ledger_tracking WHERE projection = :p"), {"p": projection.name})
                projection.metadata.create_all(conn, checkfirst=True)
                for table in projection.metadata.sorted_tables:
                    for index in table.indexes:
                        if self._made_here(index):
                            index.create(conn, checkfirst=True)  # dropped by an interrupted rebuild
                conn.execute(
                    text(
                        "INSERT INTO ledger_tracking (projection, position, updated_at, version) "
                        "VALUES (:p, 0, :u, :v) ON CONFLICT (projection) DO NOTHING"
                    ),
                    {"p": projection.name, "u": now_utc_text(), "v": projection.version},
                )
            if self.backend == "postgres":
                self._reshape_counter_tables(conn)
                self._grant_views(conn)

    def _reshape_counter_tables(self, conn: Connection) -> None:
        """PostgreSQL: a table of counters updated in place (`info["pg_fillfactor"]`; projections.tables
        `by_month`) leaves room on its pages for the next versions of its rows, and none of its indexes
        holds a counter, so that an update is HOT. Views made before lose their covering index (the
        keys' index is made beside it) and get the fill factor."""
        for projection in self.projections:
            for table in projection.metadata.sorted_tables:
                fill = table.info.get("pg_fillfactor")
                if fill is None:
                    continue
                conn.exec_driver_sql(f"ALTER TABLE {table.name} SET (fillfactor = {int(fill)})")
                for index in table.indexes:
                    if not self._made_here(index):
                        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")

    def _grant_views(self, conn: Connection) -> None:
        """Give the store's groups (made by `init --admin`) the views just created, with their row policies."""
        from infra import pgaccess

        if conn.exec_driver_sql("SELECT to_regrole('taizhang_writer') IS NULL").scalar():
            return
        if conn.exec_driver_sql(pgaccess.installed_sql()).scalar():
            for statement in pgaccess.views(self.view_tables()):
                conn.exec_driver_sql(statement)
            return
        # A store set up before the projector's group: as it was, until an admin adds an actor (infra.pgaccess).
        tables = ", ".join(self.view_tables())
        conn.exec_driver_sql(f"GRANT SELECT ON {tables} TO taizhang_reader, taizhang_writer")
        conn.exec_driver_sql(f"GRANT INSERT, UPDATE, DELETE ON {tables} TO taizhang_writer")

    def drop_tables(self) -> None:
        """Drop every projection's tables and forget its position (views never created: nothing to do)."""
        with self.writer.begin() as conn:
            tracked = inspect(conn).has_table("ledger_tracking")
            for projection in self.projections:
                projection.metadata.drop_all(conn, checkfirst=True)
                if tracked:
                    conn.execute(text("DELETE FROM ledger_tracking WHERE projection = :p"), {"p": projection.name})
        self._forget()

    def _forget(self) -> None:
        for projection in self.projections:
            projection.reset()
        self._last_positions = None

    # ---- positions ---------------------------------------------------------------------------
    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def positions(self, conn: Connection | None = None) -> dict[str, int]:
        def read(c: Connection) -> dict[str, int]:
            rows = c.execute(text("SELECT projection, position FROM ledger_tracking")).all()
            return {row[0]: int(row[1]) for row in rows}

        if conn is not None:
            return read(conn)
        with self.writer.connect() as c:
            return read(c)

    def position(self) -> int:
        """How far every projection has got (the least of their positions)."""
        positions = self.positions()
        return min((positions.get(p.name, 0) for p in self.projections), default=0)

    def status(self) -> list[dict[str, Any]]:
        head = self.head()
        positions = self.positions()
        return [
            {
                "projection": p.name,
                "position": positions.get(p.name, 0),
                "head": head,
                "lag": self._behind(positions.get(p.name, 0), head),
            }
            for p in self.projections
        ]

    def lag(self) -> int:
        """Events recorded but not yet projected (positions may have gaps on PostgreSQL)."""
        return self._behind(self.position(), self.head())

    def _behind(self, position: int, head: int) -> int:
        return 0 if position >= head else int(self.recorder.count_after(position))

    # ---- running -------------------------------------------------------------------------------
    def run_batch(self, limit: int = BATCH_SIZE, stop: int | None = None, held: Connection | None = None) -> int:
        """Project the next batch (no further than position `stop`); returns how many events
        it took (0 when caught up). `held`: a connection kept open between batches (its page
        cache stays warm), each batch still its own transaction on it."""
        try:
            return self._run_batch(limit, stop, held)
        except BaseException:
            # The transaction rolled back: caches may hold state that was never committed.
            self._forget()
            raise

    def _run_batch(self, limit: int, stop: int | None = None, held: Connection | None = None) -> int:
        with held.begin() if held is not None else self.writer.begin() as transaction:
            conn = held if held is not None else transaction
            positions = self._lock_positions(conn)
            start = min(positions.values())
            if stop is not None and start >= stop:
                return 0
            events = self._select(conn, start + 1, limit, stop)
            if not events:
                return 0
            if self._last_positions != positions:
                # Another worker moved the views on since our last batch: cached state may be stale.
                for projection in self.projections:
                    projection.reset()
            last = events[-1].position
            for projection in self.projections:
                mine = positions[projection.name]
                todo = events if mine == start else [e for e in events if e.position > mine]
                if todo:
                    projection.apply(conn, todo)
                if last > mine:
                    positions[projection.name] = last
                    conn.execute(
                        text("UPDATE ledger_tracking SET position = :pos, updated_at = :u WHERE projection = :p"),
                        {"pos": last, "u": now_utc_text(), "p": projection.name},
                    )
        self._last_positions = positions
        return len(events)

    def _lock_positions(self, conn: Connection) -> dict[str, int]:
        """Each projection's position, locked for this transaction (and whether its totals are deferred)."""
        suffix = " FOR UPDATE" if self.backend == "postgres" else ""
        rows = conn.execute(text("SELECT projection, position, version FROM ledger_tracking" + suffix)).all()
        positions = {row[0]: int(row[1]) for row in rows}
        missing = [p.name for p in self.projections if p.name not in positions]
        if missing:
            raise RuntimeError(f"no tracking row for {', '.join(missing)}; run taizhang projections rebuild")
        deferred = {row[0] for row in rows if int(row[2]) < 0}
        for projection in self._deferring():
            projection.totals_deferred = projection.name in deferred
        return {p.name: positions[p.name] for p in self.projections}

    def _deferring(self) -> list[Deferring]:
        return [p for p in self.projections if hasattr(p, "count_totals")]  # type: ignore[misc]

    def _count_deferred_totals(self, conn: Connection) -> None:
        """Count the totals a rebuild deferred (if it did) and mark them kept again (version restored)."""
        versions = {
            row[0]: int(row[1]) for row in conn.execute(text("SELECT projection, version FROM ledger_tracking"))
        }
        for projection in self._deferring():
            if versions.get(projection.name) == -projection.version:
                projection.count_totals(conn)
                conn.execute(
                    text("UPDATE ledger_tracking SET version = :v WHERE projection = :p"),
                    {"v": projection.version, "p": projection.name},
                )
                projection.totals_deferred = False

    def _select(self, conn: Connection, start: int, limit: int, stop: int | None) -> list[Event]:
        """The next events from position `start` (at most `limit`, none after `stop`), decoded.

        When the log is beside the views (SQLite), they are read in the batch's own transaction
        with plain SQL: the recorder's notifications build a UUID object per event only for us to
        print it back.
        """
        if not self.log_beside:
            notifications = self.recorder.select_notifications(start, limit, stop=stop)
            if not notifications:
                return []
            rows = [(n.id, str(n.originator_id), n.topic, n.state) for n in notifications]
            commits = self.recorder.recorded_times(rows[0][0], rows[-1][0])
            return self._decode(rows, commits)
        sql = f"SELECT rowid, originator_id, topic, state FROM {self.recorder.events_table_name} WHERE rowid >= ?"
        params: tuple[int, ...] = (start,)
        if stop is not None:
            sql += " AND rowid <= ?"
            params += (stop,)
        # The driver's cursor, in this transaction: plain tuples, no result object per row.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            rows = cursor.execute(sql + " ORDER BY rowid LIMIT ?", (*params, limit)).fetchall()
            if not rows:
                return []
            commits = cursor.execute(
                "SELECT first_position, last_position, recorded_at FROM taizhang_commits "
                "WHERE last_position >= ? AND first_position <= ? ORDER BY first_position",
                (rows[0][0], rows[-1][0]),
            ).fetchall()
        finally:
            cursor.close()
        ids = self._ids
        if len(ids) > 100_000:
            ids.clear()
        return self._decode(rows, commits, ids)

    @staticmethod
    def _decode(rows: Sequence[Any], commits: Sequence[Any], ids: dict[str, str] | None = None) -> list[Event]:
        """Events from (position, originator id, topic, state) rows; `ids`: stored id -> canonical text,
        filled as it goes (the ids are then printed back as the recorder reads them)."""
        events: list[Event] = []
        append = events.append
        make = tuple.__new__  # Event(...) without its Python-level __new__
        index = 0
        count = len(commits)
        loads = orjson.loads
        first, last, at = commits[0] if commits else (0, -1, "")
        for position, originator, topic, state in rows:
            if position > last:
                while index < count and commits[index][1] < position:
                    index += 1
                if index >= count:
                    raise RuntimeError(f"event at position {position} has no recorded time")
                first, last, at = commits[index]
            if first > position:
                raise RuntimeError(f"event at position {position} has no recorded time")
            if ids is not None:
                found = ids.get(originator)
                if found is None:
                    found = ids[originator] = str(UUID(originator))  # as the recorder reads it
                originator = found
            append(make(Event, (position, originator, topic, loads(state), at)))
        return events

    def catch_up(self, progress: Callable[[int, int], None] | None = None, until: int | None = None) -> int:
        """Run batches until the projections reach the head of the log (or exactly `until`)."""
        target = until if until is not None else self.head()
        start = self.position()
        done = 0
        while True:
            moved = self.run_batch(stop=until)
            done += moved
            if progress:
                progress(min(start + done, target) - start, max(target - start, 0))
            if moved == 0 or (until is not None and start + done >= until):
                return done

    def rebuild(self, progress: Callable[[int, int], None] | None = None, limit: int = REBUILD_BATCH_SIZE) -> int:
        """Drop the views (if any), create them and replay the whole log into them.

        The batches are the runner's, each one transaction holding its rows and its position
        (so an interrupted rebuild resumes; `create_indexes` then restores the secondary indexes,
        dropped while the rows load and made once at the end), but on one connection held throughout: on SQLite its
        page cache stays warm across batches and is larger, and its commits wait for the WAL
        write but not the disk flush (`synchronous = NORMAL`: a power cut may lose the last
        batches, never tear one; the next run redoes them).
        """
        self.drop_tables()
        self.ensure_tables()
        with self.writer.begin() as conn:
            if REBUILD_DROPS_INDEXES:
                for index in self._indexes():
                    if self.backend not in index.info.get("rebuild_keeps_on", ()):
                        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
            if REBUILD_DEFERS_TOTALS:
                # Marked in the tracking row (a negative version), so a rebuild killed while loading
                # leaves views that the next command completes (`ensure_tables`), never wrong totals.
                for projection in self._deferring():
                    conn.execute(
                        text("UPDATE ledger_tracking SET version = :v WHERE projection = :p"),
                        {"v": -projection.version, "p": projection.name},
                    )
        target = self.head()
        done = 0
        try:
            done = self._replay(progress, limit, target)
        finally:
            self.create_indexes()
        return done

    def create_indexes(self) -> None:
        """Count any totals a rebuild deferred, and create any secondary index of the views that is
        missing (a rebuild drops them while it loads); one transaction."""
        with self.writer.begin() as conn:
            self._count_deferred_totals(conn)
            for index in self._indexes():
                index.create(conn, checkfirst=True)

    def _replay(self, progress: Callable[[int, int], None] | None, limit: int, target: int) -> int:
        done = 0
        with self.writer.connect() as conn:
            if self.backend == "sqlite":
                raw = conn.connection.driver_connection
                raw.execute(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
                raw.execute("PRAGMA synchronous = NORMAL")
                raw.execute(f"PRAGMA wal_autocheckpoint = {REBUILD_CHECKPOINT_PAGES}")
            while True:
                moved = self.run_batch(limit, held=conn)
                done += moved
                if progress:
                    progress(min(done, target), target)
                if moved == 0:
                    return done

    def follow(
        self, stop: Callable[[], bool], interval: float = 0.5, warn: Callable[[str], None] | None = None
    ) -> None:
        """Keep projecting until `stop()` is true; sleeps `interval` seconds when caught up.

        A transient database error (the server restarting, the session terminated) is waited
        out, trying again with a growing, jittered pause of at most a few seconds: a worker
        outlives the outage. `warn` hears once when an outage starts and once when a batch
        succeeds again. Any other error is raised.
        """
        failures = 0
        while not stop():
            try:
                moved = self.run_batch()
            except Exception as error:
                if not outage.is_transient(error):
                    raise
                failures += 1
                if failures == 1 and warn is not None:
                    warn(f"lost the database connection ({outage.reason(error)}); retrying…")
                _nap(outage.backoff(failures), stop)
                continue
            if failures:
                failures = 0
                if warn is not None:
                    warn("reconnected")
            if moved == 0:
                _nap(interval, stop)

    def wait(self, timeout: float, interval: float = 0.2) -> bool:
        """Wait until the projections reach the head as it is now; False on timeout."""
        target = self.head()
        deadline = time.monotonic() + timeout
        while True:
            if self.position() >= target:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def position_at(self, moment_utc: str) -> int:
        """The last log position recorded at or before `moment_utc` (0 if none)."""
        bound = "CAST(:m AS timestamptz)" if self.backend == "postgres" else ":m"
        with self.writer.connect() as conn:
            row = conn.execute(
                text(f"SELECT max(last_position) FROM taizhang_commits WHERE recorded_at <= {bound}"),
                {"m": moment_utc},
            ).first()
        return int(row[0] or 0) if row and row[0] is not None else 0


def _nap(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep `seconds`, waking early once `stop()` is true (a signal only sets a flag)."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))
