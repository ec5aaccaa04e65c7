"""The funding ledger's reads as the doors use them: `funds ledger` and `funds trace`.

Filters are judged without the store (exit 2), units and lines are found in it (exit 1), and the
rows come from projections.funds_queries. Amounts stay int fen in json and csv; table and xlsx
show yuan (`12,000.00`), and the printed sheet's total also in capitals (commands.money).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from commands import clock, labels
from commands.context import Env, MalformedInput, Refused
from commands.money import capitals, yuan
from commands.views import prepared_views
from domain.units import parse_period, parse_unit
from projections import funds_queries as q

AMOUNTS = list(q.AMOUNTS)
LEDGER_FIELDS = {
    "unit": ["unit", "level", "county", "township", "community", "unit_name", *AMOUNTS, "execution_rate"],
    "department": ["department", "lines", *AMOUNTS, "execution_rate"],
    "line": [
        "line_id",
        "department",
        "document",
        "purpose",
        "granted_unit",
        "granted_on",
        "amount",
        *AMOUNTS,
        "execution_rate",
    ],
}
SHOWN_FIELDS = {  # table and xlsx: what a person reads
    "unit": ["unit_name", *AMOUNTS, "execution_rate"],
    "department": ["department", "lines", *AMOUNTS, "execution_rate"],
    "line": ["department", "document", "purpose", "amount", *AMOUNTS, "execution_rate"],
}
MONEY_FIELDS = frozenset({*AMOUNTS, "amount"})
TRACE_FIELDS = [
    "unit_name",
    "day",
    "movement",
    "amount",
    "counterpart_name",
    "voucher",
    "purpose",
    "records",
    "reversed_on",
    "execution_rate",
]
# `funds trace --format csv`: one row per movement, the units in tree order (amounts in fen, as the JSON).
TRACE_FLAT_FIELDS = [
    "unit",
    "unit_name",
    "depth",
    "parent_unit",
    "movement",
    "entry_id",
    "voucher",
    "day",
    "amount",
    "counterpart",
    "purpose",
    "records",
    "reversed_on",
]
# `funds trace --format xlsx`: what a person reads, one row per movement.
TRACE_SHEET_FIELDS = [
    "unit_name",
    "day",
    "movement",
    "amount",
    "counterpart_name",
    "voucher",
    "purpose",
    "linked_records",
    "reversed_on",
]
NO_RATE = "–"
INDENT = {"county": "", "township": "\u3000", "community": "\u3000\u3000"}


@dataclass(frozen=True)
class Ask:
    """What the user asked, judged without the store."""

    filters: q.FundsFilters
    as_of: str | None  # fixed-width UTC text


def parse_ask(env: Env, *, unit: str | None, period: str | None, as_of: str | None) -> Ask:
    ref = None
    if unit is not None:
        try:
            ref = parse_unit(unit)
        except ValueError as e:
            raise MalformedInput(f"--unit: {e}") from None
    first = last = None
    if period is not None:
        try:
            span = parse_period(period)
        except ValueError as e:
            raise MalformedInput(f"--period: {e}") from None
        first, last = span.first, span.last
    moment = None
    if as_of is not None:
        from commands.ledger_reads import parse_as_of

        moment = parse_as_of(env, as_of)
    return Ask(q.FundsFilters(ref, first, last, None), moment)


def position_at(conn: Any, moment: str) -> int:
    """The last log position recorded at or before `moment` (fixed-width UTC text)."""
    postgres = getattr(getattr(conn, "dialect", None), "name", "sqlite") == "postgresql"
    bound = "CAST(:m AS timestamptz)" if postgres else ":m"
    row = conn.execute(
        q.query(f"SELECT max(last_position) FROM taizhang_commits WHERE recorded_at <= {bound}"), {"m": moment}
    ).first()
    return int(row[0]) if row and row[0] is not None else 0


def _locate(conn: Any, filters: q.FundsFilters) -> q.FundsFilters:
    unit = filters.unit
    if unit is None or unit.level != "community":
        return filters
    found = q.directory(conn, filters.position)
    if unit.community not in found.communities:
        raise Refused(f"--unit: no community {unit.community} in the store")
    return replace(filters, unit=found.locate(str(unit)))


def prepared(ask: Ask, conn: Any) -> q.FundsFilters:
    """The filters read against the views: as of the log position of --as-of, a community located."""
    filters = ask.filters
    if ask.as_of is not None:
        filters = replace(filters, position=position_at(conn, ask.as_of))
    return _locate(conn, filters)


def ledger_rows(env: Env, ask: Ask, *, by: str, wait: float | None = None) -> tuple[list[dict[str, Any]], Any]:
    """The ledger's rows (amounts in fen) and, for a printed sheet, its heading's parts."""
    views = prepared_views(env, wait)
    with views.read() as conn:
        filters = prepared(ask, conn)
        try:
            rows = q.ledger(conn, filters, by=by, departments=configured_departments() if by == "department" else ())
        except q.UnknownFundsUnit as e:
            raise Refused(str(e)) from None
        unit_words = labels.words("all_units", env.lang)
        if filters.unit is not None:
            unit_words = q.directory(conn, filters.position).name(filters.unit)
    return rows, unit_words


def configured_departments() -> tuple[str, ...]:
    """The departments a line may come from (commands.funds: the store's configured list)."""
    from commands.funds import departments

    return tuple(departments())


def trace_document(env: Env, line: str, ask: Ask, wait: float | None = None) -> dict[str, Any]:
    views = prepared_views(env, wait)
    with views.read() as conn:
        filters = prepared(ask, conn)
        try:
            found = q.find_line(conn, line, filters.position)
        except q.UnknownLine as e:
            raise Refused(str(e)) from None
        return q.trace(conn, found, filters)


def _walk(units: list[dict[str, Any]], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    for node in units:
        yield depth, node
        yield from _walk(node["children"], depth + 1)


def trace_flat(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree as one row per movement (amounts in fen): each unit's movements by date, the units
    below it after it; `depth` 0 for a unit shown at the top, `parent_unit` the unit above it."""
    rows: list[dict[str, Any]] = []

    def visit(nodes: list[dict[str, Any]], depth: int, parent: str | None) -> None:
        for node in nodes:
            for move in node["movements"]:
                row = dict.fromkeys(TRACE_FLAT_FIELDS)
                row.update({k: v for k, v in move.items() if k in row})
                row.update(unit=node["unit"], unit_name=node["unit_name"], depth=depth, parent_unit=parent)
                rows.append(row)
            visit(node["children"], depth + 1, node["unit"])

    visit(document["units"], 0, None)
    return rows


def trace_sheet_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The printed trace's rows: yuan as numbers, the unit named on its first row, indented by depth."""
    rows = []
    for depth, node in _walk(document["units"]):
        name: str | None = "\u3000" * depth + str(node["unit_name"])
        for move in node["movements"]:
            rows.append(
                {
                    "unit_name": name,
                    "day": move["day"],
                    "movement": move["movement"],
                    "amount": Decimal(move["amount"]) / 100,
                    "counterpart_name": move.get("counterpart_name"),
                    "voucher": move.get("voucher"),
                    "purpose": move.get("purpose"),
                    "linked_records": list(move.get("records") or []),
                    "reversed_on": move.get("reversed_on"),
                }
            )
            name = None
    return rows


def trace_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree as rows for a table: each unit's movements, then its balance, its units below after it."""
    rows: list[dict[str, Any]] = []
    for depth, node in _walk(document["units"]):
        name = "\u3000" * depth + str(node["unit_name"])
        for move in node["movements"]:
            rows.append({"unit_name": name, **{k: v for k, v in move.items() if k != "position"}})
            name = "\u3000" * depth
        rows.append(
            {
                "unit_name": name,
                "movement": "balance",
                "amount": node["balance"],
                "counterpart_name": None,
                "execution_rate": node["execution_rate"],
            }
        )
    return rows


# ---- shown to people ------------------------------------------------------------------------------------
def shown_rows(rows: list[dict[str, Any]], lang: str, *, cells: bool = False) -> list[dict[str, Any]]:
    """Rows for a table (yuan text, rates as percentages) or an xlsx sheet (`cells`: yuan as numbers)."""
    out = []
    for row in rows:
        shown = dict(row)
        for field in MONEY_FIELDS:
            if isinstance(shown.get(field), int):
                shown[field] = Decimal(shown[field]) / 100 if cells else yuan(shown[field])
        if "execution_rate" in shown:
            value = shown["execution_rate"]
            if cells:
                shown["execution_rate"] = value if value is not None else NO_RATE
            else:
                shown["execution_rate"] = NO_RATE if value is None else f"{value * 100:.2f}%"
        if "level" in shown and "unit_name" in shown:
            shown["unit_name"] = INDENT.get(shown["level"], "") + str(shown["unit_name"])
        if "movement" in shown:
            shown["movement"] = labels.movement(shown["movement"], lang)
        out.append(shown)
    return out


def total_words(rows: list[dict[str, Any]], lang: str) -> str:
    """Under the 合计 row: the allocated, spent and balance totals in capitals (人民币…)."""
    # Each row holds units' own flows: an allocation is counted once, at the unit it was granted to.
    totals = {field: sum(int(r.get(field) or 0) for r in rows) for field in ("allocated", "spent", "balance")}
    parts = [
        labels.words("in_capitals", lang, what=labels.header(field, lang), words=capitals(amount))
        for field, amount in totals.items()
    ]
    return ("；" if lang == "zh" else "; ").join(parts)


def heading(env: Env, what: str, unit_words: str, ask: Ask) -> Any:
    from commands.export import Heading, period_words

    lang = env.lang
    zone = env.zone()
    now: datetime = env.service().now()
    first = ask.filters.first
    last = ask.filters.last
    period = period_words(first, last, lang)
    title = " ".join(part for part in (unit_words, period, labels.words(what, lang)) if part)
    shown = clock.shown(ask.as_of, zone) if ask.as_of else clock.Shown(now, 0)
    moment = labels.words("as_of", lang, moment=str(shown), zone=zone.key)
    printed = labels.words("printed", lang, day=now.date().isoformat())
    return Heading(title, ("\u3000" if lang == "zh" else "; ").join((printed, moment)))
