"""How the web reaches the application services: one open store per server process.

A `Door` holds the process's LedgerService (writes, serialised by a lock: the application
object is shared by the request threads), its Views (reads: a WAL read transaction on SQLite,
a pooled connection on PostgreSQL — never SQLite's write lock) and a thread that keeps the
projections current. Each request gets an `Env` of its own over them (`env_for`), so the
services it calls are the ones the CLI calls, with the same arguments.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from commands.context import Env
from commands.web.access_writer import AccessWriter
from commands.web.cache import ReadCache
from infra.store import parse_url

if TYPE_CHECKING:
    from commands.app import LedgerService
    from commands.views import Views
    from domain.actors import Actor, Actors
    from infra.webauth import WebAuth

T = TypeVar("T")
log = logging.getLogger("taizhang.web")

CATCH_UP_EVERY = 0.5  # seconds between the catch-up thread's looks at the log
IDLE_SECONDS = 30 * 60  # a session unused this long is closed
THROTTLE_WINDOW = 15 * 60  # seconds over which failed logins are counted
THROTTLE_FAILURES = 5  # failures per actor, or per address, within the window before logins are refused


class Throttle:
    """Failed logins per key (an actor's name, a client address) in a sliding window, counted in the
    store (infra.webauth) so that every server process (`--workers N`) sees the same failures."""

    def __init__(self, auth: WebAuth, window: float = THROTTLE_WINDOW, limit: int = THROTTLE_FAILURES) -> None:
        self.auth = auth
        self.window = window
        self.limit = limit
        self.clock: Callable[[], float] = time.time

    def blocked(self, *keys: str) -> bool:
        return self.auth.failures(keys, self.clock() - self.window) >= self.limit

    def fail(self, *keys: str) -> None:
        now = self.clock()
        self.auth.fail(keys, now, now - self.window)

    def clear(self, key: str) -> None:
        self.auth.forget_failures(key)


class Door:
    """The store as the web server sees it (one per process)."""

    def __init__(self, db: str, key_file: Path | None = None, *, catch_up: bool = True) -> None:
        from commands.app import LedgerService
        from commands.views import Views
        from infra.webauth import WebAuth

        self.db = db
        self.store = parse_url(db)
        self.key_file = key_file or self.store.default_key_file()
        self.service: LedgerService = LedgerService.open(self.store, self.key_file)
        self.views: Views = Views(self.service, self.store)
        self.auth: WebAuth = WebAuth(self.store, pooled=True)
        self.auth.ensure()
        self.throttle = Throttle(self.auth)
        self.idle = IDLE_SECONDS
        self._write = threading.RLock()  # the application object is not shared between threads while it writes
        self._settle = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._actors: _CachedActors | None = None
        self._actors_lock = threading.Lock()
        self.reads = ReadCache()
        self.access = AccessWriter(self.service)  # access-log entries, group-committed (commands.web.access_writer)
        self.replays = 0  # times the Actors aggregate was replayed (tests: none while the log stands still)
        # PostgreSQL: the server keeps the views itself only when its login may write them (the owner,
        # or a member of taizhang_projector); otherwise the projection workers do, as for the CLI.
        self.projects = self.views.embedded or bool(self.service.recorder.may_write_views())
        if catch_up:
            self.start()

    # ---- the projections, kept current ---------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="taizhang-catch-up", daemon=True)
            self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(CATCH_UP_EVERY):
            try:
                self.catch_up()
            except Exception:  # a busy store, a lost connection: try again at the next tick
                log.exception("catching the views up failed")

    def catch_up(self) -> None:
        """Bring the views to the head of the log (SQLite: never queues behind a writer; PostgreSQL: one batch)."""
        with self._settle:
            if self.views.embedded:
                self.views.settle()
                return
            if not self.projects:
                return  # this login may not write the views: `projections run --follow` workers keep them
            runner = self.views.runner
            runner.ensure_tables()
            while runner.lag():
                if not runner.run_batch():
                    break

    def lag(self) -> int:
        """Events in the log not yet in the views (without moving them)."""
        if self.views.embedded:
            state = self.views.state()
            from commands.views import VIEW_VERSIONS

            return max(0, state.head - state.position(list(VIEW_VERSIONS)))
        return int(self.views.runner.lag())

    def settle_for_read(self) -> None:
        """SQLite, before a read: catch the views up — only when no catch-up thread keeps them.

        With the thread running (the server), a read never projects others' writes itself: that
        queued every read of the process behind one lock, and made it poll SQLite's write lock
        while clerks were saving (bench_web: reads during writes). The views a page reads are then
        as current as the last catch-up: the thread's (every CATCH_UP_EVERY s) or a writer's own
        (a request that writes catches up before it answers, so a clerk sees her record).
        """
        if self.views.embedded and self._thread is None:
            with self._settle:
                self.views.settle()

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A read transaction on views as current as the last catch-up (see settle_for_read)."""
        self.settle_for_read()
        with self.views.read() as conn:
            yield conn

    def position(self) -> tuple[Any, ...]:
        """Where the store stands for a read: the log's head and each view's tracking position.

        Every change a page can show moves one of them (an event moves the head; a catch-up, the
        views), so a result read at this position stays right while it holds (ReadCache).
        """
        self.settle_for_read()
        if self.views.embedded:
            # On the recorder's pooled connection, like _log_position: a fresh connection (Views.state)
            # costs more than the 台账 page's query itself (it reads the schema first).
            import sqlite3

            recorder = self.service.recorder
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(recorder.select_max_notification_id_statement)
                head = c.fetchone()[0] or 0
                try:
                    c.execute("SELECT projection, position FROM ledger_tracking")
                    positions = {row[0]: int(row[1]) for row in c.fetchall()}
                except sqlite3.OperationalError:  # no views yet
                    positions = {}
            return (int(head), tuple(sorted(positions.items())))
        with self.views.reader.connect() as conn:
            positions = self.views.runner.positions(conn)
        return (self._log_position(), tuple(sorted(positions.items())))

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`'s result for `key` (the asker's scope and the query), kept while the store's
        position holds (commands.web.cache.ReadCache); the position is read first."""
        return self.reads.get(self.position(), key, compute)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.access.close()
        self.views.close()
        self.auth.close()
        self.service.close()

    # ---- who is asking -------------------------------------------------------------------------
    def actors(self) -> Actors | None:
        """The Actors aggregate as the log stands now, replayed only when the log has moved on it.

        Keyed by the log's position (its highest notification id, one indexed read): a request
        that finds the log where the last replay left it gets the same aggregate, without a replay.
        When the log has moved, the version of the Actors aggregate itself (its last event, one
        indexed read) says whether the actors changed: a clerk's record moves the log but not the
        actors. A revocation appends an Actors event, so the very next request replays it: a
        revoked actor is refused at once, as before. The aggregate is only ever read here (writes
        of actors load their own copy).
        """
        position = self._log_position()
        cached = self._actors
        if cached is not None and cached.position == position:
            return cached.actors
        with self._actors_lock:  # one replay for all the requests that find the log moved
            cached = self._actors
            if cached is not None and cached.position == position:
                return cached.actors
            version = self._actors_version()
            if cached is not None and cached.version == version:
                self._actors = _CachedActors(position, version, cached.actors)
                return cached.actors
            from commands.access import load_actors

            # Not under the write lock: loading an aggregate only reads committed events (the
            # recorder's pooled connections, a WAL snapshot on SQLite), and the guard a write installs
            # is consulted only when saving. Under it, every request waited for whichever clerk was saving.
            actors = load_actors(self.service)
            self.replays += 1
            # Kept under the version read *before* the replay: if an event landed in between, the
            # aggregate is newer than its key and the next request replays again (never older).
            self._actors = _CachedActors(position, version, actors)
            return actors

    def _log_position(self) -> int:
        return int(self.service.recorder.max_notification_id() or 0)

    def _actors_version(self) -> int:
        from domain.actors import ACTORS_ID

        last = self.service.recorder.select_events(ACTORS_ID, desc=True, limit=1)
        return int(last[0].originator_version) if last else 0

    def actor(self, name: str, actors: Actors | None = None) -> Actor | None:
        """The actor named so, active — None when unknown or revoked (as the log stands at this call)."""
        if actors is None:
            actors = self.actors()
        found = actors.get(name) if actors is not None else None
        return None if found is None or found.revoked else found

    def permit(self, actor: Actor, path: str, params: dict[str, Any], actors: Actors | None = None) -> None:
        """commands.access.permit for this actor: the CLI's policy, roles and scopes.

        `actors`: the aggregate the request's actor was found in (one look at the log per request).
        """
        from commands.access import Lookup, permit

        if actors is None:
            actors = self.actors()
        assert actors is not None
        permit(actor, Lookup(self.service.recorder, actors), path, params)

    def env_for(self, actor: str | None, lang: str) -> Env:
        """An Env over this process's open store, as a CLI command would have (Env.service, Env.views)."""
        env = Env(db=self.db, actor=actor, lang=lang, key_file=self.key_file)
        env._service = self.service
        env._views = _SharedViews(self)
        return env

    @contextmanager
    def writing(self, actor: Actor) -> Iterator[LedgerService]:
        """The service with this actor's ScopeGuard installed, one writer at a time in this process."""
        from commands.access import Lookup, ScopeGuard

        with self._write:
            actors = self.actors()
            assert actors is not None
            app = self.service.app
            app.guard = ScopeGuard(actor, Lookup(self.service.recorder, actors))
            try:
                yield self.service
            finally:
                app.guard = None

    def log_access(self, actor: str | None, command: str, detail: str, residents: Any = (), records: int = 0) -> None:
        """Append an access-log entry and wait until it is committed (before the route shows anything)."""
        # Not under the process's write lock: the entry and its chain link are one transaction of the
        # store's own (SQLite's write lock, or PostgreSQL's), as when CLI commands log concurrently.
        # Under it, a page that shows residents (the 台账) waited for a clerk's whole save.
        self.access.write(actor, command, detail, residents, records)

    def log_access_soon(
        self, actor: str | None, command: str, detail: str, residents: Any = (), records: int = 0
    ) -> Future[int]:
        """Start writing an access-log entry; the caller builds its page meanwhile and calls `.result()`
        before the response leaves (it raises when the entry could not be written: show nothing)."""
        return self.access.submit(actor, command, detail, residents, records)


@dataclass(frozen=True)
class _CachedActors:
    position: int  # the log's highest notification id when last checked
    version: int  # the Actors aggregate's version the replay was keyed by
    actors: Actors | None


class _SharedViews:
    """What Env.views() returns in the web: the Door's views, caught up under its lock, never closed by a request."""

    def __init__(self, door: Door) -> None:
        self._door = door

    def prepare(self, **_kwargs: Any) -> int:
        if self._door.views.embedded:
            self._door.settle_for_read()
            return 0
        return self._door.views.runner.lag()

    def read(self) -> Any:
        return self._door.views.read()

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._door.views, name)
