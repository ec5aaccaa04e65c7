"""Which database errors a long-running worker waits out, and how long it waits between tries.

A PostgreSQL server that restarts, or an administrator who terminates sessions, costs a
worker its connections: the error says the connection was lost or refused, never that the
request was wrong. Those are transient. An error the server gives about the request or the
login (a permission, a missing table, a database that does not exist, a failed password)
stays until someone acts, so waiting would only hide it.
"""

from __future__ import annotations

import random
import sys

# SQLSTATEs of a lost or refused session: class 08 (connection exception), the server
# shutting down or starting up, too many connections, and conflicts a retry resolves.
_TRANSIENT_STATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})
# A connection that failed before a session existed has no SQLSTATE: these words mark
# the failures that are not the server being away.
_PERMANENT_WORDS = ("does not exist", "authentication failed", "pg_hba.conf", "no password supplied", "permission denied")

BASE_DELAY = 0.2  # seconds before the second try
MAX_DELAY = 5.0  # a worker retries at least this often, however long the outage


def driver_error(error: BaseException) -> BaseException | None:
    """The psycopg error behind `error` (raised by SQLAlchemy or eventsourcing), if any."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, psycopg.Error):
            return current
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
    return None


def is_transient(error: BaseException) -> bool:
    """Whether the server was away (retry later) rather than refusing the request."""
    found = driver_error(error)
    if found is None:
        return False
    psycopg = sys.modules["psycopg"]
    state = getattr(found, "sqlstate", None)
    if state:
        return state.startswith("08") or state in _TRANSIENT_STATES
    if not isinstance(found, (psycopg.OperationalError, psycopg.InterfaceError)):
        return False
    text = str(found).lower()
    return not any(word in text for word in _PERMANENT_WORDS)


def reason(error: BaseException) -> str:
    """The driver's own first line for `error` (without SQLAlchemy's statement and links)."""
    found = driver_error(error) or error
    for line in str(found).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(found).__name__


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before try `attempt + 1`: doubling from BASE_DELAY up to MAX_DELAY, jittered."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** min(max(attempt - 1, 0), 16))
    return (rng or random).uniform(ceiling / 2, ceiling)
