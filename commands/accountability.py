"""The write side of accountability: officials, duties, key visits, pairings, targets, supervision.

Input is judged first (`Malformed`, exit 2); then the store's rules (exit 1) through
the same get -> domain call -> save loop, with retries, as every other write.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from commands import models
from commands.app import Change, KeySession, LedgerService, refuse_erased
from domain.accountability import DUTIES, METRICS, Official, SupervisionItem, UnitTargets, official_id, unit_id
from domain.errors import AlreadyExists, NotFound
from domain.units import Period, UnitRef, parse_period, parse_unit
from domain.vocab import KINDS


def unit_arg(value: str, option: str = "--unit") -> UnitRef:
    try:
        return parse_unit(value)
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def period_arg(value: str, option: str = "--period") -> Period:
    try:
        return parse_period(value)
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def duty_arg(value: str) -> str:
    duty = value.strip().lower().replace("-", "_")
    if duty not in DUTIES:
        raise models.Malformed("--duty", f"unknown duty {value!r} (one of: {', '.join(DUTIES)})")
    return duty


def metric_arg(value: str) -> str:
    metric = value.strip().lower().replace("-", "_")
    if metric not in METRICS:
        raise models.Malformed("--metric", f"unknown metric {value!r} (one of: {', '.join(METRICS)})")
    return metric


def kind_arg(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return KINDS.parse(value)
    except ValueError as e:
        raise models.Malformed("--kind", str(e)) from None


def amount_arg(metric: str, value: str, option: str = "--at-least") -> float:
    try:
        amount = float(value)
    except ValueError:
        raise models.Malformed(option, f"not a number: {value!r}") from None
    if not math.isfinite(amount) or amount < 0:
        raise models.Malformed(option, f"must be a finite number of 0 or more, got {value!r}")
    if metric == "coverage":
        if amount > 1:
            raise models.Malformed(option, f"coverage is a share between 0 and 1, got {value!r}")
    elif amount != int(amount) or amount > 10**9:
        raise models.Malformed(option, f"{metric} targets are whole numbers, got {value!r}")
    return amount


def day_arg(value: str | date | None, option: str, default: date) -> date:
    if value is None:
        return default
    try:
        return models.day(value)
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def text_arg(value: str, option: str, limit: int = models.MAX_TEXT) -> str:
    try:
        return models.clean_text(value, limit=limit, what=option.lstrip("-"))
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def code_arg(value: str, option: str) -> str:
    try:
        return models.clean_code(value)
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def check_inside(unit: UnitRef, into: dict[UnitRef, float]) -> None:
    """What can be judged without the store: parts below the unit, at a lower level."""
    order = {"county": 0, "township": 1, "community": 2}
    for child in into:
        if order[child.level] <= order[unit.level]:
            raise models.Malformed("--into", f"{child} is not inside {unit}")
        if child.level != "community" and not unit.contains(child):
            raise models.Malformed("--into", f"{child} is not inside {unit}")


class Accountability:
    """Accountability commands on an open store."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service

    # ---- lookups ---------------------------------------------------------------------------
    def require_unit(self, unit: UnitRef) -> None:
        units = self.service.recorder.units()
        if unit.level == "community":
            found = any(code == unit.community for code, _c, _t in units)
        elif unit.level == "township":
            found = any((c, t) == (unit.county, unit.township) for _code, c, t in units)
        else:
            found = any(c == unit.county for _code, c, _t in units)
        if not found:
            raise NotFound(f"no {unit.level} {str(unit).split(':', 1)[1]} in the store")

    def official(self, code: str) -> Official:
        try:
            return self.service.app.repository.get(official_id(code))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            raise NotFound(f"official {code} is not registered") from None

    def targets(self, unit: UnitRef) -> UnitTargets | None:
        try:
            return self.service.app.repository.get(unit_id(str(unit)))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    # ---- officials and duties ---------------------------------------------------------------
    def register_official(self, code: str, name: str, title: str, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            try:
                self.service.app.repository.get(official_id(code))
            except AggregateNotFoundError:
                pass
            else:
                raise AlreadyExists(f"official {code} is already registered")
            return Change({"official": code}, [Official.register(code=code, name=name, title=title, actor=actor)])

        return self.service._write(decide)

    def assign_duty(self, code: str, unit: UnitRef, duty: str, starts_on: date, actor: str) -> dict[str, Any]:
        self.require_unit(unit)

        def decide(_keys: KeySession) -> Change:
            official = self.official(code)
            official.assign(unit=str(unit), duty=duty, starts_on=starts_on, actor=actor)
            return Change({"official": code, "unit": str(unit), "duty": duty}, [official])

        return self.service._write(decide)

    def end_duty(self, code: str, unit: UnitRef, duty: str, on: date, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            official = self.official(code)
            official.end(unit=str(unit), duty=duty, on=on, actor=actor)
            return Change({"official": code, "unit": str(unit), "duty": duty}, [official])

        return self.service._write(decide)

    def file_debrief(self, code: str, unit: UnitRef, period: Period, summary: str, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            official = self.official(code)
            official.file_debrief(unit=str(unit), period=period.text, summary=summary, actor=actor)
            return Change({"official": code, "unit": str(unit), "period": period.text}, [official])

        return self.service._write(decide)

    # ---- key visits and pairings ---------------------------------------------------------------
    def set_visit_plan(
        self, community: str, resident: str, every: int, provider: str, starts_on: date, actor: str
    ) -> dict[str, Any]:
        def decide(keys: KeySession) -> Change:
            agg = self.service.get_community(community)
            refuse_erased(keys, community, [resident])
            agg.set_visit_plan(resident=resident, every=every, provider=provider, starts_on=starts_on, actor=actor)
            return Change({"community": community, "resident": resident, "every": every}, [agg])

        return self.service._write(decide)

    def end_visit_plan(self, community: str, resident: str, on: date, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            agg = self.service.get_community(community)
            agg.end_visit_plan(resident=resident, on=on, actor=actor)
            return Change({"community": community, "resident": resident}, [agg])

        return self.service._write(decide)

    def pairing(self, action: str, community: str, provider: str, resident: str, on: date, actor: str) -> dict[str, Any]:
        def decide(keys: KeySession) -> Change:
            agg = self.service.get_community(community)
            if action == "add":
                refuse_erased(keys, community, [resident])
                agg.add_pairing(provider=provider, resident=resident, on=on, actor=actor)
            else:
                agg.end_pairing(provider=provider, resident=resident, on=on, actor=actor)
            return Change({"community": community, "provider": provider, "resident": resident}, [agg])

        return self.service._write(decide)

    # ---- targets ------------------------------------------------------------------------------
    def set_target(
        self, unit: UnitRef, period: Period, metric: str, kind: str | None, at_least: float, actor: str
    ) -> dict[str, Any]:
        self.require_unit(unit)

        def decide(_keys: KeySession) -> Change:
            targets = self.targets(unit) or UnitTargets.open(unit=str(unit), actor=actor)
            targets.set_target(period=period.text, metric=metric, kind=kind, at_least=at_least, actor=actor)
            result = {"unit": str(unit), "period": period.text, "metric": metric, "kind": kind, "at_least": at_least}
            return Change(result, [targets])

        return self.service._write(decide)

    def decompose(
        self, unit: UnitRef, period: Period, metric: str, kind: str | None, into: dict[UnitRef, float], actor: str
    ) -> dict[str, Any]:
        check_inside(unit, into)
        units = self.service.recorder.units()
        for child in into:
            self.require_unit(child)
            if child.level == "community":
                code, county, township = next(u for u in units if u[0] == child.community)
                located = UnitRef("community", county=county, township=township, community=code)
                if not unit.contains(located):
                    raise NotFound(f"{child} is not inside {unit}")

        def decide(_keys: KeySession) -> Change:
            parent = self.targets(unit)
            if parent is None:
                raise NotFound(f"{unit} has no targets for {period.text}")
            children = [self.targets(child) or UnitTargets.open(unit=str(child), actor=actor) for child in into]
            parent.decompose(
                period=period.text,
                metric=metric,
                kind=kind,
                into={str(child): amount for child, amount in into.items()},
                children=children,
                actor=actor,
            )
            result = {"unit": str(unit), "period": period.text, "metric": metric, "into": {str(k): v for k, v in into.items()}}
            return Change(result, [parent, *children])

        return self.service._write(decide)

    # ---- supervision --------------------------------------------------------------------------------
    def open_item(self, unit: UnitRef, item: str, due: date, actor: str, item_id: UUID | None = None) -> dict[str, Any]:
        self.require_unit(unit)
        new_id = item_id or uuid4()

        def decide(_keys: KeySession) -> Change:
            opened = SupervisionItem.open(item_id=new_id, unit=str(unit), item=item, due=due, actor=actor)
            return Change({"item_id": str(new_id), "unit": str(unit), "due": due.isoformat()}, [opened])

        return self.service._write(decide)

    def resolve_item(self, item_id: UUID, note: str, on: date, actor: str) -> dict[str, Any]:
        def decide(_keys: KeySession) -> Change:
            try:
                item: SupervisionItem = self.service.app.repository.get(item_id)  # type: ignore[assignment]
            except AggregateNotFoundError:
                raise NotFound(f"no supervision item {item_id}") from None
            if not isinstance(item, SupervisionItem):
                raise NotFound(f"no supervision item {item_id}")
            item.resolve(note=note, on=on, actor=actor)
            return Change({"item_id": str(item_id), "resolved_on": on.isoformat()}, [item])

        return self.service._write(decide)
