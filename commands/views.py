"""The read side as commands use it: projections kept current, then queried.

On the embedded store (SQLite) a query reads the views in a WAL read transaction, with
sqlite3 alone (infra.litesql): it never takes the write lock, so writers never block it and
readers never block each other. Before it reads, the views must reflect every event committed
so far (DESIGN §5): when they do, nothing is written; when they are behind, the reader projects
the missing events in batches, each a short write transaction begun only when the write lock is
free (it never queues behind a writer: while one holds the lock it re-reads where the views are,
since the writer may be projecting them itself). Imports catch the views up themselves, before
and after their long transaction (docs/decisions: reads without the write lock).

On PostgreSQL, workers (`taizhang projections run --follow`) keep them current; a query reads
them as they stand, reports the lag on stderr, and with `--wait` first waits for them to reach
the head of the log.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from commands.progress import Progress
from infra import litesql
from infra.store import StoreError, StoreURL

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from commands.app import LedgerService
    from commands.context import Env
    from infra import crypto
    from infra.runner import Projection, Runner

# Each projection's `version` (projections.ledger, projections.accountability, projections.funds): the light path
# reads the views only when the store holds them at these versions (a test keeps them equal).
VIEW_VERSIONS = {"ledger": 7, "accountability": 2, "funds": 1}
LOCK_POLL = 0.02  # seconds between a reader's attempts at the write lock
LOCK_PATIENCE = 30.0  # seconds a reader waits for views that nobody moves (SQLITE_LOCK_TIMEOUT)


def make_projections() -> list[Projection]:
    """Every projection the views are made of, fresh."""
    from projections.accountability import AccountabilityProjection
    from projections.funds import FundsProjection
    from projections.ledger import LedgerProjection

    # The ledger first: the funds projection locates communities in the ledger's directory.
    return [LedgerProjection(), AccountabilityProjection(), FundsProjection()]


class Views:
    """The views of one store. `service` may be a function that opens it: the light path
    (SQLite, views current) never needs the application."""

    def __init__(
        self,
        service: LedgerService | Callable[[], LedgerService],
        store: StoreURL | None = None,
        *,
        light: Callable[[], bool] | None = None,
    ) -> None:
        """`light()` says whether the store is known sound without the application (Env.open_to_all)."""
        self._light = light
        if callable(service):
            self._open, self._service = service, None
        else:
            self._open, self._service = None, service
        self._store = store
        self._engines: tuple[Engine, Engine] | None = None
        self._runner: Runner | None = None
        self._settler: Runner | None = None
        self._settler_engine: Engine | None = None

    @property
    def service(self) -> LedgerService:
        if self._service is None:
            assert self._open is not None
            self._service = self._open()
        return self._service

    @property
    def store(self) -> StoreURL:
        return self._store if self._store is not None else self.service.store

    @property
    def embedded(self) -> bool:
        return self.store.backend == "sqlite"

    @property
    def writer(self) -> Engine:
        return self._both()[0]

    @property
    def reader(self) -> Engine:
        return self._both()[1]

    def _both(self) -> tuple[Engine, Engine]:
        if self._engines is None:
            from infra.runner import engines

            self._engines = engines(self.store)
        return self._engines

    @property
    def runner(self) -> Runner:
        """The runner for commands that keep the views (status, rebuild, run): it waits for the lock."""
        if self._runner is None:
            from infra.runner import Runner

            self._runner = Runner(
                self.service.recorder, self.writer, make_projections(), self.store.backend, log_beside=True
            )
        return self._runner

    def _settling_runner(self) -> Runner:
        """The runner a reader moves the views with: a batch fails at once when the lock is taken."""
        if self._settler is None:
            from infra.runner import Runner, engines

            self._settler_engine = engines(self.store, lock_wait=0)[0]
            self._settler = Runner(
                self.service.recorder, self._settler_engine, make_projections(), self.store.backend, log_beside=True
            )
        return self._settler

    def prepare(
        self,
        *,
        wait: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> int:
        """Make the views ready to read; returns the lag (events not yet projected)."""
        if self.embedded:
            if self._service is None and not (self._light is not None and self._light()):
                self.service  # noqa: B018  (opening the store checks it: missing, unfinished, old schema)
            self.settle(progress)
            return 0
        self.runner.ensure_tables()
        if wait is not None and not self.runner.wait(wait) and warn:
            warn(f"projections did not catch up within {wait:g}s")
        lag = self.runner.lag()
        if lag and warn:
            warn(f"the ledger views are {lag} event(s) behind the log; run 'taizhang projections run' or use --wait")
        return lag

    # ---- SQLite: current views without waiting on the write lock ------------------------------------
    def state(self) -> litesql.ViewState:
        """Where the views stand, read in a read transaction (no lock)."""
        assert self.store.path is not None
        raw = litesql.connect(self.store.path)
        try:
            raw.execute("BEGIN")
            return litesql.view_state(raw)
        finally:
            raw.close()

    def current(self, state: litesql.ViewState) -> bool:
        return state.in_place(VIEW_VERSIONS) and state.position(list(VIEW_VERSIONS)) >= state.head

    def settle(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Bring the views to the head of the log as it is now; returns the events this call projected.

        Each batch is its own short write transaction, begun only if the write lock is free at
        that instant (busy_timeout 0). While another process holds the lock, the reader does not
        queue for it: it re-reads the views' position (that process may be projecting them) and
        tries again. It gives up, exit 1, only when the views have not moved for LOCK_PATIENCE
        seconds while a writer kept the lock (an import opened while the views were behind:
        imports catch them up first, so this is the race of a clerk's commit with an import's start).
        """
        state = self.state()
        if self.current(state):
            return 0
        if not state.in_place(VIEW_VERSIONS):
            self.runner.ensure_tables()  # creating or reshaping views: once per store and version
            state = self.state()
        names = list(VIEW_VERSIONS)
        target, start = state.head, state.position(names)
        runner = self._settling_runner()
        done, last, still = 0, start, time.monotonic()
        while last < target:
            try:
                done += runner.run_batch(stop=target)
            except Exception as error:
                if not _locked(error):
                    raise
                time.sleep(LOCK_POLL)
            position = self.state().position(names)
            if position != last:
                last, still = position, time.monotonic()
            elif time.monotonic() - still > LOCK_PATIENCE:
                raise StoreError(
                    f"the ledger views are {target - last} event(s) behind the log and another writer "
                    f"has held the store for {LOCK_PATIENCE:g}s; try again when it has finished"
                )
            if progress:
                progress(min(last, target) - start, target - start)
        return done

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One consistent read transaction (SQLite: a WAL snapshot, no lock)."""
        if self.embedded:
            assert self.store.path is not None
            raw = litesql.connect(self.store.path)
            try:
                raw.execute("BEGIN")
                yield litesql.LiteConnection(raw)  # type: ignore[misc]
            finally:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raw.close()
            return
        with self.reader.begin() as conn:
            yield conn

    def close(self) -> None:
        for engine in {id(e): e for e in (*(self._engines or ()), self._settler_engine) if e is not None}.values():
            engine.dispose()


def _locked(error: BaseException) -> bool:
    """Whether `error` is SQLite's "database is locked" (the write lock was taken)."""
    orig = getattr(error, "orig", error)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def prepared_views(env: Env, wait: float | None) -> Views:
    """The open store's views, caught up (SQLite) or with their lag reported (PostgreSQL)."""
    views: Views = env.views()
    with Progress("updating the ledger", 0) as bar:
        views.prepare(wait=wait, progress=lambda done, total: bar.set(done, total), warn=env.warn)
    return views


ERASED = "(erased)"
"""What an erased name, birth date or note shows (labels.localise translates it)."""
UNOPENED = "(cannot be opened)"
"""What an envelope shows that belongs elsewhere or was altered: never another person's data."""


def binding(row: dict[str, Any], field: str) -> crypto.Binding:
    """Where a row's envelope belongs: a note to its record, a name or birth date to its resident."""
    from infra import crypto

    subject = row.get("record_id") if field == crypto.NOTE else row.get("code")
    return crypto.Binding(str(row.get("community")), str(subject), field)


def open_notes(service: LedgerService, rows: list[dict[str, Any]], field: str = "note") -> bool:
    """Replace encrypted notes (or names, birth dates) by their text, ERASED or UNOPENED.

    False when there is no key file (they become None). An envelope is opened only as
    the field of its own row's record or resident: one copied from elsewhere shows UNOPENED.
    """
    envelopes = {i: _envelope(row[field]) for i, row in enumerate(rows) if row.get(field)}
    if not envelopes:
        return True
    from infra import crypto

    places = {i: binding(rows[i], field) for i in envelopes}
    misplaced = {i for i, envelope in envelopes.items() if not crypto.belongs(envelope, places[i])}
    keys = service.key_session()
    erased = keys.erased_among({places[i].key_id for i in envelopes})
    if service.master is None:
        for i in envelopes:
            rows[i][field] = ERASED if places[i].key_id in erased else None
        return False
    keys.prefetch({places[i].key_id for i in envelopes if i not in misplaced} - erased)
    for i, envelope in envelopes.items():
        if i in misplaced:
            rows[i][field] = UNOPENED
        elif places[i].key_id in erased:
            rows[i][field] = ERASED
        else:
            try:
                rows[i][field] = service.open_envelope(envelope, keys, where=places[i])
            except crypto.Unopenable:
                rows[i][field] = UNOPENED
    return True


def _envelope(text: str) -> dict[str, Any]:
    """A stored envelope; anything else (not JSON, not an object) as an empty one, which opens nowhere."""
    import orjson

    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
