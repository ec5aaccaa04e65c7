"""Accountability: officials and their duties, targets, supervision items, debriefings.

Visit plans and pairings live on the Community aggregate (they need its residents
and providers); everything else here has its own aggregate, so it is recorded,
replayed and assessed like the services themselves. Same stored-format rules as
domain.community: explicit stable topics, flat primitive payloads, ISO dates.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.units import parse_period, parse_unit

OFFICIAL_NAMESPACE = UUID("0b6f3f1e-8a8e-4c55-9a3e-6d1f2c7a4b03")
UNIT_NAMESPACE = UUID("3c2d9a71-52b4-4f0e-8d6b-9e4a1f7c2d04")

DUTIES = ("secretary", "deputy", "contact_point")
METRICS = ("records", "minutes", "residents_served", "coverage")


def official_id(code: str) -> UUID:
    return uuid5(OFFICIAL_NAMESPACE, code)


def unit_id(unit: str) -> UUID:
    return uuid5(UNIT_NAMESPACE, str(parse_unit(unit)))


def _day(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


class Official(Aggregate):
    """A party or government official who answers for units (书记负总责, 党员干部联系点)."""

    TOPIC = "taizhang:Official"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:Official.Created"

    class Registered(Created):
        TOPIC = "taizhang:Official.Registered"
        code: str
        name: str
        title: str

    class DutyAssigned(Event):
        TOPIC = "taizhang:Official.DutyAssigned"
        unit: str
        duty: str
        starts_on: str

        def apply(self, official: Official) -> None:
            official.duties.append([self.unit, self.duty, self.starts_on, None])

    class DutyEnded(Event):
        TOPIC = "taizhang:Official.DutyEnded"
        unit: str
        duty: str
        on: str

        def apply(self, official: Official) -> None:
            spell = official._active(self.unit, self.duty)
            assert spell is not None
            spell[3] = self.on

    class DebriefFiled(Event):
        TOPIC = "taizhang:Official.DebriefFiled"
        unit: str
        period: str
        summary: str

        def apply(self, official: Official) -> None:
            official.debriefs.append([self.unit, self.period])

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:Official.Snapshot"

    def __init__(self, code: str, name: str, title: str) -> None:
        self.code = code
        self.name = name
        self.title = title
        self.duties: list[list[Any]] = []  # [unit, duty, starts_on, ends_on | None]
        self.debriefs: list[list[str]] = []  # [unit, period]

    @classmethod
    def register(cls, *, code: str, name: str, title: str, actor: str) -> Official:
        for field, value in (("code", code), ("name", name), ("title", title)):
            if not value.strip():
                raise RuleViolation(f"{field} must not be empty")
        return cls._create(cls.Registered, id=official_id(code), code=code, name=name, title=title, actor=actor)

    def _active(self, unit: str, duty: str) -> list[Any] | None:
        for spell in self.duties:
            if spell[0] == unit and spell[1] == duty and spell[3] is None:
                return spell
        return None

    def assign(self, *, unit: str, duty: str, starts_on: date | str, actor: str) -> None:
        if duty not in DUTIES:
            raise RuleViolation(f"unknown duty {duty!r}")
        if self._active(unit, duty) is not None:
            raise AlreadyExists(f"official {self.code} already holds {duty} of {unit}")
        day = _day(starts_on)
        for spell in self.duties:
            if spell[0] == unit and spell[1] == duty and spell[3] is not None and day < spell[3]:
                raise RuleViolation(f"official {self.code} held {duty} of {unit} until {spell[3]}, after {day}")
        self.trigger_event(self.DutyAssigned, unit=unit, duty=duty, starts_on=day, actor=actor)

    def end(self, *, unit: str, duty: str, on: date | str, actor: str) -> None:
        spell = self._active(unit, duty)
        if spell is None:
            raise NotActive(f"official {self.code} does not hold {duty} of {unit}")
        day = _day(on)
        if day < spell[2]:
            raise RuleViolation(f"official {self.code} took {duty} of {unit} on {spell[2]}, after {day}")
        self.trigger_event(self.DutyEnded, unit=unit, duty=duty, on=day, actor=actor)

    def file_debrief(self, *, unit: str, period: str, summary: str, actor: str) -> None:
        if not summary.strip():
            raise RuleViolation("summary must not be empty")
        span = parse_period(period)
        held = any(
            spell[0] == unit and spell[2] <= span.last.isoformat() and (spell[3] is None or spell[3] > span.first.isoformat())
            for spell in self.duties
        )
        if not held:
            raise NotActive(f"official {self.code} held no duty for {unit} during {period}")
        if [unit, span.text] in self.debriefs:
            raise AlreadyExists(f"official {self.code} already filed a debriefing for {unit} {span.text}")
        self.trigger_event(self.DebriefFiled, unit=unit, period=span.text, summary=summary, actor=actor)


class UnitTargets(Aggregate):
    """The targets set for one unit (目标分解督办), period by period."""

    TOPIC = "taizhang:UnitTargets"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:UnitTargets.Created"

    class Opened(Created):
        TOPIC = "taizhang:UnitTargets.Opened"
        unit: str

    class TargetSet(Event):
        TOPIC = "taizhang:UnitTargets.TargetSet"
        period: str
        metric: str
        kind: str | None
        at_least: float
        source: str | None  # the parent unit when this target came from a decomposition

        def apply(self, targets: UnitTargets) -> None:
            targets.targets[targets.key(self.period, self.metric, self.kind)] = self.at_least

    class TargetDecomposed(Event):
        TOPIC = "taizhang:UnitTargets.TargetDecomposed"
        period: str
        metric: str
        kind: str | None
        into: dict[str, float]

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:UnitTargets.Snapshot"

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.targets: dict[str, float] = {}

    @staticmethod
    def key(period: str, metric: str, kind: str | None) -> str:
        return f"{period}|{metric}|{kind or ''}"

    @classmethod
    def open(cls, *, unit: str, actor: str) -> UnitTargets:
        return cls._create(cls.Opened, id=unit_id(unit), unit=str(parse_unit(unit)), actor=actor)

    def set_target(
        self, *, period: str, metric: str, kind: str | None, at_least: float, actor: str, source: str | None = None
    ) -> None:
        if metric not in METRICS:
            raise RuleViolation(f"unknown metric {metric!r}")
        if at_least < 0 or (metric == "coverage" and at_least > 1):
            raise RuleViolation(f"at_least {at_least} is out of range for {metric}")
        span = parse_period(period)
        self.trigger_event(
            self.TargetSet,
            period=span.text,
            metric=metric,
            kind=kind,
            at_least=at_least,
            source=source,
            actor=actor,
        )

    def target(self, period: str, metric: str, kind: str | None) -> float | None:
        return self.targets.get(self.key(parse_period(period).text, metric, kind))

    def decompose(
        self, *, period: str, metric: str, kind: str | None, into: dict[str, float], children: list[UnitTargets], actor: str
    ) -> None:
        """Split this unit's target among units inside it; they must add up to at least the parent's."""
        parent = self.target(period, metric, kind)
        if parent is None:
            raise NotFound(f"{self.unit} has no {metric} target for {period}{' (' + kind + ')' if kind else ''}")
        if metric == "coverage":
            raise RuleViolation("coverage is a share, not a sum: set each unit's coverage target instead")
        total = sum(into.values())
        if total < parent:
            raise RuleViolation(f"the parts add up to {total:g}, less than {self.unit}'s target of {parent:g}")
        me = parse_unit(self.unit)
        for child in children:
            part = parse_unit(child.unit)
            # Where a community lies is in the store, not in its name: the application checks those.
            if part.level != "community" and not me.contains(part):
                raise RuleViolation(f"{child.unit} is not inside {self.unit}")
        span = parse_period(period).text
        self.trigger_event(self.TargetDecomposed, period=span, metric=metric, kind=kind, into=dict(into), actor=actor)
        for child in children:
            child.set_target(period=span, metric=metric, kind=kind, at_least=into[child.unit], actor=actor, source=self.unit)


class SupervisionItem(Aggregate):
    """A supervised item (督办事项): opened for a unit with a due date, resolved with a note."""

    TOPIC = "taizhang:SupervisionItem"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:SupervisionItem.Created"

    class Opened(Created):
        TOPIC = "taizhang:SupervisionItem.Opened"
        unit: str
        item: str
        due: str

    class Resolved(Event):
        TOPIC = "taizhang:SupervisionItem.Resolved"
        note: str
        on: str

        def apply(self, item: SupervisionItem) -> None:
            item.resolved_on = self.on

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:SupervisionItem.Snapshot"

    def __init__(self, unit: str, item: str, due: str) -> None:
        self.unit = unit
        self.item = item
        self.due = due
        self.resolved_on: str | None = None

    @classmethod
    def open(cls, *, item_id: UUID, unit: str, item: str, due: date | str, actor: str) -> SupervisionItem:
        if not item.strip():
            raise RuleViolation("item must not be empty")
        return cls._create(cls.Opened, id=item_id, unit=str(parse_unit(unit)), item=item, due=_day(due), actor=actor)

    def resolve(self, *, note: str, on: date | str, actor: str) -> None:
        if self.resolved_on is not None:
            raise NotActive(f"item {self.id} was already resolved on {self.resolved_on}")
        if not note.strip():
            raise RuleViolation("note must not be empty")
        self.trigger_event(self.Resolved, note=note, on=_day(on), actor=actor)


for _cls in (Official, UnitTargets, SupervisionItem):
    register_topic(_cls.Snapshot.TOPIC, _cls.Snapshot)
