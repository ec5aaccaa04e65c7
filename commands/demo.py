"""The demo: a Hezhou-like sample loaded into an empty store (`taizhang demo [--seed N]`).

Five counties and districts of Hezhou, 17 townships, 10 pilot (`HZ-P01`…`HZ-P10`) and
50 demonstration (`HZ-D01`…`HZ-D50`) communities, a few thousand residents in
households, 4–10 providers per community and three months of services ending at
`today`, with late paper-ledger entries, corrections and voided duplicates.

Everything goes through `LedgerService` and the command models, like the CLI, but
through the bulk path: each community's aggregate is built in memory and a handful
of transactions save ten communities each. Within a community the events follow
the calendar: establish, enrol, register, then services in time order, with later
enrolments and registrations, departures, retirements, corrections and voids at
their moment among them.

Deterministic for a seed and a `today`: only `random.Random(seed)` draws, record ids
are drawn from it too. What still differs between two runs is what must: event
timestamps, the encrypted envelopes, and the note MACs (and so the record digests)
that are keyed by fresh random data keys.

Lateness. A record without `entered_on` is late when it is *recorded* more than 7
days after it occurred, and the demo records everything now. So that only the
entries meant to be late are late, a record entered "the same day" carries
`entered_on` = its service day, except the last few days before the real current
date, which are recorded now without it (as a clerk typing them in would).
About 30% of records are written up later from paper ledgers (`entered_on` 1–5
days after, a few 8–20 days after: those are late).

Accountability, planned after all of the above from a random stream of its own (so
the sample of a seed is the same with or without it):
- officials: a secretary (区委/县委书记) for each county, a secretary and a deputy for
  each township, a contact-point cadre (党员干部联系点) for each pilot community, each
  answerable from the first establishment among the unit's communities; one deputy
  hands over to a successor;
- visit plans (重点巡访, every 7–30 days, by a provider of the community) for most
  residents who are left-behind or living-alone elderly, five-guarantee or in extreme
  poverty: some by policy (kept or not), some set to what the visits kept (often
  starting mid-period); a plan passes to another provider when its provider retires,
  ends when its resident leaves, and in pilots one is tightened to every 14 days and
  sometimes one ends;
- pairings (结对帮扶) of cadres, party members and grid workers with residents in
  hardship, 2–5 per community, ended when either side leaves; in pilots one is handed over;
- targets for each county, for the last full month and its quarter: records and
  residents served (about what was delivered, the quarter's scaled to the whole quarter)
  decomposed to the townships, emergency-aid records for the quarter, and a coverage
  target of 0.6 on each township;
- supervision items for some townships, due in the last full month: resolved on time,
  late, or still open;
- debriefings (专项述职) of a few township secretaries for the month before today's.
Visit plans and pairings are events of the communities at their day in the calendar;
officials, targets and items are saved after the communities, in three transactions.

The funding ledger (资金台账) comes last, from a stream of its own too: lines of several
departments granted to the counties, passed down to townships and communities, spent with
vouchers linked to the communities' services, one spend reversed and one return
(commands.demo_funds).
"""

from __future__ import annotations

import collections
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar

from commands import models
from commands.accountability import amount_arg, code_arg, duty_arg, kind_arg, metric_arg, period_arg, text_arg, unit_arg
from commands.app import KeySession, LedgerService
from domain.accountability import Official, SupervisionItem, UnitTargets
from domain.community import Community
from domain.errors import LedgerError
from domain.units import Period, parse_period

T = TypeVar("T")

BATCH = 10  # communities per transaction
WINDOW_DAYS = 91  # services from today - 91 days to today: three months
LATE_DAYS = 7

# ---- geography --------------------------------------------------------------------------
# Hezhou's three counties and two districts, with townships that lie in them.
COUNTIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("八步区", ("贺街镇", "莲塘镇", "信都镇", "桂岭镇")),
    ("平桂区", ("黄田镇", "望高镇", "公会镇")),
    ("钟山县", ("回龙镇", "清塘镇", "燕塘镇")),
    ("昭平县", ("黄姚镇", "樟木林镇", "文竹镇")),
    ("富川瑶族自治县", ("富阳镇", "朝东镇", "古城镇", "石家乡")),
)
PILOTS_PER_COUNTY = 2
DEMONSTRATIONS_PER_COUNTY = 10

_STEM_FIRST = "大小新上下东西南北龙凤石马金白黄青长高平古桂莲松竹梅沙水山田福安瑶岩"
_STEM_SECOND = "岭塘田坪坝洞江岗冲湾源头口桥井寨岩背垌坡山岭湾面铺"
_NATURAL_SUFFIXES = (("村", 4), ("组", 3), ("屯", 3), ("寨", 1))

# ---- people -------------------------------------------------------------------------------
_SURNAMES = (
    ("陈", 8),
    ("黄", 7),
    ("李", 6),
    ("莫", 5),
    ("钟", 5),
    ("梁", 5),
    ("罗", 4),
    ("林", 4),
    ("邓", 4),
    ("何", 4),
    ("刘", 4),
    ("张", 4),
    ("盘", 3),
    ("赵", 3),
    ("冯", 3),
    ("廖", 3),
    ("蒋", 3),
    ("唐", 3),
    ("王", 3),
    ("杨", 3),
    ("吴", 3),
    ("谢", 3),
    ("覃", 3),
    ("韦", 3),
    ("潘", 3),
    ("周", 3),
    ("卢", 2),
    ("胡", 2),
    ("毛", 2),
    ("徐", 2),
    ("欧", 2),
    ("龚", 2),
    ("奉", 2),
    ("邱", 2),
    ("曾", 2),
    ("彭", 2),
    ("骆", 1),
    ("聂", 1),
    ("孔", 1),
    ("宋", 1),
)
_GIVEN = {
    ("elder", "male"): "德福贵明才有金志文光桂荣华昌发生永先树中庆玉成祥海富林春汉顺",
    ("elder", "female"): "秀英兰凤桂玉珍梅娥妹花莲芝素翠金月香娣姣琴群连菊春",
    ("adult", "male"): "伟强军勇建华明东平国斌辉杰涛鹏海峰波志文俊林刚超",
    ("adult", "female"): "丽艳芳燕红霞娟敏婷静玲梅秀琼慧萍春雪丹洁莉月兰晓",
    ("child", "male"): "子梓浩宇轩睿俊博然晨泽铭杰逸航嘉昊一宏煜锦瑞凯天",
    ("child", "female"): "欣怡涵诗雨思嘉可悦梦琪雅萱彤妍佳馨语晴若依紫晨子",
}

# ---- services -----------------------------------------------------------------------------
_KIND_WEIGHTS = (
    ("life_care", 34),
    ("family_care", 26),
    ("counseling", 11),
    ("production_development", 12),
    ("emergency_aid", 7),
    ("rights_protection", 10),
)
_MINUTES = {
    "life_care": (30, 120),
    "family_care": (20, 90),
    "counseling": (20, 60),
    "production_development": (60, 240),
    "emergency_aid": (30, 240),
    "rights_protection": (30, 120),
}
_PLACES = {
    "life_care": (("home_visit", 60), ("happiness_home", 25), ("service_center", 5), ("other", 7), (None, 3)),
    "family_care": (("home_visit", 55), ("happiness_home", 25), ("service_center", 10), ("other", 7), (None, 3)),
    "counseling": (("home_visit", 60), ("happiness_home", 20), ("service_center", 15), ("other", 2), (None, 3)),
    "production_development": (("other", 45), ("home_visit", 25), ("service_center", 27), (None, 3)),
    "emergency_aid": (("home_visit", 60), ("other", 28), ("service_center", 10), (None, 2)),
    "rights_protection": (("service_center", 60), ("home_visit", 35), ("other", 3), (None, 2)),
}
# Which residents a kind of service goes to first: category -> weight of their household.
_AFFINITY = {
    "life_care": {
        "elderly_living_alone": 5,
        "five_guarantee": 5,
        "extreme_poverty": 4,
        "left_behind_elderly": 4,
        "disabled": 4,
    },
    "family_care": {
        "left_behind_child": 5,
        "left_behind_elderly": 4,
        "elderly_living_alone": 4,
        "left_behind_woman": 3,
    },
    "counseling": {
        "left_behind_child": 3,
        "left_behind_elderly": 3,
        "elderly_living_alone": 4,
        "left_behind_woman": 3,
        "disabled": 3,
    },
    "production_development": {"monitored": 5, "dibao": 4, "hardship": 4, "left_behind_woman": 4},
    "emergency_aid": {
        "elderly_living_alone": 4,
        "five_guarantee": 4,
        "extreme_poverty": 4,
        "hardship": 3,
        "disabled": 3,
    },
    "rights_protection": {"dibao": 4, "hardship": 4, "extreme_poverty": 4, "monitored": 3, "disabled": 3},
}
# The same tables shape the city-scale benchmark year (tests/perf/citygen.py).
MINUTES_BY_KIND, PLACES_BY_KIND, AFFINITY_BY_KIND = _MINUTES, _PLACES, _AFFINITY
_NOTES = {
    "life_care": (
        "送米送油，检查用电安全",
        "帮助打扫卫生，整理房间",
        "代购生活用品和药品",
        "陪同到镇卫生院就医取药",
        "上门理发、剪指甲",
        "帮忙清洗被褥，晾晒衣物",
        "检查煤气灶和电线，更换灯泡",
        "送去爱心午餐",
    ),
    "family_care": (
        "陪伴聊天，了解近况",
        "帮助与在外务工子女视频通话",
        "辅导作业，检查学习情况",
        "过生日送蛋糕",
        "周末陪伴孩子读书",
        "节日走访慰问，送去月饼",
        "组织老人在幸福院看戏唱山歌",
    ),
    "counseling": (
        "心理疏导，缓解孤独情绪",
        "谈心谈话，开导家庭矛盾",
        "关注孩子情绪变化，与老师沟通",
        "丧偶后情绪低落，上门安抚",
    ),
    "production_development": (
        "指导沙糖桔种植管理",
        "讲解富川脐橙病虫害防治",
        "协助申请产业奖补",
        "介绍就近务工岗位",
        "帮助联系马蹄收购商",
        "指导茶园修剪施肥",
        "帮助销售香芋",
    ),
    "emergency_aid": (
        "暴雨后排查房屋安全，转移安置",
        "突发疾病送医",
        "协助申请临时救助",
        "房屋漏雨，组织修补屋顶",
        "走失老人协助寻回",
    ),
    "rights_protection": (
        "协助办理低保年审",
        "讲解城乡居民养老保险政策",
        "调解邻里宅基地纠纷",
        "法律咨询，协助追讨欠薪",
        "协助办理残疾人证",
        "代办医保报销材料",
    ),
}
_NOTE_SHARE = 0.45

CORRECTION_SHARE = 0.03
DUPLICATE_SHARE = 0.01
VOID_REASON = "重复登记"


@dataclass
class DemoSummary:
    counties: int
    townships: int
    communities: int
    pilot: int
    demonstration: int
    residents: int
    providers: int
    services: int
    corrections: int
    voids: int
    late: int  # services whose entered_on (or recording) is more than 7 days after occurred_at
    first_day: date
    last_day: date
    departures: int = 0
    retirements: int = 0
    officials: int = 0
    duties: int = 0  # duties assigned (one was handed over: ended, and given to a successor)
    visit_plans: int = 0  # visit plans set, replacements included
    pairings: int = 0  # pairings added, hand-overs included
    targets: int = 0  # targets set, those from decompositions included
    supervision_items: int = 0
    debriefings: int = 0
    funding_lines: int = 0  # the funding ledger (commands.demo_funds): lines granted to the counties
    fund_transfers: int = 0
    fund_spends: int = 0
    fund_reversals: int = 0
    fund_returns: int = 0


# ---- the plan -------------------------------------------------------------------------------
@dataclass
class _Resident:
    code: str
    name: str
    birth_date: date
    gender: str
    categories: list[str]
    grid: str
    household: str
    enrolled_on: date | None = None  # None: at the community's establishment
    departed: tuple[date, str] | None = None

    def active(self, day: date, established: date) -> bool:
        start = self.enrolled_on or established
        return start <= day and (self.departed is None or day < self.departed[0])


@dataclass
class _Household:
    code: str
    members: list[_Resident]

    def categories(self) -> set[str]:
        return {c for m in self.members for c in m.categories}


@dataclass
class _Provider:
    code: str
    name: str
    role: str
    team: str | None
    registered_on: date | None = None
    retired_on: date | None = None

    def active(self, day: date, established: date) -> bool:
        start = self.registered_on or established
        return start <= day and (self.retired_on is None or day < self.retired_on)


@dataclass
class _Record:
    record_id: str
    kind: str
    residents: list[str]
    providers: list[str]
    occurred_at: datetime
    minutes: int
    place: str | None
    note: str | None
    entered_on: date | None
    household: _Household
    duplicate: bool = False


@dataclass
class _Plan:
    code: str
    name: str
    county: str
    township: str
    village: str
    natural_villages: list[str]
    established_on: date
    residents: list[_Resident] = field(default_factory=list)
    providers: list[_Provider] = field(default_factory=list)
    # (moment, priority, sequence, action, payload)
    timeline: list[tuple[datetime, int, int, str, Any]] = field(default_factory=list)
    records: list[_Record] = field(default_factory=list)
    corrections: int = 0
    voids: int = 0
    late: int = 0
    visit_plans: int = 0
    visit_plan_ends: int = 0
    pairings: int = 0
    pairing_ends: int = 0

    @property
    def pilot(self) -> bool:
        return self.code.startswith("HZ-P")

    def at(self, moment: datetime, priority: int, action: str, payload: Any) -> None:
        self.timeline.append((moment, priority, len(self.timeline), action, payload))


def _weighted(rng: random.Random, pairs: Sequence[tuple[T, int | float]]) -> T:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _birth(rng: random.Random, first_year: int, last_year: int) -> date:
    return _day_between(rng, date(first_year, 1, 1), date(last_year, 12, 31))


class _People:
    """Names, genders and birth dates that fit the categories."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.year = today.year

    def surname(self) -> str:
        return _weighted(self.rng, _SURNAMES)

    def given(self, generation: str, gender: str) -> str:
        pool = _GIVEN[(generation, gender)]
        if self.rng.random() < 0.2:
            return self.rng.choice(pool)
        return "".join(self.rng.sample(pool, 2))

    def name(self, surname: str, generation: str, gender: str) -> str:
        return surname + self.given(generation, gender)

    # birth ranges relative to `today` (for 2026: children 2010–2022, elderly 1935–1962, women 1970–2000)
    def child_birth(self) -> date:
        return _birth(self.rng, self.year - 16, self.year - 4)

    def elder_birth(self, latest_age: int = 64) -> date:
        return _birth(self.rng, 1935, self.year - latest_age)

    def woman_birth(self) -> date:
        return _birth(self.rng, self.year - 56, self.year - 26)

    def adult_birth(self) -> date:
        return _birth(self.rng, self.year - 66, self.year - 22)


def _households(rng: random.Random, people: _People, code: str, target: int, grids: int) -> list[_Household]:
    """Households of 1–5 residents until about `target` residents."""
    households: list[_Household] = []
    count = 0
    while count < target:
        number = len(households) + 1
        hh_code = f"{code}-H{number:03d}"
        grid = f"第{rng.randint(1, grids)}网格"
        family = people.surname()
        members: list[tuple[str, str, date, list[str]]] = []  # name, gender, birth, categories
        shape = _weighted(
            rng,
            (
                ("left_behind_family", 22),
                ("woman_children", 8),
                ("elderly_alone", 14),
                ("elderly_couple", 12),
                ("hardship", 12),
                ("ordinary", 12),
                ("disabled", 5),
            ),
        )
        if shape == "left_behind_family":
            grandparents = _weighted(rng, ((1, 55), (2, 45)))
            if grandparents == 2:
                members.append(
                    (people.name(family, "elder", "male"), "male", people.elder_birth(), ["left_behind_elderly"])
                )
                members.append(
                    (
                        people.name(people.surname(), "elder", "female"),
                        "female",
                        people.elder_birth(),
                        ["left_behind_elderly"],
                    )
                )
            else:
                gender = "female" if rng.random() < 0.6 else "male"
                surname = family if gender == "male" else people.surname()
                members.append(
                    (people.name(surname, "elder", gender), gender, people.elder_birth(), ["left_behind_elderly"])
                )
            if rng.random() < 0.25 and len(members) == 1:
                members.append(
                    (
                        people.name(people.surname(), "adult", "female"),
                        "female",
                        people.woman_birth(),
                        ["left_behind_woman"],
                    )
                )
            for _ in range(_weighted(rng, ((1, 45), (2, 40), (3, 15)))):
                gender = rng.choice(("male", "female"))
                members.append(
                    (people.name(family, "child", gender), gender, people.child_birth(), ["left_behind_child"])
                )
            if rng.random() < 0.12:  # a poor left-behind household
                members[0][3].append("dibao")
            elif rng.random() < 0.06:
                members[0][3].append("disabled")
        elif shape == "woman_children":
            members.append(
                (
                    people.name(people.surname(), "adult", "female"),
                    "female",
                    people.woman_birth(),
                    ["left_behind_woman"],
                )
            )
            for _ in range(_weighted(rng, ((1, 55), (2, 45)))):
                gender = rng.choice(("male", "female"))
                categories = ["left_behind_child"] if rng.random() < 0.8 else []
                members.append((people.name(family, "child", gender), gender, people.child_birth(), categories))
        elif shape == "elderly_alone":
            gender = "female" if rng.random() < 0.55 else "male"
            categories = ["elderly_living_alone"]
            extra = rng.random()
            if extra < 0.15:
                categories.append("five_guarantee")
            elif extra < 0.27:
                categories.append("extreme_poverty")
            elif extra < 0.37:
                categories.append("disabled")
            surname = family if gender == "male" else people.surname()
            members.append((people.name(surname, "elder", gender), gender, people.elder_birth(66), categories))
        elif shape == "elderly_couple":
            members.append(
                (people.name(family, "elder", "male"), "male", people.elder_birth(), ["left_behind_elderly"])
            )
            wife = ["left_behind_elderly"] + (["disabled"] if rng.random() < 0.15 else [])
            members.append((people.name(people.surname(), "elder", "female"), "female", people.elder_birth(), wife))
        elif shape == "hardship":
            status = _weighted(rng, (("dibao", 45), ("hardship", 25), ("monitored", 30)))
            gender = "male" if rng.random() < 0.65 else "female"
            head = [status] + (["disabled"] if rng.random() < 0.15 else [])
            surname = family if gender == "male" else people.surname()
            members.append((people.name(surname, "adult", gender), gender, people.adult_birth(), head))
            for _ in range(rng.randint(1, 3)):
                role = rng.random()
                if role < 0.5:
                    g = rng.choice(("male", "female"))
                    members.append((people.name(family, "child", g), g, people.child_birth(), []))
                elif role < 0.8:
                    g = "female" if gender == "male" else "male"
                    s = family if g == "male" else people.surname()
                    members.append((people.name(s, "adult", g), g, people.adult_birth(), []))
                else:
                    g = rng.choice(("male", "female"))
                    s = family if g == "male" else people.surname()
                    members.append((people.name(s, "elder", g), g, people.elder_birth(), []))
        elif shape == "ordinary":
            for i in range(rng.randint(1, 3)):
                g = "male" if i == 0 else rng.choice(("male", "female"))
                s = family if g == "male" else people.surname()
                if rng.random() < 0.4:
                    members.append((people.name(s, "elder", g), g, people.elder_birth(), []))
                else:
                    members.append((people.name(s, "adult", g), g, people.adult_birth(), []))
        else:  # disabled, with a carer
            g = rng.choice(("male", "female"))
            s = family if g == "male" else people.surname()
            members.append((people.name(s, "adult", g), g, people.adult_birth(), ["disabled"]))
            if rng.random() < 0.7:
                carer = "female" if g == "male" else rng.choice(("male", "female"))
                s = family if carer == "male" else people.surname()
                members.append((people.name(s, "elder", carer), carer, people.elder_birth(), []))
        household = _Household(hh_code, [])
        for name, gender, birth, categories in members[:5]:
            count += 1
            household.members.append(
                _Resident(
                    code=f"R{count:03d}",
                    name=name,
                    birth_date=birth,
                    gender=gender,
                    categories=sorted(set(categories)),
                    grid=grid,
                    household=hh_code,
                )
            )
        households.append(household)
    return households


def _providers(rng: random.Random, people: _People, count: int) -> list[_Provider]:
    roles: list[tuple[str, str | None, str]] = [("grid_worker", "网格服务队", rng.choice(("male", "female")))]
    for _ in range(rng.randint(1, 2)):
        roles.append(
            ("cadre", "驻村工作队" if rng.random() < 0.4 else None, "male" if rng.random() < 0.7 else "female")
        )
    for _ in range(rng.randint(1, 3)):
        roles.append(("party_member", "党员先锋队", "male" if rng.random() < 0.6 else "female"))
    if rng.random() < 0.25:
        roles.append(("social_worker", "社工站", "female" if rng.random() < 0.7 else "male"))
    if rng.random() < 0.3:
        roles.append(("community_staff", None, rng.choice(("male", "female"))))
    while len(roles) < count:
        gender = rng.choice(("male", "female"))
        if gender == "female" and rng.random() < 0.7:
            team = "巾帼志愿服务队"
        else:
            team = _weighted(rng, (("青年志愿服务队", 4), ("乡贤志愿服务队", 2), ("邻里互助队", 3), (None, 1)))
        roles.append(("volunteer", team, gender))
    providers = []
    for i, (role, team, gender) in enumerate(roles[:count], start=1):
        generation = "elder" if role == "volunteer" and rng.random() < 0.2 else "adult"
        providers.append(_Provider(f"P{i:02d}", people.name(people.surname(), generation, gender), role, team))
    return providers


def _plan_community(
    rng: random.Random,
    people: _People,
    *,
    code: str,
    stem: str,
    county: str,
    township: str,
    pilot: bool,
    today: date,
    now: datetime,
    tz: tzinfo,
    natural_stems: list[str],
) -> _Plan:
    established = today - timedelta(days=rng.randint(250, 364) if pilot else rng.randint(40, 330))
    name = f"{stem}新型农村社区" if rng.random() < 0.3 else f"{stem}社区"
    natural: list[str] = []
    if rng.random() < 0.3:
        natural.append(f"{stem}屯")
    wanted = rng.randint(1, 4)
    for extra in rng.sample(natural_stems, max(0, wanted - len(natural))):
        natural.append(extra + _weighted(rng, _NATURAL_SUFFIXES))
    plan = _Plan(code, name, county, township, f"{stem}村", natural, established)

    start = max(established, today - timedelta(days=WINDOW_DAYS))
    days = (today - start).days + 1
    recording_today = today == now.date()

    # residents
    target = rng.randint(60, 85) if pilot else rng.randint(45, 72)
    grids = max(2, min(5, len(plan.natural_villages) + rng.randint(0, 2)))
    households = _households(rng, people, code, target, grids)
    for household in households:
        if rng.random() < 0.08 and (today - established).days > 14:  # joined after the community was set up
            enrolled = _day_between(rng, established + timedelta(days=1), today - timedelta(days=7))
            for member in household.members:
                member.enrolled_on = enrolled
        plan.residents.extend(household.members)
    for _ in range(_weighted(rng, ((0, 3), (1, 2), (2, 1)))):
        resident = rng.choice(plan.residents)
        first = max(start, resident.enrolled_on or established) + timedelta(days=7)
        last = today - timedelta(days=2)
        if resident.departed is not None or first > last:
            continue
        elderly = resident.birth_date.year <= today.year - 64
        if elderly:
            reason = "deceased" if rng.random() < 0.6 else "moved"
        else:
            reason = "moved" if rng.random() < 0.9 else "other"
        resident.departed = (_day_between(rng, first, last), reason)

    # providers
    plan.providers = _providers(rng, people, rng.randint(4, 10))
    for provider in plan.providers[1:]:
        if provider.role not in ("grid_worker", "cadre") and rng.random() < 0.1 and (today - established).days > 30:
            provider.registered_on = _day_between(rng, established + timedelta(days=1), today - timedelta(days=14))
    if rng.random() < 0.12:
        candidates = [p for p in plan.providers if p.role in ("volunteer", "party_member", "social_worker")]
        if candidates:
            provider = rng.choice(candidates)
            first = max(start, provider.registered_on or established) + timedelta(days=14)
            last = today - timedelta(days=3)
            if first <= last:
                provider.retired_on = _day_between(rng, first, last)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tz)

    for resident in plan.residents:
        if resident.enrolled_on is not None:
            plan.at(midnight(resident.enrolled_on), 0, "enroll", resident)
        if resident.departed is not None:
            plan.at(midnight(resident.departed[0]), 1, "depart", resident)
    for provider in plan.providers:
        if provider.registered_on is not None:
            plan.at(midnight(provider.registered_on), 0, "register", provider)
        if provider.retired_on is not None:
            plan.at(midnight(provider.retired_on), 1, "retire", provider)

    # services
    base = rng.randint(80, 120) if pilot else rng.randint(40, 100)
    count = max(40, round(base * days / (WINDOW_DAYS + 1)))
    moments: list[datetime] = []
    for _ in range(count):
        day = start + timedelta(days=rng.randrange(days))
        hour = _weighted(rng, ((8, 8), (9, 12), (10, 12), (11, 6), (14, 10), (15, 12), (16, 10), (17, 4)))
        moment = datetime.combine(day, time(hour, rng.choice((0, 10, 20, 30, 40, 50))), tz)
        if moment > now - timedelta(minutes=5):  # not in the future on the real current day
            moment -= timedelta(days=1)
        moments.append(moment)
    moments.sort()
    for moment in moments:
        record = _plan_record(rng, plan, households, moment, established, today, recording_today)
        if record is None:
            continue
        plan.records.append(record)
        plan.at(moment, 2, "record", record)
        if rng.random() < DUPLICATE_SHARE:  # the same service entered twice, voided later
            duplicate = _Record(
                record_id=_record_id(rng),
                kind=record.kind,
                residents=list(record.residents),
                providers=list(record.providers),
                occurred_at=record.occurred_at,
                minutes=record.minutes,
                place=record.place,
                note=None,
                entered_on=record.entered_on,
                household=record.household,
                duplicate=True,
            )
            plan.records.append(duplicate)
            plan.at(moment, 2, "record", duplicate)
            when = _later(rng, moment, today, tz)
            plan.at(when, 3, "void", (duplicate.record_id, VOID_REASON))
            plan.voids += 1

    # corrections, a few days after the service
    originals = [r for r in plan.records if not r.duplicate]
    for record in rng.sample(originals, round(len(originals) * CORRECTION_SHARE)):
        change = _plan_correction(rng, plan, record, established)
        plan.at(_later(rng, record.occurred_at, today, tz), 3, "correct", change)
        plan.corrections += 1

    for record in plan.records:
        if record.entered_on is not None:
            late = (record.entered_on - record.occurred_at.date()).days > LATE_DAYS
        else:
            late = now - record.occurred_at > timedelta(days=LATE_DAYS)
        plan.late += late
    plan.timeline.sort(key=lambda item: (item[0], item[1], item[2]))
    return plan


def _record_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _later(rng: random.Random, moment: datetime, today: date, tz: tzinfo) -> datetime:
    """A moment 1–10 days after `moment`, in the afternoon, no later than `today`."""
    day = min(today, moment.date() + timedelta(days=rng.randint(1, 10)))
    return max(moment + timedelta(minutes=1), datetime.combine(day, time(rng.randint(16, 18), rng.randint(0, 59)), tz))


def _plan_record(
    rng: random.Random,
    plan: _Plan,
    households: list[_Household],
    moment: datetime,
    established: date,
    today: date,
    recording_today: bool,
) -> _Record | None:
    day = moment.date()
    kind = _weighted(rng, _KIND_WEIGHTS)
    affinity = _AFFINITY[kind]
    candidates: list[tuple[_Household, list[_Resident]]] = []
    weights: list[float] = []
    for household in households:
        active = [m for m in household.members if m.active(day, established)]
        if not active:
            continue
        categories = household.categories()
        weight = max((affinity.get(c, 1.5) for c in categories), default=0.4)
        candidates.append((household, active))
        weights.append(weight)
    providers = [p for p in plan.providers if p.active(day, established)]
    if not candidates or not providers:
        return None
    household, active = rng.choices(candidates, weights=weights)[0]
    size = min(len(active), _weighted(rng, ((1, 60), (2, 30), (3, 10))))
    chosen = rng.sample(active, size)
    if len(chosen) < 3 and rng.random() < 0.08:  # a neighbour joins (a group visit, an activity)
        others = [m for h, ms in candidates if h is not household for m in ms if m.categories]
        if others:
            chosen.append(rng.choice(others))
    residents = sorted(m.code for m in chosen)
    provider_codes = sorted(
        p.code for p in rng.sample(providers, min(len(providers), _weighted(rng, ((1, 65), (2, 35)))))
    )
    low, high = _MINUTES[kind]
    minutes = max(15, min(240, 5 * round(rng.randint(low, high) / 5)))
    place = _weighted(rng, _PLACES[kind])
    note = rng.choice(_NOTES[kind]) if rng.random() < _NOTE_SHARE else None
    record_id = _record_id(rng)
    entry = rng.random()
    if entry < 0.25:  # written up from a paper ledger a few days later
        entered: date | None = min(today, day + timedelta(days=rng.randint(1, 5)))
    elif entry < 0.30:  # … or much later: a late entry
        entered = min(today, day + timedelta(days=rng.randint(8, 20)))
    elif recording_today and (today - day).days <= 5:
        entered = None  # typed in now, within the week
    else:
        entered = day  # entered the same day (the demo cannot backdate its recording)
    return _Record(record_id, kind, residents, provider_codes, moment, minutes, place, note, entered, household)


def _plan_correction(rng: random.Random, plan: _Plan, record: _Record, established: date) -> dict[str, Any]:
    """A correction of minutes, kind or residents that keeps the record valid."""
    day = record.occurred_at.date()
    what = _weighted(rng, (("minutes", 50), ("kind", 25), ("residents", 25)))
    if what == "residents":
        others = [
            m.code for m in record.household.members if m.code not in record.residents and m.active(day, established)
        ]
        if others and len(record.residents) < 3:
            residents = sorted([*record.residents, rng.choice(others)])
            return {"record_id": record.record_id, "residents": residents, "reason": "漏登服务对象"}
        if len(record.residents) > 1:
            residents = sorted(rng.sample(record.residents, len(record.residents) - 1))
            return {"record_id": record.record_id, "residents": residents, "reason": "服务对象登记有误"}
        what = "minutes"
    if what == "kind":
        kind = rng.choice([k for k, _w in _KIND_WEIGHTS if k != record.kind])
        return {"record_id": record.record_id, "kind": kind, "reason": "服务类型登记错误"}
    minutes = record.minutes
    while minutes == record.minutes:
        minutes = max(15, min(240, record.minutes + rng.choice((-1, 1)) * 5 * rng.randint(2, 12)))
    return {"record_id": record.record_id, "minutes": minutes, "reason": "登记时长有误"}


def _plan_all(rng: random.Random, today: date, now: datetime, tz: tzinfo) -> list[_Plan]:
    people = _People(rng, today)
    stems = list(dict.fromkeys(a + b for a in _STEM_FIRST for b in _STEM_SECOND if a != b))
    chosen = rng.sample(stems, 60 + 120)
    village_stems, natural_pool = chosen[:60], chosen[60:]
    slots: list[tuple[str, str, bool]] = []  # county, township, pilot
    for county, townships in COUNTIES:
        pilots = rng.sample(range(len(townships)), PILOTS_PER_COUNTY)
        demos = list(range(len(townships)))
        demos += [rng.randrange(len(townships)) for _ in range(DEMONSTRATIONS_PER_COUNTY - len(townships))]
        slots += [(county, townships[i], True) for i in sorted(pilots)]
        slots += [(county, townships[i], False) for i in sorted(demos)]
    plans: list[_Plan] = []
    pilot_no = demo_no = 0
    for index, (county, township, pilot) in enumerate(slots):
        if pilot:
            pilot_no += 1
            code = f"HZ-P{pilot_no:02d}"
        else:
            demo_no += 1
            code = f"HZ-D{demo_no:02d}"
        plans.append(
            _plan_community(
                rng,
                people,
                code=code,
                stem=village_stems[index],
                county=county,
                township=township,
                pilot=pilot,
                today=today,
                now=now,
                tz=tz,
                natural_stems=[s for s in natural_pool if s != village_stems[index]],
            )
        )
    # pilots first (they were set up first), then the demonstration communities
    return sorted(plans, key=lambda p: (not p.code.startswith("HZ-P"), p.code))


# ---- accountability -------------------------------------------------------------------------
# Planned after the sample above with a random stream of its own, so the communities,
# residents, providers and services of a seed are the same with or without it.
# Visit plans and pairings are events of the communities, at their day in each
# community's calendar; officials, targets and supervision items are aggregates of
# their own, saved after the communities.
KEY_CATEGORIES = frozenset({"left_behind_elderly", "elderly_living_alone", "five_guarantee", "extreme_poverty"})
PAIRING_CATEGORIES = frozenset(
    {"five_guarantee", "extreme_poverty", "dibao", "hardship", "monitored", "elderly_living_alone", "disabled"}
)
PAIRING_ROLES = ("cadre", "party_member", "grid_worker")
PLAN_SHARE = 0.85  # of the residents in a key category who get a visit plan
FIT_SHARE = 0.5  # of the plans a policy would not keep, set to what the visits did keep
COVERAGE_TARGET = 0.6
COUNTY_CODES = {"八步区": "BB", "平桂区": "PG", "钟山县": "ZS", "昭平县": "ZP", "富川瑶族自治县": "FC"}
_AGENCIES = (
    "民政局副局长",
    "农业农村局干部",
    "委组织部干部",
    "人社局干部",
    "乡村振兴局副局长",
    "卫生健康局干部",
    "司法局干部",
)
_ITEMS = (
    "补齐{month}独居老人重点巡访记录",
    "整改重复登记、逾期录入问题",
    "落实特困供养人员结对帮扶责任人",
    "核实离世人员并及时办理台账销户",
    "开展汛期危旧房屋安全排查并建立台账",
    "完成留守老人关爱服务回访",
    "规范纸质台账补录，做到当日服务当日登记",
)
_RESOLUTIONS = ("已补录并逐户核实", "已整改到位，形成整改清单", "已落实责任人并建立台账", "已完成排查，资料归档")
_DEBRIEF = "{period}专项述职：{township}重点巡访对象{planned}人，服务{visits}人次；结对帮扶{pairs}户；下步抓好台账规范录入和督办事项整改。"


def last_full_month(today: date) -> Period:
    """The sample's last full month: today's month when today is its last day, else the one before."""
    if (today + timedelta(days=1)).day == 1:
        return parse_period(f"{today.year:04d}-{today.month:02d}")
    first = today.replace(day=1) - timedelta(days=1)
    return parse_period(f"{first.year:04d}-{first.month:02d}")


def _previous_month(today: date) -> Period:
    last = today.replace(day=1) - timedelta(days=1)
    return parse_period(f"{last.year:04d}-{last.month:02d}")


def _quarter_of(month: Period) -> Period:
    return parse_period(f"{month.first.year:04d}-Q{(month.first.month - 1) // 3 + 1}")


@dataclass
class _Service:
    """A record as it stands at the end of the sample: corrections applied, voided duplicates left out."""

    day: date
    kind: str
    residents: list[str]
    providers: list[str]


@dataclass
class _Official:
    code: str
    name: str
    title: str
    duties: list[tuple[str, str, date, date | None]] = field(default_factory=list)  # unit, duty, from, ended on
    debriefs: list[tuple[str, str, str]] = field(default_factory=list)  # unit, period, summary


@dataclass
class _Item:
    item_id: uuid.UUID
    unit: str
    item: str
    due: date
    resolved: tuple[date, str] | None


@dataclass
class _Accountability:
    officials: list[_Official] = field(default_factory=list)
    # ("set", unit, period, metric, kind, at_least) or ("decompose", unit, period, metric, kind, {unit: at_least})
    targets: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)


def _services_of(plan: _Plan) -> list[_Service]:
    changes: dict[str, dict[str, Any]] = {}
    for _moment, _priority, _seq, action, payload in plan.timeline:
        if action == "correct":
            changes.setdefault(payload["record_id"], {}).update(payload)
    out = []
    for record in plan.records:
        if record.duplicate:
            continue
        change = changes.get(record.record_id, {})
        kind = change.get("kind", record.kind)
        out.append(
            _Service(record.occurred_at.date(), kind, change.get("residents", record.residents), record.providers)
        )
    return out


def _kept(days: list[date], start: date, every: int, until: date) -> bool:
    """Whether every window of `every` days from `start` that ends by `until` holds a visit (and one does)."""
    window = start
    counted = False
    while True:
        end = window + timedelta(days=every - 1)
        if end > until:
            return counted
        if not any(window <= d <= end for d in days):
            return False
        counted = True
        window = end + timedelta(days=1)


def _fit(days: list[date], first: date, until: date) -> tuple[date, int] | None:
    """The earliest start (a visit day) and shortest rhythm of 14–30 days that the visits kept."""
    for every in (14, 15, 21, 30):
        for start in days:
            if start < first:
                continue
            if start + timedelta(days=2 * every - 1) > until:
                break
            if _kept(days, start, every, until):
                return start, every
    return None


def _policy_every(rng: random.Random, categories: set[str]) -> int:
    if categories & {"five_guarantee", "extreme_poverty"}:
        return _weighted(rng, ((7, 1), (14, 4), (15, 2), (30, 2)))
    if "elderly_living_alone" in categories:
        return _weighted(rng, ((14, 2), (15, 1), (21, 2), (30, 4)))
    return _weighted(rng, ((21, 1), (30, 4)))


def _pick_provider(rng: random.Random, candidates: list[_Provider], served: collections.Counter[str]) -> _Provider:
    """Mostly the provider who has served the resident most; grid workers and cadres before others."""
    bonus = {"grid_worker": 2, "cadre": 2, "party_member": 1.5}
    weights = [bonus.get(p.role, 1) * (1 + 4 * served[p.code]) for p in candidates]
    return rng.choices(candidates, weights=weights)[0]


def _plan_visits_and_pairings(
    rng: random.Random, plan: _Plan, services: list[_Service], today: date, tz: tzinfo
) -> None:
    """Visit plans and pairings of one community, put into its calendar at their days."""
    established = plan.established_on
    first_service = max(established, today - timedelta(days=WINDOW_DAYS))
    days: dict[str, list[date]] = collections.defaultdict(list)
    served: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for service in services:
        for code in service.residents:
            days[code].append(service.day)
            served[code].update(service.providers)
    for code in days:
        days[code] = sorted(set(days[code]))

    actions: list[tuple[date, str, Any]] = []

    # key visits (重点巡访)
    planned: list[tuple[_Resident, int, _Provider, date]] = []
    for resident in plan.residents:
        categories = set(resident.categories)
        if not categories & KEY_CATEGORIES or rng.random() >= PLAN_SHARE:
            continue
        first = max(first_service, resident.enrolled_on or established)
        gone = resident.departed[0] if resident.departed is not None else None
        if first > today - timedelta(days=7) or (gone is not None and gone <= first + timedelta(days=7)):
            continue
        start, every = first, _policy_every(rng, categories)
        mine = days.get(resident.code, [])
        if not _kept(mine, start, every, today) and gone is None and rng.random() < FIT_SHARE:
            fitted = _fit(mine, first, today)
            if fitted is not None:
                start, every = fitted
        candidates = [p for p in plan.providers if p.active(start, established)]
        if not candidates:
            continue
        provider = _pick_provider(rng, candidates, served[resident.code])
        actions.append((start, "visit_plan", (resident.code, every, provider.code, start)))
        plan.visit_plans += 1
        retired = provider.retired_on
        if retired is not None and retired <= today and (gone is None or retired < gone):
            # the provider retires: another takes the plan over from that day
            others = [p for p in plan.providers if p.active(retired, established)]
            if others:
                successor = _pick_provider(rng, others, served[resident.code])
                actions.append((retired, "visit_plan", (resident.code, every, successor.code, retired)))
                plan.visit_plans += 1
        if gone is not None:  # the resident left: the plan ends with them
            actions.append((gone, "end_visit_plan", (resident.code, gone)))
            plan.visit_plan_ends += 1
        elif retired is None:
            planned.append((resident, every, provider, start))
    if plan.pilot and planned:
        # One plan is tightened to every 14 days (加密巡访), and in some pilots one ends.
        rhythm = [item for item in planned if item[1] >= 21 and item[3] <= today - timedelta(days=45)]
        if rhythm:
            resident, _every, provider, start = chosen = rng.choice(rhythm)
            planned.remove(chosen)
            day = _day_between(rng, start + timedelta(days=21), today - timedelta(days=14))
            actions.append((day, "visit_plan", (resident.code, 14, provider.code, day)))
            plan.visit_plans += 1
        ending = [item for item in planned if item[3] <= today - timedelta(days=30)]
        if ending and rng.random() < 0.5:
            resident, _every, _provider, start = rng.choice(ending)
            day = _day_between(rng, start + timedelta(days=14), today - timedelta(days=7))
            actions.append((day, "end_visit_plan", (resident.code, day)))
            plan.visit_plan_ends += 1

    # pairings (结对帮扶)
    needy = [r for r in plan.residents if set(r.categories) & PAIRING_CATEGORIES]
    wanted = rng.randint(3, 5) if plan.pilot else rng.randint(2, 4)
    paired: list[tuple[_Resident, _Provider, date]] = []
    for resident in rng.sample(needy, min(wanted, len(needy))):
        day = max(established, resident.enrolled_on or established) + timedelta(days=rng.randint(0, 20))
        if day > today - timedelta(days=7) or not resident.active(day, established):
            continue
        pool = [p for p in plan.providers if p.role in PAIRING_ROLES and p.active(day, established)]
        if not pool:
            continue
        provider = _pick_provider(rng, pool, served[resident.code])
        actions.append((day, "pair", (provider.code, resident.code, day)))
        plan.pairings += 1
        ends = [d for d in (provider.retired_on, resident.departed[0] if resident.departed else None) if d is not None]
        if ends and min(ends) <= today:
            actions.append((min(ends), "unpair", (provider.code, resident.code, min(ends))))
            plan.pairing_ends += 1
        else:
            paired.append((resident, provider, day))
    handover = [item for item in paired if item[2] <= today - timedelta(days=30)]
    if plan.pilot and handover:
        # a pairing handed over to another cadre or party member
        resident, provider, start = rng.choice(handover)
        day = _day_between(rng, start + timedelta(days=14), today - timedelta(days=7))
        pool = [
            p for p in plan.providers
            if p.role in PAIRING_ROLES and p is not provider and p.active(day, established) and p.retired_on is None
        ]  # fmt: skip
        if pool:
            successor = _pick_provider(rng, pool, served[resident.code])
            actions.append((day, "unpair", (provider.code, resident.code, day)))
            actions.append((day, "pair", (successor.code, resident.code, day)))
            plan.pairing_ends += 1
            plan.pairings += 1

    # Into the calendar at the start of their day, after that day's enrolments and registrations.
    for day, action, payload in sorted(actions, key=lambda a: a[0]):
        plan.at(datetime.combine(day, time(0), tz), 1, action, payload)
    plan.timeline.sort(key=lambda item: (item[0], item[1], item[2]))


def _round_up(value: float, step: int) -> int:
    return max(step, step * -(-round(value) // step))


def _split(rng: random.Random, whole: int, shares: dict[str, float]) -> dict[str, int]:
    """Whole-number parts roughly in proportion to `shares` that add up to at least `whole`."""
    total = sum(shares.values())
    parts = {
        unit: max(1, round(whole * (share / total if total else 1 / len(shares)) * rng.uniform(0.95, 1.1)))
        for unit, share in shares.items()
    }
    short = whole - sum(parts.values())
    if short > 0:
        parts[max(parts, key=lambda u: (parts[u], u))] += short
    return parts


def _plan_accountability(rng: random.Random, plans: list[_Plan], today: date, tz: tzinfo) -> _Accountability:
    out = _Accountability()
    services = {plan.code: _services_of(plan) for plan in plans}
    for plan in plans:
        _plan_visits_and_pairings(rng, plan, services[plan.code], today, tz)

    people = _People(rng, today)
    month = last_full_month(today)
    quarter = _quarter_of(month)
    previous = _previous_month(today)

    # officials: 书记负总责 for each county and township, 党员干部联系点 for each pilot community
    townships: dict[str, list[str]] = {}
    secretaries: list[tuple[_Official, str, str, list[_Plan]]] = []  # official, unit, township, communities
    deputies: list[tuple[_Official, str, str, date]] = []

    def official(county: str, title: str, women: float = 0.2) -> _Official:
        number = 1 + sum(o.code.startswith(f"O-{COUNTY_CODES[county]}-") for o in out.officials)
        gender = "female" if rng.random() < women else "male"
        return _Official(
            f"O-{COUNTY_CODES[county]}-{number:02d}", people.name(people.surname(), "adult", gender), title
        )

    for county, names in COUNTIES:
        mine = [p for p in plans if p.county == county]
        townships[county] = [t for t in names if any(p.township == t for p in mine)]
        head = official(county, f"{county}委书记")
        head.duties.append((f"county:{county}", "secretary", min(min(p.established_on for p in mine), today), None))
        out.officials.append(head)
        for township in townships[county]:
            inside = [p for p in mine if p.township == township]
            since = min(min(p.established_on for p in inside), today)
            unit = f"township:{county}/{township}"
            secretary = official(county, f"{township}党委书记")
            secretary.duties.append((unit, "secretary", since, None))
            out.officials.append(secretary)
            deputy = official(county, f"{township}党委副书记、{'乡长' if township.endswith('乡') else '镇长'}", 0.3)
            deputy.duties.append((unit, "deputy", since, None))
            out.officials.append(deputy)
            secretaries.append((secretary, unit, township, inside))
            deputies.append((deputy, unit, township, since))
        for plan in mine:
            if plan.pilot:
                cadre = official(county, f"{county}{rng.choice(_AGENCIES)}", 0.35)
                cadre.duties.append((f"community:{plan.code}", "contact_point", min(plan.established_on, today), None))
                out.officials.append(cadre)
    # One deputy moves on; a successor answers from that day.
    movable = [d for d in deputies if d[3] <= today - timedelta(days=60)]
    if movable:
        deputy, unit, township, since = rng.choice(movable)
        day = _day_between(rng, today - timedelta(days=50), today - timedelta(days=30))
        deputy.duties[0] = (unit, "deputy", since, day)
        county = unit.split(":", 1)[1].split("/", 1)[0]
        successor = official(county, f"{township}党委副书记、{'乡长' if township.endswith('乡') else '镇长'}", 0.3)
        successor.duties.append((unit, "deputy", day, None))
        out.officials.append(successor)

    # debriefings (专项述职) of a few township secretaries for the previous month
    eligible = [s for s in secretaries if s[0].duties[0][2] <= previous.last]
    for secretary, unit, township, inside in sorted(
        rng.sample(eligible, min(len(eligible), rng.randint(5, 8))), key=lambda s: s[0].code
    ):
        visits = sum(len(s.residents) for p in inside for s in services[p.code] if previous.contains(s.day))
        planned_count = len(
            {
                (p.code, payload[0])
                for p in inside
                for _m, _pr, _s, action, payload in p.timeline
                if action == "visit_plan"
            }
        )
        pairs = sum(p.pairings for p in inside)
        summary = _DEBRIEF.format(
            period=previous.text, township=township, planned=planned_count, visits=visits, pairs=pairs
        )
        secretary.debriefs.append((unit, previous.text, summary))

    # targets (目标分解): each county's month and quarter, decomposed to its townships
    window_first = today - timedelta(days=WINDOW_DAYS)
    for period in (month, quarter):
        covered = (min(period.last, today) - max(period.first, window_first)).days + 1
        scale = ((period.last - period.first).days + 1) / max(1, covered)
        for county, _names in COUNTIES:
            records: dict[str, float] = {}
            served_by: dict[str, float] = {}
            aid: dict[str, float] = {}
            for township in townships[county]:
                delivered = [
                    (p.code, s)
                    for p in plans
                    if (p.county, p.township) == (county, township)
                    for s in services[p.code]
                    if period.contains(s.day)
                ]
                unit = f"township:{county}/{township}"
                records[unit] = len(delivered)
                served_by[unit] = len({(code, r) for code, s in delivered for r in s.residents})
                aid[unit] = sum(1 for _code, s in delivered if s.kind == "emergency_aid")
            county_unit = f"county:{county}"
            metrics: list[tuple[str, str | None, dict[str, float], int]] = [
                ("records", None, records, _round_up(sum(records.values()) * scale * rng.uniform(0.85, 1.1), 10)),
                (
                    "residents_served",
                    None,
                    served_by,
                    _round_up(sum(served_by.values()) * min(scale, 1.3) * rng.uniform(0.85, 1.1), 5),
                ),
            ]
            if period is quarter:
                metrics.append(
                    ("records", "emergency_aid", aid, _round_up(sum(aid.values()) * scale * rng.uniform(0.8, 1.1), 5))
                )
            for metric, kind, shares, whole in metrics:
                out.targets.append(("set", county_unit, period.text, metric, kind, whole))
                out.targets.append(("decompose", county_unit, period.text, metric, kind, _split(rng, whole, shares)))
            for township in townships[county]:
                out.targets.append(
                    ("set", f"township:{county}/{township}", period.text, "coverage", None, COVERAGE_TARGET)
                )

    # supervision items (督办事项) for some townships, due in the last full month
    units = [f"township:{county}/{t}" for county, _names in COUNTIES for t in townships[county]]
    chosen = sorted(rng.sample(units, min(len(units), rng.randint(7, 9))))
    count = sum(rng.randint(1, 2) for _ in chosen)
    outcomes = ["on_time", "late", "open"] + [
        _weighted(rng, (("on_time", 5), ("late", 2), ("open", 2))) for _ in range(max(0, count - 3))
    ]
    rng.shuffle(outcomes)
    last_due = min(month.last, today)
    for index, outcome in enumerate(outcomes):
        unit = chosen[index % len(chosen)]
        text = rng.choice(_ITEMS).format(month=f"{month.first.month}月")
        resolved: tuple[date, str] | None = None
        if outcome == "late" and last_due - timedelta(days=2) >= month.first:
            due = _day_between(rng, month.first, last_due - timedelta(days=2))
            resolved = (_day_between(rng, due + timedelta(days=1), today), rng.choice(_RESOLUTIONS))
        elif outcome in ("on_time", "late"):
            due = _day_between(rng, month.first, last_due)
            resolved = (due - timedelta(days=rng.randint(0, 12)), rng.choice(_RESOLUTIONS))
        else:
            due = _day_between(rng, month.first, last_due)
        out.items.append(_Item(uuid.UUID(int=rng.getrandbits(128), version=4), unit, text, due, resolved))
    return out


def _save_accountability(service: LedgerService, plan: _Accountability, today: date, actor: str) -> None:
    """Officials, targets and supervision items: built from their aggregates, saved in three transactions."""

    def past(day: date) -> date:
        if day > today:  # pragma: no cover - the plan keeps every day in the past
            raise models.Malformed("date", f"{day.isoformat()} is in the future")
        return day

    officials = []
    for o in plan.officials:
        official = Official.register(
            code=code_arg(o.code, "code"),
            name=text_arg(o.name, "--name"),
            title=text_arg(o.title, "--title"),
            actor=actor,
        )
        for unit, duty, starts_on, ended_on in o.duties:
            ref, name = str(unit_arg(unit)), duty_arg(duty)
            official.assign(unit=ref, duty=name, starts_on=past(starts_on), actor=actor)
            if ended_on is not None:
                official.end(unit=ref, duty=name, on=past(ended_on), actor=actor)
        for unit, period, summary in o.debriefs:
            official.file_debrief(
                unit=str(unit_arg(unit)),
                period=period_arg(period).text,
                summary=text_arg(summary, "--summary", 5000),
                actor=actor,
            )
        officials.append(official)
    service.app.save(*officials)

    targets: dict[str, UnitTargets] = {}

    def of(unit: str) -> UnitTargets:
        ref = str(unit_arg(unit))
        if ref not in targets:
            targets[ref] = UnitTargets.open(unit=ref, actor=actor)
        return targets[ref]

    for action, unit, period, metric, kind, amount in plan.targets:
        name, kind_slug, span = metric_arg(metric), kind_arg(kind), period_arg(period).text
        if action == "set":
            of(unit).set_target(
                period=span, metric=name, kind=kind_slug, at_least=amount_arg(name, str(amount)), actor=actor
            )
        else:
            into = {
                str(unit_arg(child, "--into")): amount_arg(name, str(part), "--into") for child, part in amount.items()
            }
            of(unit).decompose(
                period=span, metric=name, kind=kind_slug, into=into, children=[of(child) for child in into], actor=actor
            )
    service.app.save(*targets.values())

    items = []
    for i in plan.items:
        item = SupervisionItem.open(
            item_id=i.item_id, unit=str(unit_arg(i.unit)), item=text_arg(i.item, "--item", 500), due=i.due, actor=actor
        )
        if i.resolved is not None:
            on, note = i.resolved
            item.resolve(note=text_arg(note, "--note", 2000), on=past(on), actor=actor)
        items.append(item)
    service.app.save(*items)


# ---- loading --------------------------------------------------------------------------------
def _build(
    service: LedgerService, plan: _Plan, keys: KeySession, actor: str
) -> Community:
    """The community's aggregate with every planned event, each command validated first."""
    cmd = service.validate(
        models.EstablishCommunity,
        {
            "code": plan.code,
            "name": plan.name,
            "county": plan.county,
            "township": plan.township,
            "village": plan.village,
            "natural_villages": plan.natural_villages,
            "established_on": plan.established_on,
        },
    )
    assert cmd.established_on is not None
    community = Community.establish(
        code=cmd.code,
        name=cmd.name,
        county=cmd.county,
        township=cmd.township,
        village=cmd.village,
        natural_villages=cmd.natural_villages,
        established_on=cmd.established_on,
        actor=actor,
    )

    def enroll(resident: _Resident) -> None:
        data = {
            "community": plan.code,
            "code": resident.code,
            "name": resident.name,
            "birth_date": resident.birth_date,
            "gender": resident.gender,
            "categories": resident.categories,
            "grid": resident.grid,
            "household": resident.household,
            "enrolled_on": resident.enrolled_on,
        }
        service.apply_enroll(community, service.validate(models.EnrollResident, data), keys, actor)

    def register(provider: _Provider) -> None:
        data = {
            "community": plan.code,
            "code": provider.code,
            "name": provider.name,
            "role": provider.role,
            "team": provider.team,
            "registered_on": provider.registered_on,
        }
        LedgerService.apply_register(community, service.validate(models.RegisterProvider, data), actor)

    for resident in plan.residents:
        if resident.enrolled_on is None:
            enroll(resident)
    for provider in plan.providers:
        if provider.registered_on is None:
            register(provider)
    for _moment, _priority, _seq, action, payload in plan.timeline:
        if action == "enroll":
            enroll(payload)
        elif action == "register":
            register(payload)
        elif action == "depart":
            on, reason = payload.departed
            cmd = service.validate(
                models.DepartResident, {"community": plan.code, "code": payload.code, "reason": reason, "on": on}
            )
            community.depart_resident(code=cmd.code, reason=cmd.reason, on=cmd.on, actor=actor)
        elif action == "retire":
            cmd = service.validate(
                models.RetireProvider, {"community": plan.code, "code": payload.code, "on": payload.retired_on}
            )
            community.retire_provider(code=cmd.code, on=cmd.on, actor=actor)
        elif action == "record":
            record: _Record = payload
            cmd = service.validate(
                models.RecordService,
                {
                    "community": plan.code,
                    "kind": record.kind,
                    "residents": record.residents,
                    "providers": record.providers,
                    "occurred_at": record.occurred_at,
                    "minutes": record.minutes,
                    "place": record.place,
                    "note": record.note,
                    "record_id": record.record_id,
                    "entered_on": record.entered_on,
                },
            )
            assert cmd.record_id is not None
            LedgerService.apply_record(community, cmd, cmd.record_id, keys, actor)
        elif action == "correct":
            cmd = service.validate(models.CorrectService, {"community": plan.code, **payload})
            community.correct_service(
                record_id=cmd.record_id,
                reason=cmd.reason,
                actor=actor,
                kind=cmd.kind,
                minutes=cmd.minutes,
                residents=cmd.residents,
            )
        elif action == "void":
            record_id, reason = payload
            cmd = service.validate(
                models.VoidService, {"community": plan.code, "record_id": record_id, "reason": reason}
            )
            community.void_service(record_id=cmd.record_id, reason=cmd.reason, actor=actor)
        elif action == "visit_plan":
            resident, every, provider, starts_on = payload
            community.set_visit_plan(
                resident=code_arg(resident, "RESIDENT"),
                every=every,
                provider=code_arg(provider, "--provider"),
                starts_on=starts_on,
                actor=actor,
            )
        elif action == "end_visit_plan":
            resident, on = payload
            community.end_visit_plan(resident=code_arg(resident, "RESIDENT"), on=on, actor=actor)
        elif action in ("pair", "unpair"):
            provider, resident, on = payload
            change = community.add_pairing if action == "pair" else community.end_pairing
            change(
                provider=code_arg(provider, "--provider"), resident=code_arg(resident, "--resident"), on=on, actor=actor
            )
        else:  # pragma: no cover - the plan only holds the actions above
            raise AssertionError(action)
    return community


def run_demo(
    service: LedgerService,
    *,
    seed: int,
    actor: str = "demo",
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Fill an empty store with the demo sample; refuses a store that holds events."""
    if service.recorder.max_notification_id():
        raise LedgerError("the store already holds events; demo fills only an empty store")
    service.require_master()
    now = service.now()
    if today is None:
        today = now.date()
    elif today > now.date():
        raise models.Malformed("today", f"{today.isoformat()} is in the future")

    rng = random.Random(seed)
    plans = _plan_all(rng, today, now, service.tz)
    # A stream of its own: the sample above is the same for a seed, with or without what follows.
    accountability = _plan_accountability(random.Random(f"accountability:{seed}"), plans, today, service.tz)

    total = len(plans)
    for start in range(0, total, BATCH):
        batch = plans[start : start + BATCH]
        keys = service.key_session()
        aggregates: list[Community] = []
        for plan in batch:
            aggregates.append(_build(service, plan, keys, actor))
        service.save_many(aggregates, keys)
        if progress is not None:
            progress(start + len(batch), total)
    _save_accountability(service, accountability, today, actor)

    days = [r.occurred_at.date() for p in plans for r in p.records]
    # The funding ledger, from a stream of its own too.
    from commands.demo_funds import plan_funds, save_funds

    fund_plans = plan_funds(random.Random(f"funds:{seed}"), plans, today, today - timedelta(days=WINDOW_DAYS))
    funds = save_funds(service, fund_plans, actor)
    return DemoSummary(
        counties=len({p.county for p in plans}),
        townships=len({(p.county, p.township) for p in plans}),
        communities=total,
        pilot=sum(1 for p in plans if p.code.startswith("HZ-P")),
        demonstration=sum(1 for p in plans if p.code.startswith("HZ-D")),
        residents=sum(len(p.residents) for p in plans),
        providers=sum(len(p.providers) for p in plans),
        services=sum(len(p.records) for p in plans),
        corrections=sum(p.corrections for p in plans),
        voids=sum(p.voids for p in plans),
        late=sum(p.late for p in plans),
        first_day=min(days),
        last_day=max(days),
        departures=sum(1 for p in plans for r in p.residents if r.departed is not None),
        retirements=sum(1 for p in plans for v in p.providers if v.retired_on is not None),
        officials=len(accountability.officials),
        duties=sum(len(o.duties) for o in accountability.officials),
        visit_plans=sum(p.visit_plans for p in plans),
        pairings=sum(p.pairings for p in plans),
        targets=sum(1 if t[0] == "set" else len(t[5]) for t in accountability.targets),
        supervision_items=len(accountability.items),
        debriefings=sum(len(o.debriefs) for o in accountability.officials),
        funding_lines=funds.lines,
        fund_transfers=funds.transfers,
        fund_spends=funds.spends,
        fund_reversals=funds.reversals,
        fund_returns=funds.returns,
    )
