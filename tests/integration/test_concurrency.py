"""Two OS processes writing to one store at the same time, on SQLite and on PostgreSQL.

Each process opens the store itself (as two clerks' CLI calls or two imports would),
waits at a common gate, then records its services one command at a time. The
application's retry loop must turn every lost race into a reload and a new decision:
afterwards every record is in the log exactly once, claimed exactly once, and the
recorded time still never decreases along the log.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from commands.app import Busy, LedgerService
from commands.audit_chain import verify_log
from domain.errors import AlreadyExists
from domain.ids import community_id
from infra.store import parse_url
from tests import helpers
from tests.integration.test_service import assert_commits_partition_the_log, payloads, sql

PER_PROCESS = 100
DEADLINE = 300  # seconds a worker may take before the test gives up on it
REISSUE = 5  # a clerk told "busy; try again" tries again, this many times at most



def content(index: int) -> dict[str, Any]:
    """The same record content for a given index in every process."""
    return {
        "kind": ("life_care", "counseling", "family_care")[index % 3],
        "residents": ["R1", "R2"] if index % 4 == 0 else [("R1", "R2")[index % 2]],
        "providers": [("P1", "P2")[index % 2]],
        "occurred_at": f"2026-02-{1 + index % 28:02d} {8 + index % 10:02d}:{index % 60:02d}",
        "minutes": 5 + index % 120,
        # Every fifth record has a note: both writers race to create its data key too.
        **({"note": f"第{index}次走访，情况良好"} if index % 5 == 0 else {}),
    }


def _worker(number: int, url: str, key_file: str, plan: list[tuple[str, str, int]], gate: Any, results: Any) -> None:
    """Record (community, record_id, content index) one by one; report what each call said."""
    outcome: dict[str, bool | str] = {}
    errors: list[str] = []
    busy = 0
    try:
        service = LedgerService.open(parse_url(url), Path(key_file))
        try:
            if not gate.wait(60):
                raise RuntimeError("the other process never reached the gate")
            for code, record_id, index in plan:
                for _attempt in range(REISSUE):
                    try:
                        outcome[record_id] = helpers.record(service, code, record_id, **content(index))["created"]
                    except AlreadyExists as refused:
                        outcome[record_id] = f"refused: {refused}"
                    except Busy:
                        busy += 1
                        continue
                    break
        finally:
            service.close()
    except BaseException:  # report everything: the parent asserts there was nothing
        errors.append(traceback.format_exc())
    results.put((number, outcome, errors, busy))


def run_two_writers(
    url: str, key_file: Path, plans: list[list[tuple[str, str, int]]]
) -> tuple[list[dict[str, bool | str]], int]:
    """Each plan in its own process, started together; (what each call said, per process), Busy count."""
    ctx = multiprocessing.get_context("spawn")
    gate = ctx.Event()
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(number, url, str(key_file), plan, gate, results))
        for number, plan in enumerate(plans)
    ]
    for worker in workers:
        worker.start()
    gate.set()
    reports = []
    try:
        for _ in workers:
            reports.append(results.get(timeout=DEADLINE))
    except queue.Empty:
        pytest.fail(f"a writer did not finish within {DEADLINE} s")
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    errors = [e for _number, _outcome, errs, _busy in reports for e in errs]
    assert not errors, "\n".join(errors)
    assert [w.exitcode for w in workers] == [0, 0]
    ordered = sorted(reports, key=lambda r: r[0])
    return [outcome for _n, outcome, _e, _b in ordered], sum(busy for _n, _o, _e, busy in ordered)


def assert_never_busy(busy: int) -> None:
    """Two writers must never exhaust the retries: a clerk is never told to try again."""
    assert busy == 0, f"{busy} command(s) gave up with Busy"


def assert_each_record_once(service: LedgerService, url: str, expected: dict[str, str]) -> None:
    """`expected`: record id -> the community code whose log must hold it, once."""
    stored = payloads(service)
    recorded = Counter(p["record_id"] for n, p in stored if n.topic.endswith(".ServiceRecorded"))
    assert recorded == dict.fromkeys(expected, 1)
    owner = {p["record_id"]: n.originator_id for n, p in stored if n.topic.endswith(".ServiceRecorded")}
    assert owner == {record_id: community_id(code) for record_id, code in expected.items()}
    # Every aggregate's version is the number of its events (no lost or doubled event).
    per_aggregate = Counter(n.originator_id for n, _p in stored)
    for code in set(expected.values()):
        community = service.get_community(code)
        assert community.version == per_aggregate[community.id]
        assert {r for r, c in expected.items() if c == code} == set(service.recorder.records_of(community.id))
        versions = [n.originator_version for n, _p in stored if n.originator_id == community.id]
        assert versions == list(range(1, community.version + 1))
    note_keys = {key_id for (key_id,) in sql(url, "SELECT key_id FROM data_keys") if key_id.startswith("note:")}
    with_notes = {p["record_id"] for n, p in stored if n.topic.endswith(".ServiceRecorded") and p["note"]}
    assert note_keys == {f"note:{record_id}" for record_id in with_notes}
    for n, p in stored:
        if n.topic.endswith(".ServiceRecorded") and p["note"]:
            place = helpers.where(expected[p["record_id"]], p, "note")
            assert service.open_envelope(p["note"], where=place).endswith("情况良好")  # type: ignore[union-attr]
    claims = sql(url, "SELECT record_id, community_id FROM record_state")
    assert len(claims) == len(expected)
    assert {r: str(uuid.UUID(str(c))) for r, c in claims} == {record_id: str(community_id(code)) for record_id, code in expected.items()}
    assert_commits_partition_the_log(url, [n.id for n, _p in stored])
    # Every event is chained, in log order, by the writer that stored it.
    assert verify_log(service)["events"] == len(stored)


@pytest.fixture
def community(service: LedgerService) -> str:
    return helpers.small_community(service)


def test_two_processes_record_different_services_into_one_community(
    service: LedgerService, db_url: str, key_file: Path, community: str
) -> None:
    ids = [[str(uuid.uuid4()) for _ in range(PER_PROCESS)] for _ in range(2)]
    plans = [[(community, record_id, i) for i, record_id in enumerate(batch)] for batch in ids]
    outcomes, busy = run_two_writers(db_url, key_file, plans)
    for batch, outcome in zip(ids, outcomes, strict=True):
        assert outcome == dict.fromkeys(batch, True)
    assert_each_record_once(service, db_url, {record_id: community for batch in ids for record_id in batch})
    assert service.get_community(community).version == 5 + 2 * PER_PROCESS
    assert_never_busy(busy)


@pytest.mark.parametrize("order", ["same-order", "opposite-order"])
def test_two_processes_record_the_same_services_and_each_is_created_once(
    service: LedgerService, db_url: str, key_file: Path, community: str, order: str
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(PER_PROCESS)]
    plan = [(community, record_id, i) for i, record_id in enumerate(ids)]
    outcomes, busy = run_two_writers(db_url, key_file, [plan, plan if order == "same-order" else plan[::-1]])
    assert_each_record_once(service, db_url, dict.fromkeys(ids, community))
    assert service.get_community(community).version == 5 + PER_PROCESS
    for record_id in ids:
        assert sorted(o[record_id] is True for o in outcomes) == [False, True], "created twice or never"
    # Exactly one call created it; the other found the same content and changed nothing.
    wrongly_refused = [o[r] for o in outcomes for r in ids if isinstance(o[r], str)]
    assert [o[r] for o in outcomes for r in ids].count(False) == PER_PROCESS, wrongly_refused[:3]
    assert_never_busy(busy)


def test_two_processes_race_for_the_same_record_ids_in_two_communities(
    service: LedgerService, db_url: str, key_file: Path, community: str
) -> None:
    rival = helpers.small_community(service)
    ids = [str(uuid.uuid4()) for _ in range(PER_PROCESS)]
    plans = [[(code, record_id, i) for i, record_id in enumerate(ids)] for code in (community, rival)]
    (first, second), busy = run_two_writers(db_url, key_file, plans)
    winner: dict[str, str] = {}
    for record_id in ids:
        # One community got it; the other process was refused, never silently accepted.
        assert {first[record_id] is True, second[record_id] is True} == {True, False}, record_id
        loser = second[record_id] if first[record_id] is True else first[record_id]
        assert isinstance(loser, str) and "another community" in loser, loser
        winner[record_id] = community if first[record_id] is True else rival
    assert_each_record_once(service, db_url, winner)
    assert_never_busy(busy)
