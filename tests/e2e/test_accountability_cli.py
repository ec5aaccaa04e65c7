"""Accountability and assessment commands end to end, on SQLite and PostgreSQL.

The write side (`official register`, `duty assign|end`, `visit-plan set|end`,
`pairing add|end`, `target set|decompose`, `supervise open|resolve`, `debrief file`)
and the read side (`assess run|explain`, `visits overdue`, `audit responsibility`)
are run through the CLI as a user runs them (DESIGN §5 contract: exit 2 malformed,
exit 1 refused, one stderr line naming the field and the value, nothing written on
error, `--format json` on writes prints the ids touched).

The history (`build_world`) is dated relative to today so it always describes a
finished period: PERIOD is the quarter before the one holding (today - 2 days),
FIRST..LAST its days, d(n) = FIRST + n days. Every community was established 60
days before FIRST. Units (level township):

- A = township:八步区/贺街镇, community HZ-001:
  residents R1 (留守老人), R2 (left_behind_child), R3 (hardship, departed 10 days
  before FIRST: not eligible), R4 (no category: not eligible); providers P1, P2.
  Services: S0 before the period; S1 life_care R1 d(5); S2 counseling R1+R4 by P2
  d(40); S3 emergency_aid R4 d(50) without an entry date (late); S4 family_care R1
  d(60), voided; S5 R4 yesterday (after the period). Visit plans: R1 every 30 days
  by P1 from FIRST (3 windows in the period: S1, S2, none -> 2/3); R4 every 7 days
  from LAST+1 (no window in the period; visited yesterday, so not overdue).
  Pairing P1->R1 from FIRST. Officials O-1 secretary (from before the period,
  debriefed), O-2 contact point from FIRST. Targets: records >= 4 (from the
  county's decomposition), coverage >= 0.8, minutes of life_care >= 30. Items:
  I1 due d(20) resolved late (today), I2 (for community:HZ-001) due d(30), open.
  Expected: coverage 1/2, visit_timeliness 2/3, breadth 3/6, target_attainment
  (0.75 + 0.625 + 1)/3, supervision_closure 0/2, data_quality 2/4 -> 53.54.
- B = township:八步区/莲塘镇 (LT-01) and C = township:八步区/桂岭镇 (GL-01) are
  identical: one hardship resident served once (entered the same day), a records
  target of 1 -> the same score (87.18), sharing rank 1; A is then rank 3.
  O-3 was secretary of B from FIRST to d(45) and filed no debriefing.
- D = township:钟山县/公安镇 (GA-01): a community and nothing else -> no score, no rank.
- county:八步区 has a records target of 6, decomposed into A=4, B=1, C=1.

Every expected value is computed from that specification, never read from an output.
Stores that a test writes to are its own; the module-scoped `world` is only read
(and refused/malformed commands run against it must leave its counts unchanged).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from click.testing import Result

from domain.accountability import official_id, unit_id
from domain.ids import community_id
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, backend_of, error_line, sqlite_path, store_counts, store_tables
from tests.integration.test_service import db_clock

pytestmark = pytest.mark.clock  # periods, due dates and visits are laid out from today's date

TZ = ZoneInfo("Asia/Shanghai")  # the zone of a store made by a plain `init`
CLERK, SUP, ADMIN = "clerk01", "sup01", "admin01"
METRICS = ["coverage", "visit_timeliness", "breadth", "target_attainment", "supervision_closure", "data_quality"]
DEFAULT_WEIGHTS = {
    "coverage": 30.0,
    "visit_timeliness": 25.0,
    "breadth": 10.0,
    "target_attainment": 15.0,
    "supervision_closure": 10.0,
    "data_quality": 10.0,
}
DEFAULT_RUBRIC = Path(__file__).resolve().parents[2] / "commands" / "rubrics" / "default.toml"
STATUSES = {"met", "missed", "open", "overdue"}


def _quarter_before(day: date) -> tuple[str, date, date]:
    quarter = (day.month - 1) // 3 + 1
    year, quarter = (day.year, quarter - 1) if quarter > 1 else (day.year - 1, 4)
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return f"{year}-Q{quarter}", first, after - timedelta(days=1)


def local_today() -> date:
    """Today in the store's zone by this process's clock (the CLI's, run in-process)."""
    return datetime.now(TZ).date()


# The world is laid out from the day the module is loaded; whatever is judged "today" later is
# read from the CLI's output or pinned with --as-of, so a local midnight during the run is harmless.
TODAY = local_today()
PERIOD, FIRST, LAST = _quarter_before(TODAY - timedelta(days=2))  # finished; LAST <= TODAY - 3
ESTABLISHED = FIRST - timedelta(days=60)
BEFORE_MONTH = f"{ESTABLISHED:%Y-%m}"  # a month that ends before FIRST
FUTURE = (TODAY + timedelta(days=30)).isoformat()


def d(n: int) -> str:
    """The day n days after the period's first day."""
    return (FIRST + timedelta(days=n)).isoformat()


A, B, C, D = "township:八步区/贺街镇", "township:八步区/莲塘镇", "township:八步区/桂岭镇", "township:钟山县/公安镇"
COUNTY, COUNTY_2 = "county:八步区", "county:钟山县"
COMMUNITIES = [
    ("HZ-001", "石门新型农村社区", "八步区", "贺街镇", "石门村"),
    ("LT-01", "莲塘社区", "八步区", "莲塘镇", "莲塘村"),
    ("GL-01", "桂岭社区", "八步区", "桂岭镇", "桂岭村"),
    ("GA-01", "公安社区", "钟山县", "公安镇", "公安村"),
]
MISSING_ITEM = "00000000-0000-4000-8000-000000000404"


# ---- looking at the stored events ---------------------------------------------------------------
@dataclass(frozen=True)
class Stored:
    originator: uuid.UUID
    version: int
    topic: str
    payload: dict[str, Any]


def stored_events(url: str) -> list[Stored]:
    """Every event in the store, in log order, with its payload decoded."""
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid"
            ).fetchall()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as pg:
            rows = pg.execute(
                "SELECT originator_id::text, originator_version, topic, state FROM taizhang_events "
                "ORDER BY notification_id"
            ).fetchall()
    return [Stored(uuid.UUID(str(o)), int(v), str(t), orjson.loads(bytes(s))) for o, v, t, s in rows]


def includes(payload: dict[str, Any], expected: dict[str, Any]) -> bool:
    return {k: payload.get(k) for k in expected} == expected


def changed(events: list[Stored]) -> list[tuple[uuid.UUID, str]]:
    return sorted((e.originator, e.topic) for e in events)


# ---- the history -----------------------------------------------------------------------------------
@dataclass
class World:
    cli: Cli
    records: dict[str, str]  # S0..S5, LT, GL -> record id
    items: dict[str, str]  # I1 (resolved late), I2 (open) -> item id
    resolved_on: str  # the day I1 was resolved: today when the world was built (the CLI's own clock)

    @property
    def url(self) -> str:
        return self.cli.url

    def counts(self) -> dict[str, int]:
        return store_counts(self.url)


def record(
    cli: Cli, community: str, kind: str, residents: list[str], providers: list[str], day: str, minutes: int,
    *, entered: bool = True,
) -> str:  # fmt: skip
    rid = str(uuid.uuid4())
    args = ["service", "record", community, "--kind", kind]
    for r in residents:
        args += ["--resident", r]
    for p in providers:
        args += ["--provider", p]
    args += ["--at", f"{day} 10:00", "--minutes", str(minutes), "--record-id", rid]
    if entered:
        args += ["--entered-on", day]
    cli.ok(*args)
    return rid


def establish(cli: Cli, code: str, name: str, county: str, township: str, village: str, on: date = ESTABLISHED) -> None:
    cli.ok(
        "community", "establish", code, "--name", name, "--county", county, "--township", township,
        "--village", village, "--established-on", on.isoformat(), actor=ADMIN,
    )  # fmt: skip


def build_world(cli: Cli) -> World:
    cli.ok("init", actor=ADMIN)
    for community in COMMUNITIES:
        establish(cli, *community)
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", "--category", "留守老人")
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明", "--category", "left_behind_child")
    cli.ok("resident", "enroll", "HZ-001", "R3", "--name", "赵大爷", "--category", "hardship")
    cli.ok("resident", "depart", "HZ-001", "R3", "--reason", "moved", "--on", (FIRST - timedelta(days=10)).isoformat())
    cli.ok("resident", "enroll", "HZ-001", "R4", "--name", "刘四")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "party_member")
    cli.ok("provider", "register", "HZ-001", "P2", "--name", "陈志强", "--role", "volunteer")
    for code in ("LT-01", "GL-01"):
        cli.ok("resident", "enroll", code, "R1", "--name", "黄阿婆", "--category", "hardship")
        cli.ok("provider", "register", code, "P1", "--name", "周干部", "--role", "cadre")
    records = {
        "S0": record(cli, "HZ-001", "life_care", ["R1"], ["P1"], (FIRST - timedelta(days=5)).isoformat(), 30),
        "S1": record(cli, "HZ-001", "life_care", ["R1"], ["P1"], d(5), 30),
        "S2": record(cli, "HZ-001", "counseling", ["R1", "R4"], ["P2"], d(40), 60),
        "S3": record(cli, "HZ-001", "emergency_aid", ["R4"], ["P1"], d(50), 20, entered=False),
        "S4": record(cli, "HZ-001", "family_care", ["R1"], ["P1"], d(60), 45),
        "S5": record(cli, "HZ-001", "life_care", ["R4"], ["P2"], (TODAY - timedelta(days=1)).isoformat(), 15),
        "LT": record(cli, "LT-01", "life_care", ["R1"], ["P1"], d(10), 30),
        "GL": record(cli, "GL-01", "life_care", ["R1"], ["P1"], d(10), 30),
    }
    cli.ok("service", "void", "HZ-001", records["S4"], "--reason", "重复登记")
    cli.ok("official", "register", "O-1", "--name", "黄志明", "--title", "贺街镇党委书记", actor=ADMIN)
    cli.ok("official", "register", "O-2", "--name", "李明", "--title", "联系点干部", actor=ADMIN)
    cli.ok("official", "register", "O-3", "--name", "陈芳", "--title", "莲塘镇党委书记", actor=ADMIN)
    cli.ok("duty", "assign", "O-1", "--unit", A, "--duty", "secretary", "--from", ESTABLISHED.isoformat(), actor=ADMIN)
    cli.ok("duty", "assign", "O-2", "--unit", A, "--duty", "contact_point", "--from", FIRST.isoformat(), actor=ADMIN)
    cli.ok("duty", "assign", "O-3", "--unit", B, "--duty", "secretary", "--from", FIRST.isoformat(), actor=ADMIN)
    cli.ok("duty", "end", "O-3", "--unit", B, "--duty", "secretary", "--on", d(45), actor=ADMIN)
    cli.ok("debrief", "file", "O-1", "--unit", A, "--period", PERIOD, "--summary", "巡访与结对帮扶情况", actor=SUP)
    cli.ok("visit-plan", "set", "HZ-001", "R1", "--every", "30", "--provider", "P1", "--from", FIRST.isoformat())
    after = (LAST + timedelta(days=1)).isoformat()
    cli.ok("visit-plan", "set", "HZ-001", "R4", "--every", "7", "--provider", "P2", "--from", after)
    cli.ok("pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R1", "--on", FIRST.isoformat())
    cli.ok("target", "set", "--unit", COUNTY, "--period", PERIOD, "--metric", "records", "--at-least", "6", actor=SUP)
    cli.ok(
        "target", "decompose", "--unit", COUNTY, "--period", PERIOD, "--metric", "records",
        "--into", f"{A}=4", "--into", f"{B}=1", "--into", f"{C}=1", actor=SUP,
    )  # fmt: skip
    cli.ok("target", "set", "--unit", A, "--period", PERIOD, "--metric", "coverage", "--at-least", "0.8", actor=SUP)
    cli.ok(
        "target", "set", "--unit", A, "--period", PERIOD, "--metric", "minutes", "--kind", "生活照料",
        "--at-least", "30", actor=SUP,
    )  # fmt: skip
    i1 = cli.json("supervise", "open", "--unit", A, "--item", "补齐巡访记录", "--due", d(20), actor=SUP)["item_id"]
    i2 = cli.json(
        "supervise", "open", "--unit", "community:HZ-001", "--item", "更新结对名单", "--due", d(30), actor=SUP
    )
    resolved = cli.json("supervise", "resolve", i1, "--note", "已补录并核实", actor=SUP)
    cli.ok("projections", "run")
    return World(cli, records, {"I1": i1, "I2": i2["item_id"]}, resolved["resolved_on"])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One store per backend per module with the history above; only read."""
    tmp = tmp_path_factory.mktemp(f"accountability-{request.param}")
    if request.param == "sqlite":
        yield build_world(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"))
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build_world(Cli(url, tmp / "taizhang.key"))
    finally:
        drop_pg_database(admin, url)


# ---- reading -----------------------------------------------------------------------------------------
def read(cli: Cli, *args: str, quiet: bool = True, **kwargs: Any) -> Result:
    """A query once the views are current (PostgreSQL views are kept by `projections run`)."""
    cli.ok("projections", "run")
    result = cli.ok(*args, **kwargs)
    if quiet:
        assert result.stderr == "", result.stderr
    return result


def read_json(cli: Cli, *args: str, **kwargs: Any) -> Any:
    return orjson.loads(read(cli, *args, "--format", "json", **kwargs).stdout)


def assess_json(cli: Cli, *extra: str, level: str = "township", period: str = PERIOD) -> dict[str, Any]:
    """`assess run` with rubric v1 (the six metrics these tests know; v2 adds fund_execution:
    tests/e2e/test_rubric_v2_cli.py), unless the test names a rubric."""
    pinned = () if "--rubric" in extra else ("--rubric", "v1")
    doc = read_json(cli, "assess", "run", "--period", period, "--level", level, *pinned, *extra)
    assert isinstance(doc, dict)
    return doc


def by_unit(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["unit"]: u for u in doc["units"]}


# ---- expected values, from the specification in the docstring -------------------------------------------
def frac(numerator: float, denominator: float) -> tuple[float | None, float, float]:
    return (None if not denominator else numerator / denominator), numerator, denominator


EXPECTED_A = {
    "coverage": frac(1, 2),
    "visit_timeliness": frac(2, 3),
    "breadth": frac(3, 6),
    "target_attainment": frac(0.75 + 0.625 + 1.0, 3),
    "supervision_closure": frac(0, 2),
    "data_quality": frac(2, 4),
}
EXPECTED_B = {
    "coverage": frac(1, 1),
    "visit_timeliness": frac(0, 0),
    "breadth": frac(1, 6),
    "target_attainment": frac(1, 1),
    "supervision_closure": frac(0, 0),
    "data_quality": frac(1, 1),
}
EXPECTED_D = {m: frac(0, 0) for m in METRICS}
EXPECTED_COUNTY = {
    "coverage": frac(3, 4),
    "visit_timeliness": frac(2, 3),
    "breadth": frac(3, 6),
    "target_attainment": frac(5 / 6, 1),
    "supervision_closure": frac(0, 2),
    "data_quality": frac(4, 6),
}


def expected_score(expected: dict[str, tuple[float | None, float, float]], weights: dict[str, float]) -> float | None:
    present = {m: v for m, (v, _n, _d) in expected.items() if m in weights and v is not None and weights[m] > 0}
    total = sum(weights[m] for m in present)
    if not total:
        return None
    return round(100 * sum(weights[m] * v for m, v in present.items()) / total, 2)


def check_metrics(
    unit: dict[str, Any], expected: dict[str, tuple[float | None, float, float]], weights: dict[str, float]
) -> None:
    assert list(unit["metrics"]) == [m for m in METRICS if m in weights]
    present = sum(
        weights[m] for m, (v, _n, _d) in expected.items() if m in weights and v is not None and weights[m] > 0
    )
    for metric, line in unit["metrics"].items():
        value, numerator, denominator = expected[metric]
        assert set(line) == {"value", "weight", "points", "numerator", "denominator"}, line
        assert line["weight"] == weights[metric]
        assert line["numerator"] == pytest.approx(numerator, abs=1e-6), metric
        assert line["denominator"] == pytest.approx(denominator, abs=1e-6), metric
        if value is None:
            assert line["value"] is None and line["points"] is None, (metric, line)
        else:
            assert line["value"] == pytest.approx(value, abs=1e-6), metric
            assert line["points"] == pytest.approx(100 * value * weights[metric] / present, abs=1e-4), metric
    score = expected_score(expected, weights)
    if score is None:
        assert unit["score"] is None
    else:
        assert unit["score"] == pytest.approx(score, abs=0.005)
        points = sum(line["points"] for line in unit["metrics"].values() if line["points"] is not None)
        assert points == pytest.approx(unit["score"], abs=0.01)


# =====================================================================================================
# The write side: every command, its output, and exactly the events it stores
# =====================================================================================================
@dataclass
class Writer:
    cli: Cli
    fmt: str

    def __call__(self, *args: str, actor: str) -> tuple[Any, list[Stored]]:
        before = stored_events(self.cli.url)
        extra = ["--format", "json"] if self.fmt == "json" else []
        result = self.cli.ok(*args, *extra, actor=actor)
        assert result.stderr == "", result.stderr
        after = stored_events(self.cli.url)
        assert after[: len(before)] == before, "a write never changes stored events"
        new = after[len(before) :]
        assert new, f"{args}: stored nothing"
        for event in new:
            assert event.payload.get("actor") == actor, (event.topic, event.payload)
        out = orjson.loads(result.stdout) if self.fmt == "json" else result.stdout
        return out, new


def small_store(cli: Cli) -> None:
    cli.ok("init", actor=ADMIN)
    establish(cli, *COMMUNITIES[0])
    establish(cli, *COMMUNITIES[1])
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", "--category", "留守老人")
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明", "--category", "left_behind_child")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "party_member")
    cli.ok("provider", "register", "HZ-001", "P2", "--name", "陈志强", "--role", "volunteer")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_every_write_succeeds_prints_what_it_touched_and_stores_one_event_per_aggregate(run: Cli, fmt: str) -> None:
    small_store(run)
    write = Writer(run, fmt)
    hz = community_id("HZ-001")
    o1 = official_id("O-1")
    json_ = fmt == "json"

    out, events = write("official", "register", "O-1", "--name", "黄志明", "--title", "贺街镇党委书记", actor=ADMIN)
    assert out == ({"official": "O-1"} if json_ else "registered official O-1 黄志明\n")
    assert changed(events) == [(o1, "taizhang:Official.Registered")]
    assert events[0].payload["code"] == "O-1" and events[0].payload["title"] == "贺街镇党委书记"

    out, events = write(
        "duty", "assign", "O-1", "--unit", A, "--duty", "secretary", "--from", FIRST.isoformat(), actor=ADMIN
    )
    touched = {"official": "O-1", "unit": A, "duty": "secretary"}
    assert out == (touched if json_ else f"O-1 is secretary of {A} from {FIRST}\n")
    assert changed(events) == [(o1, "taizhang:Official.DutyAssigned")]
    assert includes(events[0].payload, {"unit": A, "duty": "secretary", "starts_on": FIRST.isoformat()})

    # --duty is forgiving about case and dashes; the unit is normalised (spaces around parts).
    before = local_today()
    out, events = write(
        "duty", "assign", "O-1", "--unit", " township: 八步区 / 莲塘镇 ", "--duty", "Contact-Point", actor=ADMIN
    )
    today = events[0].payload["starts_on"]
    assert today in {before.isoformat(), local_today().isoformat()}  # --from defaults to today (the CLI's)
    if json_:
        assert out == {"official": "O-1", "unit": B, "duty": "contact_point"}
    else:
        assert out == f"O-1 is contact_point of {B} from {today}\n"
    assert changed(events) == [(o1, "taizhang:Official.DutyAssigned")]

    out, events = write("debrief", "file", "O-1", "--unit", A, "--period", PERIOD, "--summary", "述职报告", actor=SUP)
    assert out == (
        {"official": "O-1", "unit": A, "period": PERIOD} if json_ else f"filed the debriefing of O-1 for {A} {PERIOD}\n"
    )
    assert changed(events) == [(o1, "taizhang:Official.DebriefFiled")]
    assert events[0].payload["summary"] == "述职报告"

    out, events = write("duty", "end", "O-1", "--unit", A, "--duty", "secretary", "--on", d(45), actor=ADMIN)
    assert out == (touched if json_ else f"O-1 is no longer secretary of {A} from {d(45)}\n")
    assert changed(events) == [(o1, "taizhang:Official.DutyEnded")]
    assert events[0].payload["on"] == d(45)

    out, events = write(
        "visit-plan",
        "set",
        "HZ-001",
        "R1",
        "--every",
        "14",
        "--provider",
        "P1",
        "--from",
        FIRST.isoformat(),
        actor=CLERK,
    )
    if json_:
        assert out == {"community": "HZ-001", "resident": "R1", "every": 14}
    else:
        assert out == f"R1 in HZ-001: a visit at least every 14 days by P1 from {FIRST}\n"
    assert changed(events) == [(hz, "taizhang:Community.VisitPlanSet")]
    assert includes(
        events[0].payload, {"resident": "R1", "every": 14, "provider": "P1", "starts_on": FIRST.isoformat()}
    )

    out, events = write("visit-plan", "end", "HZ-001", "R1", "--on", d(30), actor=CLERK)
    assert out == (
        {"community": "HZ-001", "resident": "R1"} if json_ else f"R1 in HZ-001: visit plan ended on {d(30)}\n"
    )
    assert changed(events) == [(hz, "taizhang:Community.VisitPlanEnded")]

    out, events = write(
        "pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R2", "--on", FIRST.isoformat(), actor=CLERK
    )
    pair = {"community": "HZ-001", "provider": "P1", "resident": "R2"}
    assert out == (pair if json_ else f"P1 paired with R2 in HZ-001 from {FIRST}\n")
    assert changed(events) == [(hz, "taizhang:Community.PairingAdded")]

    out, events = write("pairing", "end", "HZ-001", "--provider", "P1", "--resident", "R2", "--on", d(50), actor=CLERK)
    assert out == (pair if json_ else f"P1 no longer paired with R2 in HZ-001 from {d(50)}\n")
    assert changed(events) == [(hz, "taizhang:Community.PairingEnded")]

    # A unit's first target also opens its targets aggregate (one Opened event, same actor);
    # every later change is exactly one event.
    county = unit_id(COUNTY)
    out, events = write(
        "target", "set", "--unit", COUNTY, "--period", PERIOD, "--metric", "records", "--at-least", "10", actor=SUP
    )
    target = {"unit": COUNTY, "period": PERIOD, "metric": "records", "kind": None, "at_least": 10.0}
    assert out == (target if json_ else f"target for {COUNTY} {PERIOD}: records at least 10\n")
    assert [(e.originator, e.topic, e.version) for e in events] == [
        (county, "taizhang:UnitTargets.Opened", 1),
        (county, "taizhang:UnitTargets.TargetSet", 2),
    ]
    assert includes(
        events[1].payload, {"period": PERIOD, "metric": "records", "kind": None, "at_least": 10.0, "source": None}
    )

    out, events = write(
        "target", "set", "--unit", COUNTY, "--period", PERIOD, "--metric", "records", "--at-least", "12", actor=SUP
    )
    assert out == (target | {"at_least": 12.0} if json_ else f"target for {COUNTY} {PERIOD}: records at least 12\n")
    assert changed(events) == [(county, "taizhang:UnitTargets.TargetSet")]

    out, events = write(
        "target", "set", "--unit", COUNTY, "--period", PERIOD, "--metric", "coverage", "--at-least", "0.85", actor=SUP
    )
    assert out == (
        target | {"metric": "coverage", "at_least": 0.85}
        if json_
        else f"target for {COUNTY} {PERIOD}: coverage at least 0.85\n"
    )
    assert changed(events) == [(county, "taizhang:UnitTargets.TargetSet")]

    out, events = write(
        "target", "decompose", "--unit", COUNTY, "--period", PERIOD, "--metric", "records",
        "--into", f"{A}=7", "--into", f"{B}=5", actor=SUP,
    )  # fmt: skip
    parts = {"unit": COUNTY, "period": PERIOD, "metric": "records", "into": {A: 7.0, B: 5.0}}
    assert out == (parts if json_ else f"decomposed {COUNTY} {PERIOD} records into 2 unit(s)\n")
    a_id, b_id = unit_id(A), unit_id(B)
    assert changed(events) == sorted(
        [
            (county, "taizhang:UnitTargets.TargetDecomposed"),
            (a_id, "taizhang:UnitTargets.Opened"),
            (a_id, "taizhang:UnitTargets.TargetSet"),
            (b_id, "taizhang:UnitTargets.Opened"),
            (b_id, "taizhang:UnitTargets.TargetSet"),
        ]
    )
    sets = {e.originator: e.payload for e in events if e.topic.endswith("TargetSet")}
    assert includes(sets[a_id], {"at_least": 7.0, "source": COUNTY}) and includes(
        sets[b_id], {"at_least": 5.0, "source": COUNTY}
    )

    # Decomposing again into units that already have targets: one event per aggregate.
    out, events = write(
        "target", "decompose", "--unit", COUNTY, "--period", PERIOD, "--metric", "records",
        "--into", f"{A}=8", "--into", f"{B}=4", actor=SUP,
    )  # fmt: skip
    assert changed(events) == sorted(
        [
            (county, "taizhang:UnitTargets.TargetDecomposed"),
            (a_id, "taizhang:UnitTargets.TargetSet"),
            (b_id, "taizhang:UnitTargets.TargetSet"),
        ]
    )

    out, events = write("supervise", "open", "--unit", A, "--item", "补齐3月巡访记录", "--due", d(20), actor=SUP)
    assert len(events) == 1 and events[0].topic == "taizhang:SupervisionItem.Opened" and events[0].version == 1
    item = str(events[0].originator)
    if json_:
        assert out == {"item_id": item, "unit": A, "due": d(20)}
    else:
        assert out == item + "\n"  # the item id, alone on its line
    assert includes(events[0].payload, {"unit": A, "item": "补齐3月巡访记录", "due": d(20)})

    before = local_today()
    out, events = write("supervise", "resolve", item, "--note", "已补录并核实", actor=SUP)
    today = events[0].payload["on"]
    assert today in {before.isoformat(), local_today().isoformat()}  # resolved today (the CLI's)
    assert out == ({"item_id": item, "resolved_on": today} if json_ else f"resolved {item}\n")
    assert changed(events) == [(uuid.UUID(item), "taizhang:SupervisionItem.Resolved")]
    assert includes(events[0].payload, {"note": "已补录并核实"})


# =====================================================================================================
# Malformed input: exit 2, one line naming the field and the value, nothing written
# =====================================================================================================
def _t(*extra: str, unit: str = A, period: str = PERIOD, metric: str = "records") -> list[str]:
    return ["target", "set", "--unit", unit, "--period", period, "--metric", metric, *extra]


def _dec(*into: str, unit: str = COUNTY, metric: str = "records") -> list[str]:
    args = ["target", "decompose", "--unit", unit, "--period", PERIOD, "--metric", metric]
    for part in into:
        args += ["--into", part]
    return args


MALFORMED: list[tuple[str, list[str], list[str]]] = [
    ("unit-without-level", _t("--at-least", "1", unit="八步区"), ["--unit", "八步区"]),
    (
        "unit-unknown-level",
        ["duty", "assign", "O-2", "--unit", "town:八步区/贺街镇", "--duty", "deputy"],
        ["--unit", "town:八步区/贺街镇"],
    ),
    (
        "township-without-county",
        ["supervise", "open", "--unit", "township:贺街镇", "--item", "x", "--due", d(80)],
        ["--unit", "township:贺街镇"],
    ),
    (
        "township-empty-county",
        ["audit", "responsibility", "--unit", "township:/贺街镇", "--period", PERIOD],
        ["--unit", "township:/贺街镇"],
    ),
    (
        "county-with-slash",
        ["debrief", "file", "O-1", "--unit", "county:八步区/贺街镇", "--period", PERIOD, "--summary", "x"],
        ["--unit", "county:八步区/贺街镇"],
    ),
    ("community-empty", _t("--at-least", "1", unit="community:"), ["--unit", "community:"]),
    ("into-unit-syntax", _dec("village:石门=6"), ["--into", "village:石门"]),
    (
        "explain-unit-syntax",
        ["assess", "explain", "--period", PERIOD, "--unit", "village:X", "--metric", "coverage"],
        ["--unit", "village:X"],
    ),
    ("period-month-13", _t("--at-least", "1", period="2026-13"), ["--period", "2026-13"]),
    ("period-q5", _t("--at-least", "1", period="2026-Q5"), ["--period", "2026-Q5"]),
    ("period-q0", ["audit", "responsibility", "--unit", A, "--period", "2026-Q0"], ["--period", "2026-Q0"]),
    (
        "period-slash",
        ["debrief", "file", "O-1", "--unit", A, "--period", "2026/03", "--summary", "x"],
        ["--period", "2026/03"],
    ),
    ("period-assess", ["assess", "run", "--period", "2026-13", "--level", "township"], ["--period", "2026-13"]),
    (
        "period-explain",
        ["assess", "explain", "--period", "2026-Q5", "--unit", A, "--metric", "coverage"],
        ["--period", "2026-Q5"],
    ),
    (
        "period-decompose",
        ["target", "decompose", "--unit", COUNTY, "--period", "26-Q1", "--metric", "records", "--into", f"{A}=6"],
        ["--period", "26-Q1"],
    ),
    ("duty-assign", ["duty", "assign", "O-2", "--unit", A, "--duty", "mayor"], ["--duty", "mayor"]),
    ("duty-end", ["duty", "end", "O-1", "--unit", A, "--duty", "boss"], ["--duty", "boss"]),
    ("metric", _t("--at-least", "1", metric="visits"), ["--metric", "visits"]),
    ("metric-decompose", _dec(f"{A}=6", metric="happiness"), ["--metric", "happiness"]),
    ("kind", _t("--kind", "dancing", "--at-least", "1"), ["--kind", "dancing"]),
    ("kind-with-coverage", _t("--kind", "life_care", "--at-least", "0.5", metric="coverage"), ["--kind", "coverage"]),
    ("at-least-negative", _t("--at-least", "-1"), ["--at-least", "-1"]),
    ("at-least-not-a-number", _t("--at-least", "many"), ["--at-least", "many"]),
    ("at-least-nan", _t("--at-least", "nan", metric="minutes"), ["--at-least", "nan"]),
    ("coverage-above-1", _t("--at-least", "1.5", metric="coverage"), ["--at-least", "1.5"]),
    ("records-not-whole", _t("--at-least", "2.5"), ["--at-least", "2.5"]),
    ("residents-not-whole", _t("--at-least", "0.5", metric="residents_served"), ["--at-least", "0.5"]),
    ("into-without-equals", _dec(A), ["--into", A]),
    ("into-not-inside", _dec(f"{D}=6"), ["--into", D, COUNTY]),
    ("into-itself", _dec(f"{COUNTY}=6"), ["--into", COUNTY]),
    ("into-township-in-township", _dec(f"{B}=6", unit=A), ["--into", B, A]),
    ("into-twice", _dec(f"{A}=3", f"{A}=3"), ["--into", A]),
    ("into-negative", _dec(f"{A}=-6"), ["--into", "-6"]),
    ("into-not-whole", _dec(f"{A}=6.5"), ["--into", "6.5"]),
    ("every-0", ["visit-plan", "set", "HZ-001", "R2", "--every", "0", "--provider", "P1"], ["--every", "0"]),
    ("every-367", ["visit-plan", "set", "HZ-001", "R2", "--every", "367", "--provider", "P1"], ["--every", "367"]),
    (
        "every-not-a-number",
        ["visit-plan", "set", "HZ-001", "R2", "--every", "weekly", "--provider", "P1"],
        ["--every", "weekly"],
    ),
    ("item-id", ["supervise", "resolve", "not-a-uuid", "--note", "x"], ["ITEM_ID", "not-a-uuid"]),
    (
        "duty-from-future",
        ["duty", "assign", "O-2", "--unit", B, "--duty", "deputy", "--from", FUTURE],
        ["--from", FUTURE],
    ),
    ("duty-end-future", ["duty", "end", "O-1", "--unit", A, "--duty", "secretary", "--on", FUTURE], ["--on", FUTURE]),
    (
        "duty-from-bad-date",
        ["duty", "assign", "O-2", "--unit", B, "--duty", "deputy", "--from", "2026-02-30"],
        ["--from", "2026-02-30"],
    ),
    ("due-bad-date", ["supervise", "open", "--unit", A, "--item", "x", "--due", "2026-02-30"], ["--due", "2026-02-30"]),
    (
        "plan-from-bad-date",
        ["visit-plan", "set", "HZ-001", "R2", "--every", "7", "--provider", "P1", "--from", "someday"],
        ["--from", "someday"],
    ),
    ("pairing-action", ["pairing", "swap", "HZ-001", "--provider", "P1", "--resident", "R2"], ["swap"]),
    ("item-empty", ["supervise", "open", "--unit", A, "--item", "  ", "--due", d(80)], ["--item"]),
    ("item-too-long", ["supervise", "open", "--unit", A, "--item", "x" * 501, "--due", d(80)], ["--item", "500"]),
    ("note-empty", ["supervise", "resolve", MISSING_ITEM, "--note", " "], ["--note"]),
    ("summary-empty", ["debrief", "file", "O-1", "--unit", A, "--period", PERIOD, "--summary", ""], ["--summary"]),
    ("official-code-space", ["official", "register", "O 9", "--name", "韦九", "--title", "副书记"], ["CODE", "O 9"]),
    ("official-name-empty", ["official", "register", "O-9", "--name", " ", "--title", "副书记"], ["--name"]),
    ("assess-level", ["assess", "run", "--period", PERIOD, "--level", "village"], ["--level", "village"]),
    (
        "assess-as-of-future",
        ["assess", "run", "--period", PERIOD, "--level", "township", "--as-of", "2999-01-01 00:00"],
        ["--as-of", "2999-01-01"],
    ),
    (
        "assess-as-of-garbage",
        ["assess", "run", "--period", PERIOD, "--level", "township", "--as-of", "yesterday"],
        ["--as-of", "yesterday"],
    ),
    (
        "assess-html-without-output",
        ["assess", "run", "--period", PERIOD, "--level", "township", "--format", "html"],
        ["--output", "html"],
    ),
    (
        "assess-output-folder-missing",
        [
            "assess",
            "run",
            "--period",
            PERIOD,
            "--level",
            "township",
            "--format",
            "html",
            "--output",
            "/nonexistent-taizhang/x.html",
        ],
        ["--output", "/nonexistent-taizhang"],
    ),
    (
        "assess-xlsx-without-output",
        ["assess", "run", "--period", PERIOD, "--level", "township", "--format", "xlsx"],
        ["--output", "xlsx"],
    ),
    (
        "explain-metric",
        ["assess", "explain", "--period", PERIOD, "--unit", A, "--metric", "happiness"],
        ["--metric", "happiness"],
    ),
    ("overdue-township", ["visits", "overdue", "--township", "/贺街镇"], ["--township", "/贺街镇"]),
    (
        "overdue-two-units",
        ["visits", "overdue", "--township", "八步区/贺街镇", "--county", "八步区"],
        ["--township", "--county"],
    ),
]


@pytest.mark.parametrize(("args", "needles"), [pytest.param(a, n, id=i) for i, a, n in MALFORMED])
def test_malformed_input_exits_2_with_one_line_and_writes_nothing(
    world: World, args: list[str], needles: list[str]
) -> None:
    before = world.counts()
    events = stored_events(world.url)
    error_line(world.cli(*args), 2, *needles)
    assert world.counts() == before
    assert stored_events(world.url) == events


WRITES: list[tuple[str, list[str]]] = [
    ("official-register", ["official", "register", "O-9", "--name", "韦九", "--title", "副书记"]),
    ("duty-assign", ["duty", "assign", "O-2", "--unit", B, "--duty", "deputy", "--from", FIRST.isoformat()]),
    ("duty-end", ["duty", "end", "O-1", "--unit", A, "--duty", "secretary", "--on", d(80)]),
    (
        "visit-plan-set",
        ["visit-plan", "set", "HZ-001", "R2", "--every", "30", "--provider", "P1", "--from", FIRST.isoformat()],
    ),
    ("visit-plan-end", ["visit-plan", "end", "HZ-001", "R1", "--on", d(80)]),
    ("pairing-add", ["pairing", "add", "HZ-001", "--provider", "P2", "--resident", "R2", "--on", FIRST.isoformat()]),
    ("pairing-end", ["pairing", "end", "HZ-001", "--provider", "P1", "--resident", "R1", "--on", d(80)]),
    ("target-set", ["target", "set", "--unit", B, "--period", PERIOD, "--metric", "minutes", "--at-least", "10"]),
    ("target-decompose", _dec(f"{A}=6")),
    ("supervise-open", ["supervise", "open", "--unit", A, "--item", "核查", "--due", d(80)]),
    ("supervise-resolve", ["supervise", "resolve", "{I2}", "--note", "已处理"]),
    ("debrief-file", ["debrief", "file", "O-2", "--unit", A, "--period", PERIOD, "--summary", "联系点述职"]),
]


@pytest.mark.parametrize("actor", [None, "  "], ids=["absent", "blank"])
@pytest.mark.parametrize("args", [pytest.param(a, id=i) for i, a in WRITES])
def test_a_write_without_an_actor_exits_2_and_writes_nothing(world: World, args: list[str], actor: str | None) -> None:
    """Each of these would succeed with an actor (test_every_write… covers that path)."""
    before = world.counts()
    args = [a.format(**world.items) for a in args]
    error_line(world.cli(*args, actor=actor), 2, "--actor")
    assert world.counts() == before


# =====================================================================================================
# Refused: exit 1, one line naming what was refused, nothing written
# =====================================================================================================
REFUSED: list[tuple[str, list[str], list[str]]] = [
    ("official-twice", ["official", "register", "O-1", "--name", "另一人", "--title", "书记"], ["O-1"]),
    (
        "unknown-official-assign",
        ["duty", "assign", "O-404", "--unit", A, "--duty", "deputy", "--from", FIRST.isoformat()],
        ["O-404"],
    ),
    ("unknown-official-end", ["duty", "end", "O-404", "--unit", A, "--duty", "secretary", "--on", d(50)], ["O-404"]),
    (
        "unknown-official-debrief",
        ["debrief", "file", "O-404", "--unit", A, "--period", PERIOD, "--summary", "x"],
        ["O-404"],
    ),
    (
        "unknown-township-duty",
        ["duty", "assign", "O-2", "--unit", "township:八步区/无名镇", "--duty", "deputy", "--from", FIRST.isoformat()],
        ["八步区/无名镇"],
    ),
    ("unknown-county-target", _t("--at-least", "1", unit="county:无名县"), ["无名县"]),
    ("unknown-community-target", _t("--at-least", "1", unit="community:NOPE"), ["NOPE"]),
    (
        "unknown-community-item",
        ["supervise", "open", "--unit", "community:NOPE", "--item", "x", "--due", d(80)],
        ["NOPE"],
    ),
    ("unknown-into", _dec("township:八步区/无名镇=6"), ["八步区/无名镇"]),
    (
        "unknown-community-plan",
        ["visit-plan", "set", "NOPE", "R1", "--every", "30", "--provider", "P1", "--from", FIRST.isoformat()],
        ["NOPE"],
    ),
    (
        "unknown-resident-plan",
        ["visit-plan", "set", "HZ-001", "R404", "--every", "30", "--provider", "P1", "--from", FIRST.isoformat()],
        ["R404"],
    ),
    (
        "unknown-provider-plan",
        ["visit-plan", "set", "HZ-001", "R2", "--every", "30", "--provider", "P404", "--from", FIRST.isoformat()],
        ["P404"],
    ),
    ("unknown-community-pairing", ["pairing", "add", "NOPE", "--provider", "P1", "--resident", "R1"], ["NOPE"]),
    ("unknown-resident-pairing", ["pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R404"], ["R404"]),
    ("unknown-provider-pairing", ["pairing", "add", "HZ-001", "--provider", "P404", "--resident", "R2"], ["P404"]),
    (
        "duty-twice",
        ["duty", "assign", "O-1", "--unit", A, "--duty", "secretary", "--from", FIRST.isoformat()],
        ["O-1", "secretary"],
    ),
    ("duty-not-held", ["duty", "end", "O-2", "--unit", A, "--duty", "secretary", "--on", d(50)], ["O-2", "secretary"]),
    (
        "duty-end-before-start",
        ["duty", "end", "O-2", "--unit", A, "--duty", "contact_point", "--on", d(-1)],
        ["O-2", d(-1)],
    ),
    (
        "duty-reassigned-before-end",
        ["duty", "assign", "O-3", "--unit", B, "--duty", "secretary", "--from", d(40)],
        ["O-3", d(40)],
    ),
    (
        "plan-before-enrolment",
        [
            "visit-plan",
            "set",
            "HZ-001",
            "R2",
            "--every",
            "7",
            "--provider",
            "P1",
            "--from",
            (ESTABLISHED - timedelta(days=1)).isoformat(),
        ],
        ["R2"],
    ),
    (
        "plan-replaced-earlier",
        ["visit-plan", "set", "HZ-001", "R1", "--every", "7", "--provider", "P1", "--from", d(-1)],
        ["R1", d(-1)],
    ),
    (
        "pairing-end-before-start",
        ["pairing", "end", "HZ-001", "--provider", "P1", "--resident", "R1", "--on", d(-1)],
        [d(-1)],
    ),
    (
        "duty-already-ended",
        ["duty", "end", "O-3", "--unit", B, "--duty", "secretary", "--on", d(60)],
        ["O-3", "secretary"],
    ),
    ("decompose-short", _dec(f"{A}=3", f"{B}=1", f"{C}=1"), ["5", "6"]),
    ("decompose-no-parent-metric", _dec(f"{A}=100", metric="minutes"), ["minutes"]),
    ("decompose-no-parent-aggregate", _dec(f"{D}=1", unit=COUNTY_2), [COUNTY_2]),
    (
        "decompose-no-parent-period",
        ["target", "decompose", "--unit", COUNTY, "--period", "2020-Q1", "--metric", "records", "--into", f"{A}=6"],
        ["2020-Q1"],
    ),
    ("decompose-no-parent-kind", [*_dec(f"{A}=6"), "--kind", "life_care"], [COUNTY]),
    ("resolve-twice", ["supervise", "resolve", "{I1}", "--note", "again"], ["{I1}"]),
    ("resolve-unknown", ["supervise", "resolve", MISSING_ITEM, "--note", "x"], [MISSING_ITEM]),
    ("debrief-no-duty", ["debrief", "file", "O-1", "--unit", B, "--period", PERIOD, "--summary", "x"], ["O-1", B]),
    (
        "debrief-before-duty",
        ["debrief", "file", "O-2", "--unit", A, "--period", BEFORE_MONTH, "--summary", "x"],
        ["O-2", BEFORE_MONTH],
    ),
    (
        "debrief-twice",
        ["debrief", "file", "O-1", "--unit", A, "--period", PERIOD, "--summary", "again"],
        ["O-1", PERIOD],
    ),
    (
        "pairing-twice",
        ["pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R1", "--on", d(10)],
        ["P1", "R1"],
    ),
    ("pairing-end-missing", ["pairing", "end", "HZ-001", "--provider", "P2", "--resident", "R2"], ["P2", "R2"]),
    ("plan-departed", ["visit-plan", "set", "HZ-001", "R3", "--every", "30", "--provider", "P1"], ["R3"]),
    ("plan-end-none", ["visit-plan", "end", "HZ-001", "R2"], ["R2"]),
    (
        "explain-unknown-unit",
        ["assess", "explain", "--period", PERIOD, "--unit", "township:八步区/无名镇", "--metric", "coverage"],
        ["无名镇"],
    ),
    ("audit-unknown-unit", ["audit", "responsibility", "--unit", "county:无名县", "--period", PERIOD], ["无名县"]),
    ("overdue-unknown-township", ["visits", "overdue", "--township", "八步区/无名镇"], ["无名镇"]),
]


@pytest.mark.parametrize(("args", "needles"), [pytest.param(a, n, id=i) for i, a, n in REFUSED])
def test_refused_command_exits_1_with_one_line_and_writes_nothing(
    world: World, args: list[str], needles: list[str]
) -> None:
    args = [a.format(**world.items) for a in args]
    needles = [n.format(**world.items) for n in needles]
    before = world.counts()
    events = stored_events(world.url)
    line = error_line(world.cli(*args, actor=SUP), 1, *needles)
    assert "internal error" not in line
    assert world.counts() == before
    assert stored_events(world.url) == events


MISSING_STORE: list[list[str]] = [
    ["official", "register", "O-1", "--name", "黄志明", "--title", "书记"],
    ["duty", "assign", "O-1", "--unit", A, "--duty", "secretary", "--from", FIRST.isoformat()],
    ["duty", "end", "O-1", "--unit", A, "--duty", "secretary", "--on", d(10)],
    ["visit-plan", "set", "HZ-001", "R1", "--every", "30", "--provider", "P1", "--from", FIRST.isoformat()],
    ["visit-plan", "end", "HZ-001", "R1", "--on", d(10)],
    ["pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R1"],
    ["target", "set", "--unit", A, "--period", PERIOD, "--metric", "records", "--at-least", "1"],
    ["target", "decompose", "--unit", COUNTY, "--period", PERIOD, "--metric", "records", "--into", f"{A}=1"],
    ["supervise", "open", "--unit", A, "--item", "x", "--due", d(10)],
    ["supervise", "resolve", MISSING_ITEM, "--note", "x"],
    ["debrief", "file", "O-1", "--unit", A, "--period", PERIOD, "--summary", "x"],
    ["assess", "run", "--period", PERIOD, "--level", "township"],
    ["assess", "explain", "--period", PERIOD, "--unit", A, "--metric", "coverage"],
    ["visits", "overdue"],
    ["audit", "responsibility", "--unit", A, "--period", PERIOD],
]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        pytest.param(_t("--at-least", "-1"), 2, "--at-least", id="malformed"),
        pytest.param(["duty", "end", "O-2", "--unit", A, "--duty", "secretary", "--on", d(50)], 1, "O-2", id="refused"),
    ],
)
def test_lang_zh_prefixes_the_errors(world: World, args: list[str], code: int, needle: str) -> None:
    before = world.counts()
    error_line(world.cli(*args, lang="zh"), code, needle, prefix="错误：")
    assert world.counts() == before


@pytest.mark.parametrize("args", [pytest.param(a, id="-".join(a[:2])) for a in MISSING_STORE])
def test_a_missing_store_is_refused_and_not_created(run: Cli, args: list[str]) -> None:
    error_line(run(*args), 1, "no store at", "run taizhang init")
    assert store_tables(run.url) == set()
    assert not run.key.exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(_t("--at-least", "1", period="2026-13"), ["--period", "2026-13"], id="period"),
        pytest.param(
            ["duty", "assign", "O-1", "--unit", A, "--duty", "secretary", "--from", FUTURE],
            ["--from", FUTURE],
            id="future-from",
        ),
        pytest.param(
            ["visit-plan", "set", "HZ-001", "R1", "--every", "0", "--provider", "P1"], ["--every", "0"], id="every"
        ),
        pytest.param(["supervise", "resolve", "xyz", "--note", "x"], ["ITEM_ID", "xyz"], id="item-id"),
        pytest.param(_dec(A), ["--into", A], id="into-without-equals"),
        pytest.param(
            ["assess", "run", "--period", "2026-Q5", "--level", "township"], ["--period", "2026-Q5"], id="assess-period"
        ),
    ],
)
def test_malformed_input_on_a_missing_store_is_malformed(run: Cli, args: list[str], needles: list[str]) -> None:
    """Malformed input is judged before the store is looked for (exit 2, not 1)."""
    error_line(run(*args), 2, *needles)
    assert store_tables(run.url) == set()


def test_an_into_unit_outside_the_unit_on_a_missing_store_is_malformed(run: Cli) -> None:
    error_line(run(*_dec(f"{D}=6")), 2, "--into", D)
    assert store_tables(run.url) == set()


# =====================================================================================================
# Bugs found (strict xfail: they fail today, and will flag when fixed)
# =====================================================================================================
@pytest.mark.parametrize(
    ("args", "option"),
    [
        pytest.param(_t("--at-least", "inf"), "--at-least", id="at-least"),
        pytest.param(_dec(f"{A}=inf"), "--into", id="into"),
    ],
)
def test_an_infinite_target_is_malformed(world: World, args: list[str], option: str) -> None:
    before = world.counts()
    result = world.cli(*args, actor=SUP)
    assert world.counts() == before
    error_line(result, 2, option, "inf")


def test_decomposing_coverage_is_malformed(world: World) -> None:
    before = world.counts()
    result = world.cli(*_dec(f"{A}=0.9", metric="coverage"), actor=SUP)
    assert world.counts() == before
    error_line(result, 2, "--metric", "coverage")


def test_a_township_target_decomposes_into_its_communities(run: Cli) -> None:
    run.ok("init", actor=ADMIN)
    establish(run, *COMMUNITIES[0])
    establish(run, "HZ-002", "龙井社区", "八步区", "贺街镇", "龙井村")
    run.ok("target", "set", "--unit", A, "--period", PERIOD, "--metric", "records", "--at-least", "4", actor=SUP)
    out = run.json(*_dec("community:HZ-001=2", "community:HZ-002=2", unit=A), actor=SUP)
    assert out["into"] == {"community:HZ-001": 2.0, "community:HZ-002": 2.0}


# =====================================================================================================
# The assessment
# =====================================================================================================
def test_assess_run_json_is_one_document_with_every_field(world: World) -> None:
    cli = world.cli
    doc = assess_json(cli)
    assert list(doc) == ["period", "level", "as_of", "position", "rubric", "units"]
    assert doc["period"] == PERIOD and doc["level"] == "township" and doc["as_of"] is None
    heads = {row["head"] for row in read_json(cli, "projections", "status")}
    assert isinstance(doc["position"], int) and {doc["position"]} == heads and doc["position"] > 0
    assert doc["rubric"] == {
        "name": "hezhou-default",
        "version": "1",
        "sha256": hashlib.sha256(DEFAULT_RUBRIC.read_bytes()).hexdigest(),
    }
    assert [u["unit"] for u in doc["units"]] == sorted([A, B, C, D])
    for unit in doc["units"]:
        assert list(unit) == ["unit", "name", "county", "township", "score", "rank", "responsible", "metrics"]
        assert isinstance(unit["score"], (float, type(None))) and isinstance(unit["rank"], (int, type(None)))
        assert isinstance(unit["responsible"], list)
        for line in unit["metrics"].values():
            assert isinstance(line["weight"], float)
            assert all(isinstance(line[k], (int, float)) for k in ("numerator", "denominator"))
            assert all(isinstance(line[k], (float, type(None))) for k in ("value", "points"))
    units = by_unit(doc)
    assert (units[A]["county"], units[A]["township"]) == ("八步区", "贺街镇")
    assert (units[D]["county"], units[D]["township"]) == ("钟山县", "公安镇")

    check_metrics(units[A], EXPECTED_A, DEFAULT_WEIGHTS)
    check_metrics(units[B], EXPECTED_B, DEFAULT_WEIGHTS)
    check_metrics(units[C], EXPECTED_B, DEFAULT_WEIGHTS)
    check_metrics(units[D], EXPECTED_D, DEFAULT_WEIGHTS)
    assert units[A]["score"] == pytest.approx(53.54, abs=0.005)
    assert units[B]["score"] == units[C]["score"] == pytest.approx(87.18, abs=0.005)

    # Competition ranking: a tie shares its rank, the next rank is skipped; no data, no rank.
    assert {u: units[u]["rank"] for u in units} == {B: 1, C: 1, A: 3, D: None}
    assert units[D]["score"] is None

    assert units[A]["responsible"] == [
        {"official": "O-2", "name": "李明", "duty": "contact_point"},
        {"official": "O-1", "name": "黄志明", "duty": "secretary"},
    ]
    assert units[B]["responsible"] == [{"official": "O-3", "name": "陈芳", "duty": "secretary"}]
    assert units[C]["responsible"] == units[D]["responsible"] == []


def test_assess_run_at_county_level(world: World) -> None:
    doc = assess_json(world.cli, level="county")
    assert doc["level"] == "county"
    units = by_unit(doc)
    assert list(units) == [COUNTY, COUNTY_2]
    assert units[COUNTY]["county"] == "八步区" and units[COUNTY]["township"] is None
    check_metrics(units[COUNTY], EXPECTED_COUNTY, DEFAULT_WEIGHTS)
    check_metrics(units[COUNTY_2], EXPECTED_D, DEFAULT_WEIGHTS)
    assert (units[COUNTY]["rank"], units[COUNTY_2]["rank"]) == (1, None)
    assert units[COUNTY]["responsible"] == []


def test_assess_run_csv_has_a_header_and_one_row_per_unit(world: World) -> None:
    doc = assess_json(world.cli)
    text = read(world.cli, "assess", "run", "--period", PERIOD, "--level", "township", "--rubric", "v1", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["rank", "unit", "score", *METRICS]
    assert len(rows) == 1 + len(doc["units"])
    for row, unit in zip(rows[1:], doc["units"], strict=True):
        assert row[1] == unit["unit"]
        assert row[0] == ("" if unit["rank"] is None else str(unit["rank"]))
        assert row[2] == ("" if unit["score"] is None else str(unit["score"]))
        for cell, metric in zip(row[3:], METRICS, strict=True):
            value = unit["metrics"][metric]["value"]
            assert cell == ("" if value is None else str(value))



def ranked(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(doc["units"], key=lambda u: (u["rank"] is None, u["rank"] or 0, u["name"]))


def one_decimal(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))  # 67.85 -> 67.9, as people round


def percent(value: float | None) -> str:
    return "—" if value is None else one_decimal(Decimal(repr(value)) * 100) + "%"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_assess_run_table_is_read_by_rank_with_names_and_percentages(world: World, lang: str) -> None:
    doc = assess_json(world.cli)
    assert {u["unit"]: u["name"] for u in doc["units"]} == {
        A: "八步区贺街镇", B: "八步区莲塘镇", C: "八步区桂岭镇", D: "钟山县公安镇"
    }
    lines = read(world.cli, "assess", "run", "--period", PERIOD, "--level", "township", "--rubric", "v1", lang=lang).stdout.splitlines()
    head, body = lines[0].split(), [line.split() for line in lines[2:]]
    assert head[:3] == (["排名", "单位", "得分", "覆盖率"] if lang == "zh" else ["rank", "unit", "score", "coverage"])[:3]
    if lang == "zh":
        assert {"覆盖率", "巡访及时率", "数据质量"} <= set(head) and not re.search("[a-z]", lines[0])
    assert len(body) == len(doc["units"])
    for cells, unit in zip(body, ranked(doc), strict=True):
        assert cells[0] == ("—" if unit["rank"] is None else str(unit["rank"]))
        assert cells[1] == unit["name"]
        assert cells[2] == ("—" if unit["score"] is None else one_decimal(Decimal(repr(unit["score"]))))
        assert cells[3:] == [percent(unit["metrics"][m]["value"]) for m in METRICS]
    json_units = [u["unit"] for u in doc["units"]]
    assert json_units == sorted(json_units)  # json keeps its order and its exact numbers


def test_assess_run_json_to_a_file_is_the_same_document(world: World, tmp_path: Path) -> None:
    out = tmp_path / "assess.json"
    result = read(
        world.cli, "assess", "run", "--period", PERIOD, "--level", "township", "--rubric", "v1", "--format", "json",
        "--output", str(out)
    )
    assert result.stdout == ""
    assert orjson.loads(out.read_bytes()) == assess_json(world.cli)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr", "rect"}


class Page(HTMLParser):
    """What a test needs of the assessment page: tags, attributes, the table, the chart."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.open: list[str] = []
        self.head_cells: list[str] = []
        self.rows: list[list[str]] = []
        self.cell: str | None = None
        self.rects: list[dict[str, str]] = []
        self.svg_text: list[str] = []
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        if tag == "tr" and "tbody" in self.open:
            self.rows.append([])
        if tag in ("td", "th"):
            self.cell = ""
        if tag == "rect" and "svg" in self.open:
            self.rects.append({k: v or "" for k, v in attrs})
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            if tag == "td" and "tbody" in self.open:
                self.rows[-1].append(self.cell)
            elif tag == "th":
                self.head_cells.append(self.cell)
            self.cell = None
        if tag in self.open:
            while self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell += data
        if self.open and self.open[-1] == "text" and "svg" in self.open:
            self.svg_text.append(data)
        if self.open and self.open[-1] == "title":
            self.title += data


def test_assess_run_html_is_a_self_contained_page_with_the_table_and_a_bar_chart(world: World, tmp_path: Path) -> None:
    doc = assess_json(world.cli)
    out = tmp_path / "考核.html"
    result = read(
        world.cli,
        "assess",
        "run",
        "--period",
        PERIOD,
        "--level",
        "township",
        "--rubric",
        "v1",
        "--format",
        "html",
        "--output",
        str(out),
        quiet=False,
    )
    assert result.stdout == ""
    assert result.stderr.strip() == f"wrote {out}"
    raw = out.read_text(encoding="utf-8")
    page = Page()
    page.feed(raw)
    page.close()
    assert raw.startswith("<!DOCTYPE html>")
    assert {"html", "head", "body", "table", "thead", "tbody", "svg"} <= set(page.tags)
    # No network: nothing fetched, and the only URL is the SVG namespace.
    assert not {"script", "link", "img", "iframe", "object", "embed", "base"} & set(page.tags)
    assert raw.count("http://") + raw.count("https://") == 1
    assert ("svg", "xmlns", "http://www.w3.org/2000/svg") in page.attrs
    assert "url(" not in raw and "@import" not in raw
    assert all("://" not in value for tag, key, value in page.attrs if key != "xmlns")
    assert page.tags.count("svg") == 1

    assert page.head_cells == ["rank", "unit", "score", *(m.replace("_", " ") for m in METRICS)]
    assert len(page.rows) == len(doc["units"])
    for row, unit in zip(page.rows, ranked(doc), strict=True):  # by rank, names, one decimal, percentages
        assert row[:3] == [
            "—" if unit["rank"] is None else str(unit["rank"]),
            unit["name"],
            "—" if unit["score"] is None else one_decimal(Decimal(repr(unit["score"]))),
        ]
        assert row[3:] == [percent(unit["metrics"][m]["value"]) for m in METRICS]
    # One bar per unit, longest for the best score; none for a unit without a score.
    assert len(page.rects) == len(doc["units"])
    widths = [float(r["width"]) for r in page.rects]
    scores = sorted((u for u in doc["units"]), key=lambda u: (u["rank"] is None, u["rank"] or 0, u["unit"]))
    assert widths == sorted(widths, reverse=True)
    for width, unit in zip(widths, scores, strict=True):
        if unit["score"] is None:
            assert width == 0
        else:
            assert width == pytest.approx(widths[0] * unit["score"] / scores[0]["score"], abs=0.2)
    labels = "".join(page.svg_text)
    assert all(u["name"] in labels for u in doc["units"])
    assert PERIOD in page.title

    zh = tmp_path / "zh.html"
    read(
        world.cli,
        "assess",
        "run",
        "--period",
        PERIOD,
        "--level",
        "township",
        "--format",
        "html",
        "--output",
        str(zh),
        lang="zh",
        quiet=False,
    )
    zh_page = Page()
    zh_page.feed(zh.read_text(encoding="utf-8"))
    assert ("html", "lang", "zh") in zh_page.attrs and "乡镇考核" in zh_page.title
    assert zh_page.head_cells[:4] == ["排名", "单位", "得分", "覆盖率"]


def test_assess_run_xlsx_reads_back_as_a_printable_sheet(world: World, tmp_path: Path) -> None:
    import openpyxl  # type: ignore[import-untyped]

    doc = assess_json(world.cli)
    out = tmp_path / "assess.xlsx"
    result = read(
        world.cli,
        "assess",
        "run",
        "--period",
        PERIOD,
        "--level",
        "township",
        "--rubric",
        "v1",
        "--format",
        "xlsx",
        "--output",
        str(out),
        quiet=False,
    )
    assert result.stdout == "" and result.stderr.strip() == f"wrote {out}"
    book = openpyxl.load_workbook(out)
    sheet = book.active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert PERIOD in str(rows[0][0]) and "township" in str(rows[0][0])
    assert rows[1][: 3 + len(METRICS)] == ["rank", "unit", "score", *(m.replace("_", " ") for m in METRICS)]
    body = rows[2 : 2 + len(doc["units"])]
    assert len(body) == len(doc["units"])
    for row, unit in zip(body, ranked(doc), strict=True):  # by rank; the cells keep the exact numbers
        assert row[0] == unit["rank"] and row[1] == unit["name"] and row[2] == unit["score"]
        assert row[3 : 3 + len(METRICS)] == [unit["metrics"][m]["value"] for m in METRICS]
    formats = [c.number_format for c in book.active[3][2 : 3 + len(METRICS)]]
    assert formats == ["0.0"] + ["0.0%"] * len(METRICS)
    rest = [" ".join(str(c) for c in r if c is not None) for r in rows[2 + len(doc["units"]) :]]
    assert any(doc["rubric"]["sha256"] in line for line in rest)


def test_a_custom_rubric_changes_the_weights_the_scores_and_the_sha256(world: World, tmp_path: Path) -> None:
    rubric = tmp_path / "钟山县细则.toml"
    rubric.write_text(
        'name = "county-custom"\nversion = 2\n\n[weights]\ncoverage = 3\ndata_quality = 1\n', encoding="utf-8"
    )
    doc = assess_json(world.cli, "--rubric", str(rubric))
    default = assess_json(world.cli)
    assert doc["rubric"] == {
        "name": "county-custom",
        "version": "2",
        "sha256": hashlib.sha256(rubric.read_bytes()).hexdigest(),
    }
    assert doc["rubric"]["sha256"] != default["rubric"]["sha256"]
    weights = {"coverage": 3.0, "data_quality": 1.0}
    units = by_unit(doc)
    check_metrics(units[A], EXPECTED_A, weights)
    check_metrics(units[B], EXPECTED_B, weights)
    check_metrics(units[D], EXPECTED_D, weights)
    assert units[A]["score"] == pytest.approx(50.0) and units[B]["score"] == units[C]["score"] == pytest.approx(100.0)
    assert {u: units[u]["rank"] for u in units} == {B: 1, C: 1, A: 3, D: None}


BAD_RUBRICS = [
    ("not-toml", "name = [\n"),
    ("no-name", 'version = "1"\n[weights]\ncoverage = 1\n'),
    ("no-version", 'name = "x"\n[weights]\ncoverage = 1\n'),
    ("no-weights", 'name = "x"\nversion = "1"\n'),
    ("unknown-metric", 'name = "x"\nversion = "1"\n[weights]\nhappiness = 1\n'),
    ("negative-weight", 'name = "x"\nversion = "1"\n[weights]\ncoverage = -1\n'),
    ("text-weight", 'name = "x"\nversion = "1"\n[weights]\ncoverage = "heavy"\n'),
    ("bool-weight", 'name = "x"\nversion = "1"\n[weights]\ncoverage = true\n'),
    ("all-zero", 'name = "x"\nversion = "1"\n[weights]\ncoverage = 0\nbreadth = 0\n'),
    ("not-utf8", b"name = '\xff\xfe'\n"),
    ("missing-file", None),
]


@pytest.mark.parametrize("content", [pytest.param(c, id=i) for i, c in BAD_RUBRICS])
def test_a_malformed_rubric_exits_2(world: World, tmp_path: Path, content: str | bytes | None) -> None:
    path = tmp_path / "rubric.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    before = world.counts()
    error_line(
        world.cli("assess", "run", "--period", PERIOD, "--level", "township", "--rubric", str(path)), 2, "--rubric"
    )
    assert world.counts() == before


# ---- assess explain ------------------------------------------------------------------------------------
def test_assess_explain_lists_the_evidence_behind_every_metric(world: World) -> None:
    cli = world.cli
    s = world.records
    run_doc = by_unit(assess_json(cli))[A]["metrics"]
    explained = {}
    for metric in METRICS:
        doc = read_json(cli, "assess", "explain", "--period", PERIOD, "--unit", A, "--metric", metric)
        assert list(doc) == ["period", "unit", "metric", "as_of", "value", "numerator", "denominator", "evidence"]
        assert (doc["period"], doc["unit"], doc["metric"], doc["as_of"]) == (PERIOD, A, metric, None)
        for key in ("value", "numerator", "denominator"):
            assert doc[key] == run_doc[metric][key], (metric, key)
        evidence = doc["evidence"]
        assert isinstance(evidence, list) and all(isinstance(e, dict) and "counted" in e for e in evidence)
        if metric == "target_attainment":
            assert len(evidence) == doc["denominator"]
            assert sum(e["attainment"] for e in evidence) == pytest.approx(doc["numerator"])
        else:  # counts: one piece of evidence per unit of the denominator, counted ones are the numerator
            assert len(evidence) == doc["denominator"], metric
            assert sum(1 for e in evidence if e["counted"]) == doc["numerator"], metric
        explained[metric] = evidence

    assert explained["coverage"] == [
        {
            "community": "HZ-001",
            "resident": "R1",
            "categories": ["left_behind_elderly"],
            "counted": True,
            "records": sorted([s["S1"], s["S2"]]),
        },
        {"community": "HZ-001", "resident": "R2", "categories": ["left_behind_child"], "counted": False, "records": []},
    ]
    windows = [(e["window"], e["counted"], e["records"]) for e in explained["visit_timeliness"]]
    assert windows == [
        ([d(0), d(29)], True, [s["S1"]]),
        ([d(30), d(59)], True, [s["S2"]]),
        ([d(60), d(89)], False, []),  # S4 was voided
    ]
    assert {(e["resident"], e["provider"], e["every"]) for e in explained["visit_timeliness"]} == {("R1", "P1", 30)}
    assert {e["kind"] for e in explained["breadth"] if e["counted"]} == {"life_care", "counseling", "emergency_aid"}
    assert len(explained["breadth"]) == 6
    assert sorted(
        (e["metric"], e["kind"], e["at_least"], e["actual"], e["attainment"]) for e in explained["target_attainment"]
    ) == [
        ("coverage", None, 0.8, 0.5, 0.625),
        ("minutes", "life_care", 30.0, 30.0, 1.0),
        ("records", None, 4.0, 3.0, 0.75),
    ]
    assert {e["item_id"]: (e["resolved_on"], e["counted"]) for e in explained["supervision_closure"]} == {
        world.items["I1"]: (world.resolved_on, False),  # resolved after it was due
        world.items["I2"]: (None, False),
    }
    assert {e["record_id"]: (e["late"], e["voided"], e["counted"]) for e in explained["data_quality"]} == {
        s["S1"]: (False, False, True),
        s["S2"]: (False, False, True),
        s["S3"]: (True, False, False),
        s["S4"]: (False, True, False),
    }


def test_assess_explain_table_csv_and_a_unit_without_data(world: World) -> None:
    cli = world.cli
    table = read(cli, "assess", "explain", "--period", PERIOD, "--unit", A, "--metric", "coverage").stdout
    assert table.splitlines()[0] == f"coverage of {A} in {PERIOD}: 0.5000 (1 / 2)"
    text = read(
        cli, "assess", "explain", "--period", PERIOD, "--unit", A, "--metric", "data_quality", "--format", "csv"
    ).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["record_id", "community", "late", "voided", "counted"]
    assert len(rows) == 4 and sum(r["counted"] == "true" for r in rows) == 2
    empty = read_json(cli, "assess", "explain", "--period", PERIOD, "--unit", D, "--metric", "coverage")
    assert (empty["value"], empty["numerator"], empty["denominator"], empty["evidence"]) == (None, 0, 0, [])
    county = read_json(cli, "assess", "explain", "--period", PERIOD, "--unit", COUNTY, "--metric", "coverage")
    assert (county["numerator"], county["denominator"], len(county["evidence"])) == (3, 4, 4)


# ---- visits overdue, audit responsibility ------------------------------------------------------------------
OVERDUE_FIELDS = ["community", "resident", "provider", "every", "starts_on", "last_visit", "due", "days_overdue"]


def test_visits_overdue_lists_who_waited_too_long_and_not_who_was_visited_recently(world: World) -> None:
    cli = world.cli
    # Judged now, pinned: the database's clock after the world was recorded, so a local midnight
    # passing during the run changes nothing (the day judged is that moment's local day).
    now = db_clock(cli.url)
    pin = ("--as-of", now.isoformat())
    due = date.fromisoformat(d(70))  # R1's last active visit was S2 on d(40) (S4 was voided)
    expected = [
        {
            "community": "HZ-001", "resident": "R1", "provider": "P1", "every": 30, "starts_on": FIRST.isoformat(),
            "last_visit": d(40), "due": due.isoformat(), "days_overdue": (now.astimezone(TZ).date() - due).days,
        }
    ]  # fmt: skip
    # R4's plan (every 7 days) started after the period and R4 was served yesterday: not overdue.
    assert read_json(cli, "visits", "overdue", *pin) == expected
    assert read_json(cli, "visits", "overdue", "--community", "HZ-001", *pin) == expected
    assert read_json(cli, "visits", "overdue", "--township", "八步区/贺街镇", *pin) == expected
    assert read_json(cli, "visits", "overdue", "--county", "八步区", *pin) == expected
    assert read_json(cli, "visits", "overdue", "--township", "八步区/莲塘镇", *pin) == []
    text = read(cli, "visits", "overdue", "--format", "csv", *pin).stdout
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == OVERDUE_FIELDS and rows[1][:2] == ["HZ-001", "R1"] and len(rows) == 2


RESPONSIBILITY_FIELDS = ["obligation", "subject", "detail", "status", "evidence"]


def test_audit_responsibility_lists_every_obligation_with_its_status(world: World) -> None:
    cli = world.cli
    s, items = world.records, world.items
    rows = read_json(cli, "audit", "responsibility", "--unit", A, "--period", PERIOD)
    assert all(list(r) == RESPONSIBILITY_FIELDS for r in rows)
    assert {r["obligation"] for r in rows} == {"duty", "debriefing", "visit_plan", "pairing", "target", "supervision"}
    assert {r["status"] for r in rows} <= STATUSES
    got = [(r["obligation"], r["subject"], r["status"]) for r in rows]
    assert got == [
        ("duty", "O-2 李明", "met"),
        ("duty", "O-1 黄志明", "met"),
        ("debriefing", "O-1 黄志明", "met"),
        ("visit_plan", "HZ-001/R1", "missed"),  # the third window went without a visit
        ("pairing", "HZ-001/P1→R1", "met"),
        ("target", "coverage", "missed"),
        ("target", "minutes (life_care)", "met"),
        ("target", "records", "missed"),
        ("supervision", "补齐巡访记录", "missed"),  # resolved, but after it was due
        ("supervision", "更新结对名单", "overdue"),
    ]
    evidence = {(r["obligation"], r["subject"]): r["evidence"] for r in rows}
    assert evidence[("pairing", "HZ-001/P1→R1")] == [s["S1"]]
    assert evidence[("visit_plan", "HZ-001/R1")] == [
        f"{d(0)}..{d(29)}: {s['S1']}",
        f"{d(30)}..{d(59)}: {s['S2']}",
        f"{d(60)}..{d(89)}: none",
    ]
    assert evidence[("supervision", "更新结对名单")] == [f"item {items['I2']}"]
    assert len(evidence[("debriefing", "O-1 黄志明")]) == 1

    b_rows = read_json(cli, "audit", "responsibility", "--unit", B, "--period", PERIOD)
    assert [(r["obligation"], r["subject"], r["status"]) for r in b_rows] == [
        ("duty", "O-3 陈芳", "met"),
        ("debriefing", "O-3 陈芳", "missed"),
        ("target", "records", "met"),
    ]
    assert read_json(cli, "audit", "responsibility", "--unit", D, "--period", PERIOD) == []

    # The running month: nothing is missed yet, duties and debriefings are open.
    this_month = f"{local_today():%Y-%m}"  # read now, not at import: a month may have ended since
    current = read_json(cli, "audit", "responsibility", "--unit", A, "--period", this_month)
    assert {r["status"] for r in current} <= STATUSES
    assert [(r["subject"], r["status"]) for r in current if r["obligation"] in ("duty", "debriefing")] == [
        ("O-2 李明", "open"),
        ("O-1 黄志明", "open"),
        ("O-1 黄志明", "open"),
    ]
    text = read(cli, "audit", "responsibility", "--unit", A, "--period", PERIOD, "--format", "csv").stdout
    assert next(csv.reader(io.StringIO(text))) == RESPONSIBILITY_FIELDS


# ---- reproducible as of a moment -------------------------------------------------------------------------
def last_recorded_at(url: str) -> str:
    """The recorded time of the last commit, rounded up to the millisecond, as ISO 8601 in UTC."""
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            (text_value,) = conn.execute("SELECT max(recorded_at) FROM taizhang_commits").fetchone()
        finally:
            conn.close()
        moment = datetime.fromisoformat(text_value.replace("Z", "+00:00"))
    else:
        import psycopg

        with psycopg.connect(url) as pg:
            (moment,) = pg.execute("SELECT max(recorded_at) FROM taizhang_commits").fetchone()  # type: ignore[misc]
    moment = moment.astimezone(UTC)
    ceiling = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if ceiling < moment:
        ceiling += timedelta(milliseconds=1)
    return ceiling.isoformat(timespec="milliseconds")


def as_of_outputs(cli: Cli, as_of: str, tmp_path: Path, tag: str) -> dict[str, bytes]:
    """Everything that takes --as-of, as bytes."""
    cli.ok("projections", "run")

    def out(*args: str) -> bytes:
        result = cli.ok(*args, "--as-of", as_of)
        assert result.stderr == "", result.stderr
        return result.stdout_bytes

    outputs = {
        "township-json": out("assess", "run", "--period", PERIOD, "--level", "township", "--format", "json"),
        "county-json": out("assess", "run", "--period", PERIOD, "--level", "county", "--format", "json"),
        "township-csv": out("assess", "run", "--period", PERIOD, "--level", "township", "--format", "csv"),
        "audit-A": out("audit", "responsibility", "--unit", A, "--period", PERIOD, "--format", "json"),
        "audit-B": out("audit", "responsibility", "--unit", B, "--period", PERIOD, "--format", "json"),
        "overdue": out("visits", "overdue", "--format", "json"),
    }
    for metric in METRICS:
        outputs[f"explain-{metric}"] = out(
            "assess", "explain", "--period", PERIOD, "--unit", A, "--metric", metric, "--format", "json"
        )
    page = tmp_path / f"{tag}.html"
    result = cli.ok(
        "assess",
        "run",
        "--period",
        PERIOD,
        "--level",
        "township",
        "--format",
        "html",
        "--output",
        str(page),
        "--as-of",
        as_of,
    )
    assert result.exit_code == 0
    outputs["html"] = page.read_bytes()
    return outputs


def test_assess_as_of_is_byte_identical_however_much_is_recorded_later(run: Cli, tmp_path: Path) -> None:
    world = build_world(run)
    cli = run
    s, items = world.records, world.items
    as_of = last_recorded_at(cli.url)  # by the database clock, which stamps what is recorded
    time.sleep(1.1)  # everything below is recorded (database clock) after the as-of moment

    first = as_of_outputs(cli, as_of, tmp_path, "first")
    doc = orjson.loads(first["township-json"])
    # The moment judged, shown in the store's zone: the same instant to the millisecond.
    assert isinstance(doc["as_of"], str) and doc["as_of"].endswith("+08:00")
    assert datetime.fromisoformat(doc["as_of"]) == datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    heads = {row["head"] for row in read_json(cli, "projections", "status")}
    assert {doc["position"]} == heads  # everything recorded so far was before the as-of moment
    assert {u["unit"]: u["rank"] for u in doc["units"]} == {B: 1, C: 1, A: 3, D: None}
    assert as_of_outputs(cli, as_of, tmp_path, "again") == first  # twice in a row

    # Later: services, corrections, voids, residents, communities, officials, duties, debriefings,
    # visit plans, pairings, targets, decompositions and supervision items.
    record(cli, "HZ-001", "life_care", ["R2"], ["P2"], d(15), 30)
    record(cli, "LT-01", "counseling", ["R1"], ["P1"], d(20), 30)  # breaks the tie of B and C
    record(cli, "HZ-001", "rights_protection", ["R1"], ["P1"], d(70), 25, entered=False)
    cli.ok("service", "correct", "HZ-001", s["S1"], "--minutes", "50", "--reason", "时长登记有误")
    cli.ok("service", "correct", "HZ-001", s["S3"], "--kind", "life_care", "--reason", "类型登记有误")
    cli.ok("service", "void", "HZ-001", s["S2"], "--reason", "重复登记")
    cli.ok(
        "resident",
        "enroll",
        "HZ-001",
        "R5",
        "--name",
        "覃五",
        "--category",
        "disabled",
        "--enrolled-on",
        ESTABLISHED.isoformat(),
    )
    cli.ok("resident", "update", "HZ-001", "R4", "--category", "elderly_living_alone")
    cli.ok("resident", "depart", "HZ-001", "R2", "--reason", "deceased", "--on", d(70))
    establish(cli, "XD-01", "信都社区", "八步区", "信都镇", "信都村")
    cli.ok(
        "resident",
        "enroll",
        "GA-01",
        "R1",
        "--name",
        "蒙六",
        "--category",
        "dibao",
        "--enrolled-on",
        ESTABLISHED.isoformat(),
    )
    cli.ok(
        "provider",
        "register",
        "GA-01",
        "P1",
        "--name",
        "韦七",
        "--role",
        "grid_worker",
        "--registered-on",
        ESTABLISHED.isoformat(),
    )
    record(cli, "GA-01", "life_care", ["R1"], ["P1"], d(12), 30)
    cli.ok("official", "register", "O-4", "--name", "韦八", "--title", "桂岭镇党委书记", actor=ADMIN)
    cli.ok("duty", "assign", "O-4", "--unit", C, "--duty", "secretary", "--from", FIRST.isoformat(), actor=ADMIN)
    cli.ok("duty", "end", "O-2", "--unit", A, "--duty", "contact_point", "--on", d(10), actor=ADMIN)
    cli.ok("duty", "assign", "O-2", "--unit", COUNTY, "--duty", "deputy", "--from", FIRST.isoformat(), actor=ADMIN)
    cli.ok("debrief", "file", "O-3", "--unit", B, "--period", PERIOD, "--summary", "补交述职", actor=SUP)
    cli.ok("visit-plan", "set", "HZ-001", "R1", "--every", "20", "--provider", "P2", "--from", d(30))
    cli.ok("visit-plan", "end", "HZ-001", "R4")
    cli.ok("visit-plan", "set", "LT-01", "R1", "--every", "15", "--provider", "P1", "--from", FIRST.isoformat())
    cli.ok("pairing", "end", "HZ-001", "--provider", "P1", "--resident", "R1", "--on", d(30))
    cli.ok("pairing", "add", "HZ-001", "--provider", "P2", "--resident", "R4", "--on", FIRST.isoformat())
    cli.ok("target", "set", "--unit", A, "--period", PERIOD, "--metric", "coverage", "--at-least", "0.5", actor=SUP)
    cli.ok(
        "target", "set", "--unit", B, "--period", PERIOD, "--metric", "residents_served", "--at-least", "3", actor=SUP
    )
    cli.ok("target", "set", "--unit", COUNTY, "--period", PERIOD, "--metric", "records", "--at-least", "9", actor=SUP)
    cli.ok(*_dec(f"{A}=6", f"{B}=2", f"{C}=1"), actor=SUP)
    new_item = cli.json("supervise", "open", "--unit", C, "--item", "建立巡访台账", "--due", d(25), actor=SUP)[
        "item_id"
    ]
    cli.ok("supervise", "resolve", items["I2"], "--note", "已更新", actor=SUP)
    cli.ok("supervise", "resolve", new_item, "--note", "已建立", actor=SUP)

    later = as_of_outputs(cli, as_of, tmp_path, "later")
    for name in first:
        assert later[name] == first[name], f"{name} changed although --as-of was given"

    # …while the assessment of now has moved on.
    now = assess_json(cli)
    assert now["units"] != doc["units"]
    assert by_unit(now)[A]["metrics"]["coverage"] != by_unit(doc)[A]["metrics"]["coverage"]
    assert by_unit(now)[B]["rank"] != by_unit(now)[C]["rank"]
