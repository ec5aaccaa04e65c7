"""Obligations per unit and period (the responsibility audit), and overdue key visits."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, text

from domain.units import Period, UnitRef
from projections.assessment import UnitFacts, assess, communities_at, responsible
from projections.filters import Moment, local_iso


def _status(done: bool, period: Period, today: date) -> str:
    if done:
        return "met"
    return "open" if today <= period.last else "missed"


def obligations(
    conn: Connection, unit: UnitRef, period: Period, moment: Moment, today: date, tz: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Every obligation of the unit for the period, with its status and evidence (times in `tz`)."""
    level = unit.level
    facts_list = assess(conn, level=level, period=period, moment=moment, only=unit, day=today)
    if not facts_list:
        return []
    facts: UnitFacts = facts_list[0]
    out: list[dict[str, Any]] = []
    debriefed = _debriefs(conn, unit, period, moment, tz)
    for duty in responsible(conn, unit, period, moment):
        out.append(
            {
                "obligation": "duty",
                "subject": f"{duty['official']} {duty['name']}",
                "detail": duty["duty"],
                "status": "met" if today > period.last else "open",
                "evidence": [],
            }
        )
        if duty["duty"] == "secretary":
            filed = debriefed.get(duty["official"])
            out.append(
                {
                    "obligation": "debriefing",
                    "subject": f"{duty['official']} {duty['name']}",
                    "detail": f"专项述职 {period.text}",
                    "status": _status(filed is not None, period, today),
                    "evidence": [filed] if filed else [],
                }
            )
    windows: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for window in facts.measures["visit_timeliness"].evidence:
        windows[(window["community"], window["resident"], window["provider"])].append(window)
    overdue = {(o["community"], o["resident"]) for o in overdue_visits(conn, facts.communities, today, moment)}
    for (community, resident, provider), items in sorted(windows.items()):
        missed = [w for w in items if not w["counted"]]
        status = "missed" if missed else "met"
        if (community, resident) in overdue and today <= period.last:
            status = "overdue"
        out.append(
            {
                "obligation": "visit_plan",
                "subject": f"{community}/{resident}",
                "detail": f"every {items[0]['every']} days by {provider}",
                "status": status,
                "evidence": [f"{w['window'][0]}..{w['window'][1]}: {','.join(w['records']) or 'none'}" for w in items],
            }
        )
    for pairing in _pairings(conn, facts.communities, period, moment):
        out.append(
            {
                "obligation": "pairing",
                "subject": f"{pairing['community']}/{pairing['provider']}→{pairing['resident']}",
                "detail": f"since {pairing['starts_on']}",
                "status": _status(bool(pairing["records"]), period, today),
                "evidence": pairing["records"],
            }
        )
    for target in facts.measures["target_attainment"].evidence:
        met = target["actual"] >= target["at_least"]
        out.append(
            {
                "obligation": "target",
                "subject": target["metric"] + (f" ({target['kind']})" if target["kind"] else ""),
                "detail": f"at least {target['at_least']:g}, actual {target['actual']:g}",
                "status": _status(met, period, today),
                "evidence": [],
            }
        )
    for item in facts.measures["supervision_closure"].evidence:
        if item["resolved_on"] is not None:
            status = "met" if item["resolved_on"] <= item["due"] else "missed"
        else:
            status = "overdue" if today > date.fromisoformat(item["due"]) else "open"
        out.append(
            {
                "obligation": "supervision",
                "subject": item["item"],
                "detail": f"{item['unit']} due {item['due']}",
                "status": status,
                "evidence": [f"item {item['item_id']}"] + ([f"resolved {item['resolved_on']}"] if item["resolved_on"] else []),
            }
        )
    return out


def _debriefs(conn: Connection, unit: UnitRef, period: Period, moment: Moment, tz: tzinfo) -> dict[str, str]:
    valid, params = moment.where("b")
    params.update(unit=str(unit), period=period.text)
    rows = conn.execute(
        text(f"SELECT b.official, b.filed_at FROM acct_debriefs b WHERE {valid} AND b.unit = :unit AND b.period = :period"),
        params,
    )
    return {row[0]: f"filed {local_iso(row[1], tz)}" for row in rows}


def _pairings(conn: Connection, codes: list[str], period: Period, moment: Moment) -> list[dict[str, Any]]:
    if not codes:
        return []
    valid, params = moment.where("p")
    names = {f"c{i}": c for i, c in enumerate(codes)}
    params.update(names, first=period.first.isoformat(), last=period.last.isoformat())
    inside = ", ".join(f":{k}" for k in names)
    pairings = [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT p.community, p.provider, p.resident, p.starts_on, p.ends_on FROM acct_pairings p "
                f"WHERE {valid} AND p.community IN ({inside}) AND p.starts_on <= :last "
                "AND (p.ends_on IS NULL OR p.ends_on > :first) ORDER BY p.community, p.provider, p.resident"
            ),
            params,
        ).mappings()
    ]
    rvalid, rparams = moment.where("r")
    for pairing in pairings:
        rparams.update(
            c=pairing["community"],
            res=pairing["resident"],
            prov=f"%;{pairing['provider']};%",
            first=max(period.first.isoformat(), pairing["starts_on"]),
            last=period.last.isoformat(),
        )
        pairing["records"] = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT r.record_id FROM ledger_revisions r JOIN ledger_revision_residents x "
                    "ON x.position_from = r.position_from "
                    f"WHERE {rvalid} AND r.status = 'active' AND r.community = :c AND x.resident = :res "
                    "AND (';' || r.providers || ';') LIKE :prov AND r.occurred_on >= :first AND r.occurred_on <= :last "
                    "ORDER BY r.occurred_on, r.record_id"
                ),
                rparams,
            )
        ]
    return pairings


def overdue_visits(conn: Connection, codes: list[str], today: date, moment: Moment) -> list[dict[str, Any]]:
    """Plans in force on `today` whose resident has gone more than `every` days without a service."""
    if not codes:
        return []
    valid, params = moment.where("v")
    names = {f"c{i}": c for i, c in enumerate(codes)}
    inside = ", ".join(f":{k}" for k in names)
    params.update(names, today=today.isoformat())
    plans = [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT v.community, v.resident, v.every, v.provider, v.starts_on FROM acct_visit_plans v "
                f"WHERE {valid} AND v.community IN ({inside}) AND v.starts_on <= :today "
                "AND (v.ends_on IS NULL OR v.ends_on > :today) ORDER BY v.community, v.resident"
            ),
            params,
        ).mappings()
    ]
    out = []
    rvalid, rparams = moment.where("r")
    for plan in plans:
        rparams.update(c=plan["community"], res=plan["resident"], first=plan["starts_on"], today=today.isoformat())
        row = conn.execute(
            text(
                "SELECT max(r.occurred_on) FROM ledger_revisions r JOIN ledger_revision_residents x "
                "ON x.position_from = r.position_from "
                f"WHERE {rvalid} AND r.status = 'active' AND r.community = :c AND x.resident = :res "
                "AND r.occurred_on >= :first AND r.occurred_on <= :today"
            ),
            rparams,
        ).first()
        last_visit = row[0] if row else None
        since = date.fromisoformat(last_visit) if last_visit else date.fromisoformat(plan["starts_on"]) - timedelta(days=1)
        due = since + timedelta(days=int(plan["every"]))
        if due < today:
            out.append(
                {
                    "community": plan["community"],
                    "resident": plan["resident"],
                    "provider": plan["provider"],
                    "every": plan["every"],
                    "starts_on": plan["starts_on"],
                    "last_visit": last_visit,
                    "due": due.isoformat(),
                    "days_overdue": (today - due).days,
                }
            )
    return out


def communities_in(conn: Connection, unit: UnitRef | None, moment: Moment) -> list[str]:
    """Codes of the communities in `unit` (all when None), as known at `moment`."""
    out = []
    for c in communities_at(conn, moment):
        if (
            unit is None
            or (unit.level == "community" and c["code"] == unit.community)
            or (unit.level == "township" and (c["county"], c["township"]) == (unit.county, unit.township))
            or (unit.level == "county" and c["county"] == unit.county)
        ):
            out.append(c["code"])
    return out
