"""The assessment on random histories: as of T it equals the assessment of the log up to T.

Random histories go through `LedgerService` and `Accountability`: three communities in two
townships of one county (a fourth, in another county, is established by a command), residents of
random categories (some of none), services over January–April 2026 (some entered late, some never
entered on paper), corrections of kind / minutes / date / residents, voids, departures, category
updates, visit plans set, replaced and ended, targets set and decomposed, supervision items opened
and resolved, duties assigned and ended. Commands that the ledger's rules refuse are skipped.

Then, for moments T among the recorded times of the log:

- `assess(..., moment=Moment(as_of=T))` on the store's views equals `assess(..., moment=Moment())` on
  views projected into a separate SQLite database from only the events recorded at or before T (a
  capped recorder fed to `infra.runner.Runner`), with the same `day`, at every level and for several
  periods — every measure with its evidence, and the responsible officials;
- every metric lies in [0, 1] (or None), and the score lies in [0, 100] (or None when no metric has
  data) and is the weighted mean of the metrics that have data, for the default and random rubrics.

Bounded: about 20 examples on SQLite and 5 on PostgreSQL, well under 90 s together.
"""

from __future__ import annotations

import os
import random
import tempfile
import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import models
from commands.accountability import Accountability
from commands.app import LedgerService
from commands.assess import Rubric, load_rubric, score_unit
from commands.views import Views
from domain.errors import LedgerError
from domain.units import parse_period, parse_unit
from domain.vocab import KINDS
from infra import crypto
from infra.runner import Runner, engines
from infra.store import parse_url
from projections.accountability import AccountabilityProjection
from projections.assessment import METRICS, UnitFacts, assess, responsible
from projections.filters import Moment
from projections.ledger import LedgerProjection
from tests.conftest import drop_pg_database, make_pg_database

ACTOR = "clerk"
START = date(2026, 1, 1)
DAYS = 120  # 1 January to 30 April 2026
GEOGRAPHY = {"A": ("八步区", "贺街镇"), "B": ("八步区", "贺街镇"), "C": ("八步区", "莲塘镇"), "D": ("钟山县", "城关镇")}
AT_START = ("A", "B", "C")
RESIDENTS = ("R0", "R1", "R2", "R3")
PROVIDERS = ("P0", "P1")
OFFICIALS = ("O-0", "O-1", "O-2")
CATEGORY_SETS = ((), ("left_behind_elderly",), ("hardship", "left_behind_child"))
ALL_KINDS = tuple(KINDS.labels)
UNITS = (
    "county:八步区", "county:钟山县", "township:八步区/贺街镇", "township:八步区/莲塘镇", "township:钟山县/城关镇",
    "community:A", "community:C", "community:D",
)
PERIODS = ("2026-02", "2026-03", "2026-Q1", "2026")
DAYS_OF_JUDGEMENT = (date(2026, 2, 15), date(2026, 3, 31), date(2026, 6, 1))
DEFAULT_RUBRIC = load_rubric(None)
FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def day(offset: int) -> date:
    return START + timedelta(days=offset)


# ==== random histories ============================================================================

offsets = st.integers(0, DAYS - 1)
communities = st.sampled_from(("A", "A", "B", "C", "D"))
residents_ = st.sampled_from(RESIDENTS)


def op(name: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"op": st.just(name), **fields})


record_op = op(
    "record",
    community=communities,
    residents=st.lists(residents_, min_size=1, max_size=2, unique=True),
    day=offsets,
    hour=st.integers(0, 23),
    kind=st.sampled_from(ALL_KINDS[:4]),
    minutes=st.integers(5, 120),
    lag=st.one_of(st.none(), st.integers(0, 3), st.integers(8, 12)),
)
operations = st.one_of(
    record_op,
    record_op,
    record_op,
    op("correct", pick=st.integers(0, 999), change=st.sampled_from(("kind", "minutes", "day", "residents")),
       kind=st.sampled_from(ALL_KINDS), minutes=st.integers(5, 120), day=offsets,
       residents=st.lists(residents_, min_size=1, max_size=2, unique=True)),
    op("void", pick=st.integers(0, 999)),
    op("depart", community=communities, resident=residents_, day=offsets),
    op("recategorise", community=communities, resident=residents_, categories=st.sampled_from(CATEGORY_SETS)),
    op("plan", community=communities, resident=residents_, every=st.integers(1, 20),
       provider=st.sampled_from(PROVIDERS), day=offsets),
    op("end_plan", pick=st.integers(0, 999), after=st.integers(0, 60)),
    op("target", unit=st.sampled_from(UNITS), period=st.sampled_from(PERIODS),
       metric=st.sampled_from(("records", "minutes", "residents_served", "coverage")),
       kind=st.one_of(st.none(), st.sampled_from(ALL_KINDS[:3])), amount=st.integers(0, 12)),
    op("decompose", period=st.sampled_from(PERIODS), metric=st.sampled_from(("records", "minutes")),
       whole=st.integers(0, 10), extra=st.integers(0, 4), share=st.integers(0, 10)),
    op("open_item", unit=st.sampled_from(UNITS), due=offsets),
    op("resolve_item", pick=st.integers(0, 999), day=offsets),
    op("duty", official=st.sampled_from(OFFICIALS), unit=st.sampled_from(UNITS[:5]),
       duty=st.sampled_from(("secretary", "deputy", "contact_point")), day=offsets),
    op("end_duty", pick=st.integers(0, 999), after=st.integers(0, 60)),
    op("establish_d"),
)
histories = st.fixed_dictionaries(
    {
        "categories": st.lists(st.sampled_from(CATEGORY_SETS), min_size=16, max_size=16),
        "ops": st.lists(operations, min_size=8, max_size=40),
    }
)


class World:
    """Applies a history's commands through the application; keeps the ids it needs to refer back."""

    def __init__(self, service: LedgerService, categories: Sequence[Sequence[str]]) -> None:
        self.service = service
        self.acct = Accountability(service)
        self.categories = list(categories)
        self.records: list[tuple[str, str]] = []  # (community, record_id)
        self.items: list[str] = []
        self.plans: list[tuple[str, str, int]] = []  # (community, resident, first day) of the plans set
        self.duties: list[tuple[str, str, str, int]] = []  # (official, unit, duty, first day) assigned
        self.applied = 0

    def establish(self, code: str) -> None:
        county, township = GEOGRAPHY[code]
        data = {"code": code, "name": f"{code}社区", "county": county, "township": township, "village": f"{code}村",
                "established_on": START}
        self.service.establish_community(self.service.validate(models.EstablishCommunity, data), ACTOR)
        index = list(GEOGRAPHY).index(code)
        for i, resident in enumerate(RESIDENTS):
            data = {"community": code, "code": resident, "name": "张秀英",
                    "categories": list(self.categories[index * 4 + i])}
            self.service.enroll_resident(self.service.validate(models.EnrollResident, data), ACTOR)
        for provider in PROVIDERS:
            data = {"community": code, "code": provider, "name": "李建国", "role": "volunteer"}
            self.service.register_provider(self.service.validate(models.RegisterProvider, data), ACTOR)

    def start(self) -> None:
        for code in AT_START:
            self.establish(code)
        for code in OFFICIALS:
            self.acct.register_official(code, f"干部{code}", "书记", ACTOR)

    def apply(self, c: dict[str, Any]) -> None:
        try:
            getattr(self, "do_" + c["op"])(c)
        except (LedgerError, ValueError):
            return  # refused by the rules (or malformed on its face): the history goes on without it
        self.applied += 1

    def validate(self, model: type[Any], data: dict[str, Any]) -> Any:
        return self.service.validate(model, data)

    # ---- services and people ----------------------------------------------------------------
    def do_record(self, c: dict[str, Any]) -> None:
        occurred = day(c["day"])
        data: dict[str, Any] = {
            "community": c["community"], "kind": c["kind"], "residents": c["residents"], "providers": ["P0"],
            "occurred_at": f"{occurred.isoformat()} {c['hour']:02d}:30", "minutes": c["minutes"],
        }
        if c["lag"] is not None:
            data["entered_on"] = occurred + timedelta(days=c["lag"])
        record_id = str(uuid.uuid4())
        self.service.record_service(self.validate(models.RecordService, data), ACTOR, record_id)
        self.records.append((c["community"], record_id))

    def do_correct(self, c: dict[str, Any]) -> None:
        if not self.records:
            raise LedgerError("nothing to correct")
        community, record_id = self.records[c["pick"] % len(self.records)]
        data: dict[str, Any] = {"community": community, "record_id": record_id, "reason": "更正"}
        if c["change"] == "day":
            data["occurred_at"] = f"{day(c['day']).isoformat()} 10:00"
        else:
            data[c["change"]] = c[c["change"]]
        self.service.correct_service(self.validate(models.CorrectService, data), ACTOR)

    def do_void(self, c: dict[str, Any]) -> None:
        if not self.records:
            raise LedgerError("nothing to void")
        community, record_id = self.records[c["pick"] % len(self.records)]
        data = {"community": community, "record_id": record_id, "reason": "作废"}
        self.service.void_service(self.validate(models.VoidService, data), ACTOR)

    def do_depart(self, c: dict[str, Any]) -> None:
        data = {"community": c["community"], "code": c["resident"], "reason": "moved", "on": day(c["day"])}
        self.service.depart_resident(self.validate(models.DepartResident, data), ACTOR)

    def do_recategorise(self, c: dict[str, Any]) -> None:
        data = {"community": c["community"], "code": c["resident"], "categories": list(c["categories"])}
        self.service.update_resident(self.validate(models.UpdateResident, data), ACTOR)

    def do_establish_d(self, _c: dict[str, Any]) -> None:
        self.establish("D")

    # ---- accountability ---------------------------------------------------------------------
    def do_plan(self, c: dict[str, Any]) -> None:
        self.acct.set_visit_plan(c["community"], c["resident"], c["every"], c["provider"], day(c["day"]), ACTOR)
        self.plans.append((c["community"], c["resident"], c["day"]))

    def do_end_plan(self, c: dict[str, Any]) -> None:
        if not self.plans:
            raise LedgerError("no plan to end")
        community, resident, first = self.plans[c["pick"] % len(self.plans)]
        self.acct.end_visit_plan(community, resident, day(first + c["after"]), ACTOR)

    def do_target(self, c: dict[str, Any]) -> None:
        amount = c["amount"] / 12 if c["metric"] == "coverage" else c["amount"]
        self.acct.set_target(parse_unit(c["unit"]), parse_period(c["period"]), c["metric"], c["kind"], amount, ACTOR)

    def do_decompose(self, c: dict[str, Any]) -> None:
        county = parse_unit("county:八步区")
        period = parse_period(c["period"])
        self.acct.set_target(county, period, c["metric"], None, c["whole"], ACTOR)
        first = min(c["share"], c["whole"])
        into = {
            parse_unit("township:八步区/贺街镇"): first,
            parse_unit("township:八步区/莲塘镇"): c["whole"] - first + c["extra"],
        }
        self.acct.decompose(county, period, c["metric"], None, into, ACTOR)

    def do_open_item(self, c: dict[str, Any]) -> None:
        opened = self.acct.open_item(parse_unit(c["unit"]), f"督办{len(self.items)}", day(c["due"]), ACTOR)
        self.items.append(opened["item_id"])

    def do_resolve_item(self, c: dict[str, Any]) -> None:
        if not self.items:
            raise LedgerError("nothing to resolve")
        item_id = uuid.UUID(self.items[c["pick"] % len(self.items)])
        self.acct.resolve_item(item_id, "已办结", day(c["day"]), ACTOR)

    def do_duty(self, c: dict[str, Any]) -> None:
        self.acct.assign_duty(c["official"], parse_unit(c["unit"]), c["duty"], day(c["day"]), ACTOR)
        self.duties.append((c["official"], c["unit"], c["duty"], c["day"]))

    def do_end_duty(self, c: dict[str, Any]) -> None:
        if not self.duties:
            raise LedgerError("no duty to end")
        official, unit, duty, first = self.duties[c["pick"] % len(self.duties)]
        self.acct.end_duty(official, parse_unit(unit), duty, day(first + c["after"]), ACTOR)


# ==== the log up to T ===============================================================================


class CappedRecorder:
    """The store's recorder as it stood at T: no event recorded after T is ever handed out.

    The runner calls `select_notifications(start, limit)`, `max_notification_id()` and
    `recorded_times(first, last)`.
    """

    def __init__(self, recorder: Any, at: str) -> None:
        self.recorder = recorder
        head = int(recorder.max_notification_id() or 0)
        commits = recorder.recorded_times(1, head) if head else []
        self.last = max((last for _first, last, when in commits if when <= at), default=0)

    def select_notifications(self, start: int, limit: int, stop: int | None = None, **kwargs: Any) -> list[Any]:
        stop = self.last if stop is None else min(stop, self.last)
        if start > stop:
            return []
        found = self.recorder.select_notifications(start, limit, stop=stop, **kwargs)
        return [n for n in found if n.id <= self.last]

    def max_notification_id(self) -> int:
        return min(int(self.recorder.max_notification_id() or 0), self.last)

    def recorded_times(self, first: int, last: int) -> list[tuple[int, int, str]]:
        return list(self.recorder.recorded_times(first, min(last, self.last)))


def describe(conn: Any, facts: list[UnitFacts], period_text: str, moment: Moment) -> list[Any]:
    """Everything an assessment says about each unit, as plain data."""
    period = parse_period(period_text)
    return [
        (
            str(fact.unit),
            fact.communities,
            {m: (x.numerator, x.denominator, x.evidence) for m, x in fact.measures.items()},
            responsible(conn, fact.unit, period, moment),
        )
        for fact in facts
    ]


def check_scores(facts: list[UnitFacts], rubrics: Sequence[Rubric]) -> None:
    for fact in facts:
        for metric, m in fact.measures.items():
            if m.value is not None:
                assert 0 <= m.numerator <= m.denominator, (fact.unit, metric, m.numerator, m.denominator)
        for rubric in rubrics:
            score, lines = score_unit(fact, rubric)
            present: dict[str, float] = {}
            for metric, weight in rubric.weights.items():
                value = fact.measures[metric].value
                if weight > 0 and value is not None:
                    present[metric] = value
            if not present:
                assert score is None, (fact.unit, lines)
                continue
            assert score is not None and 0 <= score <= 100, (fact.unit, score)
            total = sum(rubric.weights[m] for m in present)
            exact = 100 * sum(rubric.weights[m] * v for m, v in present.items()) / total
            assert score == pytest.approx(round(exact, 2), abs=1e-9), (fact.unit, score, exact)
            points = sum(line["points"] for line in lines.values() if line["points"] is not None)
            assert abs(points - score) <= 0.005 + 6 * 0.00005 + 1e-9


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(dir=FAST_TMP, prefix="taizhang-assess-")


def run_history(url: str, key_file: Path, tmp: Path, history: dict[str, Any], rnd: random.Random) -> None:
    service, _ = LedgerService.create(parse_url(url), key_file, None)
    views = Views(service)
    try:
        world = World(service, history["categories"])
        world.start()
        for c in history["ops"]:
            world.apply(c)
        views.prepare()
        views.runner.catch_up()
        head = int(service.recorder.max_notification_id())
        times = sorted({when for _f, _l, when in service.recorder.recorded_times(1, head)})
        chosen = sorted(set(rnd.sample(times, min(2, len(times)))) | {times[-1]})
        weights = {m: float(rnd.randint(0, 5)) for m in METRICS}
        rubrics = [DEFAULT_RUBRIC] + ([Rubric("random", "1", "0" * 64, weights)] if any(weights.values()) else [])
        for index, at in enumerate(chosen):
            capped = CappedRecorder(service.recorder, at)
            writer, reader = engines(parse_url(f"sqlite:///{tmp / f'prefix-{index}.db'}"))
            try:
                runner = Runner(capped, writer, [LedgerProjection(), AccountabilityProjection()], "sqlite")
                runner.ensure_tables()
                runner.catch_up()
                assert runner.position() == capped.last
                with views.read() as conn, reader.connect() as prefix:
                    for level in ("county", "township", "community"):
                        for period_text in rnd.sample(PERIODS, 2):
                            judged = rnd.choice(DAYS_OF_JUDGEMENT)
                            period = parse_period(period_text)
                            then = assess(conn, level=level, period=period, moment=Moment(as_of=at), day=judged)
                            prefix_facts = assess(prefix, level=level, period=period, moment=Moment(), day=judged)
                            assert describe(conn, then, period_text, Moment(as_of=at)) == describe(
                                prefix, prefix_facts, period_text, Moment()
                            ), (at, level, period_text, judged)
                            check_scores(then, rubrics)
                            if index == 0:
                                now = assess(conn, level=level, period=period, moment=Moment(), day=judged)
                                check_scores(now, rubrics)
            finally:
                writer.dispose()
                reader.dispose()
    finally:
        views.close()
        service.close()


def _key(tmp: Path) -> Path:
    key_file = tmp / "taizhang.key"
    crypto.create_key_file(key_file)
    return key_file


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories, seed=st.integers(0, 2**32 - 1))
def test_assessment_as_of_equals_the_log_up_to_then_on_sqlite(history: dict[str, Any], seed: int) -> None:
    with scratch_dir() as name:
        tmp = Path(name)
        run_history(f"sqlite:///{tmp / 'taizhang.db'}", _key(tmp), tmp, history, random.Random(seed))


@pytest.mark.postgres
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(history=histories, seed=st.integers(0, 2**32 - 1))
def test_assessment_as_of_equals_the_log_up_to_then_on_postgres(
    pg_admin_url: str, history: dict[str, Any], seed: int
) -> None:
    url = make_pg_database(pg_admin_url)
    try:
        with scratch_dir() as name:
            tmp = Path(name)
            run_history(url, _key(tmp), tmp, history, random.Random(seed))
    finally:
        drop_pg_database(pg_admin_url, url)
