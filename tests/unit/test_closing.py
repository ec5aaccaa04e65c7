"""Closed periods (结账) on the Community aggregate, in memory: no store, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.community import Community
from domain.errors import AlreadyExists, NotActive, PeriodClosed, RuleViolation
from domain.units import parse_period
from infra.codec import OrjsonMapper
from tests.unit.test_community import (
    ACTOR,
    OTHER_RID,
    RID,
    assert_refused,
    at,
    correction,
    enroll,
    establish,
    register,
    service,
    state,
)

TOWNSHIP = "township:八步区/贺街镇"
CLOSED_AT = "2026-04-01T09:00:00+08:00"


def close(agg: Community, unit: str = TOWNSHIP, period: str = "2026-03", **overrides: Any) -> None:
    data = {"unit": unit, "period": period, "reason": "三月结账", "closed_at": CLOSED_AT, "actor": "sup01", **overrides}
    agg.close_period(**data)
    agg.collect_events()  # so a refusal test starts with nothing pending


def reopen(agg: Community, unit: str = TOWNSHIP, period: str = "2026-03") -> None:
    agg.reopen_period(unit=unit, period=period, reason="补录", actor="sup01")
    agg.collect_events()


@pytest.fixture
def agg() -> Community:
    """R1, R2 and P1, P2 active since the community's establishment; record RID on 2026-03-05, OTHER_RID on 04-02."""
    community = establish()
    enroll(community, "R1")
    enroll(community, "R2")
    register(community, "P1")
    register(community, "P2")
    community.record_service(**service())
    community.record_service(**service(record_id=OTHER_RID, occurred_at=at("2026-04-02"), note=None, note_mac=None))
    community.set_visit_plan(resident="R2", every=14, provider="P1", starts_on="2026-02-01", actor=ACTOR)
    community.add_pairing(provider="P2", resident="R2", on="2026-02-01", actor=ACTOR)
    community.collect_events()
    return community


WRITES: dict[str, Callable[[Community], object]] = {
    "record": lambda a: a.record_service(**service(record_id="11111111-1111-4111-8111-111111111111", occurred_at=at("2026-03-31", "23:59"))),
    "correct-within": lambda a: a.correct_service(**correction(minutes=50)),
    "correct-out-of": lambda a: a.correct_service(**correction(occurred_at=at("2026-04-03"))),
    "correct-into": lambda a: a.correct_service(**correction(record_id=OTHER_RID, occurred_at=at("2026-03-20"))),
    "void": lambda a: a.void_service(record_id=RID, reason="entered twice", actor=ACTOR),
    "depart": lambda a: a.depart_resident(code="R2", reason="moved", on="2026-03-10", actor=ACTOR),
    "retire": lambda a: a.retire_provider(code="P2", on="2026-03-10", actor=ACTOR),
    "visit-plan-set": lambda a: a.set_visit_plan(resident="R1", every=7, provider="P1", starts_on="2026-03-01", actor=ACTOR),
    "visit-plan-end": lambda a: a.end_visit_plan(resident="R2", on="2026-03-15", actor=ACTOR),
    "pairing-add": lambda a: a.add_pairing(provider="P1", resident="R1", on="2026-03-15", actor=ACTOR),
    "pairing-end": lambda a: a.end_pairing(provider="P2", resident="R2", on="2026-03-15", actor=ACTOR),
}


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_a_closed_period_refuses_every_change_dated_inside_it(agg: Community, write: str) -> None:
    close(agg)
    info = assert_refused(agg, PeriodClosed, lambda: WRITES[write](agg))
    message = str(info.value)
    assert message.startswith(f"closed: {TOWNSHIP} 2026-03 (closed by sup01 on {CLOSED_AT})")
    assert "taizhang ledger reopen" in message


@pytest.mark.parametrize("write", list(WRITES), ids=list(WRITES))
def test_after_reopening_the_same_change_goes_through(agg: Community, write: str) -> None:
    close(agg)
    reopen(agg)
    WRITES[write](agg)
    assert len(agg.collect_events()) == 1


def test_the_days_around_a_closed_month_stay_open(agg: Community) -> None:
    close(agg)
    agg.record_service(**service(record_id="22222222-2222-4222-8222-222222222222", occurred_at=at("2026-02-28", "23:59")))
    agg.record_service(**service(record_id="33333333-3333-4333-8333-333333333333", occurred_at=at("2026-04-01", "00:00")))
    agg.correct_service(**correction(record_id=OTHER_RID, minutes=41))
    with pytest.raises(PeriodClosed):
        agg.record_service(**service(record_id="44444444-4444-4444-8444-444444444444", occurred_at=at("2026-03-01", "00:00")))


def test_recording_the_same_record_again_is_not_a_change(agg: Community) -> None:
    """A re-import of a file into a closed period adds nothing and is not refused."""
    close(agg)
    assert agg.record_service(**service()) is False


def test_enrolments_and_registrations_are_not_refused(agg: Community) -> None:
    close(agg, period="2026-Q1")
    enroll(agg, "R9", enrolled_on="2026-02-01")
    register(agg, "P9", registered_on="2026-02-01")
    agg.update_resident(code="R1", categories=["hardship"], grid=None, household=None, actor=ACTOR)


def test_closing_twice_and_reopening_what_is_not_closed_are_refused(agg: Community) -> None:
    close(agg)
    info = assert_refused(agg, AlreadyExists, lambda: close(agg))
    assert "already closed (closed by sup01 on " in str(info.value)
    assert_refused(agg, NotActive, lambda: reopen(agg, period="2026-04"))
    assert_refused(agg, NotActive, lambda: reopen(agg, unit="community:HZ-P01"))
    reopen(agg)
    assert_refused(agg, NotActive, lambda: reopen(agg))


def test_a_unit_the_community_is_not_in_is_refused(agg: Community) -> None:
    for unit in ("township:八步区/信都镇", "county:平桂区", "community:HZ-P02"):
        assert_refused(agg, RuleViolation, lambda unit=unit: close(agg, unit=unit))
    assert_refused(agg, RuleViolation, lambda: close(agg, reason="  "))
    close(agg, unit="county:八步区")
    close(agg, unit="community:HZ-P01")


def test_overlapping_closures_are_independent_and_all_are_named(agg: Community) -> None:
    close(agg, period="2026-Q1")
    close(agg, unit="community:HZ-P01", period="2026-03")
    info = assert_refused(agg, PeriodClosed, lambda: agg.void_service(record_id=RID, reason="x", actor=ACTOR))
    assert f"{TOWNSHIP} 2026-Q1" in str(info.value) and "community:HZ-P01 2026-03" in str(info.value)
    reopen(agg, unit="community:HZ-P01")  # the month reopens; the quarter around it still holds
    assert_refused(agg, PeriodClosed, lambda: agg.void_service(record_id=RID, reason="x", actor=ACTOR))
    reopen(agg, period="2026-Q1")
    agg.void_service(record_id=RID, reason="x", actor=ACTOR)


def test_periods_are_normalised_and_the_closure_is_kept_in_the_state(agg: Community) -> None:
    close(agg, unit=" township:八步区/贺街镇 ", period="2026-q1".upper())
    assert agg.closure(TOWNSHIP, "2026-Q1") == [TOWNSHIP, "2026-Q1", "2026-01-01", "2026-03-31", "sup01", CLOSED_AT]
    assert agg.closures_on("2026-02-14")[0][1] == "2026-Q1"
    assert agg.closures_on("2026-04-01") == []


def test_a_v2_snapshot_upcasts_to_no_closures() -> None:
    """Snapshots written before closed periods (class_version 2) load with none."""
    mapper = OrjsonMapper()
    community = establish()
    stored = mapper.to_stored_event(Community.Snapshot.take(community))
    payload = orjson.loads(stored.state)
    assert payload["state"]["class_version"] == Community.class_version == 4
    del payload["state"]["closures"]
    payload["state"]["class_version"] = 2
    old = type(stored)(stored.originator_id, stored.originator_version, stored.topic, orjson.dumps(payload))
    restored = mapper.to_domain_event(old).mutate(None)  # type: ignore[attr-defined]
    assert restored.closures == {}
    assert state(restored) == state(community)


DAYS = st.dates(min_value=date(2026, 1, 10), max_value=date(2026, 12, 31))
PERIODS = st.sampled_from(["2026", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", *(f"2026-{m:02d}" for m in range(1, 13))])


@settings(max_examples=150, deadline=None)
@given(closed=st.lists(PERIODS, unique=True, max_size=4), reopened=st.lists(PERIODS, max_size=3), day=DAYS)
def test_a_day_is_closed_exactly_when_a_closure_in_force_covers_it(
    closed: list[str], reopened: list[str], day: date
) -> None:
    community = establish()
    enroll(community, "R1")
    register(community, "P1")
    for period in closed:
        close(community, period=period)
    in_force = set(closed)
    for period in reopened:
        if period in in_force:
            reopen(community, period=period)
            in_force.discard(period)
    expected = any(parse_period(p).contains(day) for p in in_force)
    record = service(occurred_at=at(day.isoformat()), note=None, note_mac=None)
    if expected:
        assert_refused(community, PeriodClosed, lambda: community.record_service(**record))
    else:
        community.record_service(**record)
