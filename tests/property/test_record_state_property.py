"""Record state in the store's side table decides exactly as the old in-aggregate rules did.

The oracle is the Community aggregate as it was before record_state: every event replayed
into one object that holds every record (its working set never forgotten), driven by the
same domain calls. The same random history (records, re-records, corrections of minutes,
people and day, voids, departures, retirements) goes through `LedgerService` on a SQLite
store, whose commands load only the registry (from snapshots taken every few events here)
and the record_state rows they need. Each command must be accepted or refused alike, with
the same message, and afterwards the store's record_state must equal the oracle's records,
and `audit verify`'s recomputation must agree with the table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import app as app_module
from commands import models
from commands.app import LedgerService, TaizhangApplication
from domain.community import Community
from domain.errors import LedgerError
from domain.ids import community_id
from infra import crypto, recordstate
from infra.store import parse_url
from tests import helpers

RECORD_IDS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 9)]
RESIDENTS = ["R1", "R2", "R3"]
PROVIDERS = ["P1", "P2"]
ACTOR = "clerk"

people = st.lists(st.sampled_from(RESIDENTS), min_size=1, max_size=3, unique=True)
providers = st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=2, unique=True)
days = st.integers(1, 28)
ops = st.one_of(
    st.tuples(st.just("record"), st.sampled_from(RECORD_IDS), people, providers, days, st.sampled_from([10, 20, 30])),
    st.tuples(st.just("correct_minutes"), st.sampled_from(RECORD_IDS), st.sampled_from([10, 20, 30, 45])),
    st.tuples(st.just("correct_residents"), st.sampled_from(RECORD_IDS), people),
    st.tuples(st.just("correct_day"), st.sampled_from(RECORD_IDS), days),
    st.tuples(st.just("void"), st.sampled_from(RECORD_IDS)),
    st.tuples(st.just("depart"), st.sampled_from(RESIDENTS), days),
    st.tuples(st.just("retire"), st.sampled_from(PROVIDERS), days),
)


@contextmanager
def small_snapshots(every: int) -> Iterator[None]:
    """Snapshot every few events, so commands load from snapshots that never hold records."""
    saved = (app_module.SNAPSHOT_INTERVAL, TaizhangApplication.snapshotting_intervals)
    app_module.SNAPSHOT_INTERVAL = every
    TaizhangApplication.snapshotting_intervals = {Community: every}
    try:
        yield
    finally:
        app_module.SNAPSHOT_INTERVAL, TaizhangApplication.snapshotting_intervals = saved


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except LedgerError as e:
        return (type(e).__name__, str(e))


def step(service: LedgerService, oracle: Community, code: str, op: tuple[Any, ...]) -> tuple[Any, Any]:
    name = op[0]
    if name == "record":
        _, rid, residents, provs, day, minutes = op
        cmd = service.validate(models.RecordService, {
            "community": code, "kind": "life_care", "residents": residents, "providers": provs,
            "occurred_at": f"2026-03-{day:02d} 09:30", "minutes": minutes,
        })  # fmt: skip
        mine = outcome(lambda: service.record_service(cmd, ACTOR, rid)["created"])
        theirs = outcome(lambda: oracle.record_service(
            record_id=rid, kind=cmd.kind, residents=cmd.residents, providers=cmd.providers,
            occurred_at=cmd.occurred_at, minutes=cmd.minutes, place=cmd.place, note=None, note_mac=None,
            entered_on=cmd.entered_on, actor=ACTOR,
        ))  # fmt: skip
        return mine, theirs
    if name.startswith("correct_"):
        rid, value = op[1], op[2]
        field = name.removeprefix("correct_")
        data: dict[str, Any] = {"community": code, "record_id": rid, "reason": "更正"}
        if field == "day":
            data["occurred_at"] = f"2026-03-{value:02d} 09:30"
        else:
            data[field] = value
        cmd = service.validate(models.CorrectService, data)
        mine = outcome(lambda: service.correct_service(cmd, ACTOR)["revision"])

        def theirs_call() -> int:
            oracle.correct_service(
                record_id=rid, reason=cmd.reason, actor=ACTOR, kind=cmd.kind, occurred_at=cmd.occurred_at,
                minutes=cmd.minutes, residents=cmd.residents, providers=cmd.providers, place=cmd.place,
            )  # fmt: skip
            return oracle.record_revision(rid)

        return mine, outcome(theirs_call)
    if name == "void":
        rid = op[1]
        cmd = service.validate(models.VoidService, {"community": code, "record_id": rid, "reason": "作废"})
        mine = outcome(lambda: service.void_service(cmd, ACTOR)["status"])
        theirs = outcome(lambda: (oracle.void_service(record_id=rid, reason="作废", actor=ACTOR), "voided")[1])
        return mine, theirs
    if name == "depart":
        cmd = service.validate(
            models.DepartResident, {"community": code, "code": op[1], "reason": "moved", "on": f"2026-03-{op[2]:02d}"}
        )
        mine = outcome(lambda: service.depart_resident(cmd, ACTOR)["resident"])
        theirs = outcome(
            lambda: (oracle.depart_resident(code=cmd.code, reason=cmd.reason, on=cmd.on, actor=ACTOR), cmd.code)[1]
        )
        return mine, theirs
    cmd = service.validate(models.RetireProvider, {"community": code, "code": op[1], "on": f"2026-03-{op[2]:02d}"})
    mine = outcome(lambda: service.retire_provider(cmd, ACTOR)["provider"])
    theirs = outcome(lambda: (oracle.retire_provider(code=cmd.code, on=cmd.on, actor=ACTOR), cmd.code)[1])
    return mine, theirs


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(ops, min_size=1, max_size=45), every=st.sampled_from([3, 7, 100]))
def test_the_same_history_decides_and_ends_alike_with_record_state(history: list[tuple[Any, ...]], every: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, small_snapshots(every):
        key_file = Path(tmp) / "taizhang.key"
        crypto.create_key_file(key_file)
        service, _ = LedgerService.create(parse_url(f"sqlite:///{Path(tmp) / 'taizhang.db'}"), key_file, None)
        try:
            code = helpers.establish(service)
            for resident in RESIDENTS:
                helpers.enroll(service, code, resident)
            for provider in PROVIDERS:
                helpers.register(service, code, provider)
            oracle: Community | None = None
            for event in service.app.events.get(community_id(code)):
                oracle = event.mutate(oracle)  # type: ignore[assignment]
            assert oracle is not None
            for op in history:
                mine, theirs = step(service, oracle, code, op)
                assert mine == theirs, op
            rows = service.recorder.records_of(community_id(code))
            assert {r: recordstate.compact(row) for r, row in rows.items()} == oracle.records
            assert list(rows) == list(oracle.records)  # recorded in the same order
            assert service.recorder.record_state_problem() is None
            # Erasure's index: every record any revision of which listed the resident.
            events = oracle.collect_events()
            for resident in RESIDENTS:
                ever = {
                    e.record_id
                    for e in events
                    if (isinstance(e, Community.ServiceRecorded) and resident in e.residents)
                    or (isinstance(e, Community.ServiceCorrected) and resident in e.changes.get("residents", []))
                }
                assert set(service.recorder.records_listing(community_id(code), resident)) == ever
        finally:
            service.close()
