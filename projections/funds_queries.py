"""Reading the funds views: the funding ledger per department, unit or line, and a line's trace.

Definitions (issue 15, shared with `audit` and the assessment's `fund_execution`):

- a unit's own flows: allocated (granted to it), received (transferred to it), passed down
  (transferred from it), spent, reversed, returned; balance = allocated + received + reversed −
  passed down − spent − returned;
- with a period, the flows count entries dated inside it and the balance is at its last day;
- 执行率 (execution rate) of a unit = cumulative net spent (spent − reversed) by communities inside
  or equal to it ÷ cumulative money that entered its subtree (allocations to it or any unit inside
  it + transfers into the subtree from outside), both up to the period's end (or now, or the
  as-of); None when nothing entered. Money moves down only, so the transfers into a subtree from
  outside are its units' receipts less its units' passings-down.

A department's or a line's row sums the own flows of every unit in scope (the balance is then the
sum of their balances; a transfer inside the scope shows both as received and as passed down),
and its rate is the scope's: net spent in it ÷ money that entered it.

Current ledgers read `funds_totals` (rows per line, unit, month and kind: flat in the length of
the history); as-of ledgers read `funds_movements` up to the log position. Amounts are int fen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.units import UnitRef, parse_unit

KINDS = ("allocated", "received", "passed_down", "spent", "reversed", "returned")
AMOUNTS = (*KINDS, "balance")


def query(statement: str) -> Any:
    """SQLAlchemy's text() once it is loaded; the SQLite light path reads with sqlite3 alone."""
    from infra.litesql import text

    return text(statement)


@dataclass(frozen=True)
class FundsFilters:
    unit: UnitRef | None = None  # located (a community with its county and township)
    first: date | None = None  # the period's first and last day; None: from the start, up to now
    last: date | None = None
    position: int | None = None  # as of this log position; None: current


class UnknownFundsUnit(LookupError):
    pass


class UnknownLine(LookupError):
    pass


def balance_of(sums: dict[str, int]) -> int:
    return (
        sums["allocated"] + sums["received"] + sums["reversed"] - sums["passed_down"] - sums["spent"] - sums["returned"]
    )


def rate(net_spent: int, entered: int) -> float | None:
    """执行率: None when nothing entered."""
    return None if entered <= 0 else round(net_spent / entered, 6)


def inside(outer: UnitRef | None, unit: UnitRef) -> bool:
    """Whether `unit` is `outer` or lies inside it (None: the whole city)."""
    return outer is None or outer == unit or outer.contains(unit)


# ---- the units and lines the store knows --------------------------------------------------------------
@dataclass
class Directory:
    communities: dict[str, tuple[str, str, str]]  # code -> (county, township, name)

    def locate(self, text: str) -> UnitRef:
        ref = parse_unit(text)
        if ref.level == "community":
            county, township, _name = self.communities.get(ref.community, ("", "", ""))
            return UnitRef("community", county=county, township=township, community=ref.community)
        return ref

    def name(self, ref: UnitRef) -> str:
        if ref.level == "community":
            return self.communities.get(ref.community, ("", "", ref.community))[2]
        return ref.name()


def directory(conn: Any, position: int | None) -> Directory:
    sql = "SELECT code, county, township, name FROM ledger_communities"
    params: dict[str, Any] = {}
    if position is not None:
        sql += " WHERE established_position <= :p"
        params["p"] = position
    return Directory({r[0]: (r[1], r[2], r[3]) for r in conn.execute(query(sql), params)})


def known_units(conn: Any, found: Directory, position: int | None, extra: Iterable[str] = ()) -> list[UnitRef]:
    """Every unit known to the store: counties, townships and communities of the directory, and any
    unit money reached (a county without communities yet)."""
    units: set[UnitRef] = set()
    for code, (county, township, _name) in found.communities.items():
        units.add(UnitRef("county", county=county))
        units.add(UnitRef("township", county=county, township=township))
        units.add(UnitRef("community", county=county, township=township, community=code))
    for text in extra:
        ref = found.locate(text)
        units.add(ref)
        if ref.level in ("township", "community") and ref.county:
            units.add(UnitRef("county", county=ref.county))
        if ref.level == "community" and ref.township:
            units.add(UnitRef("township", county=ref.county, township=ref.township))
    return sorted(units, key=unit_order)


def unit_order(ref: UnitRef) -> tuple[str, str, str]:
    return (ref.county, ref.township, ref.community)


def lines(conn: Any, position: int | None) -> dict[str, dict[str, Any]]:
    sql = "SELECT line_id, department, document, purpose, amount, unit, granted_on, position FROM funds_lines"
    params: dict[str, Any] = {}
    if position is not None:
        sql += " WHERE position <= :p"
        params["p"] = position
    keys = ("line_id", "department", "document", "purpose", "amount", "unit", "granted_on", "position")
    return {r[0]: dict(zip(keys, r, strict=True)) for r in conn.execute(query(sql), params)}


# ---- sums ------------------------------------------------------------------------------------------
Sums = dict[tuple[str, str], dict[str, list[int]]]  # (line, unit) -> kind -> [in period, cumulative]


def flow_sums(conn: Any, filters: FundsFilters) -> Sums:
    """Per line and unit, each kind's sum inside the period and cumulative to its end."""
    params: dict[str, Any] = {}
    if filters.position is None:
        first = filters.first.isoformat()[:7] if filters.first else "0000-00"
        last = filters.last.isoformat()[:7] if filters.last else "9999-99"
        sql = (
            "SELECT line_id, unit, kind, sum(CASE WHEN month >= :f THEN amount ELSE 0 END), sum(amount) "
            "FROM funds_totals WHERE month <= :l GROUP BY line_id, unit, kind"
        )
    else:
        first = filters.first.isoformat() if filters.first else "0000-00-00"
        last = filters.last.isoformat() if filters.last else "9999-99-99"
        sql = (
            "SELECT line_id, unit, kind, sum(CASE WHEN day >= :f THEN amount ELSE 0 END), sum(amount) "
            "FROM funds_movements WHERE day <= :l AND position <= :p GROUP BY line_id, unit, kind"
        )
        params["p"] = filters.position
    params.update(f=first, l=last)
    sums: Sums = defaultdict(lambda: {kind: [0, 0] for kind in KINDS})
    for line, unit, kind, in_period, cumulative in conn.execute(query(sql), params):
        pair = sums[(line, unit)][kind]
        pair[0] += int(in_period or 0)
        pair[1] += int(cumulative or 0)
    return sums


class _Acc:
    """Own flows in the period, cumulative own flows, for one row."""

    def __init__(self) -> None:
        self.period = dict.fromkeys(KINDS, 0)
        self.cumulative = dict.fromkeys(KINDS, 0)

    def add(self, kinds: dict[str, list[int]]) -> None:
        for kind, (in_period, cumulative) in kinds.items():
            self.period[kind] += in_period
            self.cumulative[kind] += cumulative

    def row(self) -> dict[str, Any]:
        c = self.cumulative
        out: dict[str, Any] = dict(self.period)
        out["balance"] = balance_of(c)
        return out

    def scope_rate(self) -> float | None:
        c = self.cumulative
        return rate(c["spent"] - c["reversed"], c["allocated"] + c["received"] - c["passed_down"])


def _unit_fields(ref: UnitRef, found: Directory) -> dict[str, Any]:
    return {
        "unit": str(ref),
        "level": ref.level,
        "county": ref.county or None,
        "township": ref.township or None,
        "community": ref.community or None,
        "unit_name": found.name(ref),
    }


def ledger(conn: Any, filters: FundsFilters, *, by: str, departments: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The funding ledger: one row per unit, line or department in scope (zeros included).

    `departments`: the configured list, each shown even without a line (with zeros)."""
    found = directory(conn, filters.position)
    if (
        filters.unit is not None
        and filters.unit.level == "community"
        and filters.unit.community not in found.communities
    ):
        raise UnknownFundsUnit(f"--unit: no community {filters.unit.community} in the store")
    sums = flow_sums(conn, filters)
    known_lines = lines(conn, filters.position)
    scope = filters.unit
    located = {unit: found.locate(unit) for unit in {unit for _line, unit in sums}}
    if by == "unit":
        units = [u for u in known_units(conn, found, filters.position, located) if inside(scope, u)]
        if scope is not None and scope not in units:
            raise UnknownFundsUnit(f"--unit: no unit {scope} in the store")
        own = {u: _Acc() for u in units}
        subtree = {u: _Acc() for u in units}
        for (_line, text), kinds in sums.items():
            ref = located[text]
            if ref in own:
                own[ref].add(kinds)
            for holder in units_above(ref):
                if holder in subtree:
                    subtree[holder].add(kinds)
        rows = []
        for u in units:
            row = {**_unit_fields(u, found), **own[u].row(), "execution_rate": subtree[u].scope_rate()}
            rows.append(row)
        return rows
    groups: dict[Any, _Acc] = {}
    for line_id, line in known_lines.items():
        if filters.last is not None and line["granted_on"] > filters.last.isoformat():
            continue
        key = line["department"] if by == "department" else line_id
        groups.setdefault(key, _Acc())
    reached: set[Any] = set()
    counted: dict[str, set[str]] = defaultdict(set)  # department -> its lines in scope
    for (line_id, text), kinds in sums.items():
        if line_id not in known_lines or not inside(scope, located[text]):
            continue
        key = known_lines[line_id]["department"] if by == "department" else line_id
        groups.setdefault(key, _Acc()).add(kinds)
        reached.add(key)
        counted[known_lines[line_id]["department"]].add(line_id)
    rows = []
    if by == "department":
        listed = set(departments)
        for department in listed:
            groups.setdefault(department, _Acc())
        for department in sorted(groups):
            if scope is not None and department not in reached and department not in listed:
                continue
            acc = groups[department]
            rows.append(
                {
                    "department": department,
                    "lines": len(counted[department]),
                    **acc.row(),
                    "execution_rate": acc.scope_rate(),
                }
            )
        return rows
    for line_id in sorted(groups, key=lambda i: (known_lines[i]["department"], known_lines[i]["document"], i)):
        if scope is not None and line_id not in reached:
            continue
        line = known_lines[line_id]
        acc = groups[line_id]
        rows.append(
            {
                "line_id": line_id,
                "department": line["department"],
                "document": line["document"],
                "purpose": line["purpose"],
                "granted_unit": line["unit"],
                "granted_on": line["granted_on"],
                "amount": line["amount"],
                **acc.row(),
                "execution_rate": acc.scope_rate(),
            }
        )
    return rows


def units_above(ref: UnitRef) -> list[UnitRef]:
    """The unit itself and every unit it lies inside (located)."""
    out = [ref]
    if ref.level == "community" and ref.county:
        out.append(UnitRef("township", county=ref.county, township=ref.township))
    if ref.level in ("community", "township") and ref.county:
        out.append(UnitRef("county", county=ref.county))
    return out


# ---- one line, from the department to every voucher ---------------------------------------------------
def find_line(conn: Any, text: str, position: int | None) -> dict[str, Any]:
    """A line by its id, or by `DEPARTMENT/文号`."""
    known = lines(conn, position)
    wanted = text.strip()
    if wanted in known:
        return known[wanted]
    department, sep, document = wanted.partition("/")
    if sep:
        for line in known.values():
            if line["department"] == department.strip() and line["document"] == document.strip():
                return line
    raise UnknownLine(f"LINE: no funding line {wanted} in the store")


def trace(conn: Any, line: dict[str, Any], filters: FundsFilters) -> dict[str, Any]:
    """The tree of a line: each unit its money reached, under the unit that first passed it some,
    with its movements (transfers, spends with voucher and linked records, reversals, returns)."""
    found = directory(conn, filters.position)
    position = filters.position if filters.position is not None else 2**62
    params = {"l": line["line_id"], "p": position}
    moves = conn.execute(
        query(
            "SELECT position, seq, entry_id, kind, unit, counterpart, day, amount FROM funds_movements "
            "WHERE line_id = :l AND position <= :p ORDER BY position, seq"
        ),
        params,
    ).all()
    spend_rows = conn.execute(
        query(
            "SELECT spend_id, voucher, purpose, project, home, reversed_on, reversed_position FROM funds_spends "
            "WHERE line_id = :l AND position <= :p"
        ),
        params,
    ).all()
    spends = {r[0]: r for r in spend_rows}
    linked: dict[str, list[str]] = defaultdict(list)
    if spends:
        for spend_id, record in conn.execute(
            query(
                "SELECT r.spend_id, r.record_id FROM funds_spend_records r JOIN funds_spends s "
                "ON s.spend_id = r.spend_id WHERE s.line_id = :l AND s.position <= :p ORDER BY r.record_id"
            ),
            params,
        ):
            linked[spend_id].append(record)
    nodes: dict[str, dict[str, Any]] = {}
    parent: dict[str, str | None] = {}
    order: list[str] = []
    for pos, _seq, entry, kind, unit, counterpart, day, amount in moves:
        if unit not in nodes:
            ref = found.locate(unit)
            nodes[unit] = {
                **_unit_fields(ref, found),
                **dict.fromkeys(AMOUNTS, 0),
                "execution_rate": None,
                "movements": [],
                "children": [],
            }
            parent[unit] = counterpart if kind == "received" else None
            order.append(unit)
        node = nodes[unit]
        node[kind] += amount
        move: dict[str, Any] = {
            "position": pos,
            "entry_id": entry,
            "movement": kind,
            "day": day,
            "amount": amount,
            "counterpart": counterpart,
            "counterpart_name": found.name(found.locate(counterpart)) if counterpart else None,
        }
        if kind == "spent":
            spend = spends.get(entry)
            reversed_here = spend is not None and spend[6] is not None and spend[6] <= position
            move.update(
                voucher=spend[1] if spend else None,
                purpose=spend[2] if spend else None,
                project=spend[3] if spend else None,
                home=spend[4] if spend else None,
                records=linked.get(entry, []),
                reversed_on=spend[5] if reversed_here and spend else None,
            )
        elif kind == "reversed":
            spend = spends.get(entry)
            move["voucher"] = spend[1] if spend else None
        node["movements"].append(move)
    scope = filters.unit
    shown = {u for u in order if inside(scope, found.locate(u))}
    roots: list[dict[str, Any]] = []
    for unit in order:
        node = nodes[unit]
        node["balance"] = balance_of(node)
        if unit not in shown:
            continue
        above = parent.get(unit)
        if above in shown:
            nodes[above]["children"].append(node)
        else:
            roots.append(node)
    for node in nodes.values():  # a ledger reads by date; entries of one day in the order they were recorded
        node["movements"].sort(key=lambda m: (m["day"], m["position"]))
    refs = {unit: found.locate(unit) for unit in order}
    for unit in order:  # the rate of the unit's whole subtree, wherever its money came from
        inner = [nodes[v] for v in order if inside(refs[unit], refs[v])]
        net = sum(n["spent"] - n["reversed"] for n in inner)
        entered = sum(n["allocated"] + n["received"] - n["passed_down"] for n in inner)
        nodes[unit]["execution_rate"] = rate(net, entered)
    return {
        "line_id": line["line_id"],
        "department": line["department"],
        "document": line["document"],
        "purpose": line["purpose"],
        "amount": line["amount"],
        "granted_unit": line["unit"],
        "granted_on": line["granted_on"],
        "units": roots,
    }
