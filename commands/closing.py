"""Closing and reopening periods (结账 / 反结账).

A close is one `PeriodClosed` event in the stream of every community of the unit,
saved community by community, each in its own short transaction (retried when a clerk
wins the race for that community): a writer that loaded a community before its close
loses its save to the version conflict and, redoing its decision, finds the period
closed. So no write can slip past a close: each write to a community lands before that
community's closure or is refused. Month-end closing of a county is not starved by its
clerks (one attempt covering every community would be redone whenever any of them
writes). While a close runs, the period is closed in the communities done so far and
open in the rest; a close that stops half-way (a busy store, an interrupted command)
is finished by running it again, which closes the communities still open and keeps the
closed-at time the first run recorded. Reopening stays one transaction (rare, and a
half-reopened period would be the worse surprise).

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

from collections.abc import Callable
from typing import Any

from commands.app import Busy, Change, KeySession, LedgerService
from domain.community import Community
from domain.errors import AlreadyExists, NotActive, NotFound
from domain.ids import community_id
from domain.units import Period, UnitRef
from infra.codec import decode_payload

# Attempts per community: clerks may keep one busy, but each attempt is short (the registry only).
CLOSE_ATTEMPTS = 200


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


def close_period(
    service: LedgerService,
    unit: UnitRef,
    period: Period,
    reason: str,
    actor: str,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Close `period` in every community of `unit`, one community per transaction; idempotent:
    a rerun finishes a partial close (refused as already closed only when every community is)."""
    unit_text = str(unit)
    codes = communities_of(service, unit)
    already: dict[str, list[str]] = {}
    for code in codes:
        existing = service.get_community(code).closure(unit_text, period.text)
        if existing is not None:
            already[code] = existing
    if already:
        # A rerun finishes the close it repeats: the communities that existed when it began, not
        # those established since (a closure covers the communities known when it is made).
        began = _close_began(service, unit_text, period.text, already)
        established = _established_positions(service)
        codes = [code for code in codes if code in already or established.get(code, 0) < began]
    if len(already) == len(codes):
        existing = already[codes[0]]
        raise AlreadyExists(f"{unit_text} {period.text} is already closed (closed by {existing[4]} on {existing[5]})")
    # A rerun keeps the first run's time, so the closure reads the same in every community.
    closed_at = next(iter(already.values()))[5] if already else service.now().isoformat(timespec="seconds")
    closed: list[str] = []
    for done, code in enumerate(codes):
        if progress is not None:
            progress(done, len(codes))
        if code in already:
            continue

        def decide(_keys: KeySession, code: str = code) -> Change:
            community = service.get_community(code)
            if community.closure(unit_text, period.text) is not None:
                return Change(False)  # closed meanwhile (another run of the same close)
            community.close_period(unit=unit_text, period=period.text, reason=reason, closed_at=closed_at, actor=actor)
            return Change(True, [community])

        try:
            if service._write(decide, attempts=CLOSE_ATTEMPTS):
                closed.append(code)
        except Busy:
            raise Busy(
                f"{unit_text} {period.text} is closed in {len(already) + len(closed)} of {len(codes)} communities: "
                f"community {code} stayed busy; run the same close again to finish it"
            ) from None
    if progress is not None:
        progress(len(codes), len(codes))
    return {
        "unit": unit_text,
        "period": period.text,
        "closed": True,
        "communities": codes,
        "closed_now": closed,
        "closed_before": sorted(already),
    }


def _close_began(service: LedgerService, unit: str, period: str, closed: dict[str, list[str]]) -> int:
    """The log position of the first community's closure (in force) of a close run before."""
    ids = {str(community_id(code)) for code in closed}
    latest: dict[str, int] = {}
    for position, originator, payload in _events_of(service, Community.PeriodClosed.TOPIC):
        if str(originator) in ids and payload["unit"] == unit and payload["period"] == period:
            latest[str(originator)] = position  # the last one is the closure in force
    return min(latest.values())


def _established_positions(service: LedgerService) -> dict[str, int]:
    return {payload["code"]: position for position, _o, payload in _events_of(service, Community.Established.TOPIC)}


def _events_of(service: LedgerService, topic: str) -> list[tuple[int, Any, dict[str, Any]]]:
    found = []
    start = 1
    while batch := service.recorder.select_notifications(start, 1000, topics=[topic]):
        found.extend((n.id, n.originator_id, decode_payload(n.state)) for n in batch)
        start = batch[-1].id + 1
    return found


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
