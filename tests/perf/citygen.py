"""A city-scale year of services, generated into a store through the application's bulk path.

    python -m tests.perf.citygen --db sqlite:///city.db --events 1000000 [--stop-after N] [--seed 1]

The city: 5 counties x 4 townships x 15 communities (300), about 100 residents per
community in households (left-behind children and elderly, elderly living alone,
hardship and ordinary households ...), about 8 providers each, and `events` service
events (ServiceRecorded + ServiceCorrected + ServiceVoided) over the 12 months of
2025: about 3% of the records are corrected 1-10 days later (a tenth of those a
second time), about 1% are entered twice and the duplicate is voided 1-10 days
later; residents enrol, change category and depart, providers register and retire
during the year, and every service is given by residents and providers active on
its day. A tenth of the communities are established during the year.

Everything goes through `LedgerService` like the demo: the pydantic command models
validate each command, `apply_enroll` encrypts names (a key file is needed),
`apply_register` / `apply_record` / the aggregate's methods build the events, and
`save_many` saves about 20,000 events of many communities per transaction (5,000 on
PostgreSQL, see PG_TRANSACTION_EVENTS). No notes (no per-record encryption).

Time order: the generator walks the year day by day over the whole city; each
community's events are in calendar order (enrolments and departures at the start of
their day, services in the order of the day, corrections and voids in the
afternoon). Within one transaction (about a week of the city) events are grouped by
community, as `save_many` stores them.

Deterministic for a seed, a `Shape` and `events` (which sets the density of the
year): one random.Random drives every choice, record ids included.
`CityGenerator.run(until)` stops after exactly `until` service events and can be
called again to extend the same store along the same year: run(100_000), measure,
run(1_000_000). The year is planned with a little to spare (1% + 3/sqrt(events)), so
it reaches `events` a few days before 31 December; if it ends first, it stops there.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from commands import demo, models
from commands.app import KeySession, LedgerService
from domain.community import Community
from infra import crypto
from infra.store import parse_url

YEAR_START = date(2025, 1, 1)
DAYS = 365
TRANSACTION_EVENTS = 20_000
# On PostgreSQL eventsourcing inserts a save's events as one array parameter inside a psycopg
# pipeline; with psycopg 3.3.9 (binary, libpq 18) a query whose parameters exceed ~6-7 MB never
# returns (the server waits in ClientRead; cf. psycopg issue #685). Keep transactions smaller there.
PG_TRANSACTION_EVENTS = 5_000
CORRECTION_SHARE = 0.03
SECOND_CORRECTION_SHARE = 0.10
DUPLICATE_SHARE = 0.01  # entered twice; the duplicate is voided later
EVENTS_PER_RECORD = 1 + CORRECTION_SHARE * (1 + SECOND_CORRECTION_SHARE) + 2 * DUPLICATE_SHARE


@dataclass(frozen=True)
class Shape:
    counties: int = 5
    townships: int = 4  # per county
    communities: int = 15  # per township
    residents: int = 100  # per community, about
    providers: int = 8  # per community, about

    @property
    def total(self) -> int:
        return self.counties * self.townships * self.communities


CITY = Shape()

# ---- vocabulary of the generated city ------------------------------------------------------
_COUNTIES = ("八步区", "平桂区", "钟山县", "昭平县", "富川瑶族自治县")
_FIRST = "大小新上下东西南北龙凤石马金白黄青长高平古桂莲松竹梅沙水山田福安瑶岩"
_SECOND = "岭塘田坪坝洞江岗冲湾源头口桥井寨岩背垌坡铺"
_SURNAMES = "陈黄李莫钟梁罗林邓何刘张盘赵冯廖蒋唐王杨吴谢覃韦潘周卢胡毛徐欧龚奉邱曾彭"
_GIVEN = "德福贵明才有金志文光桂荣华昌发生永先秀英兰凤玉珍梅娥花莲芝素翠月香伟强军勇建东平国斌辉杰涛鹏海峰波俊刚丽艳芳燕红霞娟敏婷静玲琼慧萍雪子浩宇轩睿博然晨泽铭逸航嘉欣怡涵诗雨思悦琪雅萱"

_KINDS = ("life_care", "family_care", "counseling", "production_development", "emergency_aid", "rights_protection")
_KIND_CUM = list(itertools.accumulate((34, 26, 11, 12, 7, 10)))
# How long, where and to whom each kind of service goes: the demo's own tables.
_MINUTES, _PLACES, _AFFINITY = demo.MINUTES_BY_KIND, demo.PLACES_BY_KIND, demo.AFFINITY_BY_KIND
_HOURS = ((8, 8), (9, 12), (10, 12), (11, 6), (14, 10), (15, 12), (16, 10), (17, 4))
_HOUR_VALUES = [h for h, _ in _HOURS]
_HOUR_CUM = list(itertools.accumulate(w for _, w in _HOURS))
# Month weights: Spring Festival visits in February, summer care of left-behind children.
_MONTH_WEIGHT = {1: 1.0, 2: 1.2, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0, 7: 1.05, 8: 1.05, 9: 1.0, 10: 0.95, 11: 1.0, 12: 1.05}
_WEEKDAY_WEIGHT = (1.0, 1.0, 1.0, 1.0, 1.0, 0.6, 0.4)


def _day_weight(day: date) -> float:
    return _MONTH_WEIGHT[day.month] * _WEEKDAY_WEIGHT[day.weekday()]


_TABLES: dict[tuple[Any, ...], tuple[list[Any], list[float]]] = {}


def _pick(rng: random.Random, pairs: tuple[tuple[Any, int | float], ...]) -> Any:
    """A weighted choice among (value, weight) pairs."""
    table = _TABLES.get(pairs)
    if table is None:
        table = _TABLES[pairs] = ([p[0] for p in pairs], list(itertools.accumulate(p[1] for p in pairs)))
    values, cum = table
    return values[bisect.bisect(cum, rng.random() * cum[-1])]


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# ---- the plan ---------------------------------------------------------------------------------
@dataclass
class Resident:
    code: str
    name: str
    gender: str
    birth_date: date
    categories: list[str]
    grid: str
    household: str
    enrolled_day: int | None = None  # day index in the year; None: at establishment
    departed_day: int | None = None

    def active(self, d: int) -> bool:
        return (self.enrolled_day is None or self.enrolled_day <= d) and (self.departed_day is None or d < self.departed_day)


@dataclass
class Provider:
    code: str
    name: str
    role: str
    team: str | None
    registered_day: int | None = None
    retired_day: int | None = None

    def active(self, d: int) -> bool:
        return (self.registered_day is None or self.registered_day <= d) and (self.retired_day is None or d < self.retired_day)


@dataclass
class Site:
    """One community: its plan, and its aggregate once established."""

    index: int
    code: str
    name: str
    county: str
    township: str
    village: str
    natural_villages: list[str]
    established_on: date
    established_day: int  # -1: before the year
    weight: float
    households: list[list[Resident]] = field(default_factory=list)
    providers: list[Provider] = field(default_factory=list)
    lifecycle: dict[int, list[tuple[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    aggregate: Community | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def residents(self) -> list[Resident]:
        return [r for h in self.households for r in h]

    def candidates(self, kind: str, d: int) -> tuple[list[tuple[list[Resident], list[Resident]]], list[float]]:
        """(household, its active members) and cumulative weights for a service of this kind."""
        key = "k:" + kind
        found = self._cache.get(key)
        if found is None:
            affinity = _AFFINITY[kind]
            population: list[tuple[list[Resident], list[Resident]]] = []
            weights: list[float] = []
            for household in self.households:
                active = [m for m in household if m.active(d)]
                if not active:
                    continue
                categories = {c for m in active for c in m.categories}
                population.append((household, active))
                weights.append(max((affinity.get(c, 1.5) for c in categories), default=0.4))
            found = (population, list(itertools.accumulate(weights)))
            self._cache[key] = found
        return found

    def active_providers(self, d: int) -> list[Provider]:
        found = self._cache.get("p")
        if found is None:
            found = self._cache["p"] = [p for p in self.providers if p.active(d)]
        return found

    def neighbours(self, d: int) -> list[Resident]:
        found = self._cache.get("n")
        if found is None:
            found = self._cache["n"] = [m for h in self.households for m in h if m.categories and m.active(d)]
        return found


@dataclass
class _Rec:
    """What the generator remembers of a record until its last planned correction."""

    record_id: str
    kind: str
    minutes: int
    residents: list[str]
    household: list[Resident]
    day: int


@dataclass
class Stats:
    service_events: int = 0
    recorded: int = 0
    corrected: int = 0
    voided: int = 0
    established: int = 0
    enrolled: int = 0
    updated: int = 0
    departed: int = 0
    registered: int = 0
    retired: int = 0
    stored: int = 0  # all events saved so far
    transactions: int = 0
    seconds: float = 0.0
    first_day: date | None = None
    last_day: date | None = None

    def as_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["first_day"] = self.first_day.isoformat() if self.first_day else None
        out["last_day"] = self.last_day.isoformat() if self.last_day else None
        return out


def _person_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.sample(_GIVEN, rng.choice((1, 2, 2))))


def _birth(rng: random.Random, first_age: int, last_age: int) -> date:
    year = YEAR_START.year - rng.randint(first_age, last_age)
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _household(rng: random.Random) -> list[tuple[str, date, list[str]]]:
    """(gender, birth date, categories) of the members of one household."""
    shape = _pick(
        rng,
        (("left_behind", 24), ("woman_children", 8), ("elderly_alone", 14), ("elderly_couple", 12),
         ("hardship", 12), ("ordinary", 24), ("disabled", 6)),
    )
    g = lambda: rng.choice(("male", "female"))  # noqa: E731
    members: list[tuple[str, date, list[str]]] = []
    if shape == "left_behind":
        for _ in range(rng.choice((1, 2))):
            members.append((g(), _birth(rng, 60, 88), ["left_behind_elderly"]))
        for _ in range(_pick(rng, ((1, 45), (2, 40), (3, 15)))):
            members.append((g(), _birth(rng, 4, 16), ["left_behind_child"]))
        if rng.random() < 0.12:
            members[0][2].append("dibao")
    elif shape == "woman_children":
        members.append(("female", _birth(rng, 26, 50), ["left_behind_woman"]))
        for _ in range(rng.choice((1, 2))):
            members.append((g(), _birth(rng, 3, 15), ["left_behind_child"] if rng.random() < 0.8 else []))
    elif shape == "elderly_alone":
        extra = rng.random()
        categories = ["elderly_living_alone"]
        if extra < 0.15:
            categories.append("five_guarantee")
        elif extra < 0.27:
            categories.append("extreme_poverty")
        elif extra < 0.37:
            categories.append("disabled")
        members.append((g(), _birth(rng, 66, 92), categories))
    elif shape == "elderly_couple":
        members.append(("male", _birth(rng, 62, 90), ["left_behind_elderly"]))
        members.append(("female", _birth(rng, 60, 88), ["left_behind_elderly"] + (["disabled"] if rng.random() < 0.15 else [])))
    elif shape == "hardship":
        status = _pick(rng, (("dibao", 45), ("hardship", 25), ("monitored", 30)))
        members.append((g(), _birth(rng, 25, 65), [status] + (["disabled"] if rng.random() < 0.15 else [])))
        for _ in range(rng.randint(1, 3)):
            members.append((g(), _birth(rng, 3, 80), []))
    elif shape == "ordinary":
        for _ in range(rng.randint(1, 4)):
            members.append((g(), _birth(rng, 3, 85), []))
    else:
        members.append((g(), _birth(rng, 20, 70), ["disabled"]))
        if rng.random() < 0.7:
            members.append((g(), _birth(rng, 45, 80), []))
    return [(gender, birth, sorted(set(categories))) for gender, birth, categories in members[:5]]


def _providers(rng: random.Random, count: int) -> list[Provider]:
    roles: list[tuple[str, str | None]] = [("grid_worker", "网格服务队")]
    roles += [("cadre", "驻村工作队" if rng.random() < 0.4 else None) for _ in range(rng.randint(1, 2))]
    roles += [("party_member", "党员先锋队") for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.25:
        roles.append(("social_worker", "社工站"))
    if rng.random() < 0.3:
        roles.append(("community_staff", None))
    while len(roles) < count:
        roles.append(("volunteer", _pick(rng, (("巾帼志愿服务队", 4), ("青年志愿服务队", 4), ("邻里互助队", 3), (None, 1)))))
    return [Provider(f"P{i:02d}", _person_name(rng), role, team) for i, (role, team) in enumerate(roles[:count], start=1)]


def plan_city(rng: random.Random, shape: Shape) -> list[Site]:
    stems = [a + b for a in _FIRST for b in _SECOND if a != b]
    rng.shuffle(stems)
    stem_iter = iter(stems)
    sites: list[Site] = []
    for ci in range(shape.counties):
        county = _COUNTIES[ci] if ci < len(_COUNTIES) else f"第{ci + 1}县"
        for ti in range(shape.townships):
            township = next(stem_iter) + ("乡" if rng.random() < 0.2 else "镇")
            for k in range(shape.communities):
                stem = next(stem_iter)
                index = len(sites)
                if rng.random() < 0.9:
                    established_day = -1
                    established_on = date(2024, 1, 1) + timedelta(days=rng.randrange(360))
                else:
                    established_day = rng.randrange(0, 181)
                    established_on = YEAR_START + timedelta(days=established_day)
                site = Site(
                    index=index,
                    code=f"HZ{ci + 1}{ti + 1:02d}{k + 1:02d}",
                    name=f"{stem}社区",
                    county=county,
                    township=township,
                    village=f"{stem}村",
                    natural_villages=[f"{stem}屯", next(stem_iter) + "组"][: rng.randint(1, 2)],
                    established_on=established_on,
                    established_day=established_day,
                    weight=rng.uniform(0.5, 1.5),
                )
                _plan_people(rng, shape, site)
                sites.append(site)
    return sites


def _plan_people(rng: random.Random, shape: Shape, site: Site) -> None:
    first_day = max(site.established_day, 0)
    target = rng.randint(round(shape.residents * 0.85), round(shape.residents * 1.15))
    grids = rng.randint(2, 5)
    count = 0
    while count < target:
        hh = f"{site.code}-H{len(site.households) + 1:03d}"
        grid = f"第{rng.randint(1, grids)}网格"
        late = rng.random() < 0.04 and first_day < DAYS - 30
        enrolled_day = rng.randrange(first_day + 1, DAYS - 20) if late else None
        members = []
        for gender, birth, categories in _household(rng):
            count += 1
            members.append(Resident(f"R{count:03d}", _person_name(rng), gender, birth, categories, grid, hh, enrolled_day))
        site.households.append(members)
    site.providers = _providers(rng, rng.randint(shape.providers - 2, shape.providers + 2))
    for provider in site.providers[2:]:
        if rng.random() < 0.10 and first_day < DAYS - 30:
            provider.registered_day = rng.randrange(first_day + 1, DAYS - 20)
        start = provider.registered_day if provider.registered_day is not None else first_day
        if rng.random() < 0.08 and start < DAYS - 40:
            provider.retired_day = rng.randrange(start + 14, DAYS - 10)
    for resident in site.residents:
        start = resident.enrolled_day if resident.enrolled_day is not None else first_day
        if rng.random() < 0.03 and start < DAYS - 30:
            resident.departed_day = rng.randrange(start + 7, DAYS - 5)
        elif rng.random() < 0.02 and start < DAYS - 30:
            site.lifecycle[rng.randrange(start + 1, DAYS - 5)].append(("update", resident))
    for resident in site.residents:
        if resident.enrolled_day is not None:
            site.lifecycle[resident.enrolled_day].append(("enroll", resident))
        if resident.departed_day is not None:
            site.lifecycle[resident.departed_day].append(("depart", resident))
    for provider in site.providers:
        if provider.registered_day is not None:
            site.lifecycle[provider.registered_day].append(("register", provider))
        if provider.retired_day is not None:
            site.lifecycle[provider.retired_day].append(("retire", provider))


def _new_categories(rng: random.Random, current: list[str]) -> list[str]:
    if "left_behind_child" in current:  # the parents came home
        return sorted(set(current) - {"left_behind_child"})
    if not current:
        return [rng.choice(("hardship", "monitored", "dibao"))]
    if "disabled" not in current:
        return sorted({*current, "disabled"})
    return sorted(set(current) - {"disabled"})


# ---- the generator ------------------------------------------------------------------------------
Action = tuple[Any, ...]


class CityGenerator:
    """Generates the city's year into `service`, resumable: `run(until)` again extends it."""

    def __init__(
        self,
        service: LedgerService,
        *,
        events: int = 1_000_000,
        seed: int = 1,
        shape: Shape = CITY,
        transaction_events: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        service.require_master()
        self.service = service
        self.events = events
        self.seed = seed
        self.shape = shape
        if transaction_events is None:
            transaction_events = PG_TRANSACTION_EVENTS if service.store.backend == "postgres" else TRANSACTION_EVENTS
        self.transaction_events = transaction_events
        self.progress = progress
        self.rng = random.Random(seed)
        self.tz = service.tz
        self.sites = plan_city(self.rng, shape)
        # λ per (site weight x day weight) so that the year holds `events` x SPARE service events
        mass = 0.0
        for d in range(DAYS):
            w = _day_weight(YEAR_START + timedelta(days=d))
            mass += w * sum(s.weight for s in self.sites if s.established_day <= d)
        spare = 1.01 + 3 / math.sqrt(max(events, 1))  # so that the year reaches `events` before it ends
        self.rate = events * spare / EVENTS_PER_RECORD / mass
        self.stats = Stats()
        self._scheduled: dict[tuple[int, int], list[Action]] = defaultdict(list)
        self._actions = self._generate()
        self._keys: KeySession = service.key_session()
        self._touched: dict[int, Community] = {}
        self._pending = 0
        self._day: date | None = None

    # ---- driving -------------------------------------------------------------------------
    def run(self, until: int | None = None) -> Stats:
        """Generate and save until `until` service events (default: `events`) are stored."""
        until = self.events if until is None else min(until, self.events)
        started = time.perf_counter()
        while self.stats.service_events < until:
            action = next(self._actions, None)
            if action is None:
                break
            self._apply(action)
            if self._pending >= self.transaction_events:
                self._flush(started)
        self._flush(started)
        self.stats.seconds += time.perf_counter() - started
        return self.stats

    def _flush(self, started: float) -> None:
        if not self._touched:
            return
        self.service.save_many(list(self._touched.values()), self._keys)
        self.stats.stored += self._pending
        self.stats.transactions += 1
        self._keys = self.service.key_session()
        self._touched = {}
        self._pending = 0
        if self.progress is not None:
            elapsed = self.stats.seconds + time.perf_counter() - started
            self.progress(
                f"citygen: {self.stats.service_events:,}/{self.events:,} service events, {self.stats.stored:,} stored "
                f"(up to {self._day}), {elapsed:,.0f}s, {self.stats.stored / max(elapsed, 1e-9):,.0f} events/s"
            )

    # ---- applying one action through the application's bulk path ------------------------
    def _validate(self, model: type[Any], data: dict[str, Any]) -> Any:
        return self.service.validate(model, data)

    def _apply(self, action: Action) -> None:
        what, site = action[0], action[1]
        actor = f"clerk-{site.code}"
        st = self.stats
        if what == "establish":
            cmd = self._validate(
                models.EstablishCommunity,
                {
                    "code": site.code, "name": site.name, "county": site.county, "township": site.township,
                    "village": site.village, "natural_villages": site.natural_villages,
                    "established_on": site.established_on,
                },
            )
            site.aggregate = Community.establish(
                code=cmd.code, name=cmd.name, county=cmd.county, township=cmd.township, village=cmd.village,
                natural_villages=cmd.natural_villages, established_on=cmd.established_on, actor=actor,
            )
            st.established += 1
            # one look-up for the data keys of the residents enrolled now, not one per resident
            self._keys.prefetch(crypto.resident_key_id(site.code, r.code) for r in site.residents if r.enrolled_day is None)
        else:
            community = site.aggregate
            assert community is not None
            if what == "record":
                cmd = self._validate(models.RecordService, action[2])
                LedgerService.apply_record(community, cmd, cmd.record_id, self._keys, actor)
                st.recorded += 1
                st.service_events += 1
                day = cmd.occurred_at.date()
                st.first_day = st.first_day or day
                st.last_day = day if st.last_day is None or day > st.last_day else st.last_day
            elif what == "correct":
                cmd = self._validate(models.CorrectService, action[2])
                community.correct_service(
                    record_id=cmd.record_id, reason=cmd.reason, actor=actor, kind=cmd.kind, minutes=cmd.minutes,
                    residents=cmd.residents,
                )
                st.corrected += 1
                st.service_events += 1
            elif what == "void":
                cmd = self._validate(models.VoidService, action[2])
                community.void_service(record_id=cmd.record_id, reason=cmd.reason, actor=f"supervisor-{site.township}")
                st.voided += 1
                st.service_events += 1
            elif what == "enroll":
                r: Resident = action[2]
                data = {
                    "community": site.code, "code": r.code, "name": r.name, "birth_date": r.birth_date,
                    "gender": r.gender, "categories": r.categories, "grid": r.grid, "household": r.household,
                    "enrolled_on": None if r.enrolled_day is None else YEAR_START + timedelta(days=r.enrolled_day),
                }
                self.service.apply_enroll(community, self._validate(models.EnrollResident, data), self._keys, actor)
                st.enrolled += 1
            elif what == "register":
                p: Provider = action[2]
                data = {
                    "community": site.code, "code": p.code, "name": p.name, "role": p.role, "team": p.team,
                    "registered_on": None if p.registered_day is None else YEAR_START + timedelta(days=p.registered_day),
                }
                LedgerService.apply_register(community, self._validate(models.RegisterProvider, data), actor)
                st.registered += 1
            elif what == "depart":
                cmd = self._validate(models.DepartResident, action[2])
                community.depart_resident(code=cmd.code, reason=cmd.reason, on=cmd.on, actor=actor)
                st.departed += 1
            elif what == "retire":
                cmd = self._validate(models.RetireProvider, action[2])
                community.retire_provider(code=cmd.code, on=cmd.on, actor=actor)
                st.retired += 1
            elif what == "update":
                cmd = self._validate(models.UpdateResident, action[2])
                community.update_resident(code=cmd.code, categories=cmd.categories, grid=None, household=None, actor=actor)
                st.updated += 1
            else:  # pragma: no cover
                raise AssertionError(what)
        assert site.aggregate is not None
        self._touched[site.index] = site.aggregate
        self._pending += 1

    # ---- the year, as a stream of actions (every random draw happens here, in order) --------
    def _generate(self) -> Iterator[Action]:
        rng = self.rng
        for site in self.sites:
            if site.established_day < 0:
                yield from self._establish(site)
        for d in range(DAYS):
            day = YEAR_START + timedelta(days=d)
            self._day = day
            lam_day = self.rate * _day_weight(day)
            for site in self.sites:
                if site.established_day > d:
                    continue
                if site.established_day == d:
                    yield from self._establish(site)
                for what, who in site.lifecycle.pop(d, ()):
                    site._cache.clear()
                    if what == "enroll":
                        yield ("enroll", site, who)
                    elif what == "register":
                        yield ("register", site, who)
                    elif what == "depart":
                        reason = "deceased" if who.birth_date.year < 1960 and rng.random() < 0.6 else "moved"
                        yield ("depart", site, {"community": site.code, "code": who.code, "reason": reason, "on": day})
                    elif what == "retire":
                        yield ("retire", site, {"community": site.code, "code": who.code, "on": day})
                    elif what == "update":
                        who.categories = _new_categories(rng, who.categories)
                        yield ("update", site, {"community": site.code, "code": who.code, "categories": who.categories})
                count = _poisson(rng, lam_day * site.weight)
                moments = sorted(
                    (rng.choices(_HOUR_VALUES, cum_weights=_HOUR_CUM)[0], rng.randrange(60)) for _ in range(count)
                )
                for hour, minute in moments:
                    yield from self._service(site, d, day, hour, minute)
                for action in self._scheduled.pop((d, site.index), ()):
                    yield from self._later(site, d, day, action)

    def _establish(self, site: Site) -> Iterator[Action]:
        yield ("establish", site)
        for resident in site.residents:
            if resident.enrolled_day is None:
                yield ("enroll", site, resident)
        for provider in site.providers:
            if provider.registered_day is None:
                yield ("register", site, provider)

    def _record_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _service(self, site: Site, d: int, day: date, hour: int, minute: int) -> Iterator[Action]:
        rng = self.rng
        kind = rng.choices(_KINDS, cum_weights=_KIND_CUM)[0]
        population, cum = site.candidates(kind, d)
        providers = site.active_providers(d)
        if not population or not providers:
            return
        household, active = rng.choices(population, cum_weights=cum)[0]
        size = min(len(active), _pick(rng, ((1, 60), (2, 30), (3, 10))))
        chosen = rng.sample(active, size)
        if size < 3 and rng.random() < 0.08:  # a neighbour joins (a group visit)
            neighbours = site.neighbours(d)
            if neighbours:
                other = rng.choice(neighbours)
                if other not in chosen:
                    chosen.append(other)
        residents = sorted(m.code for m in chosen)
        provider_codes = sorted(p.code for p in rng.sample(providers, min(len(providers), _pick(rng, ((1, 65), (2, 35))))))
        low, high = _MINUTES[kind]
        minutes = max(15, min(240, 5 * round(rng.randint(low, high) / 5)))
        place = _pick(rng, _PLACES[kind])
        entry = rng.random()
        if entry < 0.70:
            entered = day
        elif entry < 0.95:
            entered = day + timedelta(days=rng.randint(1, 5))
        else:  # written up from a paper ledger much later: a late entry
            entered = day + timedelta(days=rng.randint(8, 20))
        record_id = self._record_id()
        data = {
            "community": site.code,
            "kind": kind,
            "residents": residents,
            "providers": provider_codes,
            "occurred_at": datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz),
            "minutes": minutes,
            "place": place,
            "record_id": record_id,
            "entered_on": entered,
        }
        yield ("record", site, data)
        if rng.random() < DUPLICATE_SHARE:
            duplicate = {**data, "record_id": self._record_id()}
            yield ("record", site, duplicate)
            later = d + rng.randint(1, 10)
            if later < DAYS:
                self._scheduled[(later, site.index)].append(("void", duplicate["record_id"]))
        elif rng.random() < CORRECTION_SHARE * (1 + 2 * DUPLICATE_SHARE):
            later = d + rng.randint(1, 10)
            if later < DAYS:
                rec = _Rec(record_id, kind, minutes, residents, household, d)
                self._scheduled[(later, site.index)].append(("correct", rec))

    def _later(self, site: Site, d: int, day: date, action: tuple[str, Any]) -> Iterator[Action]:
        rng = self.rng
        if action[0] == "void":
            yield ("void", site, {"community": site.code, "record_id": action[1], "reason": "重复登记"})
            return
        rec: _Rec = action[1]
        what = _pick(rng, (("minutes", 50), ("kind", 25), ("residents", 25)))
        change: dict[str, Any] = {"community": site.code, "record_id": rec.record_id}
        if what == "residents":
            others = [m.code for m in rec.household if m.code not in rec.residents and m.active(rec.day)]
            if others and len(rec.residents) < 3:
                rec.residents = sorted([*rec.residents, rng.choice(others)])
                change.update(residents=rec.residents, reason="漏登服务对象")
            elif len(rec.residents) > 1:
                rec.residents = sorted(rng.sample(rec.residents, len(rec.residents) - 1))
                change.update(residents=rec.residents, reason="服务对象登记有误")
            else:
                what = "minutes"
        if what == "kind":
            rec.kind = rng.choice([k for k in _KINDS if k != rec.kind])
            change.update(kind=rec.kind, reason="服务类型登记错误")
        elif what == "minutes":
            minutes = rec.minutes
            while minutes == rec.minutes:
                minutes = max(15, min(240, rec.minutes + rng.choice((-1, 1)) * 5 * rng.randint(2, 12)))
            rec.minutes = minutes
            change.update(minutes=minutes, reason="登记时长有误")
        yield ("correct", site, change)
        if rng.random() < SECOND_CORRECTION_SHARE:
            later = d + rng.randint(1, 10)
            if later < DAYS:
                self._scheduled[(later, site.index)].append(("correct", rec))


# ---- helpers for benchmarks and tests ------------------------------------------------------------
def open_store(url: str, key_file: Path) -> LedgerService:
    """Create (or open) the store at `url`, and the key file when missing."""
    if not key_file.exists():
        crypto.create_key_file(key_file)
    service, _created = LedgerService.create(parse_url(url), key_file, None)
    return service


def generate(
    url: str,
    key_file: Path,
    *,
    events: int,
    seed: int = 1,
    shape: Shape = CITY,
    stop_after: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Stats:
    """Generate (the first `stop_after` service events of) a year of `events` into a new store."""
    service = open_store(url, key_file)
    try:
        if service.recorder.max_notification_id():
            raise SystemExit(f"the store at {url} already holds events; citygen fills only an empty store")
        return CityGenerator(service, events=events, seed=seed, shape=shape, progress=progress).run(stop_after)
    finally:
        service.close()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://… (an empty or new store)")
    parser.add_argument("--key-file", type=Path, help="master key file (created when missing; default beside the store)")
    parser.add_argument("--events", type=int, default=1_000_000, help="service events in the year (default 1,000,000)")
    parser.add_argument("--stop-after", type=int, help="stop after this many service events (the start of the year)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--communities", type=int, default=CITY.communities, help="communities per township")
    parser.add_argument("--residents", type=int, default=CITY.residents, help="residents per community, about")
    args = parser.parse_args(argv)
    store = parse_url(args.db)
    key = args.key_file or store.default_key_file()
    shape = Shape(communities=args.communities, residents=args.residents)
    stats = generate(args.db, key, events=args.events, seed=args.seed, shape=shape, stop_after=args.stop_after, progress=_stderr)
    for name, value in stats.as_dict().items():
        print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
