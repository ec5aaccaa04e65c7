"""The cost of care (`funds cost`): money spent per service record and per resident served, by unit.

For each unit of the level asked (`township`, `county` or `community`, inside `--unit` when given)
and a period, from the funds views (funds_spends, funds_spend_records) and the ledger's views:

- `spent`: the money the unit's communities spent in the period, net of reversals — a reversal
  cancels a spend in full (红字冲销), so a reversed spend counts nothing, whenever it was reversed
  (as of the moment read);
- `linked_spent`: the part of it paid by spends linked to service records;
- `records`: the distinct records those spends paid for; `residents`: the distinct residents those
  records served (their current revision, as of the moment read);
- `per_record` = linked_spent ÷ records, `per_resident` = linked_spent ÷ residents, in fen rounded
  half up; None (shown –) where nothing was linked.

Every unit of the level that holds a community in the views is listed, those with nothing linked
too. Amounts are int fen; the table shows yuan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import text

from domain.units import UnitRef

LEVELS = ("township", "county", "community")
FIELDS = [
    "unit",
    "unit_name",
    "spent",
    "linked_spent",
    "spends",
    "records",
    "residents",
    "per_record",
    "per_resident",
]
MONEY = ("spent", "linked_spent", "per_record", "per_resident")
CHUNK = 500  # record ids per IN list


@dataclass(frozen=True)
class CostFilters:
    by: str
    first: date
    last: date
    unit: UnitRef | None = None  # located
    position: int | None = None  # as of this log position; None: current


def _unit_of(by: str, county: str, township: str, community: str) -> UnitRef:
    if by == "county":
        return UnitRef("county", county=county)
    if by == "township":
        return UnitRef("township", county=county, township=township)
    return UnitRef("community", county=county, township=township, community=community)


def _inside(unit: UnitRef | None, county: str, township: str, community: str) -> bool:
    if unit is None:
        return True
    if unit.level == "county":
        return county == unit.county
    if unit.level == "township":
        return (county, township) == (unit.county, unit.township)
    return community == unit.community


def communities(conn: Any, position: int | None) -> list[tuple[str, str, str]]:
    """(code, county, township) of every community in the views (as of a position)."""
    clause, params = ("established_position <= :n", {"n": position}) if position is not None else ("1 = 1", {})
    rows = conn.execute(
        text(f"SELECT code, county, township FROM ledger_communities WHERE {clause} ORDER BY code"), params
    )
    return [(str(code), str(county), str(township)) for code, county, township in rows]


def _name(unit: UnitRef, names: dict[str, str]) -> str:
    if unit.level == "community":
        return names.get(unit.community, unit.community)
    return unit.name()


def cost(conn: Any, filters: CostFilters) -> list[dict[str, Any]]:
    """One row per unit of the level (amounts in fen), in the order of their ids."""
    by, where = filters.by, filters.unit
    names: dict[str, str] = {}
    if by == "community":
        names = {str(c): str(n) for c, n in conn.execute(text("SELECT code, name FROM ledger_communities"))}
    rows: dict[str, dict[str, Any]] = {}
    for code, county, township in communities(conn, filters.position):
        if _inside(where, county, township, code):
            unit = _unit_of(by, county, township, code)
            rows.setdefault(str(unit), _empty(unit, _name(unit, names)))

    as_of = filters.position is not None
    clause = " AND s.position <= :p" if as_of else ""
    params: dict[str, Any] = {"first": filters.first.isoformat(), "last": filters.last.isoformat()}
    if as_of:
        params["p"] = filters.position
    spends = conn.execute(
        text(
            "SELECT s.spend_id, s.community, s.county, s.township, s.amount, s.reversed_position, r.record_id"
            " FROM funds_spends s LEFT JOIN funds_spend_records r ON r.spend_id = s.spend_id"
            f" WHERE s.day >= :first AND s.day <= :last{clause} ORDER BY s.spend_id, r.record_id"
        ),
        params,
    ).all()
    seen: set[str] = set()
    linked: dict[str, set[tuple[str, str]]] = defaultdict(set)  # unit -> (community, record id)
    for spend_id, community, county, township, amount, reversed_position, record_id in spends:
        if reversed_position is not None and (not as_of or reversed_position <= filters.position):
            continue  # reversed in full: it paid for nothing
        if not _inside(where, county or "", township or "", community):
            continue
        unit = str(_unit_of(by, county or "", township or "", community))
        row = rows.setdefault(unit, _empty(_unit_of(by, county or "", township or "", community), community))
        if spend_id not in seen:
            seen.add(spend_id)
            row["spent"] += int(amount)
            if record_id is not None:
                row["linked_spent"] += int(amount)
                row["spends"] += 1
        if record_id is not None:
            linked[unit].add((community, record_id))

    served = _residents(conn, {record for pairs in linked.values() for _c, record in pairs}, filters.position)
    for unit, pairs in linked.items():
        row = rows[unit]
        row["records"] = len({record for _c, record in pairs})
        people = {(community, r) for community, record in pairs for r in served.get(record, ())}
        row["residents"] = len(people)
        row["per_record"] = _per(row["linked_spent"], row["records"])
        row["per_resident"] = _per(row["linked_spent"], row["residents"])
    return [rows[key] for key in sorted(rows)]


def _empty(unit: UnitRef, name: str) -> dict[str, Any]:
    return {
        "unit": str(unit),
        "unit_name": name,
        "spent": 0,
        "linked_spent": 0,
        "spends": 0,
        "records": 0,
        "residents": 0,
        "per_record": None,
        "per_resident": None,
    }


def _per(amount: int, count: int) -> int | None:
    if not count:
        return None
    return int((Decimal(amount) / count).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _residents(conn: Any, records: set[str], position: int | None) -> dict[str, set[str]]:
    """The residents each record served in its revision current at the moment read."""
    if position is None:
        valid, params = "v.recorded_to IS NULL", {}
    else:
        valid = "v.position_from <= :m_pos AND (v.position_to IS NULL OR v.position_to > :m_pos)"
        params = {"m_pos": position}
    found: dict[str, set[str]] = defaultdict(set)
    ordered = sorted(records)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        names = {f"r{i}": record for i, record in enumerate(chunk)}
        inside = ", ".join(f":{n}" for n in names)
        for record, resident in conn.execute(
            text(
                "SELECT v.record_id, rr.resident FROM ledger_revisions v"
                " JOIN ledger_revision_residents rr ON rr.position_from = v.position_from"
                f" WHERE v.record_id IN ({inside}) AND {valid} AND v.status = 'active'"
            ),
            {**names, **params},
        ):
            found[str(record)].add(str(resident))
    return found
