"""Closing and reopening periods (结账 / 反结账).

A close is one `PeriodClosed` event in the stream of every community of the unit,
all saved in ONE transaction: a writer that loaded one of those communities before
the close loses its save to the version conflict and, redoing its decision, finds
the period closed. So no write can slip past a close.

Which communities a closure covers is decided when it is made: the communities of
the unit known to the store at that moment (the write-time `community_units`
index). A community established later inside a closed township or county is not
covered by it; close that community's period on its own (`--unit community:CODE`).

Closures are independent of each other, identified by unit and period. A day is
closed in a community while any closure it carries covers the day: a month may be
closed inside a closed quarter, a community inside a closed township, and each must
be reopened by its own unit and period.
"""

from __future__ import annotations

from typing import Any

from commands.app import Change, KeySession, LedgerService
from domain.community import Community
from domain.errors import AlreadyExists, NotActive, NotFound
from domain.units import Period, UnitRef


def communities_of(service: LedgerService, unit: UnitRef) -> list[str]:
    """Codes of the communities of a unit, as the store knows them now (refused when none)."""
    codes = [
        code
        for code, county, township in service.recorder.units()
        if (unit.level == "community" and code == unit.community)
        or (unit.level == "township" and (county, township) == (unit.county, unit.township))
        or (unit.level == "county" and county == unit.county)
    ]
    if not codes:
        raise NotFound(f"no {unit.level} {str(unit).split(':', 1)[1]} in the store")
    return codes


def close_period(service: LedgerService, unit: UnitRef, period: Period, reason: str, actor: str) -> dict[str, Any]:
    """Close `period` in every community of `unit`, atomically."""
    unit_text = str(unit)

    def decide(_keys: KeySession) -> Change:
        codes = communities_of(service, unit)
        communities = [service.get_community(code) for code in codes]
        for community in communities:
            existing = community.closure(unit_text, period.text)
            if existing is not None:
                raise AlreadyExists(
                    f"{unit_text} {period.text} is already closed (closed by {existing[4]} on {existing[5]})"
                )
        closed_at = service.now().isoformat(timespec="seconds")
        for community in communities:
            community.close_period(unit=unit_text, period=period.text, reason=reason, closed_at=closed_at, actor=actor)
        result = {"unit": unit_text, "period": period.text, "closed": True, "communities": codes}
        return Change(result, communities)

    return service._write(decide)  # type: ignore[no-any-return]


def reopen_period(service: LedgerService, unit: UnitRef, period: Period, reason: str, actor: str) -> dict[str, Any]:
    """Reopen a closure in every community that carries it, atomically."""
    unit_text = str(unit)

    def decide(_keys: KeySession) -> Change:
        communities = [service.get_community(code) for code in communities_of(service, unit)]
        closed = [c for c in communities if c.closure(unit_text, period.text) is not None]
        if not closed:
            raise NotActive(f"{unit_text} {period.text} is not closed; nothing to reopen")
        for community in closed:
            community.reopen_period(unit=unit_text, period=period.text, reason=reason, actor=actor)
        result = {
            "unit": unit_text,
            "period": period.text,
            "reopened": True,
            "communities": [c.code for c in closed],
            "still_closed": still_closed(closed, period),
        }
        return Change(result, closed)

    return service._write(decide)  # type: ignore[no-any-return]


def still_closed(communities: list[Community], period: Period) -> list[str]:
    """Other closures that still cover some day of `period` in these communities ("unit period")."""
    first, last = period.first.isoformat(), period.last.isoformat()
    found: set[str] = set()
    for community in communities:
        for unit, text, start, end, *_ in community.closures.values():
            if start <= last and first <= end:
                found.add(f"{unit} {text}")
    return sorted(found)
