"""`projections run --follow` outlives a PostgreSQL outage (issue 11 item 9).

A real worker process follows a test database on the shared server. The server is never
stopped (others use it): its sessions are terminated with pg_terminate_backend, and for a
longer outage the database is closed to new connections (ALTER DATABASE … ALLOW_CONNECTIONS
false) for several seconds — longer than eventsourcing's own retries — so every reconnect
attempt fails as it would while a server restarts. The worker must say once that it lost the
connection, keep trying, say it reconnected, project what was written meanwhile, and still be
running. An error that waiting cannot cure (a table gone) still ends it with one line, exit 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, establish_args, record_args

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds any one step may take
OUTAGE = 5.0  # seconds the database refuses connections
LOST = "lost the database connection"


@pytest.fixture
def pg_store(pg_admin_url: str, tmp_path: Path) -> Iterator[Cli]:
    url = make_pg_database(pg_admin_url)
    cli = Cli(url, tmp_path / "taizhang.key")
    try:
        cli.ok("init")
        cli.ok(*establish_args(COMMUNITY))
        cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
        cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
        yield cli
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname(url)}" ALLOW_CONNECTIONS true')
        drop_pg_database(pg_admin_url, url)


def dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


class Worker:
    """`taizhang projections run --follow` in its own process; its stderr goes to a file."""

    def __init__(self, cli: Cli, tmp_path: Path) -> None:
        self.stderr_path = tmp_path / "worker.stderr"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAIZHANG_")}
        env["PYTHONPATH"] = str(ROOT)
        code = "import sys; from commands.cli import main; sys.argv[0] = 'taizhang'; main()"
        args = ["--db", cli.url, "--key-file", str(cli.key), "projections", "run", "--follow", "--interval", "0.1"]
        with self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def lines(self, needle: str) -> int:
        return sum(needle in line for line in self.stderr().splitlines())

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=WAIT)


def until(condition: Callable[[], bool], what: str, worker: Worker) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert worker.alive(), f"the worker exited ({worker.process.returncode}) while waiting for {what}:\n{worker.stderr()}"
        assert time.monotonic() < deadline, f"no {what} within {WAIT:g}s:\n{worker.stderr()}"
        time.sleep(0.05)


def projected(url: str) -> bool:
    """Every projection's tracking position has reached the head of the log."""
    with psycopg.connect(url) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taizhang_events").fetchone()[0]  # type: ignore[index]
        least = conn.execute("SELECT coalesce(min(position), 0) FROM ledger_tracking").fetchone()[0]  # type: ignore[index]
    return bool(head) and least >= head


def entries(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(row[0]) for row in conn.execute("SELECT DISTINCT record_id FROM ledger_revisions").fetchall()}


def terminate(admin_url: str, url: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname(url),),
        ).fetchall()
    return sum(bool(row[0]) for row in rows)


def record(cli: Cli) -> str:
    record_id = str(uuid.uuid4())
    cli.ok(*record_args("HZ-001", "--record-id", record_id))
    return record_id


def test_a_follower_reconnects_after_its_sessions_are_terminated_and_the_database_refuses_connections(
    pg_store: Cli, pg_admin_url: str, tmp_path: Path
) -> None:
    url = pg_store.url
    first = record(pg_store)
    worker = Worker(pg_store, tmp_path)
    try:
        until(lambda: projected(url) and first in entries(url), "first projection", worker)

        # The sessions are terminated (as at a restart); the next writes are still projected.
        assert terminate(pg_admin_url, url) >= 1
        second = record(pg_store)
        until(lambda: projected(url) and second in entries(url), "projection after pg_terminate_backend", worker)

        # An outage longer than eventsourcing's own retries: no connection is accepted meanwhile.
        until(lambda: worker.lines("reconnected") == worker.lines(LOST), "the end of any earlier outage", worker)
        lost_before = worker.lines(LOST)
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname(url)}" ALLOW_CONNECTIONS false')
        try:
            terminate(pg_admin_url, url)
            until(lambda: worker.lines(LOST) > lost_before, "note of the lost connection", worker)
            time.sleep(OUTAGE)
            assert worker.alive(), worker.stderr()
            assert worker.lines(LOST) == lost_before + 1, f"one note per outage:\n{worker.stderr()}"
        finally:
            with psycopg.connect(pg_admin_url, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{dbname(url)}" ALLOW_CONNECTIONS true')

        third = record(pg_store)
        until(lambda: projected(url) and third in entries(url), "projection after the outage", worker)
        assert entries(url) == {first, second, third}
        until(lambda: worker.lines("reconnected") == worker.lines(LOST), "note of the reconnection", worker)
        lines = worker.stderr().splitlines()
        assert lines[-1] == "Note: reconnected", lines
        assert all(line.startswith("Note: ") for line in lines), lines
        assert "Traceback" not in worker.stderr()
        assert worker.alive()

        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=WAIT) == 0, worker.stderr()
        assert worker.stderr().splitlines()[-1] == "stopped"
    finally:
        worker.kill()


def test_a_follower_still_stops_on_an_error_that_waiting_cannot_cure(
    pg_store: Cli, pg_admin_url: str, tmp_path: Path
) -> None:
    url = pg_store.url
    first = record(pg_store)
    worker = Worker(pg_store, tmp_path)
    try:
        until(lambda: projected(url) and first in entries(url), "first projection", worker)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE ledger_tracking")
        assert worker.process.wait(timeout=WAIT) == 1, worker.stderr()
        lines = worker.stderr().splitlines()
        assert lines == ['Error: database: relation "ledger_tracking" does not exist'], lines
    finally:
        worker.kill()


# ---- which real errors are waited out ------------------------------------------------------------
def _error_of(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as error:  # the error as the driver raised it
        return error
    raise AssertionError("the action did not fail")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_errors_are_told_apart(pg_store: Cli, pg_admin_url: str) -> None:
    """Transient: a terminated session, a refused connection, a database closed to connections.
    Not transient: a database that does not exist, a missing table, a denied privilege."""
    from infra.outage import backoff, is_transient, reason

    url = pg_store.url
    base = url.rsplit("/", 1)[0]
    conn = psycopg.connect(url, autocommit=True)
    terminate(pg_admin_url, url)
    killed = _error_of(lambda: conn.execute("SELECT 1"))
    conn.close()
    refused = _error_of(lambda: psycopg.connect(f"postgresql://u@127.0.0.1:{_closed_port()}/x", connect_timeout=5))
    missing_db = _error_of(lambda: psycopg.connect(f"{base}/tz_missing_{uuid.uuid4().hex[:8]}"))
    with psycopg.connect(url, autocommit=True) as c:
        missing_table = _error_of(lambda: c.execute("SELECT * FROM no_such_table"))
    role = f"tz_probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'ALTER DATABASE "{dbname(url)}" ALLOW_CONNECTIONS false')
    try:
        closed = _error_of(lambda: psycopg.connect(url))
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname(url)}" ALLOW_CONNECTIONS true')
        user_url = url.replace("postgres:postgres@", f"{role}@", 1)
        with psycopg.connect(user_url, autocommit=True) as c:
            denied = _error_of(lambda: c.execute("SELECT * FROM taizhang_events"))
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname(url)}" ALLOW_CONNECTIONS true')
        terminate(pg_admin_url, url)
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')

    for error in (killed, refused, closed):
        assert all(is_transient(e) for e in _wrappings(error)), reason(error)
    for error in (missing_db, missing_table, denied):
        assert not any(is_transient(e) for e in _wrappings(error)), reason(error)
    assert all(reason(e).startswith("permission denied for table taizhang_events") for e in _wrappings(denied))
    assert all(reason(e) == 'relation "no_such_table" does not exist' for e in _wrappings(missing_table))

    # The pause grows, is jittered, and never exceeds a few seconds however long the outage.
    import random

    rng = random.Random(7)
    pauses = [backoff(attempt, rng) for attempt in range(1, 200)]
    assert all(0 < p <= 5.0 for p in pauses)
    assert pauses[0] <= 0.2 and max(pauses[-20:]) > 2.5
    assert len({round(p, 6) for p in pauses[-20:]}) == 20  # jittered, not in step


def _wrappings(error: BaseException) -> list[BaseException]:
    """The error as the runner meets it: itself, wrapped by SQLAlchemy, wrapped by eventsourcing."""
    from eventsourcing.persistence import OperationalError
    from sqlalchemy.exc import DBAPIError

    try:
        raise OperationalError(str(error)) from error
    except OperationalError as wrapped:
        return [error, DBAPIError.instance("SELECT 1", {}, error, psycopg.Error), wrapped]
