"""The assessment (考核) end to end, on SQLite and on PostgreSQL.

Each history is built by hand through `LedgerService` and `Accountability`, the views are brought
up to date (`Views(service).prepare()`, and on PostgreSQL a catch-up, as a worker would do), and
`assess(...)` is run on `views.read()`. The expected numbers are worked out here from the issue's
definitions, one metric per test, edge cases included; the last tests check `--as-of`: the
assessment as of T ignores everything recorded after T.

Periods are in 2026 and records carry an `entered_on` (the day of the paper ledger) unless a test
wants them late: a record entered more than 7 days after it occurred is late.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest

from commands import models
from commands.accountability import Accountability
from commands.app import LedgerService
from commands.assess import load_rubric, rank, score_unit
from commands.views import Views
from domain.errors import LedgerError
from domain.units import UnitRef, parse_period, parse_unit
from projections.assessment import UnitFacts, assess, responsible
from projections.filters import Moment
from tests import helpers as h

ACTOR = "clerk"
COUNTY, OTHER_COUNTY = "八步区", "钟山县"
HEJIE, LIANTANG, CHENGGUAN = "贺街镇", "莲塘镇", "城关镇"
HEJIE_UNIT = UnitRef("township", county=COUNTY, township=HEJIE)
LIANTANG_UNIT = UnitRef("township", county=COUNTY, township=LIANTANG)
CHENGGUAN_UNIT = UnitRef("township", county=OTHER_COUNTY, township=CHENGGUAN)
COUNTY_UNIT = UnitRef("county", county=COUNTY)
MARCH = "2026-03"
AFTER = date(2026, 4, 15)  # judged after March: every window and item of March is due
DEFAULT_RUBRIC = load_rubric(None)


# ---- building histories --------------------------------------------------------------------------


def community(service: LedgerService, code: str, township: str = HEJIE, county: str = COUNTY) -> str:
    return h.establish(service, code, county=county, township=township, established_on=date(2026, 1, 1))


def resident(
    service: LedgerService, where: str, code: str, categories: Iterable[str] = ("left_behind_elderly",),
    enrolled: str | None = None,
) -> None:
    extra = {"enrolled_on": enrolled} if enrolled else {}
    h.enroll(service, where, code, categories=list(categories), **extra)


def provider(service: LedgerService, where: str, code: str = "P1") -> None:
    h.register(service, where, code)


def serve(
    service: LedgerService, where: str, residents: Iterable[str], at: str, *, kind: str = "life_care",
    minutes: int = 30, entered: str | None = "same day",
) -> str:
    """Record a service; by default entered in the paper ledger the day it occurred (not late)."""
    record_id = str(uuid.uuid4())
    extra: dict[str, Any] = {}
    if entered == "same day":
        extra["entered_on"] = at[:10]
    elif entered is not None:
        extra["entered_on"] = entered
    h.record(service, where, record_id, residents=list(residents), providers=["P1"], occurred_at=at, kind=kind,
             minutes=minutes, **extra)
    return record_id


def void(service: LedgerService, where: str, record_id: str) -> None:
    data = {"community": where, "record_id": record_id, "reason": "录入错误"}
    service.void_service(service.validate(models.VoidService, data), ACTOR)


def correct(service: LedgerService, where: str, record_id: str, **changes: Any) -> None:
    data = {"community": where, "record_id": record_id, "reason": "更正", **changes}
    service.correct_service(service.validate(models.CorrectService, data), ACTOR)


def depart(service: LedgerService, where: str, code: str, on: str) -> None:
    data = {"community": where, "code": code, "reason": "moved", "on": on}
    service.depart_resident(service.validate(models.DepartResident, data), ACTOR)


def recategorise(service: LedgerService, where: str, code: str, categories: list[str]) -> None:
    data = {"community": where, "code": code, "categories": categories}
    service.update_resident(service.validate(models.UpdateResident, data), ACTOR)


def d(text: str) -> date:
    return date.fromisoformat(text)


# ---- reading -------------------------------------------------------------------------------------


def measure(
    service: LedgerService, period: str = MARCH, level: str = "township", *, day: date | None = AFTER,
    moment: Moment | None = None, only: UnitRef | None = None,
) -> dict[str, UnitFacts]:
    views = Views(service)
    try:
        views.prepare()
        views.runner.catch_up()  # PostgreSQL: what `taizhang projections run` does (SQLite: already done)
        with views.read() as conn:
            facts = assess(conn, level=level, period=parse_period(period), moment=moment or Moment(), only=only, day=day)
    finally:
        views.close()
    return {str(fact.unit): fact for fact in facts}


def pair(fact: UnitFacts, metric: str) -> tuple[float, float]:
    m = fact.measures[metric]
    return (m.numerator, m.denominator)


def head_time(service: LedgerService) -> tuple[int, str]:
    """The log's head position and its recorded time; later commits are recorded strictly after it."""
    head = int(service.recorder.max_notification_id())
    at = service.recorder.recorded_times(head, head)[-1][2]
    time.sleep(0.01)  # recorded times have millisecond resolution
    return head, at


# ==== coverage =======================================================================================


def test_coverage_counts_eligible_residents_served_in_the_period(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    provider(service, a)
    for code in ("R01", "R02", "R03", "R04", "R07", "R08", "R09", "R11", "R12", "R13"):
        resident(service, a, code)
    resident(service, a, "R06", categories=[])  # no category: never eligible
    resident(service, a, "R05", enrolled="2026-04-02")  # enrolled after March
    resident(service, a, "R10", enrolled="2026-03-31")  # enrolled on March's last day: eligible

    serve(service, a, ["R01"], "2026-03-05 09:30")
    # R02: eligible, never served
    serve(service, a, ["R03"], "2026-03-10 09:00")
    depart(service, a, "R03", "2026-03-15")  # departs mid-period: still eligible, and served
    serve(service, a, ["R04"], "2026-02-10 09:00")
    depart(service, a, "R04", "2026-02-20")  # departed before March: not eligible
    serve(service, a, ["R06"], "2026-03-06 09:00")  # served but no category
    voided = serve(service, a, ["R07"], "2026-03-07 09:00")
    void(service, a, voided)  # a voided service serves nobody
    # local dates (Asia/Shanghai): 20:00 UTC on 31 March is 1 April; 17:00 UTC on 28 Feb is 1 March
    serve(service, a, ["R08"], "2026-03-31T20:00:00+00:00", entered="2026-04-01")
    serve(service, a, ["R09"], "2026-02-28T17:00:00+00:00", entered="2026-03-01")
    serve(service, a, ["R10"], "2026-03-31 10:00")
    depart(service, a, "R11", "2026-03-01")  # departed on the first day, not before it: eligible
    moved = serve(service, a, ["R12"], "2026-03-12 09:00")
    correct(service, a, moved, occurred_at="2026-04-12 09:00")  # corrected out of March
    serve(service, a, ["R13"], "2026-04-03 09:00", entered="2026-04-03")  # served, but in April
    recategorise(service, a, "R13", [])  # …and no longer in any category
    serve(service, a, ["R05"], "2026-04-05 09:00")

    facts = measure(service)
    fact = facts[str(HEJIE_UNIT)]
    evidence = {(e["resident"], e["counted"]) for e in fact.measures["coverage"].evidence}
    assert evidence == {
        ("R01", True), ("R02", False), ("R03", True), ("R07", False), ("R08", False), ("R09", True),
        ("R10", True), ("R11", False), ("R12", False),
    }
    assert pair(fact, "coverage") == (4, 9)
    assert fact.measures["coverage"].value == pytest.approx(4 / 9)
    served = {e["resident"]: e["records"] for e in fact.measures["coverage"].evidence}
    assert len(served["R01"]) == 1 and served["R07"] == [] and served["R12"] == []
    assert all(e["community"] == a and e["categories"] for e in fact.measures["coverage"].evidence)
    # the county holds the same residents; another month has other eligible residents and services
    assert pair(measure(service, level="county")[str(COUNTY_UNIT)], "coverage") == (4, 9)
    april = measure(service, "2026-04", day=date(2026, 5, 15))[str(HEJIE_UNIT)]
    # in April: R01, R02, R05, R07, R08, R09, R10, R12 eligible (R03, R04, R11 departed before, R06/R13 no
    # category); served: R05 (04-05), R08 (04-01 local), R12 (04-12)
    assert {(e["resident"], e["counted"]) for e in april.measures["coverage"].evidence} == {
        ("R01", False), ("R02", False), ("R05", True), ("R07", False), ("R08", True), ("R09", False),
        ("R10", False), ("R12", True),
    }


def test_a_period_with_no_eligible_residents_has_no_coverage_and_it_is_left_out_of_the_score(
    service: LedgerService,
) -> None:
    b = community(service, "HZ-B", township=LIANTANG)
    provider(service, b)
    resident(service, b, "R1", categories=[])
    resident(service, b, "R2", enrolled="2026-04-01")
    serve(service, b, ["R1"], "2026-03-03 10:00", kind="counseling")
    fact = measure(service)[str(LIANTANG_UNIT)]
    assert fact.measures["coverage"].value is None
    assert pair(fact, "coverage") == (0, 0)
    assert pair(fact, "breadth") == (1, 6)
    assert pair(fact, "data_quality") == (1, 1)
    score, lines = score_unit(fact, DEFAULT_RUBRIC)
    assert lines["coverage"]["points"] is None
    # breadth 1/6 (weight 10) and data quality 1 (weight 10) only
    assert score == round(100 * (10 / 6 + 10) / 20, 2) == 58.33


# ==== visit timeliness ================================================================================


def test_visit_timeliness_windows(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    provider(service, a)
    for code in ("R1", "R2", "R3", "R4", "R5", "R6"):
        resident(service, a, code)
    acct = Accountability(service)
    # R1: every 10 days from 25 Feb: 02-25..03-06 (met by a visit on 26 Feb, before March), 03-07..03-16
    # (missed), 03-17..03-26 (met); 03-27..04-05 ends after March
    acct.set_visit_plan(a, "R1", 10, "P1", d("2026-02-25"), ACTOR)
    serve(service, a, ["R1"], "2026-02-26 10:00")
    serve(service, a, ["R1"], "2026-03-20 10:00")
    serve(service, a, ["R1"], "2026-03-28 10:00")  # in the window that ends in April
    # R2: a plan starting mid-period, every 7 days from 10 March: 03-10..16 met, 03-17..23 missed (its only
    # service there is voided), 03-24..30 met
    acct.set_visit_plan(a, "R2", 7, "P1", d("2026-03-10"), ACTOR)
    serve(service, a, ["R2"], "2026-03-16 18:00")
    void(service, a, serve(service, a, ["R2"], "2026-03-18 10:00"))
    serve(service, a, ["R2"], "2026-03-24 08:00")
    # R3: every 5 days from 1 March, replaced by every 20 days from 11 March: 03-01..05 met, 03-06..10 missed,
    # then 03-11..30 met
    acct.set_visit_plan(a, "R3", 5, "P1", d("2026-03-01"), ACTOR)
    acct.set_visit_plan(a, "R3", 20, "P1", d("2026-03-11"), ACTOR)
    serve(service, a, ["R3"], "2026-03-03 10:00")
    serve(service, a, ["R3"], "2026-03-29 10:00")
    # R4: every 7 days from 1 March, ended on 15 March (exclusive): 03-01..07 missed, 03-08..14 met
    acct.set_visit_plan(a, "R4", 7, "P1", d("2026-03-01"), ACTOR)
    acct.end_visit_plan(a, "R4", d("2026-03-15"), ACTOR)
    serve(service, a, ["R4"], "2026-03-14 10:00")
    serve(service, a, ["R4"], "2026-03-20 10:00")
    # R5: a plan that ended in February; R6: a plan whose first window ends in April
    acct.set_visit_plan(a, "R5", 7, "P1", d("2026-02-01"), ACTOR)
    acct.end_visit_plan(a, "R5", d("2026-02-20"), ACTOR)
    acct.set_visit_plan(a, "R6", 14, "P1", d("2026-03-20"), ACTOR)

    fact = measure(service)[str(HEJIE_UNIT)]
    windows = sorted(
        (e["resident"], e["window"][0], e["window"][1], e["every"], e["counted"])
        for e in fact.measures["visit_timeliness"].evidence
    )
    assert windows == [
        ("R1", "2026-02-25", "2026-03-06", 10, True),
        ("R1", "2026-03-07", "2026-03-16", 10, False),
        ("R1", "2026-03-17", "2026-03-26", 10, True),
        ("R2", "2026-03-10", "2026-03-16", 7, True),
        ("R2", "2026-03-17", "2026-03-23", 7, False),
        ("R2", "2026-03-24", "2026-03-30", 7, True),
        ("R3", "2026-03-01", "2026-03-05", 5, True),
        ("R3", "2026-03-06", "2026-03-10", 5, False),
        ("R3", "2026-03-11", "2026-03-30", 20, True),
        ("R4", "2026-03-01", "2026-03-07", 7, False),
        ("R4", "2026-03-08", "2026-03-14", 7, True),
    ]
    assert pair(fact, "visit_timeliness") == (7, 11)
    assert all(e["provider"] == "P1" and e["community"] == a for e in fact.measures["visit_timeliness"].evidence)
    assert all(bool(e["records"]) == e["counted"] for e in fact.measures["visit_timeliness"].evidence)
    # without a day the period is judged on its last day: the same
    assert pair(measure(service, day=None)[str(HEJIE_UNIT)], "visit_timeliness") == (7, 11)
    # judged on 20 March: only the windows over by then (R1 ..03-06, ..03-16; R2 ..03-16; R3 ..03-05, ..03-10;
    # R4 ..03-07, ..03-14)
    mid = measure(service, day=d("2026-03-20"))[str(HEJIE_UNIT)]
    assert sorted((e["resident"], e["window"][1]) for e in mid.measures["visit_timeliness"].evidence) == [
        ("R1", "2026-03-06"), ("R1", "2026-03-16"), ("R2", "2026-03-16"), ("R3", "2026-03-05"),
        ("R3", "2026-03-10"), ("R4", "2026-03-07"), ("R4", "2026-03-14"),
    ]
    assert pair(mid, "visit_timeliness") == (4, 7)
    # judged before the period began: nothing is due yet
    assert measure(service, day=d("2026-02-27"))[str(HEJIE_UNIT)].measures["visit_timeliness"].value is None
    # a unit without plans has no timeliness
    community(service, "HZ-L", township=LIANTANG)
    assert measure(service)[str(LIANTANG_UNIT)].measures["visit_timeliness"].value is None


def test_a_resident_never_has_two_windows_over_the_same_days(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    provider(service, a)
    resident(service, a, "R1")
    acct = Accountability(service)
    acct.set_visit_plan(a, "R1", 7, "P1", d("2026-03-01"), ACTOR)
    acct.end_visit_plan(a, "R1", d("2026-03-15"), ACTOR)
    try:
        acct.set_visit_plan(a, "R1", 7, "P1", d("2026-03-08"), ACTOR)
    except LedgerError:
        return  # refusing the overlapping plan is a fix too
    windows = sorted(
        (d(e["window"][0]), d(e["window"][1]))
        for e in measure(service)[str(HEJIE_UNIT)].measures["visit_timeliness"].evidence
    )
    for (_s1, e1), (s2, _e2) in zip(windows, windows[1:], strict=False):
        assert s2 > e1, f"overlapping windows: {windows}"


# ==== breadth ============================================================================================


def test_breadth_counts_the_kinds_delivered_in_the_unit(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    a2 = community(service, "HZ-A2")
    b = community(service, "HZ-B", township=LIANTANG)
    c = community(service, "HZ-C", township=CHENGGUAN, county=OTHER_COUNTY)
    for where in (a, a2, b, c):
        provider(service, where)
        resident(service, where, "R1")
    serve(service, a, ["R1"], "2026-03-02 09:00", kind="life_care")
    serve(service, a, ["R1"], "2026-03-03 09:00", kind="life_care")
    serve(service, a, ["R1"], "2026-03-04 09:00", kind="counseling")
    serve(service, a2, ["R1"], "2026-03-05 09:00", kind="counseling")
    serve(service, a2, ["R1"], "2026-03-06 09:00", kind="emergency_aid")
    void(service, a, serve(service, a, ["R1"], "2026-03-07 09:00", kind="family_care"))  # voided: not delivered
    serve(service, a, ["R1"], "2026-04-02 09:00", kind="rights_protection")  # April
    serve(service, a, ["R1"], "2026-02-27 09:00", kind="production_development")  # February
    moved = serve(service, a2, ["R1"], "2026-03-09 09:00", kind="counseling")
    correct(service, a2, moved, kind="family_care")  # the kind it has now counts
    serve(service, b, ["R1"], "2026-02-10 09:00")  # B: nothing in March
    void(service, c, serve(service, c, ["R1"], "2026-03-10 09:00"))  # C: only a voided record in March

    facts = measure(service)
    hejie = facts[str(HEJIE_UNIT)]
    assert pair(hejie, "breadth") == (4, 6)
    assert {e["kind"] for e in hejie.measures["breadth"].evidence if e["counted"]} == {
        "life_care", "counseling", "emergency_aid", "family_care",
    }
    assert len(hejie.measures["breadth"].evidence) == 6
    life = next(e for e in hejie.measures["breadth"].evidence if e["kind"] == "life_care")
    assert len(life["records"]) == 2
    # no record in the period: breadth is not measured
    assert facts[str(LIANTANG_UNIT)].measures["breadth"].value is None
    # a record in the period, even voided: breadth is measured, and nothing was delivered
    assert pair(facts[str(CHENGGUAN_UNIT)], "breadth") == (0, 6)
    county = measure(service, level="county")
    assert pair(county[str(COUNTY_UNIT)], "breadth") == (4, 6)
    assert pair(county["county:" + OTHER_COUNTY], "breadth") == (0, 6)
    assert pair(measure(service, "2026-Q1")[str(HEJIE_UNIT)], "breadth") == (5, 6)  # + production_development


# ==== target attainment ==================================================================================


def test_target_attainment(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    b = community(service, "HZ-B", township=LIANTANG)
    for where in (a, b):
        provider(service, where)
    resident(service, a, "R1")
    resident(service, a, "R2", categories=["left_behind_child"])
    resident(service, a, "R3", categories=[])
    resident(service, a, "R4")
    resident(service, b, "R1")
    serve(service, a, ["R1"], "2026-03-02 09:00", minutes=30)
    serve(service, a, ["R1", "R2"], "2026-03-03 09:00", minutes=60)
    serve(service, a, ["R3"], "2026-03-04 09:00", kind="counseling", minutes=45)
    void(service, a, serve(service, a, ["R4"], "2026-03-05 09:00", minutes=100))
    serve(service, a, ["R4"], "2026-04-01 09:00", minutes=100)  # April
    serve(service, b, ["R1"], "2026-03-02 09:00")
    serve(service, b, ["R1"], "2026-03-09 09:00")

    acct = Accountability(service)
    march, april = parse_period(MARCH), parse_period("2026-04")
    acct.set_target(COUNTY_UNIT, march, "records", None, 10, ACTOR)
    acct.set_target(COUNTY_UNIT, march, "minutes", None, 0, ACTOR)  # nothing asked: attained
    # the county's records target split among its townships (6 + 5 >= 10)
    acct.decompose(COUNTY_UNIT, march, "records", None, {HEJIE_UNIT: 6, LIANTANG_UNIT: 5}, ACTOR)
    acct.set_target(HEJIE_UNIT, march, "minutes", "life_care", 60, ACTOR)  # 90 delivered: capped at 1
    acct.set_target(HEJIE_UNIT, march, "residents_served", None, 5, ACTOR)
    acct.set_target(HEJIE_UNIT, march, "residents_served", None, 4, ACTOR)  # replaces the 5
    acct.set_target(HEJIE_UNIT, march, "records", "emergency_aid", 2, ACTOR)  # never served: 0
    acct.set_target(HEJIE_UNIT, march, "coverage", None, 0.8, ACTOR)
    acct.set_target(HEJIE_UNIT, april, "records", None, 1, ACTOR)  # another period

    facts = measure(service)
    hejie = facts[str(HEJIE_UNIT)]
    # coverage: R1, R2, R4 eligible (R3 has no category), R1 and R2 served
    assert pair(hejie, "coverage") == (2, 3)
    lines = {(e["metric"], e["kind"]): (e["at_least"], e["actual"], e["attainment"])
             for e in hejie.measures["target_attainment"].evidence}
    assert lines == {
        ("records", None): (6, 3, 0.5),
        ("minutes", "life_care"): (60, 90, 1.0),
        ("residents_served", None): (4, 3, 0.75),  # R1, R2 and R3 (served, whatever their category)
        ("records", "emergency_aid"): (2, 0, 0.0),
        ("coverage", None): (0.8, round(2 / 3, 6), round((2 / 3) / 0.8, 6)),
    }
    assert hejie.measures["target_attainment"].denominator == 5
    assert hejie.measures["target_attainment"].value == pytest.approx((0.5 + 1 + 0.75 + 0 + (2 / 3) / 0.8) / 5)
    # 莲塘镇: only its share of the county's target, 2 records of 5
    liantang = facts[str(LIANTANG_UNIT)]
    assert [(e["metric"], e["at_least"], e["actual"]) for e in liantang.measures["target_attainment"].evidence] == [
        ("records", 5, 2),
    ]
    assert liantang.measures["target_attainment"].value == pytest.approx(0.4)
    # the county: its own targets only, over all its communities (5 active records in March)
    county = measure(service, level="county")[str(COUNTY_UNIT)]
    assert {(e["metric"], e["actual"], e["attainment"]) for e in county.measures["target_attainment"].evidence} == {
        ("records", 5, 0.5), ("minutes", 195, 1.0),  # 30 + 60 + 45 in A, 30 + 30 in B
    }
    assert county.measures["target_attainment"].value == pytest.approx(0.75)
    # April: 贺街镇's own target only
    assert pair(measure(service, "2026-04", day=date(2026, 5, 15))[str(HEJIE_UNIT)], "target_attainment") == (1, 1)


# ==== supervision closure ================================================================================


def test_supervision_closure(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    community(service, "HZ-B", township=LIANTANG)
    acct = Accountability(service)

    def item(unit: UnitRef, due: str, resolved: str | None = None) -> str:
        item_id = acct.open_item(unit, f"督办 {due}", d(due), ACTOR)["item_id"]
        if resolved:
            acct.resolve_item(uuid.UUID(item_id), "已办结", d(resolved), ACTOR)
        return item_id

    on_time = item(HEJIE_UNIT, "2026-03-10", resolved="2026-03-10")  # resolved on its due date
    late = item(HEJIE_UNIT, "2026-03-12", resolved="2026-03-15")
    not_yet_due = item(HEJIE_UNIT, "2026-03-25")  # open; due after 20 March
    overdue = item(HEJIE_UNIT, "2026-03-05")
    inside = item(parse_unit(f"community:{a}"), "2026-03-08", resolved="2026-03-01")  # a community inside
    item(HEJIE_UNIT, "2026-04-05")  # due in April
    item(HEJIE_UNIT, "2026-02-20", resolved="2026-02-19")  # due in February
    county_item = item(COUNTY_UNIT, "2026-03-09", resolved="2026-03-09")
    other = item(LIANTANG_UNIT, "2026-03-09")

    def counted(fact: UnitFacts) -> dict[str, bool]:
        return {e["item_id"]: e["counted"] for e in fact.measures["supervision_closure"].evidence}

    facts = measure(service)  # judged after March: every item due in March is due
    assert counted(facts[str(HEJIE_UNIT)]) == {
        on_time: True, late: False, not_yet_due: False, overdue: False, inside: True,
    }
    assert pair(facts[str(HEJIE_UNIT)], "supervision_closure") == (2, 5)
    assert counted(facts[str(LIANTANG_UNIT)]) == {other: False}
    county = measure(service, level="county")[str(COUNTY_UNIT)]
    assert counted(county) == {on_time: True, late: False, not_yet_due: False, overdue: False, inside: True,
                               county_item: True, other: False}
    assert pair(county, "supervision_closure") == (3, 7)
    # judged on 20 March: the item due on the 25th, still open, is not counted
    mid = measure(service, day=d("2026-03-20"))[str(HEJIE_UNIT)]
    assert counted(mid) == {on_time: True, late: False, overdue: False, inside: True}
    assert pair(mid, "supervision_closure") == (2, 4)
    # a community's own items
    own = measure(service, level="community", only=parse_unit(f"community:{a}"))[f"community:{a}"]
    assert counted(own) == {inside: True}
    evidence = next(e for e in facts[str(HEJIE_UNIT)].measures["supervision_closure"].evidence if e["item_id"] == late)
    assert (evidence["unit"], evidence["due"], evidence["resolved_on"]) == (str(HEJIE_UNIT), "2026-03-12", "2026-03-15")


def test_an_item_due_on_the_last_day_of_a_closed_period_is_counted(service: LedgerService) -> None:
    community(service, "HZ-A")
    acct = Accountability(service)
    acct.open_item(HEJIE_UNIT, "补齐3月巡访记录", d("2026-03-31"), ACTOR)
    late = acct.open_item(HEJIE_UNIT, "整改台账", d("2026-03-31"), ACTOR)["item_id"]
    acct.resolve_item(uuid.UUID(late), "已整改", d("2026-04-03"), ACTOR)
    for day in (AFTER, None):
        assert pair(measure(service, day=day)[str(HEJIE_UNIT)], "supervision_closure") == (0, 2)


def test_an_item_not_yet_due_is_not_counted_even_when_resolved_early(service: LedgerService) -> None:
    community(service, "HZ-A")
    acct = Accountability(service)
    early = acct.open_item(HEJIE_UNIT, "提前办结", d("2026-03-28"), ACTOR)["item_id"]
    acct.resolve_item(uuid.UUID(early), "已办结", d("2026-03-19"), ACTOR)
    assert measure(service, day=d("2026-03-20"))[str(HEJIE_UNIT)].measures["supervision_closure"].value is None


# ==== data quality ======================================================================================


def test_data_quality(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    provider(service, a)
    resident(service, a, "R1")
    clean = serve(service, a, ["R1"], "2026-03-01 09:00")
    late = serve(service, a, ["R1"], "2026-03-02 09:00", entered="2026-03-10")  # entered 8 days after
    on_the_edge = serve(service, a, ["R1"], "2026-03-02 10:00", entered="2026-03-09")  # 7 days: not late
    voided = serve(service, a, ["R1"], "2026-03-03 09:00")
    void(service, a, voided)
    both = serve(service, a, ["R1"], "2026-03-04 09:00", entered="2026-03-20")  # late and voided: counted once
    void(service, a, both)
    unentered = serve(service, a, ["R1"], "2026-03-05 09:00", entered=None)  # recorded months later: late
    serve(service, a, ["R1"], "2026-04-02 09:00")  # April
    moved = serve(service, a, ["R1"], "2026-03-20 09:00", entered="2026-04-30")
    correct(service, a, moved, occurred_at="2026-04-20 09:00")  # late in March, but moved to April

    fact = measure(service)[str(HEJIE_UNIT)]
    flags = {e["record_id"]: (e["late"], e["voided"], e["counted"]) for e in fact.measures["data_quality"].evidence}
    assert flags == {
        clean: (False, False, True),
        late: (True, False, False),
        on_the_edge: (False, False, True),
        voided: (False, True, False),
        both: (True, True, False),
        unentered: (True, False, False),
    }
    assert pair(fact, "data_quality") == (2, 6)
    assert fact.measures["data_quality"].value == pytest.approx(1 - 4 / 6)
    # the voided records are in the denominator of data quality but serve nobody
    assert pair(fact, "coverage") == (1, 1)
    assert sorted(fact.measures["coverage"].evidence[0]["records"]) == sorted([clean, late, on_the_edge, unentered])
    # April: the moved record (entered 10 days after its new date) and the April one
    april = measure(service, "2026-04", day=date(2026, 5, 15))[str(HEJIE_UNIT)]
    assert pair(april, "data_quality") == (1, 2)


# ==== responsibility, scores and ranks ==================================================================


def test_responsible_officials_are_listed(service: LedgerService) -> None:
    community(service, "HZ-A")
    community(service, "HZ-B", township=LIANTANG)
    acct = Accountability(service)
    for code, name in (("O-1", "黄志明"), ("O-2", "李红"), ("O-3", "陈刚"), ("O-4", "周敏"), ("O-5", "吴强")):
        acct.register_official(code, name, "干部", ACTOR)
    acct.assign_duty("O-1", HEJIE_UNIT, "secretary", d("2026-01-01"), ACTOR)
    acct.assign_duty("O-2", HEJIE_UNIT, "deputy", d("2026-01-01"), ACTOR)
    acct.end_duty("O-2", HEJIE_UNIT, "deputy", d("2026-03-01"), ACTOR)  # no longer from March's first day
    acct.assign_duty("O-5", HEJIE_UNIT, "deputy", d("2026-01-01"), ACTOR)
    acct.end_duty("O-5", HEJIE_UNIT, "deputy", d("2026-03-02"), ACTOR)  # answered for March 1st
    acct.assign_duty("O-3", HEJIE_UNIT, "contact_point", d("2026-03-31"), ACTOR)
    acct.assign_duty("O-4", HEJIE_UNIT, "contact_point", d("2026-04-01"), ACTOR)  # after March
    acct.assign_duty("O-4", COUNTY_UNIT, "secretary", d("2026-01-01"), ACTOR)
    acct.assign_duty("O-2", LIANTANG_UNIT, "secretary", d("2026-02-01"), ACTOR)

    views = Views(service)
    try:
        views.prepare()
        views.runner.catch_up()
        with views.read() as conn:
            march = parse_period(MARCH)
            assert responsible(conn, HEJIE_UNIT, march, Moment()) == [
                {"official": "O-3", "name": "陈刚", "duty": "contact_point"},
                {"official": "O-5", "name": "吴强", "duty": "deputy"},
                {"official": "O-1", "name": "黄志明", "duty": "secretary"},
            ]
            assert responsible(conn, COUNTY_UNIT, march, Moment()) == [
                {"official": "O-4", "name": "周敏", "duty": "secretary"},
            ]
            assert responsible(conn, LIANTANG_UNIT, march, Moment()) == [
                {"official": "O-2", "name": "李红", "duty": "secretary"},
            ]
            assert responsible(conn, CHENGGUAN_UNIT, march, Moment()) == []
            assert [r["official"] for r in responsible(conn, HEJIE_UNIT, parse_period("2026-04"), Moment())] == [
                "O-3", "O-4", "O-1",
            ]
    finally:
        views.close()


def test_an_official_answers_for_every_spell_of_a_duty(service: LedgerService) -> None:
    community(service, "HZ-A")
    acct = Accountability(service)
    acct.register_official("O-1", "黄志明", "书记", ACTOR)
    acct.assign_duty("O-1", HEJIE_UNIT, "secretary", d("2026-01-01"), ACTOR)
    acct.end_duty("O-1", HEJIE_UNIT, "secretary", d("2026-02-01"), ACTOR)
    acct.assign_duty("O-1", HEJIE_UNIT, "secretary", d("2026-04-01"), ACTOR)
    acct.file_debrief("O-1", HEJIE_UNIT, parse_period("2026-01"), "一月述职", ACTOR)  # the domain knows the spell
    views = Views(service)
    try:
        views.prepare()
        views.runner.catch_up()
        with views.read() as conn:
            assert responsible(conn, HEJIE_UNIT, parse_period("2026-04"), Moment()) == [
                {"official": "O-1", "name": "黄志明", "duty": "secretary"},
            ]
            assert responsible(conn, HEJIE_UNIT, parse_period("2026-03"), Moment()) == []
            assert responsible(conn, HEJIE_UNIT, parse_period("2026-01"), Moment()) == [
                {"official": "O-1", "name": "黄志明", "duty": "secretary"},
            ]
    finally:
        views.close()


def test_scores_and_ranks_of_the_townships(service: LedgerService) -> None:
    """Townships with the same score share a rank and the next rank is skipped (1, 2, 2, 4); a township with
    no data at all has no score and no rank."""
    a = community(service, "HZ-A")
    b = community(service, "HZ-B", township=LIANTANG)
    community(service, "HZ-C", township=CHENGGUAN, county=OTHER_COUNTY)
    for where in (a, b):
        provider(service, where)
        resident(service, where, "R1")
        resident(service, where, "R2")
        serve(service, where, ["R1"], "2026-03-03 09:00")
    a2 = community(service, "HZ-A2")
    provider(service, a2)
    resident(service, a2, "R1")
    community(service, "HZ-D", township="步头镇")
    facts = measure(service)
    # in order of county, then township (code points: 步 < 莲 < 贺)
    assert list(facts) == ["township:八步区/步头镇", str(LIANTANG_UNIT), str(HEJIE_UNIT), str(CHENGGUAN_UNIT)]
    assert facts[str(HEJIE_UNIT)].communities == [a, a2]
    scores = {unit: score_unit(fact, DEFAULT_RUBRIC)[0] for unit, fact in facts.items()}
    # 贺街镇: coverage 1/3, breadth 1/6, data quality 1 -> (30/3 + 10/6 + 10) / 50
    assert scores[str(HEJIE_UNIT)] == round(100 * (30 / 3 + 10 / 6 + 10) / 50, 2) == 43.33
    # 莲塘镇: coverage 1/2 -> (15 + 10/6 + 10) / 50
    assert scores[str(LIANTANG_UNIT)] == 53.33
    assert scores[str(CHENGGUAN_UNIT)] is None
    assert scores["township:八步区/步头镇"] is None
    # same evidence as 贺街镇 in a third township: a tie
    e = community(service, "HZ-E", township="桂岭镇")
    e2 = community(service, "HZ-E2", township="桂岭镇")
    for where in (e, e2):
        provider(service, where)
    resident(service, e, "R1")
    resident(service, e, "R2")
    resident(service, e2, "R1")
    serve(service, e, ["R1"], "2026-03-04 09:00")
    # 城关镇: coverage 0 of 1 (the one served has no category), breadth 1/6, data quality 1
    c = "HZ-C"
    provider(service, c)
    resident(service, c, "R1")
    resident(service, c, "R2", categories=[])
    serve(service, c, ["R2"], "2026-03-05 09:00")
    facts = measure(service)
    scores = {unit: score_unit(fact, DEFAULT_RUBRIC)[0] for unit, fact in facts.items()}
    assert scores["township:八步区/桂岭镇"] == scores[str(HEJIE_UNIT)] == 43.33
    assert scores[str(CHENGGUAN_UNIT)] == round(100 * (10 / 6 + 10) / 50, 2) == 23.33
    assert rank(scores) == {
        str(HEJIE_UNIT): 2,
        "township:八步区/桂岭镇": 2,
        str(LIANTANG_UNIT): 1,
        "township:八步区/步头镇": None,
        str(CHENGGUAN_UNIT): 4,
    }


def test_units_and_only(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    b = community(service, "HZ-B", township=LIANTANG)
    c = community(service, "HZ-C", township=CHENGGUAN, county=OTHER_COUNTY)
    assert set(measure(service, level="county")) == {str(COUNTY_UNIT), "county:" + OTHER_COUNTY}
    assert set(measure(service, level="community")) == {f"community:{x}" for x in (a, b, c)}
    assert list(measure(service, only=LIANTANG_UNIT)) == [str(LIANTANG_UNIT)]
    assert measure(service, only=UnitRef("township", county=COUNTY, township="无此镇")) == {}
    assert measure(service, level="county", only=COUNTY_UNIT)[str(COUNTY_UNIT)].communities == [a, b]


# ==== as of T ============================================================================================


def snapshot(service: LedgerService, moment: Moment, periods: Iterable[str] = (MARCH, "2026-Q1")) -> dict[str, Any]:
    """Every metric with its evidence, and the responsible officials, of every unit at every level."""
    views = Views(service)
    out: dict[str, Any] = {}
    try:
        views.prepare()
        views.runner.catch_up()
        with views.read() as conn:
            for period_text in periods:
                period = parse_period(period_text)
                for level in ("county", "township", "community"):
                    for day in (AFTER, d("2026-03-20")):
                        for fact in assess(conn, level=level, period=period, moment=moment, day=day):
                            out[f"{period_text} {day} {fact.unit}"] = {
                                "communities": fact.communities,
                                "measures": {
                                    m: (x.numerator, x.denominator, x.evidence) for m, x in fact.measures.items()
                                },
                                "score": score_unit(fact, DEFAULT_RUBRIC)[0],
                                "responsible": responsible(conn, fact.unit, period, moment),
                            }
    finally:
        views.close()
    return out


def test_as_of_ignores_everything_recorded_later(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    b = community(service, "HZ-B", township=LIANTANG)
    for where in (a, b):
        provider(service, where)
        provider(service, where, "P2")
        for code in ("R1", "R2", "R3"):
            resident(service, where, code)
    acct = Accountability(service)
    acct.register_official("O-1", "黄志明", "书记", ACTOR)
    acct.assign_duty("O-1", HEJIE_UNIT, "secretary", d("2026-01-01"), ACTOR)
    first = serve(service, a, ["R1"], "2026-03-02 09:00")
    to_correct = serve(service, a, ["R2"], "2026-03-04 09:00", kind="counseling")
    to_void = serve(service, b, ["R1"], "2026-03-05 09:00")
    serve(service, b, ["R2"], "2026-03-06 09:00", entered="2026-03-20")  # late
    acct.set_visit_plan(a, "R1", 7, "P1", d("2026-03-01"), ACTOR)
    acct.set_visit_plan(b, "R3", 10, "P1", d("2026-03-01"), ACTOR)
    acct.set_target(HEJIE_UNIT, parse_period(MARCH), "records", None, 4, ACTOR)
    open_item = acct.open_item(HEJIE_UNIT, "整改", d("2026-03-10"), ACTOR)["item_id"]
    acct.open_item(LIANTANG_UNIT, "补录", d("2026-03-12"), ACTOR)

    before = snapshot(service, Moment())
    position, t = head_time(service)

    # after T: records, corrections, voids, departures, plans, targets, items, resolutions, duties
    serve(service, a, ["R3"], "2026-03-08 09:00", kind="emergency_aid")
    correct(service, a, to_correct, kind="family_care", minutes=90)
    correct(service, a, first, occurred_at="2026-03-09 09:00", residents=["R1", "R3"])
    void(service, b, to_void)
    depart(service, a, "R2", "2026-03-30")
    recategorise(service, b, "R2", [])
    acct.set_visit_plan(a, "R1", 3, "P2", d("2026-03-10"), ACTOR)  # replaces the plan of 1 March
    acct.end_visit_plan(b, "R3", d("2026-03-15"), ACTOR)
    acct.set_visit_plan(a, "R3", 5, "P1", d("2026-03-02"), ACTOR)
    acct.set_target(HEJIE_UNIT, parse_period(MARCH), "records", None, 8, ACTOR)
    acct.set_target(LIANTANG_UNIT, parse_period(MARCH), "minutes", None, 100, ACTOR)
    acct.set_target(COUNTY_UNIT, parse_period("2026-Q1"), "records", None, 10, ACTOR)
    acct.decompose(COUNTY_UNIT, parse_period("2026-Q1"), "records", None, {HEJIE_UNIT: 5, LIANTANG_UNIT: 5}, ACTOR)
    acct.resolve_item(uuid.UUID(open_item), "已整改", d("2026-03-09"), ACTOR)
    acct.open_item(parse_unit(f"community:{a}"), "新督办", d("2026-03-15"), ACTOR)
    acct.end_duty("O-1", HEJIE_UNIT, "secretary", d("2026-02-01"), ACTOR)
    acct.register_official("O-2", "李红", "书记", ACTOR)
    acct.assign_duty("O-2", HEJIE_UNIT, "secretary", d("2026-02-01"), ACTOR)
    late_community = community(service, "HZ-A9")  # established after T, in 贺街镇
    provider(service, late_community)
    resident(service, late_community, "R1")
    serve(service, late_community, ["R1"], "2026-03-03 09:00", kind="rights_protection")

    now = snapshot(service, Moment())
    then = snapshot(service, Moment(as_of=t))
    at_position = snapshot(service, Moment(position=position))
    assert then == before
    assert at_position == before
    # and the later events did change the assessment now
    key = f"{MARCH} {AFTER} {HEJIE_UNIT}"
    assert now[key] != before[key]
    for metric in ("coverage", "visit_timeliness", "breadth", "target_attainment", "supervision_closure"):
        assert now[key]["measures"][metric] != before[key]["measures"][metric], metric
    assert now[f"{MARCH} {AFTER} {LIANTANG_UNIT}"]["measures"]["data_quality"] != before[
        f"{MARCH} {AFTER} {LIANTANG_UNIT}"]["measures"]["data_quality"]
    assert now[key]["responsible"] != before[key]["responsible"]
    assert f"{MARCH} {AFTER} community:{late_community}" in now
    assert f"{MARCH} {AFTER} community:{late_community}" not in then
    # spot checks of the past: coverage 2 of 3 (R1, R2 served), target 2 of 4 records
    assert then[key]["measures"]["coverage"][:2] == (2, 3)
    assert then[key]["measures"]["target_attainment"][:2] == (0.5, 1)
    assert now[key]["measures"]["target_attainment"][:2] == (0.5, 1)  # 4 of 8 now
    assert then[key]["responsible"] == [{"official": "O-1", "name": "黄志明", "duty": "secretary"}]


def test_as_of_before_anything_was_recorded_is_empty(service: LedgerService) -> None:
    a = community(service, "HZ-A")
    provider(service, a)
    resident(service, a, "R1")
    serve(service, a, ["R1"], "2026-03-02 09:00")
    assert measure(service, moment=Moment(as_of="2000-01-01T00:00:00.000Z")) == {}
    assert measure(service, moment=Moment(position=0)) == {}
    far = measure(service, moment=Moment(as_of="2999-01-01T00:00:00.000Z"))[str(HEJIE_UNIT)]
    current = measure(service)[str(HEJIE_UNIT)]
    assert {m: pair(far, m) for m in far.measures} == {m: pair(current, m) for m in current.measures}


def test_the_assessment_from_monthly_totals_equals_the_one_from_the_records(service: LedgerService) -> None:
    """`assess run` reads the monthly totals; `assess explain` reads the records: same numbers."""
    from commands.demo import run_demo
    from commands.views import Views
    from domain.units import parse_period
    from projections.assessment import assess
    from projections.filters import Moment

    summary = run_demo(service, seed=5, today=date(2026, 6, 30))
    views = Views(service)
    views.runner.ensure_tables()
    views.runner.catch_up()
    months = {summary.first_day.isoformat()[:7], summary.last_day.isoformat()[:7]}
    try:
        with views.read() as conn:
            for level in ("township", "county"):
                for period in sorted(months) + ["2026-Q2"]:
                    span = parse_period(period)
                    fast = assess(conn, level=level, period=span, moment=Moment(), evidence=False)
                    slow = assess(conn, level=level, period=span, moment=Moment(), evidence=True)
                    assert [f.unit for f in fast] == [f.unit for f in slow]
                    for a, b in zip(fast, slow, strict=True):
                        for metric in a.measures:
                            got = (round(a.measures[metric].numerator, 9), a.measures[metric].denominator)
                            want = (round(b.measures[metric].numerator, 9), b.measures[metric].denominator)
                            assert got == want, (level, period, str(a.unit), metric)
    finally:
        views.close()
