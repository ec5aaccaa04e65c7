"""`taizhang ledger entries|summary` and the directories, end to end, on SQLite and PostgreSQL.

A small history with known content is built through the CLI (DESIGN §5):

- 3 communities in 2 townships of 2 counties: HZ-001 and HZ-002 in 八步区/贺街镇,
  both with records and with the same resident codes (a township's residents_served
  counts people, not codes); AA-01 in 钟山县 has a resident and a provider but no
  service record at all, and its code sorts first while its county sorts last, so
  "sorted by county, township, community" is visible;
- residents with categories given as slugs, with `-` and in Chinese
  (留守儿童 / left_behind_child among them), one departed, one provider retired;
- 12 services in September and October 2026: two at the same minute (the order
  falls back on record_id), one at 00:30 local time (the previous day in UTC),
  one at 23:59 on the last day of a month (typed in UTC), one corrected by another
  actor (new minutes and residents, and moved into August, which makes it late), one
  voided, one with a note, one entered in the paper ledger 10 days after (late),
  one 7 days after (not late), one without an entry date (recorded long after,
  so late).

Every expected value below is computed from that specification, never taken
from an output. Stores that a test writes to are its own (function scope); the
module-scoped history is only read.
"""

from __future__ import annotations

import csv
import io
import re
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from commands.cli import cli
from commands.output import display_width
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.printed import read_printed
from tests.integration.test_service import db_clock

TZ = ZoneInfo("Asia/Shanghai")  # the default zone of a store made by `init`
ACTOR, CORRECTOR = "clerk01", "clerk02"
TAIZHANG_VARS = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")

ENTRY_FIELDS = [
    "record_id", "community", "community_name", "county", "township", "kind", "residents", "providers",
    "occurred_at", "minutes", "place", "note", "status", "revision", "late", "recorded_at", "recorded_by",
    "revised_at", "revised_by",
]  # fmt: skip
RESIDENT_FIELDS = [
    "code", "name", "birth_date", "gender", "categories", "grid", "household", "enrolled_on", "departed_on",
    "departure_reason",
]  # fmt: skip
PROVIDER_FIELDS = ["code", "name", "role", "team", "registered_on", "retired_on"]
COMMUNITY_FIELDS = [
    "code", "name", "county", "township", "village", "natural_villages", "established_on", "residents",
    "providers", "records",
]  # fmt: skip
KIND_SLUGS = ["production_development", "life_care", "emergency_aid", "counseling", "family_care", "rights_protection"]
KIND_ZH = {
    "production_development": "生产发展",
    "life_care": "生活照料",
    "emergency_aid": "应急救助",
    "counseling": "心理抚慰",
    "family_care": "亲情关怀",
    "rights_protection": "权益维护",
}
STATUS_FIELDS = ["projection", "position", "head", "lag"]


# ---- running the CLI ---------------------------------------------------------------------------
@dataclass
class Run:
    """`run("ledger", "entries")` is `taizhang --db URL --key-file KEY --actor clerk01 ledger entries`."""

    url: str
    key: Path
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def backend(self) -> str:
        return "sqlite" if self.url.startswith("sqlite:") else "postgres"

    def __call__(
        self, *args: str, actor: str | None = ACTOR, lang: str | None = None, key: Path | None = None
    ) -> Result:
        argv = ["--db", self.url, "--key-file", str(key or self.key)]
        if actor is not None:
            argv += ["--actor", actor]
        if lang is not None:
            argv += ["--lang", lang]
        if args[:1] == ("init",) and self.backend == "postgres" and "--admin" not in args:
            args = (*args, "--no-access-control")  # PostgreSQL requires --admin otherwise
        clean: dict[str, str | None] = {name: None for name in TAIZHANG_VARS}
        return self.runner.invoke(cli, [*argv, *args], env=clean, catch_exceptions=True)

    def ok(self, *args: str, quiet: bool = True, **kwargs: Any) -> Result:
        """A command that must succeed (and, when `quiet`, say nothing on stderr)."""
        result = self(*args, **kwargs)
        assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert result.exception is None, result.exc_info
        if quiet:
            assert result.stderr == "", f"{args}: unexpected stderr {result.stderr!r}"
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        return orjson.loads(self.ok(*args, "--format", "json", **kwargs).stdout)

    def head(self) -> int:
        """The log's head as `projections status` reports it (events in the store)."""
        rows = self.json("projections", "status")
        assert len({r["head"] for r in rows}) == 1
        row = rows[0]
        return int(row["head"])


def error_line(result: Result, code: int, *needles: str, prefix: str = "Error: ") -> str:
    """The contract of a failed command: exit code, nothing on stdout, one line on stderr, no traceback."""
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}\n{result.stdout}\n{result.stderr}"
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith(prefix), lines[0]
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def utc_now_ms(url: str) -> datetime:
    """Now by the database's clock, which stamps recorded times (PostgreSQL keeps the real clock
    while CI moves the test process's; .ci/clock.sh)."""
    now = db_clock(url)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def parse_instant(text_value: str) -> datetime:
    moment = datetime.fromisoformat(text_value.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, f"{text_value!r} has no offset"
    return moment


# ---- the history -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Community:
    code: str
    name: str
    county: str
    township: str
    village: str


COMMUNITIES = [
    Community("HZ-001", "石门新型农村社区", "八步区", "贺街镇", "石门村"),
    Community("HZ-002", "龙井新型农村社区", "八步区", "贺街镇", "龙井村"),
    Community("AA-01", "回龙新型农村社区", "钟山县", "回龙镇", "回龙村"),  # no service record at all
]
BY_CODE = {c.code: c for c in COMMUNITIES}


@dataclass(frozen=True)
class Resident:
    community: str
    code: str
    name: str
    given: tuple[str, ...]  # --category values as typed
    categories: tuple[str, ...]  # their slugs


RESIDENTS = [
    Resident("HZ-001", "R1", "张秀英", ("留守老人",), ("left_behind_elderly",)),
    Resident("HZ-001", "R2", "王小明", ("left_behind_child",), ("left_behind_child",)),
    Resident("HZ-001", "R3", "刘芳", ("left-behind-woman",), ("left_behind_woman",)),
    Resident("HZ-001", "R4", "王小华", ("留守儿童", "disabled"), ("left_behind_child", "disabled")),
    Resident("HZ-002", "R1", "陈阿婆", ("五保户", "独居老人"), ("five_guarantee", "elderly_living_alone")),
    Resident("HZ-002", "R2", "黄小宝", ("留守儿童",), ("left_behind_child",)),
    Resident("HZ-002", "R3", "孙婆婆", ("独居老人",), ("elderly_living_alone",)),
    Resident("AA-01", "R1", "赵大爷", ("five_guarantee",), ("five_guarantee",)),
]
CATEGORIES_OF = {(r.community, r.code): set(r.categories) for r in RESIDENTS}
DEPARTED = ("HZ-002", "R3", "2026-06-01", "moved")

PROVIDERS = [  # community, code, name, --role as typed, role slug
    ("HZ-001", "P1", "李建国", "党员", "party_member"),
    ("HZ-001", "P2", "陈志强", "volunteer", "volunteer"),
    ("HZ-002", "P1", "周老师", "社工", "social_worker"),
    ("HZ-002", "P2", "吴干部", "干部", "cadre"),
    ("AA-01", "P1", "周网格", "grid-worker", "grid_worker"),
]
RETIRED = ("HZ-002", "P2", "2026-06-30")


@dataclass(frozen=True)
class Service:
    key: str
    community: str
    kind: str  # slug
    residents: tuple[str, ...]
    providers: tuple[str, ...]
    at: str  # local time of the store
    minutes: int
    place: str | None = None  # slug
    note: str | None = None
    entered_on: str | None = None
    kind_given: str | None = None  # how --kind is typed, when not the slug
    place_given: str | None = None
    at_given: str | None = None  # how --at is typed, when not the local time

    @property
    def occurred(self) -> datetime:
        return datetime.strptime(self.at, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)

    def args(self, record_id: str) -> list[str]:
        args = ["service", "record", self.community, "--kind", self.kind_given or self.kind]
        for r in self.residents:
            args += ["--resident", r]
        for p in self.providers:
            args += ["--provider", p]
        args += ["--at", self.at_given or self.at, "--minutes", str(self.minutes), "--record-id", record_id]
        if self.place:
            args += ["--place", self.place_given or self.place]
        if self.note:
            args += ["--note", self.note]
        if self.entered_on:
            args += ["--entered-on", self.entered_on]
        return args


SERVICES = [
    Service("S1", "HZ-001", "life_care", ("R1",), ("P1",), "2026-09-03 09:30", 45, "home_visit", None, "2026-09-03",
            kind_given="生活照料", place_given="入户"),
    Service("S2", "HZ-001", "counseling", ("R2", "R4"), ("P2",), "2026-09-03 09:30", 60, "happiness_home",
            "送学习用品，辅导作业", "2026-09-04"),
    Service("S3", "HZ-001", "family_care", ("R2",), ("P1", "P2"), "2026-09-15 15:00", 30, None, None, "2026-09-15"),
    Service("S4", "HZ-001", "emergency_aid", ("R3",), ("P1",), "2026-10-01 00:30", 120, "home_visit", None,
            "2026-10-01"),
    Service("S5", "HZ-001", "life_care", ("R1",), ("P2",), "2026-10-08 10:00", 20, None, None, "2026-10-18",
            kind_given="life-care"),
    Service("S6", "HZ-001", "life_care", ("R1", "R4"), ("P1",), "2026-10-12 09:00", 40, "service_center", None,
            "2026-10-19"),
    Service("S7", "HZ-001", "rights_protection", ("R3",), ("P2",), "2026-10-20 14:00", 25, None, None, "2026-10-20"),
    Service("S8", "HZ-002", "life_care", ("R1",), ("P1",), "2026-09-10 08:00", 35, "home_visit", None, "2026-09-10",
            kind_given="生活照料"),
    Service("S9", "HZ-002", "counseling", ("R2",), ("P1",), "2026-09-25 16:00", 50, None, None, "2026-09-25"),
    Service("S10", "HZ-002", "family_care", ("R1", "R2"), ("P1",), "2026-10-05 10:00", 15, None, None, "2026-10-05"),
    Service("S11", "HZ-002", "production_development", ("R1",), ("P1",), "2026-10-31 23:59", 30, None, None,
            "2026-10-31", at_given="2026-10-31T15:59Z"),  # given in UTC: still 31 October locally
    Service("S12", "HZ-002", "life_care", ("R2",), ("P1",), "2026-10-15 11:00", 60),
]  # fmt: skip
CORRECTED = "S3"
CORRECTED_AT = "2026-08-28 15:00"  # into another month
CORRECTED_MINUTES = 90
CORRECTED_RESIDENTS = ("R2", "R3")
VOIDED = "S7"
NOTE_KEY = "S2"
EVENTS = len(COMMUNITIES) + len(RESIDENTS) + 1 + len(PROVIDERS) + 1 + len(SERVICES) + 2


@dataclass
class Record:
    """What a record should look like in `ledger entries`, computed from the specification."""

    service: Service
    record_id: str
    kind: str
    residents: tuple[str, ...]
    minutes: int
    status: str
    revision: int
    late: bool
    recorded_by: str
    revised_by: str
    recorded_window: tuple[datetime, datetime]
    revised_window: tuple[datetime, datetime]
    occurred: datetime

    @property
    def community(self) -> str:
        return self.service.community

    @property
    def day(self) -> date:
        return self.occurred.date()

    @property
    def month(self) -> str:
        return self.occurred.strftime("%Y-%m")

    def entry(self) -> dict[str, Any]:
        """The JSON object without recorded_at / revised_at (checked against their windows)."""
        c = BY_CODE[self.community]
        return {
            "record_id": self.record_id,
            "community": c.code,
            "community_name": c.name,
            "county": c.county,
            "township": c.township,
            "kind": self.kind,
            "residents": list(self.residents),
            "providers": list(self.service.providers),
            "occurred_at": self.occurred.isoformat(),
            "minutes": self.minutes,
            "place": self.service.place,
            "note": self.service.note,
            "status": self.status,
            "revision": self.revision,
            "late": self.late,
            "recorded_by": self.recorded_by,
            "revised_by": self.revised_by,
        }


@dataclass
class History:
    run: Run
    records: dict[str, Record]  # by service key

    def ordered(self, include_voided: bool = False) -> list[Record]:
        chosen = [r for r in self.records.values() if include_voided or r.status == "active"]
        return sorted(chosen, key=lambda r: (r.occurred, r.record_id))


def build_history(run: Run) -> History:
    run.ok("init", quiet=False)
    for c in COMMUNITIES:
        run.ok("community", "establish", c.code, "--name", c.name, "--county", c.county, "--township", c.township,
               "--village", c.village, "--established-on", "2026-01-01")  # fmt: skip
    for r in RESIDENTS:
        args = ["resident", "enroll", r.community, r.code, "--name", r.name]
        for given in r.given:
            args += ["--category", given]
        run.ok(*args)
    run.ok("resident", "depart", DEPARTED[0], DEPARTED[1], "--on", DEPARTED[2], "--reason", DEPARTED[3])
    for community, code, name, role, _slug in PROVIDERS:
        run.ok("provider", "register", community, code, "--name", name, "--role", role)
    run.ok("provider", "retire", RETIRED[0], RETIRED[1], "--on", RETIRED[2])
    records: dict[str, Record] = {}
    for s in SERVICES:
        record_id = str(uuid.uuid4())
        before = utc_now_ms(run.url)
        doc = run.json(*s.args(record_id))
        after = utc_now_ms(run.url)
        assert doc == {"record_id": record_id, "created": True}
        if s.entered_on:
            late = date.fromisoformat(s.entered_on) - s.occurred.date() > timedelta(days=7)
        else:
            late = before - s.occurred > timedelta(days=7)
        records[s.key] = Record(s, record_id, s.kind, s.residents, s.minutes, "active", 1, late, ACTOR, ACTOR,
                                (before, after), (before, after), s.occurred)  # fmt: skip
    fixed = records[CORRECTED]
    before = utc_now_ms(run.url)
    run.ok("service", "correct", fixed.community, fixed.record_id, "--minutes", str(CORRECTED_MINUTES),
           "--at", CORRECTED_AT,
           *[a for r in CORRECTED_RESIDENTS for a in ("--resident", r)], "--reason", "时长登记有误",
           actor=CORRECTOR)  # fmt: skip
    fixed.revised_window = (before, utc_now_ms(run.url))
    fixed.minutes, fixed.residents = CORRECTED_MINUTES, CORRECTED_RESIDENTS
    fixed.revision, fixed.revised_by = 2, CORRECTOR
    fixed.occurred = datetime.strptime(CORRECTED_AT, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)
    # late follows the corrected time: the paper entry (15 Sep) is now 18 days after it.
    fixed.late = date.fromisoformat(fixed.service.entered_on or "") - fixed.occurred.date() > timedelta(days=7)
    gone = records[VOIDED]
    before = utc_now_ms(run.url)
    run.ok("service", "void", gone.community, gone.record_id, "--reason", "重复登记")
    gone.revised_window = (before, utc_now_ms(run.url))
    gone.status, gone.revision = "voided", 1
    # On PostgreSQL queries read the views as they stand: bring them to the head first.
    run.ok("projections", "run")
    return History(run, records)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hist(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """ONE store per backend for the read-only tests of this module."""
    tmp = tmp_path_factory.mktemp(f"ledger-cli-{request.param}")
    if request.param == "sqlite":
        yield build_history(Run(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"))
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build_history(Run(url, tmp / "taizhang.key"))
    finally:
        drop_pg_database(admin, url)


@pytest.fixture
def fresh(db_url: str, tmp_path: Path) -> Run:
    """The CLI on a store of its own that does not exist yet (both backends)."""
    return Run(db_url, tmp_path / "keys" / "taizhang.key")


# ---- filters: CLI arguments and what they select --------------------------------------------------
@dataclass(frozen=True)
class Select:
    communities: frozenset[str] | None = None
    date_from: date | None = None
    date_to: date | None = None
    kinds: frozenset[str] = frozenset()
    category: str | None = None

    def keeps(self, r: Record) -> bool:
        if self.communities is not None and r.community not in self.communities:
            return False
        if self.date_from and r.day < self.date_from:
            return False
        if self.date_to and r.day > self.date_to:
            return False
        if self.kinds and r.kind not in self.kinds:
            return False
        if self.category and not any(self.category in CATEGORIES_OF[(r.community, x)] for x in r.residents):
            return False
        return True

    def units(self) -> list[Community]:
        return [c for c in COMMUNITIES if self.communities is None or c.code in self.communities]


HEJIE = frozenset({"HZ-001", "HZ-002"})
FILTERS = [
    pytest.param([], Select(), id="all"),
    pytest.param(["--community", "HZ-001"], Select(frozenset({"HZ-001"})), id="community"),
    pytest.param(["--community", "HZ-002"], Select(frozenset({"HZ-002"})), id="community-2"),
    pytest.param(["--community", "AA-01"], Select(frozenset({"AA-01"})), id="community-without-records"),
    pytest.param(["--township", "八步区/贺街镇"], Select(HEJIE), id="township"),
    pytest.param(["--county", "八步区"], Select(HEJIE), id="county"),
    pytest.param(["--county", "钟山县"], Select(frozenset({"AA-01"})), id="county-without-records"),
    pytest.param(["--township", "钟山县/回龙镇"], Select(frozenset({"AA-01"})), id="township-without-records"),
    pytest.param(["--from", "2026-10-01"], Select(date_from=date(2026, 10, 1)), id="from-local-midnight"),
    pytest.param(["--to", "2026-09-30"], Select(date_to=date(2026, 9, 30)), id="to-local-day"),
    pytest.param(["--from", "2026-09-03", "--to", "2026-09-03"], Select(date_from=date(2026, 9, 3), date_to=date(2026, 9, 3)), id="one-day"),
    pytest.param(["--from", "2026/10/31", "--to", "2026年10月31日"], Select(date_from=date(2026, 10, 31), date_to=date(2026, 10, 31)), id="last-day-other-date-forms"),
    pytest.param(["--from", "2026-09-10", "--to", "2026-10-15"], Select(date_from=date(2026, 9, 10), date_to=date(2026, 10, 15)), id="partial-months"),
    pytest.param(["--from", "2026-09-01", "--to", "2026-10-31"], Select(date_from=date(2026, 9, 1), date_to=date(2026, 10, 31)), id="whole-months"),
    pytest.param(["--from", "2026-10-02", "--to", "2026-10-30"], Select(date_from=date(2026, 10, 2), date_to=date(2026, 10, 30)), id="inside-one-month"),
    pytest.param(["--kind", "life_care"], Select(kinds=frozenset({"life_care"})), id="kind"),
    pytest.param(["--kind", "life-care", "--kind", "心理抚慰"], Select(kinds=frozenset({"life_care", "counseling"})), id="kinds-repeated"),
    pytest.param(["--category", "left_behind_child"], Select(category="left_behind_child"), id="category"),
    pytest.param(["--category", "留守儿童"], Select(category="left_behind_child"), id="category-zh"),
    pytest.param(["--category", "left-behind-woman"], Select(category="left_behind_woman"), id="category-corrected-in"),
    pytest.param(["--county", "八步区", "--kind", "life_care", "--from", "2026-10-01", "--to", "2026-10-31"],
                 Select(HEJIE, date(2026, 10, 1), date(2026, 10, 31), frozenset({"life_care"})), id="combined"),
    pytest.param(["--community", "HZ-001", "--category", "留守儿童", "--from", "2026-09-10"],
                 Select(frozenset({"HZ-001"}), date_from=date(2026, 9, 10), category="left_behind_child"), id="combined-category"),
    pytest.param(["--kind", "counseling", "--category", "left_behind_child", "--to", "2026-09-20"],
                 Select(date_to=date(2026, 9, 20), kinds=frozenset({"counseling"}), category="left_behind_child"), id="kind-and-category"),
]  # fmt: skip


# ---- ledger entries ----------------------------------------------------------------------------
def check_entries(rows: list[dict[str, Any]], expected: Sequence[Record]) -> None:
    for row in rows:
        assert list(row) == ENTRY_FIELDS
    assert [r["record_id"] for r in rows] == [e.record_id for e in expected]
    for row, e in zip(rows, expected, strict=True):
        assert {k: v for k, v in row.items() if k not in ("recorded_at", "revised_at")} == e.entry()
        recorded, revised = parse_instant(row["recorded_at"]), parse_instant(row["revised_at"])
        slack = timedelta(seconds=1)  # recorded by the database clock of this machine, in ms
        assert e.recorded_window[0] - slack <= recorded <= e.recorded_window[1] + slack
        assert e.revised_window[0] - slack <= revised <= e.revised_window[1] + slack
        if e.revision == 1 and e.status == "active":
            assert row["revised_at"] == row["recorded_at"]
        else:
            assert revised > recorded


@pytest.mark.clock  # recorded times, late and --as-of against the clock
@pytest.mark.parametrize("args, select", FILTERS)
def test_entries_json_filters(hist: History, args: list[str], select: Select) -> None:
    rows = hist.run.json("ledger", "entries", *args)
    check_entries(rows, [r for r in hist.ordered() if select.keeps(r)])


@pytest.mark.parametrize(
    "args, select",
    [
        pytest.param([], Select(), id="all"),
        pytest.param(["--kind", "权益维护"], Select(kinds=frozenset({"rights_protection"})), id="only-the-voided-kind"),
        pytest.param(["--category", "left_behind_woman"], Select(category="left_behind_woman"), id="category"),
    ],
)
def test_entries_include_voided(hist: History, args: list[str], select: Select) -> None:
    rows = hist.run.json("ledger", "entries", "--include-voided", *args)
    expected = [r for r in hist.ordered(include_voided=True) if select.keeps(r)]
    assert any(r.status == "voided" for r in expected)
    check_entries(rows, expected)
    without = hist.run.json("ledger", "entries", *args)
    assert [r["record_id"] for r in without] == [r.record_id for r in expected if r.status == "active"]


@pytest.mark.clock  # recorded times, late and --as-of against the clock
def test_entries_show_the_history_facts(hist: History) -> None:
    """The particular records: tie on occurred_at, corrected, voided, noted, late — spelled out."""
    rows = {r["record_id"]: r for r in hist.run.json("ledger", "entries", "--include-voided")}
    rec = hist.records
    fixed = rows[rec[CORRECTED].record_id]
    assert (fixed["revision"], fixed["minutes"], fixed["residents"]) == (2, 90, ["R2", "R3"])
    assert (fixed["recorded_by"], fixed["revised_by"]) == (ACTOR, CORRECTOR)
    assert (fixed["occurred_at"], fixed["late"]) == ("2026-08-28T15:00:00+08:00", True)
    assert rows[rec[VOIDED].record_id]["status"] == "voided"
    assert rows[rec[NOTE_KEY].record_id]["note"] == "送学习用品，辅导作业"
    assert [rows[rec[k].record_id]["late"] for k in ("S5", "S6", "S12", "S1")] == [True, False, True, False]
    # S1 and S2 happened at the same minute: record_id decides.
    ids = [r["record_id"] for r in hist.run.json("ledger", "entries", "--from", "2026-09-03", "--to", "2026-09-03")]
    assert ids == sorted([rec["S1"].record_id, rec["S2"].record_id])
    # 00:30 local on 1 October is 30 September in UTC: it belongs to October.
    assert rows[rec["S4"].record_id]["occurred_at"] == "2026-10-01T00:30:00+08:00"


# ---- ledger summary ----------------------------------------------------------------------------
LEVEL_KEYS = {
    "county": ["county"],
    "township": ["county", "township"],
    "community": ["county", "township", "community"],
}


def summary_keys(by: str, per_month: bool) -> list[str]:
    keys = list(LEVEL_KEYS[by]) + (["community_name"] if by == "community" else [])
    return keys + (["month"] if per_month else []) + ["records", "minutes", "residents_served", "kinds"]


def expected_summary(
    hist: History,
    by: str,
    select: Select,
    months: Sequence[str] | None = None,
    *,
    records: Sequence[Record] | None = None,
) -> list[dict[str, Any]]:
    """One row per unit (× month) known to the store, zeros included, from the specification."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    served: dict[tuple[str, ...], set[tuple[str, str]]] = {}

    def unit_key(c: Community) -> tuple[str, ...]:
        values = {"county": c.county, "township": c.township, "community": c.code}
        return tuple(values[k] for k in LEVEL_KEYS[by])

    for c in select.units():
        for month in [*months] if months else [None]:
            key = (*unit_key(c), *([month] if month else []))
            if key in groups:
                continue
            row: dict[str, Any] = dict(zip(LEVEL_KEYS[by], unit_key(c), strict=True))
            if by == "community":
                row["community_name"] = c.name
            if month:
                row["month"] = month
            row.update(records=0, minutes=0, residents_served=0, kinds={})
            groups[key], served[key] = row, set()
    chosen = records if records is not None else hist.ordered()
    for r in chosen:
        if r.status != "active" or not select.keeps(r):
            continue
        key = (*unit_key(BY_CODE[r.community]), *([r.month] if months else []))
        row = groups[key]
        row["records"] += 1
        row["minutes"] += r.minutes
        row["kinds"][r.kind] = row["kinds"].get(r.kind, 0) + 1
        for resident in r.residents:
            if select.category is None or select.category in CATEGORIES_OF[(r.community, resident)]:
                served[key].add((r.community, resident))
    for key, row in groups.items():
        row["residents_served"] = len(served[key])
    return [groups[k] for k in sorted(groups)]


def normalised(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with zero counts left out of `kinds` (the contract says `{kind: records}`, zeros optional)."""
    out = []
    for row in rows:
        kinds = row["kinds"]
        assert isinstance(kinds, dict) and set(kinds) <= set(KIND_SLUGS), kinds
        out.append({**row, "kinds": {k: v for k, v in kinds.items() if v}})
    return out


def check_summary(rows: list[dict[str, Any]], expected: list[dict[str, Any]], by: str, per_month: bool) -> None:
    for row in rows:
        assert list(row) == summary_keys(by, per_month)
    assert normalised(rows) == expected


@pytest.mark.parametrize("by", ["community", "township", "county"])
@pytest.mark.parametrize("args, select", FILTERS)
def test_summary_json(hist: History, by: str, args: list[str], select: Select) -> None:
    rows = hist.run.json("ledger", "summary", "--by", by, *args)
    check_summary(rows, expected_summary(hist, by, select), by, False)
    for row in rows:
        if select.kinds:
            assert {k for k, v in row["kinds"].items() if v} <= select.kinds


def test_summary_includes_units_without_records_and_sorts_by_county(hist: History) -> None:
    rows = hist.run.json("ledger", "summary", "--by", "community")
    # AA-01 has no record at all; it sorts first by code but its county 钟山县 sorts after 八步区.
    assert [r["community"] for r in rows] == ["HZ-001", "HZ-002", "AA-01"]
    empty = rows[2]
    assert (empty["records"], empty["minutes"], empty["residents_served"]) == (0, 0, 0)
    assert not any(empty["kinds"].values())
    # The voided record (25 minutes, rights_protection) counts nowhere; the correction's minutes do.
    hz = rows[0]
    assert hz["kinds"].get("rights_protection", 0) == 0
    assert hz["minutes"] == sum(
        r.minutes for r in hist.records.values() if r.community == "HZ-001" and r.status == "active"
    )


@pytest.mark.parametrize("by", ["community", "township", "county"])
@pytest.mark.parametrize(
    "args, select, months",
    [
        pytest.param(["--from", "2026-09-01", "--to", "2026-10-31"], Select(date_from=date(2026, 9, 1), date_to=date(2026, 10, 31)), ["2026-09", "2026-10"], id="whole-months"),
        pytest.param(["--from", "2026-09-20", "--to", "2026-10-10"], Select(date_from=date(2026, 9, 20), date_to=date(2026, 10, 10)), ["2026-09", "2026-10"], id="partial-months"),
        pytest.param(["--from", "2026-08-01", "--to", "2026-11-30"], Select(date_from=date(2026, 8, 1), date_to=date(2026, 11, 30)), ["2026-08", "2026-09", "2026-10", "2026-11"], id="wider-months"),
        pytest.param(["--from", "2026-11-01", "--to", "2026-11-30"], Select(date_from=date(2026, 11, 1), date_to=date(2026, 11, 30)), ["2026-11"], id="empty-month"),
        pytest.param(["--from", "2026-09-01", "--to", "2026-10-31", "--category", "left_behind_child"], Select(date_from=date(2026, 9, 1), date_to=date(2026, 10, 31), category="left_behind_child"), ["2026-09", "2026-10"], id="category"),
        pytest.param(["--from", "2026-09-01", "--to", "2026-10-31", "--kind", "life_care", "--township", "八步区/贺街镇"], Select(HEJIE, date(2026, 9, 1), date(2026, 10, 31), frozenset({"life_care"})), ["2026-09", "2026-10"], id="kind-township"),
    ],
)  # fmt: skip
def test_summary_per_month(hist: History, by: str, args: list[str], select: Select, months: list[str]) -> None:
    rows = hist.run.json("ledger", "summary", "--by", by, "--per", "month", *args)
    check_summary(rows, expected_summary(hist, by, select, months), by, True)


@pytest.mark.parametrize("by", ["community", "county"])
def test_summary_per_month_without_a_range(hist: History, by: str) -> None:
    """Without --from/--to the months are the store's; every month with records is there, right."""
    rows = normalised(hist.run.json("ledger", "summary", "--by", by, "--per", "month"))
    for row in rows:
        assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", row["month"]), row
    keys = [(*[row[k] for k in LEVEL_KEYS[by]], row["month"]) for row in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    months = sorted({r.month for r in hist.records.values()})
    assert months == ["2026-08", "2026-09", "2026-10"]  # the correction moved S3 into August
    wanted = [r for r in expected_summary(hist, by, Select(), months) if r["records"]]
    assert [r for r in rows if r["records"]] == wanted
    assert all(r["minutes"] == 0 and r["residents_served"] == 0 and not r["kinds"] for r in rows if not r["records"])


def test_summary_category_counts_only_residents_of_it(hist: History) -> None:
    """Spelled out for 留守儿童 in HZ-001: S2 (R2, R4), S3 (R2, R3 after correction), S6 (R1, R4)."""
    (row,) = hist.run.json("ledger", "summary", "--by", "community", "--community", "HZ-001", "--category", "留守儿童")
    assert row["records"] == 3
    assert row["minutes"] == 60 + 90 + 40
    assert row["residents_served"] == 2  # R2 and R4, not R1 or R3


@pytest.mark.parametrize("by", ["community", "county"])
@pytest.mark.parametrize("args, select", FILTERS)
def test_at_the_head_of_the_log_is_the_current_ledger(hist: History, by: str, args: list[str], select: Select) -> None:
    """--at-position HEAD reads the bitemporal revisions; without it, the monthly totals: they agree."""
    for extra in ([], ["--per", "month"]):
        at_head = hist.run.json("ledger", "summary", "--by", by, *extra, *args, "--at-position", str(EVENTS))
        current = hist.run.json("ledger", "summary", "--by", by, *extra, *args)
        assert normalised(at_head) == normalised(current)
    if by == "county":
        at_head = hist.run.json("ledger", "entries", "--include-voided", *args, "--at-position", str(EVENTS))
        assert at_head == hist.run.json("ledger", "entries", "--include-voided", *args)


def test_summary_residents_served_counts_people_not_codes(hist: History) -> None:
    """R1 and R2 of HZ-001 are not R1 and R2 of HZ-002: 4 + 2 people in 贺街镇, not 4 codes."""
    (town, empty) = hist.run.json("ledger", "summary", "--by", "township")
    assert (town["county"], town["township"], town["residents_served"]) == ("八步区", "贺街镇", 6)
    assert (empty["township"], empty["records"], empty["residents_served"]) == ("回龙镇", 0, 0)
    (county, _) = hist.run.json("ledger", "summary", "--by", "county", "--category", "留守儿童")
    assert county["residents_served"] == 3  # HZ-001 R2, R4 and HZ-002 R2


# ---- --as-of and --at-position -----------------------------------------------------------------
def small_store(run: Run) -> None:
    run.ok("init", quiet=False)
    c = COMMUNITIES[0]
    run.ok("community", "establish", c.code, "--name", c.name, "--county", c.county, "--township", c.township,
           "--village", c.village, "--established-on", "2026-01-01")  # fmt: skip
    run.ok("resident", "enroll", c.code, "R1", "--name", "张秀英", "--category", "留守儿童")
    run.ok("resident", "enroll", c.code, "R2", "--name", "王小明")
    run.ok("provider", "register", c.code, "P1", "--name", "李建国", "--role", "党员")


def record(run: Run, record_id: str, at: str, minutes: int, resident: str = "R1", **kw: Any) -> None:
    run.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", resident, "--provider", "P1",
           "--at", at, "--minutes", str(minutes), "--record-id", record_id, "--entered-on", at[:10], **kw)  # fmt: skip


@pytest.mark.clock  # recorded times, late and --as-of against the clock
def test_as_of_and_at_position(fresh: Run) -> None:
    run = fresh
    small_store(run)
    a, b, c = (str(uuid.UUID(int=i, version=4)) for i in (1, 2, 3))
    record(run, a, "2026-10-05 09:00", 30)
    pos_a = run.head()
    record(run, c, "2026-10-06 09:00", 20, resident="R2")
    pos_c = run.head()
    assert pos_c == pos_a + 1
    noted = utc_now_ms(run.url)
    time.sleep(1.1)  # the database clock moves on
    run.ok("service", "correct", "HZ-001", a, "--minutes", "50", "--reason", "时长有误", actor=CORRECTOR)
    assert run.head() == pos_c + 1
    run.ok("service", "void", "HZ-001", c, "--reason", "重复")
    assert run.head() == pos_c + 2
    record(run, b, "2026-10-04 09:00", 40)
    assert run.head() == pos_c + 3
    run.ok("projections", "run")

    now = run.json("ledger", "entries", "--include-voided")
    by_id = {r["record_id"]: r for r in now}
    assert [r["record_id"] for r in now] == [b, a, c]
    assert (by_id[a]["revision"], by_id[a]["minutes"], by_id[a]["revised_by"]) == (2, 50, CORRECTOR)
    assert by_id[c]["status"] == "voided"
    assert parse_instant(by_id[a]["recorded_at"]) <= noted < parse_instant(by_id[a]["revised_at"])
    assert parse_instant(by_id[c]["recorded_at"]) <= noted < parse_instant(by_id[b]["recorded_at"])

    def state(*args: str) -> list[tuple[str, int, int, str, str]]:
        rows = run.json("ledger", "entries", "--include-voided", *args)
        for row in rows:
            assert list(row) == ENTRY_FIELDS
        return [(r["record_id"], r["revision"], r["minutes"], r["status"], r["revised_by"]) for r in rows]

    then = [(a, 1, 30, "active", ACTOR), (c, 1, 20, "active", ACTOR)]
    local = noted.astimezone(TZ)
    for form in (
        noted.strftime("%Y-%m-%dT%H:%M:%S.") + f"{noted.microsecond // 1000:03d}Z",  # UTC
        local.isoformat(timespec="milliseconds"),  # with the store's offset
        local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}",  # naive: the store's zone
    ):
        assert state("--as-of", form) == then, form
        active = run.json("ledger", "entries", "--as-of", form)
        assert [r["record_id"] for r in active] == [a, c]
        (row,) = run.json("ledger", "summary", "--by", "community", "--as-of", form)
        assert (row["records"], row["minutes"], row["residents_served"]) == (2, 50, 2)

    # Log positions: the same states, event by event.
    assert state("--at-position", "0") == []
    assert state("--at-position", str(pos_a)) == [(a, 1, 30, "active", ACTOR)]
    assert state("--at-position", str(pos_c)) == then
    assert state("--at-position", str(pos_c + 1)) == [(a, 2, 50, "active", CORRECTOR), (c, 1, 20, "active", ACTOR)]
    assert state("--at-position", str(pos_c + 2)) == [
        (a, 2, 50, "active", CORRECTOR),
        (c, 1, 20, "voided", ACTOR),
    ]  # a void is no correction
    assert state("--at-position", str(pos_c + 3)) == state()
    assert state("--at-position", str(pos_c + 100)) == state()

    # The moment of the correction itself already shows it; a millisecond before does not.
    corrected_at = parse_instant(by_id[a]["revised_at"])
    just_before = (corrected_at - timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
    assert state("--as-of", just_before) == then
    assert state("--as-of", by_id[a]["revised_at"]) == [(a, 2, 50, "active", CORRECTOR), (c, 1, 20, "active", ACTOR)]
    (row,) = run.json("ledger", "summary", "--by", "county", "--at-position", str(pos_c + 2))
    assert (row["records"], row["minutes"], row["residents_served"]) == (1, 50, 1)

    # A date means the end of that local day.
    day = parse_instant(by_id[a]["recorded_at"]).astimezone(TZ).date()
    assert state("--as-of", (day - timedelta(days=1)).isoformat()) == []
    if parse_instant(by_id[b]["recorded_at"]).astimezone(TZ).date() == day:  # not across local midnight
        assert state("--as-of", day.isoformat()) == state()

    # Never in the future; never both.
    future_day = (datetime.now(TZ) + timedelta(days=2)).date().isoformat()
    error_line(run("ledger", "entries", "--as-of", future_day), 2, "--as-of", future_day)
    future_time = (datetime.now(TZ) + timedelta(hours=3)).isoformat(timespec="seconds")
    error_line(run("ledger", "summary", "--by", "county", "--as-of", future_time), 2, "--as-of")
    error_line(
        run("ledger", "entries", "--as-of", day.isoformat(), "--at-position", "2"), 2, "--as-of", "--at-position"
    )


# ---- formats -----------------------------------------------------------------------------------
def csv_cell(value: Any) -> str | set[str]:
    if value is None:
        return ""
    if isinstance(value, bool):
        return {"true", "yes", "True", "1"} if value else {"false", "no", "False", "0"}
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


@pytest.mark.parametrize("args", [[], ["--include-voided", "--county", "八步区"], ["--category", "留守儿童"]])
def test_entries_csv_has_the_json_fields_in_order(hist: History, args: list[str]) -> None:
    rows = list(csv.reader(io.StringIO(hist.run.ok("ledger", "entries", *args, "--format", "csv").stdout)))
    documents = hist.run.json("ledger", "entries", *args)
    assert rows[0] == ENTRY_FIELDS
    assert len(rows) == 1 + len(documents) and len(documents) > 0
    for line, doc in zip(rows[1:], documents, strict=True):
        for cell, name in zip(line, ENTRY_FIELDS, strict=True):
            want = csv_cell(doc[name])
            assert cell in want if isinstance(want, set) else cell == want, (name, cell, doc[name])
    # The lists are joined with ';' (S2 serves R2 and R4).
    (two,) = [line for line in rows[1:] if line[0] == hist.records[NOTE_KEY].record_id]
    assert two[ENTRY_FIELDS.index("residents")] == "R2;R4"
    assert two[ENTRY_FIELDS.index("note")] == "送学习用品，辅导作业"


@pytest.mark.parametrize("by", ["community", "township", "county"])
def test_summary_csv_has_the_json_fields_in_order(hist: History, by: str) -> None:
    rows = list(csv.reader(io.StringIO(hist.run.ok("ledger", "summary", "--by", by, "--format", "csv").stdout)))
    documents = hist.run.json("ledger", "summary", "--by", by)
    fields = summary_keys(by, False)
    assert rows[0] == fields
    assert len(rows) == 1 + len(documents)
    for line, doc in zip(rows[1:], documents, strict=True):
        for cell, name in zip(line, fields, strict=True):
            if name != "kinds":
                assert cell == str(doc[name]), (name, cell)


def table_cells(text_value: str) -> tuple[list[str], list[list[str]]]:
    """Check a table's alignment by display columns; returns (header cells, data rows' cells)."""
    lines = text_value.rstrip("\n").split("\n")
    header, rule, data = lines[0], lines[1], lines[2:]
    assert set(rule) <= {"-", " "}
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    width = display_width(rule)
    assert display_width(header.rstrip()) <= width

    def columns(line: str) -> list[str]:
        slots: list[str] = []
        for ch in line:
            wide = unicodedata.east_asian_width(ch) in ("W", "F")
            slots += [ch, ""] if wide else [ch]
        assert display_width(line) <= width, f"line wider than the table: {line!r}"
        assert len(slots) == display_width(line)
        slots += [" "] * (width - len(slots))
        inside = {i for start, end in spans for i in range(start, end)}
        gaps = [i for i in range(width) if i not in inside]
        assert all(slots[i] == " " for i in gaps), f"a cell crosses a column boundary: {line!r}"
        return ["".join(slots[start:end]).strip() for start, end in spans]

    return columns(header), [columns(line) for line in data]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_entries_table_is_aligned_and_localised(hist: History, lang: str) -> None:
    out = hist.run.ok("ledger", "entries", "--include-voided", lang=lang).stdout
    head, body = table_cells(out)
    documents = hist.run.json("ledger", "entries", "--include-voided")
    assert len(body) == len(documents)
    if lang == "zh":
        assert {"服务时间", "社区", "服务类型", "记录编号"} <= set(head)
        id_col, kind_col, community_col = head.index("记录编号"), head.index("服务类型"), head.index("社区")
    else:
        id_col = next(i for i, h in enumerate(head) if h.replace("_", " ") == "record id")
        kind_col, community_col = head.index("kind"), head.index("community")
    for cells, doc in zip(body, documents, strict=True):
        assert cells[id_col] == doc["record_id"]
        assert cells[community_col] == doc["community"]
        if lang == "zh":
            assert cells[kind_col] == KIND_ZH[doc["kind"]]
        else:
            assert cells[kind_col] in (doc["kind"], doc["kind"].replace("_", " "))
    if lang == "zh":
        assert "生活照料" in out and "送学习用品，辅导作业" in out


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("by", ["community", "county"])
def test_summary_table_is_aligned(hist: History, lang: str, by: str) -> None:
    head, body = table_cells(hist.run.ok("ledger", "summary", "--by", by, "--per", "month", lang=lang).stdout)
    documents = hist.run.json("ledger", "summary", "--by", by, "--per", "month")
    assert len(body) == len(documents)
    if lang == "zh":
        assert {"县区", "月份"} <= set(head) and ("社区" in head) == (by == "community")


def test_xlsx_needs_output(hist: History) -> None:
    error_line(hist.run("ledger", "entries", "--format", "xlsx"), 2, "--output")
    error_line(hist.run("ledger", "summary", "--by", "county", "--format", "xlsx"), 2, "--output")


def header_key(value: Any) -> str:
    return re.sub(r"[\s_\-*]+", "", str(value or "")).lower()


@pytest.mark.clock  # recorded times, late and --as-of against the clock
@pytest.mark.parametrize(
    "lang, extra",
    [
        pytest.param("zh", [], id="zh"),
        pytest.param("en", [], id="en"),
        pytest.param("zh", ["--include-voided"], id="zh-include-voided"),
    ],
)
def test_xlsx_export_reads_back_and_imports_as_nothing_new(
    fresh: Run, tmp_path: Path, lang: str, extra: list[str]
) -> None:
    hist = build_history(fresh)
    run = hist.run
    path = tmp_path / f"台账-{lang}.xlsx"
    result = run.ok("ledger", "entries", *extra, "--format", "xlsx", "--output", str(path), lang=lang, quiet=False)
    assert result.stdout == ""
    expected = hist.ordered(include_voided=bool(extra))
    printed = read_printed(path)
    header, data, total = printed.header, printed.data, printed.total
    assert printed.title.strip()
    assert any(("逾期登记" if lang == "zh" else "Late:") in line for line in printed.below)  # under the totals
    keys = [header_key(h) for h in header]
    assert keys[-1] == header_key("记录编号" if lang == "zh" else "record id")  # the record id is the last column
    if lang == "zh":
        names = {
            "id": "记录编号",
            "at": "服务时间",
            "minutes": "时长(分钟)",
            "kind": "服务类型",
            "residents": "服务对象",
        }
    else:
        names = {"id": "recordid", "at": "occurredat", "minutes": "minutes", "kind": "kind", "residents": "residents"}
    col = {k: keys.index(header_key(v)) for k, v in names.items()}
    assert [r[col["id"]] for r in data] == [e.record_id for e in expected]
    for line, e in zip(data, expected, strict=True):
        assert line[col["at"]] == e.occurred.replace(tzinfo=None)
        assert line[col["minutes"]] == e.minutes
        assert line[col["residents"]] == ";".join(e.residents)
        if lang == "zh":
            assert line[col["kind"]] == KIND_ZH[e.kind]
    assert total[0] == ("合计" if lang == "zh" else "Total")
    assert any(re.search(rf"(?<!\d){len(expected)}(?!\d)", str(v)) for v in total[1:] if v is not None), total
    assert total[col["minutes"]] == sum(e.minutes for e in expected)

    before_head = run.head()
    before = run.json("ledger", "entries", "--include-voided")
    doc = run.json("import", "services", str(path))
    assert doc["added"] == 0 and doc["skipped"] == 0, doc
    assert doc["existing"] == len(expected)
    assert run.head() == before_head
    assert run.json("ledger", "entries", "--include-voided") == before


@pytest.mark.parametrize("by", ["community", "township", "county"])
def test_summary_xlsx_has_a_total_row(hist: History, tmp_path: Path, by: str) -> None:
    path = tmp_path / "汇总.xlsx"
    hist.run.ok("ledger", "summary", "--by", by, "--format", "xlsx", "--output", str(path), lang="zh", quiet=False)
    printed = read_printed(path)
    expected = expected_summary(hist, by, Select())
    data, total = printed.data, printed.total
    assert len(data) == len(expected)
    assert total[0] == "合计" and "服务信息汇总" in printed.title
    for name, label in (("records", "服务记录"), ("minutes", "时长(分钟)"), ("residents_served", "服务对象人数")):
        column = printed.column(label)
        assert [line[column] for line in data] == [e[name] for e in expected]
        assert total[column] == sum(e[name] for e in expected)


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_output_file_holds_what_stdout_would(hist: History, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"entries.{fmt}"
    result = hist.run.ok("ledger", "entries", "--format", fmt, "--output", str(path), quiet=False)
    assert result.stdout == ""
    assert path.read_text(encoding="utf-8").rstrip("\n") == hist.run.ok(
        "ledger", "entries", "--format", fmt
    ).stdout.rstrip("\n")


def test_local_dates_follow_the_store_time_zone(fresh: Run) -> None:
    """A store made with --tz America/New_York: 00:30 on 1 October there is 1 October, month 2026-10."""
    run = fresh
    run.ok("init", "--tz", "America/New_York", quiet=False)
    run.ok("community", "establish", "NY-1", "--name", "Test", "--county", "C", "--township", "T", "--village", "V",
           "--established-on", "2026-01-01")  # fmt: skip
    run.ok("resident", "enroll", "NY-1", "R1", "--name", "张三")
    run.ok("provider", "register", "NY-1", "P1", "--name", "李四", "--role", "cadre")
    record_id = str(uuid.uuid4())
    run.ok("service", "record", "NY-1", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
           "--at", "2026-10-01 00:30", "--minutes", "30", "--record-id", record_id)  # fmt: skip
    run.ok("projections", "run")
    (row,) = run.json("ledger", "entries")
    assert row["occurred_at"] == "2026-10-01T00:30:00-04:00"
    assert [r["record_id"] for r in run.json("ledger", "entries", "--from", "2026-10-01", "--to", "2026-10-01")] == [
        record_id
    ]
    assert run.json("ledger", "entries", "--to", "2026-09-30") == []
    rows = run.json(
        "ledger", "summary", "--by", "county", "--per", "month", "--from", "2026-09-01", "--to", "2026-10-31"
    )
    assert [(r["month"], r["records"]) for r in rows] == [("2026-09", 0), ("2026-10", 1)]


# ---- directories -------------------------------------------------------------------------------
def test_community_list_json_and_csv(hist: History) -> None:
    expected = []
    for c in sorted(COMMUNITIES, key=lambda c: c.code):
        departed = 1 if DEPARTED[0] == c.code else 0
        retired = 1 if RETIRED[0] == c.code else 0
        expected.append({
            "code": c.code, "name": c.name, "county": c.county, "township": c.township, "village": c.village,
            "natural_villages": [], "established_on": "2026-01-01",
            "residents": sum(1 for r in RESIDENTS if r.community == c.code) - departed,
            "providers": sum(1 for p in PROVIDERS if p[0] == c.code) - retired,
            "records": sum(1 for r in hist.records.values() if r.community == c.code and r.status == "active"),
        })  # fmt: skip
    rows = hist.run.json("community", "list")
    for row in rows:
        assert list(row) == COMMUNITY_FIELDS
    assert rows == expected
    lines = list(csv.reader(io.StringIO(hist.run.ok("community", "list", "--format", "csv").stdout)))
    assert lines[0] == COMMUNITY_FIELDS
    assert lines[1:] == [[csv_cell(row[f]) for f in COMMUNITY_FIELDS] for row in expected]  # type: ignore[misc]


@pytest.mark.parametrize(
    "community, category, codes",
    [
        pytest.param("HZ-001", None, ["R1", "R2", "R3", "R4"], id="all"),
        pytest.param("HZ-001", "留守儿童", ["R2", "R4"], id="category-zh"),
        pytest.param("HZ-002", "left_behind_child", ["R2"], id="category"),
        pytest.param("HZ-002", "独居老人", ["R1", "R3"], id="category-with-departed"),
        pytest.param("HZ-002", None, ["R1", "R2", "R3"], id="with-departed"),
        pytest.param("AA-01", "left-behind-child", [], id="none-of-category"),
    ],
)
def test_resident_list_decrypts_names(hist: History, community: str, category: str | None, codes: list[str]) -> None:
    args = ["resident", "list", community, *(["--category", category] if category else [])]
    rows = hist.run.json(*args)
    by_code = {(r.community, r.code): r for r in RESIDENTS}
    assert [r["code"] for r in rows] == codes
    for row in rows:
        assert [k for k in row if k != "community"] == RESIDENT_FIELDS
        assert row.get("community", community) == community
        spec = by_code[(community, row["code"])]
        assert row["name"] == spec.name
        assert sorted(row["categories"]) == sorted(spec.categories)
        gone = (community, row["code"]) == DEPARTED[:2]
        assert row["departed_on"] == (DEPARTED[2] if gone else None)
        assert row["departure_reason"] == (DEPARTED[3] if gone else None)
    lines = list(csv.reader(io.StringIO(hist.run.ok(*args, "--format", "csv").stdout)))
    assert lines[0] == RESIDENT_FIELDS
    assert [(line[0], line[1], line[4]) for line in lines[1:]] == [
        (r["code"], by_code[(community, r["code"])].name, ";".join(r["categories"])) for r in rows
    ]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_resident_list_without_the_key_file_hides_names(hist: History, tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "nowhere.key"
    result = hist.run("resident", "list", "HZ-001", "--format", fmt, key=missing)
    assert result.exit_code == 0, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "key" in result.stderr
    if fmt == "json":
        rows = orjson.loads(result.stdout)
        assert [r["code"] for r in rows] == ["R1", "R2", "R3", "R4"]
        assert all(r["name"] is None for r in rows)
    else:
        lines = list(csv.reader(io.StringIO(result.stdout)))
        assert [line[0] for line in lines[1:]] == ["R1", "R2", "R3", "R4"]
        assert all(line[1] == "" for line in lines[1:])
    for r in RESIDENTS:
        assert r.name not in result.stdout


def test_entries_without_the_key_file_hide_notes(hist: History, tmp_path: Path) -> None:
    result = hist.run("ledger", "entries", "--format", "json", key=tmp_path / "nowhere.key")
    assert result.exit_code == 0
    assert len(result.stderr.splitlines()) == 1 and "key" in result.stderr
    rows = orjson.loads(result.stdout)
    assert [r["record_id"] for r in rows] == [r.record_id for r in hist.ordered()]
    assert all(r["note"] is None for r in rows)


@pytest.mark.parametrize("community", ["HZ-001", "HZ-002", "AA-01"])
def test_provider_list_json_and_csv(hist: History, community: str) -> None:
    expected = [
        {
            "code": code, "name": name, "role": slug, "team": None, "registered_on": "2026-01-01",
            "retired_on": RETIRED[2] if (c, code) == RETIRED[:2] else None,
        }
        for c, code, name, _role, slug in sorted(PROVIDERS)
        if c == community
    ]  # fmt: skip
    rows = hist.run.json("provider", "list", community)
    assert [{k: v for k, v in row.items() if k != "community"} for row in rows] == expected
    for row in rows:
        assert [k for k in row if k != "community"] == PROVIDER_FIELDS
        assert row.get("community", community) == community
    lines = list(csv.reader(io.StringIO(hist.run.ok("provider", "list", community, "--format", "csv").stdout)))
    assert lines[0] == PROVIDER_FIELDS
    assert lines[1:] == [[csv_cell(row[f]) for f in PROVIDER_FIELDS] for row in expected]  # type: ignore[misc]


@pytest.mark.parametrize("what", ["resident", "provider"])
def test_directory_csv_header_is_the_json_fields(hist: History, what: str) -> None:
    rows = hist.run.json(what, "list", "HZ-001")
    header = next(csv.reader(io.StringIO(hist.run.ok(what, "list", "HZ-001", "--format", "csv").stdout)))
    assert rows and all(list(row) == header for row in rows)


# ---- errors --------------------------------------------------------------------------------------
QUERIES = [["ledger", "entries"], ["ledger", "summary", "--by", "township"]]
ERRORS = [
    pytest.param(["--community", "NOPE-9"], 1, ["NOPE-9"], id="unknown-community"),
    pytest.param(["--township", "八步区/无名镇"], 1, ["无名镇"], id="unknown-township"),
    pytest.param(["--township", "钟山县/贺街镇"], 1, ["钟山县", "贺街镇"], id="township-of-another-county"),
    pytest.param(["--county", "平桂区"], 1, ["平桂区"], id="unknown-county"),
    pytest.param(["--community", "HZ-001", "--county", "八步区"], 2, ["--community", "--county"], id="two-unit-filters"),
    pytest.param(["--township", "八步区/贺街镇", "--county", "八步区"], 2, ["--township"], id="township-and-county"),
    pytest.param(["--township", "/贺街镇"], 2, ["--township", "/贺街镇"], id="township-without-county"),
    pytest.param(["--township", "无此镇"], 1, ["--township", "no township 无此镇"], id="unknown-township-name"),
    pytest.param(["--from", "2026-13-01"], 2, ["--from", "2026-13-01"], id="bad-from"),
    pytest.param(["--to", "yesterday"], 2, ["--to", "yesterday"], id="bad-to"),
    pytest.param(["--from", "2026-10-02", "--to", "2026-10-01"], 2, ["--from", "--to"], id="from-after-to"),
    pytest.param(["--kind", "cooking"], 2, ["--kind", "cooking"], id="bad-kind"),
    pytest.param(["--kind", "life_care", "--kind", "做饭"], 2, ["--kind", "做饭"], id="one-bad-kind"),
    pytest.param(["--category", "rich"], 2, ["--category", "rich"], id="bad-category"),
    pytest.param(["--as-of", "soon"], 2, ["--as-of", "soon"], id="bad-as-of"),
    pytest.param(["--as-of", "2026-10-01", "--at-position", "3"], 2, ["--as-of", "--at-position"], id="as-of-and-position"),
    pytest.param(["--at-position", "-1"], 2, ["--at-position"], id="negative-position"),
    pytest.param(["--format", "yaml"], 2, ["yaml"], id="bad-format"),
]  # fmt: skip


@pytest.mark.clock  # recorded times, late and --as-of against the clock
@pytest.mark.parametrize("query", QUERIES, ids=["entries", "summary"])
@pytest.mark.parametrize("args, code, needles", ERRORS)
def test_query_errors_are_one_line(
    hist: History, query: list[str], args: list[str], code: int, needles: list[str]
) -> None:
    head = hist.run.head()
    error_line(hist.run(*query, *args), code, *needles)
    assert hist.run.head() == head


@pytest.mark.parametrize(
    "args, code, needles",
    [
        pytest.param(["ledger", "summary"], 2, ["--by"], id="summary-without-by"),
        pytest.param(["ledger", "summary", "--by", "village"], 2, ["village"], id="summary-bad-by"),
        pytest.param(["ledger", "summary", "--by", "county", "--per", "week"], 2, ["week"], id="summary-bad-per"),
        pytest.param(["resident", "list", "NOPE-9"], 1, ["NOPE-9"], id="resident-list-unknown-community"),
        pytest.param(["provider", "list", "NOPE-9"], 1, ["NOPE-9"], id="provider-list-unknown-community"),
        pytest.param(["resident", "list", "HZ-001", "--category", "rich"], 2, ["--category", "rich"], id="resident-list-bad-category"),
    ],
)  # fmt: skip
def test_other_errors_are_one_line(hist: History, args: list[str], code: int, needles: list[str]) -> None:
    error_line(hist.run(*args), code, *needles)


@pytest.mark.parametrize("query", QUERIES, ids=["entries", "summary"])
@pytest.mark.parametrize("args", [["--community", ""], ["--county", "  "]], ids=["empty-community", "blank-county"])
def test_a_blank_unit_filter_is_malformed(hist: History, query: list[str], args: list[str]) -> None:
    error_line(hist.run(*query, *args), 2, args[0])


def test_a_huge_position_is_no_internal_error(hist: History, request: pytest.FixtureRequest) -> None:
    result = hist.run("ledger", "entries", "--at-position", "9" * 21, "--format", "json")
    assert "internal error" not in result.stderr
    if result.exit_code == 0:
        assert orjson.loads(result.stdout) == hist.run.json("ledger", "entries")
    else:
        error_line(result, 2, "--at-position")


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_an_unwritable_output_file_is_malformed(hist: History, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / "no-such-dir" / f"ledger.{fmt}"
    line = error_line(hist.run("ledger", "entries", "--format", fmt, "--output", str(target)), 2)
    assert "internal error" not in line and ("--output" in line or str(target) in line)


def test_errors_in_chinese(hist: History) -> None:
    error_line(hist.run("ledger", "entries", "--county", "平桂区", lang="zh"), 1, "平桂区", prefix="错误：")
    error_line(hist.run("ledger", "entries", "--kind", "cooking", lang="zh"), 2, "cooking", prefix="错误：")


# ---- projections ---------------------------------------------------------------------------------
def one_status(run: Run) -> dict[str, Any]:
    """`projections status`: every projection moves with the log; they must agree (the ledger's row)."""
    rows = run.json("projections", "status")
    assert [r["projection"] for r in rows] == ["ledger", "accountability", "funds"]
    assert all(
        {k: v for k, v in r.items() if k != "projection"} == {k: v for k, v in rows[0].items() if k != "projection"}
        for r in rows
    )
    return rows[0]


def test_projections_status_run_and_lag(fresh: Run) -> None:
    hist = build_history(fresh)
    run = hist.run
    status = one_status(run)
    assert list(status) == STATUS_FIELDS
    assert status == {"projection": status["projection"], "position": EVENTS, "head": EVENTS, "lag": 0}
    record_id = str(uuid.uuid4())
    record_args = ["service", "record", "AA-01", "--kind", "family_care", "--resident", "R1", "--provider", "P1",
                   "--at", "2026-10-09 10:00", "--minutes", "33", "--record-id", record_id, "--entered-on", "2026-10-09"]  # fmt: skip
    run.ok(*record_args)
    status = one_status(run)
    assert status["head"] == EVENTS + 1 and status["position"] + status["lag"] == status["head"]
    if run.backend == "postgres":
        assert status["lag"] == 1
        # A query reads the views as they stand, says how far behind they are, and succeeds.
        result = run.ok("ledger", "entries", "--community", "AA-01", "--format", "json", quiet=False)
        assert orjson.loads(result.stdout) == []
        (line,) = result.stderr.splitlines()
        assert "behind" in line and "1" in line
        result = run.ok("ledger", "summary", "--by", "county", "--format", "json", quiet=False)
        assert "behind" in result.stderr
        # --wait with no worker: it says it did not catch up, and still answers (stale).
        result = run.ok("ledger", "entries", "--community", "AA-01", "--wait", "5", "--format", "json", quiet=False)
        assert orjson.loads(result.stdout) == []
        assert re.search(r"did not catch up|not caught up", result.stderr), result.stderr
        assert "behind" in result.stderr
        assert "Traceback" not in result.stderr
    out = run.ok("projections", "run", quiet=False).stdout
    assert str(EVENTS + 1) in out
    status = one_status(run)
    assert (status["position"], status["head"], status["lag"]) == (EVENTS + 1, EVENTS + 1, 0)
    # Caught up: no lag line, the new record is there; --wait returns at once without a warning.
    rows = run.json("ledger", "entries", "--community", "AA-01")
    assert [r["record_id"] for r in rows] == [record_id]
    rows = run.json("ledger", "entries", "--community", "AA-01", "--wait", "5")
    assert [r["record_id"] for r in rows] == [record_id]
    # A second run has nothing to do.
    assert run.ok("projections", "run").stdout.startswith("projected 0 ")


def test_a_refused_query_on_lagging_views_is_still_one_line(fresh: Run, request: pytest.FixtureRequest) -> None:
    small_store(fresh)
    fresh.ok("projections", "run")
    fresh.ok("resident", "enroll", "HZ-001", "R9", "--name", "新人")  # the views are now one event behind
    error_line(fresh("ledger", "entries", "--community", "NOPE-9"), 1, "NOPE-9")


def test_sqlite_queries_catch_up_by_themselves(sqlite_url: str, tmp_path: Path) -> None:
    run = Run(sqlite_url, tmp_path / "taizhang.key")
    small_store(run)
    record(run, str(uuid.uuid4()), "2026-10-05 09:00", 30)
    rows = run.json("ledger", "entries")  # quiet: no lag line
    assert [r["minutes"] for r in rows] == [30]
    status = one_status(run)
    assert status["lag"] == 0 and status["position"] == status["head"] == 5  # 1 + 2 + 1 + 1 events


def test_projections_rebuild_gives_the_same_ledger(fresh: Run) -> None:
    hist = build_history(fresh)
    run = hist.run
    queries = [
        ["ledger", "entries", "--include-voided"],
        ["ledger", "entries", "--at-position", str(EVENTS - 2)],  # before the correction and the void
        ["ledger", "summary", "--by", "community"],
        ["ledger", "summary", "--by", "township", "--per", "month"],
        ["ledger", "summary", "--by", "county", "--category", "留守儿童", "--from", "2026-09-10"],
        ["community", "list"],
        ["resident", "list", "HZ-001"],
    ]
    before = [run.json(*q) for q in queries]
    assert before[1] != before[0]
    rebuilt = orjson.loads(run.ok("projections", "rebuild", "--format", "json").stdout)
    assert [r["projection"] for r in rebuilt] == ["ledger", "accountability", "funds"]
    assert {(r["position"], r["head"], r["lag"]) for r in rebuilt} == {(EVENTS, EVENTS, 0)}
    text_out = run.ok("projections", "rebuild").stdout
    assert str(EVENTS) in text_out
    after = [run.json(*q) for q in queries]
    assert after == before
    check_entries(after[0], hist.ordered(include_voided=True))


def test_projections_rebuild_on_a_store_whose_views_were_never_created(fresh: Run) -> None:
    """Writes alone never make the views; `projections rebuild` must then create them, not fail."""
    run = fresh
    small_store(run)  # only writes: no query has created the views
    record(run, str(uuid.UUID(int=7, version=4)), "2026-10-05 09:00", 30)
    engine = create_engine(run.url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            tables = inspect(conn).get_table_names()
            for table in [name for name in tables if name.startswith(("ledger_", "acct_"))]:
                conn.exec_driver_sql(f"DROP TABLE {table}")  # as a store made before the views existed
        with engine.connect() as conn:
            assert not [name for name in inspect(conn).get_table_names() if name.startswith(("ledger_", "acct_"))]
    finally:
        engine.dispose()
    rebuilt = orjson.loads(run.ok("projections", "rebuild", "--format", "json").stdout)
    assert {(r["projection"], r["position"], r["lag"]) for r in rebuilt} == {("ledger", 5, 0), ("accountability", 5, 0), ("funds", 5, 0)}
    assert [r["minutes"] for r in run.json("ledger", "entries")] == [30]
    assert run.ok("projections", "rebuild").exit_code == 0  # and again, over the views it made
