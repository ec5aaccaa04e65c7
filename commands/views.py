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
from infra import crypto
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
        self.runner = Runner(service.recorder, self.writer, make_projections(), service.store.backend, log_beside=True)

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
UNOPENED = "(cannot be opened)"
"""What an envelope shows that belongs elsewhere or was altered: never another person's data."""


def binding(row: dict[str, Any], field: str) -> crypto.Binding:
    """Where a row's envelope belongs: a note to its record, a name or birth date to its resident."""
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
