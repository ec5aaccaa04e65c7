"""The read side as commands use it: projections kept current, then queried.

On the embedded store every query first catches the projections up (never a
stale ledger). On PostgreSQL, workers (`taizhang projections run --follow`) keep
them current; a query reads them as they stand, reports the lag on stderr, and
with `--wait` first waits for them to reach the head of the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

from commands.app import LedgerService
from infra.runner import Projection, Runner, engines
from projections.accountability import AccountabilityProjection
from projections.ledger import LedgerProjection


def make_projections() -> list[Projection]:
    """Every projection the views are made of, fresh."""
    return [LedgerProjection(), AccountabilityProjection()]


class Views:
    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self.writer, self.reader = engines(service.store)
        self.runner = Runner(service.recorder, self.writer, make_projections(), service.store.backend)

    @property
    def embedded(self) -> bool:
        return self.service.store.backend == "sqlite"

    def prepare(
        self,
        *,
        wait: float | None = None,
        progress: Callable[[int, int], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> int:
        """Make the views ready to read; returns the lag (events not yet projected)."""
        self.runner.ensure_tables()
        if self.embedded:
            self.runner.catch_up(progress)
            return 0
        if wait is not None and not self.runner.wait(wait) and warn:
            warn(f"projections did not catch up within {wait:g}s")
        lag = self.runner.lag()
        if lag and warn:
            warn(f"the ledger views are {lag} event(s) behind the log; run 'taizhang projections run' or use --wait")
        return lag

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One consistent read transaction."""
        with self.reader.begin() as conn:
            yield conn

    def close(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


ERASED = "(erased)"
"""What an erased name, birth date or note shows (labels.localise translates it)."""


def open_notes(service: LedgerService, rows: list[dict[str, Any]], field: str = "note") -> bool:
    """Replace encrypted notes by their text, or ERASED; False when there is no key file (notes become None)."""
    import orjson

    envelopes = {i: orjson.loads(row[field]) for i, row in enumerate(rows) if row.get(field)}
    if not envelopes:
        return True
    keys = service.key_session()
    erased = keys.erased_among({env["key_id"] for env in envelopes.values()})
    if service.master is None:
        for i, envelope in envelopes.items():
            rows[i][field] = ERASED if envelope["key_id"] in erased else None
        return False
    keys.prefetch({env["key_id"] for env in envelopes.values()} - erased)
    for i, envelope in envelopes.items():
        rows[i][field] = ERASED if envelope["key_id"] in erased else service.open_envelope(envelope, keys)
    return True
