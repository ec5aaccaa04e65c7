"""The projection runner in real processes, on SQLite and on PostgreSQL (DESIGN §4).

- A worker killed with SIGKILL at any moment leaves the views exactly as the batches it committed
  made them: its tracking position is a batch boundary, and the views equal views projected in the
  same batches from only the events up to that position (into a separate SQLite file). Resumed, it
  reaches views equal to a fresh rebuild.
- Two workers following the log while a third process writes project each event exactly once.
- `projections status` reports the position and the lag before and after a catch-up.
- On SQLite `Views.prepare()` catches up before every read: a query never misses a write.

The reference views are always projected here from the log (tests/property/test_projection_property.py
helpers), never read back from the views under test.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import IntegrityError

from commands import models
from commands.app import LedgerService
from commands.demo import run_demo
from commands.views import Views
from domain.errors import RuleViolation
from infra.runner import Runner
from infra.store import parse_url
from projections import queries
from projections.filters import Filters, Unit
from tests import helpers
from tests.property.test_projection_property import (
    check_totals_invariants,
    dump_views,
    prefix_views,
    read_log,
    scratch_dir,
)

ROOT = Path(__file__).resolve().parents[2]
BATCH = 50
READY_TIMEOUT = 60  # seconds a worker may take to open the store
RUN_TIMEOUT = 300  # seconds a worker may take to finish its work

# A worker as an operator would run one: open the store, then project in batches of `limit`
# events. With STOP = "-" it stops when caught up; otherwise it follows the log until the file
# STOP exists and it is caught up. With GATE it waits for that file before touching the views.
# It prints "waiting" at the gate, "ready" when it starts projecting and "done <events it projected>" at the end.
WORKER = r"""
import sys, time
from pathlib import Path
from commands.app import LedgerService
from commands.views import Views
from domain.errors import RuleViolation
from infra.store import parse_url

url, key_file, limit, stop, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
service = LedgerService.open(parse_url(url), Path(key_file))
views = Views(service)
if gate != "-":
    print("waiting", flush=True)
while gate != "-" and not Path(gate).exists():
    time.sleep(0.002)
views.runner.ensure_tables()
print("ready", flush=True)
moved = 0
while True:
    n = views.runner.run_batch(limit=limit)
    moved += n
    if n:
        continue
    if stop == "-":
        break
    if Path(stop).exists():
        n = views.runner.run_batch(limit=limit)
        moved += n
        if n == 0:
            break
    else:
        time.sleep(0.01)
print("done", moved, flush=True)
views.close()
service.close()
"""


# ---- processes ---------------------------------------------------------------------------------


def start_worker(url: str, key_file: Path, *, limit: int = BATCH, stop: str = "-", gate: str = "-") -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, url, str(key_file), str(limit), stop, gate],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_ready(worker: subprocess.Popen[bytes], line: str = "ready") -> None:
    """Wait until the worker prints `line` (read byte by byte: nothing after it is buffered here)."""
    assert worker.stdout is not None
    fd = worker.stdout.fileno()
    got = b""
    deadline = time.monotonic() + READY_TIMEOUT
    while not got.endswith(b"\n"):
        readable, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(fd, 1) if readable else b""
        if not chunk:
            if not readable:
                worker.kill()
            worker.wait(timeout=30)
            err = worker.stderr.read().decode() if worker.stderr else ""
            pytest.fail(f"the worker did not print {line!r}: {got!r}\n{err}")
        got += chunk
    assert got.decode().strip() == line, got


def finish(worker: subprocess.Popen[bytes]) -> int:
    """Wait for a worker that stops by itself; returns how many events it projected."""
    try:
        raw_out, raw_err = worker.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.communicate()
        pytest.fail(f"a worker did not finish within {RUN_TIMEOUT} s")
    out, err = raw_out.decode(), raw_err.decode()
    assert worker.returncode == 0, err
    done = [line for line in out.splitlines() if line.startswith("done ")]
    assert len(done) == 1, out
    return int(done[0].split()[1])


# ---- the store, seen directly ------------------------------------------------------------------


def tracking(url: str) -> dict[str, int]:
    """The tracking rows, read with a plain driver connection (not through the runner)."""
    store = parse_url(url)
    statement = "SELECT projection, position FROM ledger_tracking"
    if store.backend == "sqlite":
        lite = sqlite3.connect(str(store.path))
        try:
            return {row[0]: int(row[1]) for row in lite.execute(statement)}
        finally:
            lite.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return {row[0]: int(row[1]) for row in conn.execute(statement)}


def all_tables(views: Views) -> list[Any]:
    return [table for projection in views.runner.projections for table in projection.metadata.sorted_tables]


def fresh_projections(views: Views) -> list[Any]:
    return [type(projection)() for projection in views.runner.projections]


def reference_dump(views: Views, last: int, tmp: Path, batch: int) -> dict[str, list[tuple[Any, ...]]]:
    """The views projected from the events up to `last` only, in batches of `batch`, in a new SQLite file."""
    path = tmp / f"reference-{last}-{batch}-{uuid.uuid4().hex[:6]}.db"
    with prefix_views(views.service.recorder, last, path, batch, fresh_projections(views)) as engine:
        return dump_views(engine, all_tables(views))


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def url(service: LedgerService) -> str:
    return service.store.url


@pytest.fixture
def views(service: LedgerService) -> Iterator[Views]:
    views = Views(service)
    try:
        yield views
    finally:
        views.close()


def _cmd(service: LedgerService, model: type[Any], data: dict[str, Any]) -> Any:
    return service.validate(model, data)


def write_history(service: LedgerService, rng: random.Random, count: int, code: str = "W") -> list[str]:
    """`count` writes through the service: services, corrections (moving months and kinds), voids,
    category updates. Returns the record ids recorded."""
    helpers.small_community(service, code)  # R1 left_behind_elderly, R2 left_behind_child; P1, P2
    recorded: list[str] = []
    active: list[str] = []
    for index in range(count):
        roll = rng.random()
        if roll < 0.6 or not active:
            day = date(2026, 7, 1).toordinal() + rng.randrange(92)
            at = f"{date.fromordinal(day).isoformat()} {rng.randrange(24):02d}:{rng.randrange(60):02d}"
            record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            helpers.record(service, code, record_id, kind=rng.choice(["life_care", "counseling"]),
                           residents=rng.choice([["R1"], ["R2"], ["R1", "R2"]]), occurred_at=at,
                           minutes=rng.randint(5, 120))
            recorded.append(record_id)
            active.append(record_id)
        elif roll < 0.8:
            record_id = rng.choice(active)
            month = rng.choice(["07", "08", "09"])
            service.correct_service(_cmd(service, models.CorrectService, {
                "community": code, "record_id": record_id, "reason": "更正",
                "occurred_at": f"2026-{month}-{rng.randint(1, 28):02d} 10:{index % 60:02d}:{index // 60:02d}",
                "minutes": rng.randint(5, 120)}), "clerk")  # a new time (seconds = index // 60): it changes something
        elif roll < 0.9:
            record_id = active.pop(rng.randrange(len(active)))
            service.void_service(_cmd(service, models.VoidService, {
                "community": code, "record_id": record_id, "reason": "重复"}), "clerk")
        else:
            categories = rng.choice([["hardship"], ["left_behind_child"], ["left_behind_elderly", "hardship"]])
            try:
                service.update_resident(_cmd(service, models.UpdateResident, {
                    "community": code, "code": rng.choice(["R1", "R2"]), "categories": categories}), "clerk")
            except RuleViolation:  # the same categories again change nothing
                pass
    return recorded


def assert_equals_fresh_rebuild(views: Views) -> None:
    """Rebuild in place (drop, create, catch up in the default batches) and compare with what was there."""
    before = dump_views(views.reader, all_tables(views))
    views.runner.drop_tables()
    views.runner.ensure_tables()
    views.runner.catch_up()
    after = dump_views(views.reader, all_tables(views))
    check_totals_invariants(after)
    assert before == after


# ---- a worker killed at any moment ----------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_worker_leaves_the_views_of_its_last_batch(service: LedgerService, url: str, key_file: Path, views: Views) -> None:
    run_demo(service, seed=11, today=date(2026, 6, 30))
    head = views.runner.head()
    log_ids = [n.id for n, _p in read_log(service.recorder)]
    assert log_ids == list(range(1, head + 1)), "the demo's log positions have gaps: batch boundaries unknown"
    assert head > 20 * BATCH

    rng = random.Random()
    # Shortest first: the views only move forward, so a first kill that came after the whole catch-up
    # (a quiet machine does it in under a second) would leave nothing for the later kills to interrupt.
    delays = [rng.uniform(0.02, 0.25), rng.uniform(0.25, 0.6), rng.uniform(0.6, 1.0)]
    previous = 0
    interrupted = 0
    with scratch_dir() as tmp:
        for attempt in range(6):
            if attempt >= len(delays):
                if interrupted:
                    break
                # a very fast or very slow machine: kill again until one kill lands mid-log
                delays.append(rng.uniform(0.02, 1.0))
            delay = delays[attempt]
            worker = start_worker(url, key_file)
            wait_ready(worker)
            time.sleep(delay)
            still_running = worker.poll() is None
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            positions = tracking(url)
            assert set(positions) == {p.name for p in views.runner.projections}
            position = positions[views.runner.projections[0].name]
            # every projection moved in the same transactions: one position, a batch boundary
            assert set(positions.values()) == {position}, positions
            assert position % BATCH == 0 or position == head, (delay, position)
            assert previous <= position <= head
            if still_running and 0 < position < head:
                interrupted += 1
            # the views are exactly those of the batches committed, nothing of the one killed
            got = dump_views(views.reader, all_tables(views))
            check_totals_invariants(got)
            assert got == reference_dump(views, position, Path(tmp), BATCH), f"killed after {delay:.2f} s at {position}"
            previous = position
        assert interrupted, f"no kill landed in the middle of the catch-up (delays {delays}): nothing was tested"

        # resumed, the worker finishes where it stopped
        resumed = start_worker(url, key_file)
        wait_ready(resumed)
        assert finish(resumed) == head - previous
        assert set(tracking(url).values()) == {head}
        got = dump_views(views.reader, all_tables(views))
        assert got == reference_dump(views, head, Path(tmp), BATCH)
    assert views.runner.lag() == 0
    assert_equals_fresh_rebuild(views)


# ---- two workers at once ----------------------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_following_the_log_project_each_event_once(
    service: LedgerService, url: str, key_file: Path, views: Views, tmp_path: Path
) -> None:
    views.runner.ensure_tables()  # as `taizhang init` leaves a store
    stop = tmp_path / "stop"
    workers = [start_worker(url, key_file, limit=limit, stop=str(stop)) for limit in (3, 7)]
    for worker in workers:
        wait_ready(worker)
    try:
        recorded = write_history(service, random.Random(5), 160)  # this process is the third: the writer
    finally:
        stop.touch()
    moved = [finish(worker) for worker in workers]

    head = views.runner.head()
    assert sum(moved) == len(read_log(service.recorder)), f"events projected per worker: {moved}, log: {head}"
    assert set(tracking(url).values()) == {head}
    with views.read() as conn:
        ids = Counter(e["record_id"] for e in queries.entries(conn, Filters(), include_voided=True))
    assert ids == Counter(dict.fromkeys(recorded, 1))
    assert_equals_fresh_rebuild(views)


def test_two_workers_starting_together_create_the_views_once(
    service: LedgerService, url: str, key_file: Path, views: Views, tmp_path: Path
) -> None:
    """Two workers started at the same moment on a store whose views do not exist yet (a store filled
    by `demo --format json`, or after a schema change): both create them and neither fails."""
    recorded = write_history(service, random.Random(8), 40)
    gate = tmp_path / "gate"
    workers = [start_worker(url, key_file, limit=5, gate=str(gate)) for _ in range(2)]
    for worker in workers:
        wait_ready(worker, "waiting")  # both at the gate (they poll it every 2 ms) ...
    gate.touch()  # ... and off together
    moved = [finish(worker) for worker in workers]
    assert sum(moved) == views.runner.head()
    with views.read() as conn:
        ids = Counter(e["record_id"] for e in queries.entries(conn, Filters(), include_voided=True))
    assert ids == Counter(dict.fromkeys(recorded, 1))
    assert_equals_fresh_rebuild(views)


def test_two_runners_taking_turns_never_use_stale_cached_state(service: LedgerService, key_file: Path) -> None:
    """Two runners (as two workers) project alternately; each must notice that the other moved the views
    on (a resident's categories changed in between) before it projects the next service."""
    code = helpers.small_community(service, "T")
    first, second = Views(service), Views(service)
    try:
        first.runner.ensure_tables()
        first.runner.catch_up()  # `first` now knows R1 as left_behind_elderly
        service.update_resident(_cmd(service, models.UpdateResident, {
            "community": code, "code": "R1", "categories": ["hardship"]}), "clerk")
        second.runner.catch_up()  # `second` projects the update
        record_id = helpers.record(service, code, residents=["R1"], occurred_at="2026-07-05 09:30")["record_id"]
        first.runner.catch_up()  # `first` projects the service
        with first.read() as conn:
            hardship = queries.entries(conn, Filters(category="hardship"))
            elderly = queries.entries(conn, Filters(category="left_behind_elderly"))
            summary = queries.summary(conn, Filters(category="hardship"), by="community")
        assert [e["record_id"] for e in hardship] == [record_id]
        assert elderly == []
        assert [(r["records"], r["residents_served"]) for r in summary] == [(1, 1)]
    finally:
        first.close()
        second.close()


# ---- projections status --------------------------------------------------------------------------


def cli_status(url: str, key_file: Path) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIZHANG_")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "--db", url, "--key-file", str(key_file), "projections", "status",
         "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_rebuild_killed_while_loading_is_completed_before_the_views_are_read(
    service: LedgerService, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild counts the monthly totals only at its end (decision note integer-keyed-revision-rows). Killed while loading,
    it leaves views that are not in place; the next command counts the totals (and makes the
    indexes) before anything reads them, and catching up then gives the views a rebuild gives."""
    views.runner.ensure_tables()
    write_history(service, random.Random(5), 60)
    views.runner.catch_up()
    kept = dump_views(views.reader, all_tables(views))
    batches = 0
    run_batch = Runner.run_batch

    def killed_at_the_third_batch(self: Runner, *args: Any, **kwargs: Any) -> int:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise SystemExit("killed")
        return run_batch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Runner, "run_batch", killed_at_the_third_batch)
        patch.setattr(Runner, "create_indexes", lambda self: None)  # a killed process runs no `finally`
        with pytest.raises(SystemExit):
            views.runner.rebuild(limit=10)
    stopped = views.runner.position()
    assert 0 < stopped < views.runner.head()
    assert not views.runner.in_place()
    views.runner.ensure_tables()
    assert views.runner.in_place()
    assert views.runner.position() == stopped  # completed where it stopped, not dropped and replayed
    views.runner.catch_up()
    after = dump_views(views.reader, all_tables(views))
    check_totals_invariants(after)
    assert after == kept


def test_projections_status_reports_position_and_lag(service: LedgerService, url: str, key_file: Path, views: Views) -> None:
    views.runner.ensure_tables()
    names = sorted(p.name for p in views.runner.projections)
    assert sorted(row["projection"] for row in cli_status(url, key_file)) == names
    assert all((row["position"], row["head"], row["lag"]) == (0, 0, 0) for row in cli_status(url, key_file))

    write_history(service, random.Random(3), 30)
    events = len(read_log(service.recorder))
    before = cli_status(url, key_file)
    assert all((row["position"], row["head"], row["lag"]) == (0, events, events) for row in before), before

    views.runner.run_batch(limit=10)
    middle = cli_status(url, key_file)
    assert all((row["position"], row["head"], row["lag"]) == (10, events, events - 10) for row in middle), middle
    assert views.runner.lag() == events - 10

    views.runner.catch_up()
    after = cli_status(url, key_file)
    assert all((row["position"], row["head"], row["lag"]) == (events, events, 0) for row in after), after
    assert views.runner.lag() == 0
    assert set(tracking(url).values()) == {events}


def test_lag_counts_the_events_not_yet_projected(
    service: LedgerService, backend: str, views: Views, request: pytest.FixtureRequest
) -> None:
    """A write that lost a race to another writer leaves a hole in PostgreSQL's sequence of positions;
    the lag is still the number of events the views have not projected."""
    code = helpers.small_community(service, "G")
    views.runner.ensure_tables()
    views.runner.catch_up()
    projected = views.runner.head()
    stale = service.get_community(code)
    stale.retire_provider(code="P1", on="2026-08-01", actor="clerk")
    helpers.register(service, code, "P9")  # another writer saves first
    with pytest.raises(IntegrityError):
        service.app.save(stale)  # ... so this save loses the race
    helpers.register(service, code, "P8")
    unprojected = [n for n, _p in read_log(service.recorder) if n.id > projected]
    assert len(unprojected) == 2
    assert views.runner.lag() == len(unprojected)
    assert all(row["lag"] == len(unprojected) for row in views.runner.status())


# ---- Views.prepare on SQLite ------------------------------------------------------------------------


def test_prepare_on_sqlite_catches_up_before_every_read(sqlite_url: str, key_file: Path) -> None:
    """Each query (a long-lived Views, and a new one per query as the CLI makes) sees the write before it,
    also when another process's service wrote it."""
    service, _ = LedgerService.create(parse_url(sqlite_url), key_file, None)
    other = LedgerService.open(parse_url(sqlite_url), key_file)  # a second clerk's process
    kept = Views(service)
    try:
        def read(check: Any) -> None:
            for views in (kept, Views(service)):
                assert views.prepare() == 0
                assert views.runner.lag() == 0
                with views.read() as conn:
                    check(conn)
                if views is not kept:
                    views.close()

        code = helpers.establish(service, "P")

        def established(conn: Any) -> None:
            assert [c["code"] for c in queries.community_rows(conn)] == [code]

        read(established)
        helpers.enroll(other, code, "R1", categories=["left_behind_child"])
        helpers.register(service, code, "P1")

        def residents(conn: Any) -> None:
            rows = queries.resident_rows(conn, code, None)
            assert [(r["code"], r["categories"], r["departed_on"]) for r in rows] == [("R1", ["left_behind_child"], None)]

        read(residents)
        total = 0
        ids: list[str] = []
        for index, minutes in enumerate([15, 40, 25]):
            writer = (service, other)[index % 2]
            ids.append(helpers.record(writer, code, residents=["R1"], minutes=minutes,
                                      occurred_at=f"2026-07-{10 + index:02d} 09:30")["record_id"])
            total += minutes

            def recorded(conn: Any, total: int = total, count: int = index + 1) -> None:
                entries = queries.entries(conn, Filters(unit=Unit("community", community=code)))
                assert [e["record_id"] for e in entries] == ids
                summary = queries.summary(conn, Filters(category="left_behind_child"), by="county")
                assert [(r["records"], r["minutes"], r["residents_served"]) for r in summary] == [(count, total, 1)]

            read(recorded)
        other.correct_service(_cmd(other, models.CorrectService, {
            "community": code, "record_id": ids[0], "reason": "更正", "minutes": 50}), "clerk")

        def corrected(conn: Any) -> None:
            entry = next(e for e in queries.entries(conn, Filters()) if e["record_id"] == ids[0])
            assert (entry["minutes"], entry["revision"]) == (50, 2)
            assert queries.summary(conn, Filters(), by="community")[0]["minutes"] == total - 15 + 50

        read(corrected)
        service.void_service(_cmd(service, models.VoidService, {
            "community": code, "record_id": ids[1], "reason": "重复"}), "clerk")

        def voided(conn: Any) -> None:
            assert [e["record_id"] for e in queries.entries(conn, Filters())] == [ids[0], ids[2]]
            assert queries.summary(conn, Filters(), by="township")[0]["records"] == 2

        read(voided)
        other.update_resident(_cmd(other, models.UpdateResident, {
            "community": code, "code": "R1", "categories": ["hardship"]}), "clerk")
        service.depart_resident(_cmd(service, models.DepartResident, {
            "community": code, "code": "R1", "reason": "moved", "on": "2026-09-01"}), "clerk")

        def departed(conn: Any) -> None:
            rows = queries.resident_rows(conn, code, None)
            assert [(r["categories"], r["departed_on"]) for r in rows] == [(["hardship"], "2026-09-01")]

        read(departed)
    finally:
        kept.close()
        other.close()
        service.close()
