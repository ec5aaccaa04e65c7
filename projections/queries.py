"""Reads over the ledger tables. Plain rows out; the CLI formats them.

Current answers come from the monthly totals (whole months) and the current
revisions (partial months). "As of" answers come from the bitemporal revisions:
the rows valid at that recorded time (or log position) — never a replay.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from infra.litesql import text  # SQLAlchemy's text() once it is loaded; SQLite reads need none

if TYPE_CHECKING:
    from sqlalchemy import Connection

from domain.vocab import KINDS
from projections.filters import LEVEL_KEYS, Filters, Moment, Unit, UnknownUnit


def check_unit(conn: Connection, unit: Unit | None) -> None:
    if unit is None:
        return
    clause, params = unit.where()
    if conn.execute(text(f"SELECT 1 FROM ledger_communities c WHERE {clause} LIMIT 1"), params).first() is None:
        raise UnknownUnit(f"no {unit.describe()} in the ledger")


# ---- entries ------------------------------------------------------------------------------------
def entries(conn: Connection, filters: Filters, *, include_voided: bool = False) -> list[dict[str, Any]]:
    """Ledger entries ordered by (occurred_at, record_id); notes stay encrypted (JSON envelopes)."""
    check_unit(conn, filters.unit)
    where, params = _entry_where(filters, include_voided)
    return _entry_rows(conn, f"SELECT {ENTRY_COLUMNS} {where} ORDER BY r.occurred_utc, r.record_id", params)


def entries_page(
    conn: Connection, filters: Filters, *, include_voided: bool = False, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of `entries` (the same rows, in the same order, `offset` of them skipped) and how
    many entries match in all: the database sorts and counts, only the page's rows are built."""
    check_unit(conn, filters.unit)
    where, params = _entry_where(filters, include_voided)
    total = int(conn.execute(text(f"SELECT count(*) {where}"), params).scalar() or 0)
    if offset >= total:
        return [], total
    sql = f"SELECT {ENTRY_COLUMNS} {where} ORDER BY r.occurred_utc, r.record_id LIMIT :page_limit OFFSET :page_offset"
    return _entry_rows(conn, sql, {**params, "page_limit": limit, "page_offset": offset}), total


ENTRY_COLUMNS = (
    "r.record_id, r.community, c.name AS community_name, r.county, r.township, r.kind, "
    "r.residents, r.providers, r.occurred_at, r.minutes, r.place, r.note, r.status, r.revision, r.late, "
    "r.recorded_at, r.recorded_by, r.revised_at, r.revised_by, r.entered_on"
)


def _entry_where(filters: Filters, include_voided: bool) -> tuple[str, dict[str, Any]]:
    """FROM and WHERE of the entries the filters select (active only unless `include_voided`)."""
    clauses, params = _revision_filters(filters)
    if not include_voided:
        clauses.append("r.status = 'active'")
    where = f"FROM ledger_revisions r JOIN ledger_communities c ON c.code = r.community WHERE {' AND '.join(clauses)}"
    return where, params


def _entry_rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for row in conn.execute(text(sql), params).mappings():
        item = dict(row)
        item["residents"] = [x for x in item["residents"].split(";") if x]
        item["providers"] = [x for x in item["providers"].split(";") if x]
        item["late"] = bool(item["late"])
        out.append(item)
    return out


def _revision_filters(filters: Filters, alias: str = "r") -> tuple[list[str], dict[str, Any]]:
    clause, params = filters.moment.where(alias)
    clauses = [clause]
    if filters.unit is not None:
        unit_clause, unit_params = _unit_on_revisions(filters.unit, alias)
        clauses.append(unit_clause)
        params.update(unit_params)
    if filters.date_from is not None:
        clauses.append(f"{alias}.occurred_on >= :d_from")
        params["d_from"] = filters.date_from.isoformat()
    if filters.date_to is not None:
        clauses.append(f"{alias}.occurred_on <= :d_to")
        params["d_to"] = filters.date_to.isoformat()
    if filters.kinds:
        names = [f":k{i}" for i in range(len(filters.kinds))]
        clauses.append(f"{alias}.kind IN ({', '.join(names)})")
        params.update({f"k{i}": kind for i, kind in enumerate(filters.kinds)})
    if filters.category is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM ledger_revision_categories g "
            f"WHERE g.position_from = {alias}.position_from AND g.category = :cat)"
        )
        params["cat"] = filters.category
    return clauses, params


def _unit_on_revisions(unit: Unit, alias: str) -> tuple[str, dict[str, Any]]:
    if unit.level == "community":
        return f"{alias}.community = :u_community", {"u_community": unit.community}
    if unit.level == "township":
        return (
            f"{alias}.county = :u_county AND {alias}.township = :u_township",
            {"u_county": unit.county, "u_township": unit.township},
        )
    return f"{alias}.county = :u_county", {"u_county": unit.county}


# ---- summaries -----------------------------------------------------------------------------------
def _months(first: date, last: date) -> list[str]:
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _month_bounds(month: str) -> tuple[date, date]:
    year, number = int(month[:4]), int(month[5:7])
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


@dataclass
class _Cell:
    records: int = 0
    minutes: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


def summary(conn: Connection, filters: Filters, *, by: str, per_month: bool = False) -> list[dict[str, Any]]:
    """One row per unit known to the store (zeros included), sorted by county, township, community."""
    check_unit(conn, filters.unit)
    kinds = list(filters.kinds) or list(KINDS.labels)
    communities = _communities(conn, filters.unit)
    months = _summary_months(conn, filters) if per_month else [None]

    # (community, month|None) -> totals, and (community, month|None) -> distinct residents
    cells: dict[tuple[str, str | None], _Cell] = defaultdict(_Cell)
    for community, month, kind, records, minutes in _kind_rows(conn, filters):
        cell = cells[(community, month if per_month else None)]
        cell.records += records
        cell.minutes += minutes
        cell.kinds[kind] = cell.kinds.get(kind, 0) + records
    served = _served_counts(conn, filters, per_month)

    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for c in communities:
        key_values = {"county": c["county"], "township": c["township"], "community": c["code"]}
        unit_key = tuple(key_values[k] for k in LEVEL_KEYS[by])
        for month in months:
            key = (*unit_key, month)
            group = groups.get(key)
            if group is None:
                group = {k: key_values[k] for k in LEVEL_KEYS[by]}
                if by == "community":
                    group["community_name"] = c["name"]
                if month is not None:
                    group["month"] = month
                group.update(records=0, minutes=0, residents_served=0, kinds={k: 0 for k in kinds})
                groups[key] = group
            cell = cells.get((c["code"], month))
            if cell is not None:
                group["records"] += cell.records
                group["minutes"] += cell.minutes
                for kind, n in cell.kinds.items():
                    group["kinds"][kind] = group["kinds"].get(kind, 0) + n
            group["residents_served"] += served.get((c["code"], month), 0)
    return [groups[key] for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k))]


def month_totals(conn: Connection, filters: Filters) -> list[dict[str, Any]]:
    """Records and minutes per month over the filters' unit: what `summary(..., per_month=True)`'s
    rows add up to month by month (every month of the range, zeros included), without counting the
    residents served or splitting by unit (the dashboard's trend)."""
    check_unit(conn, filters.unit)
    totals = {month: {"month": month, "records": 0, "minutes": 0} for month in _summary_months(conn, filters)}
    full, partial = _split_range(filters)
    if filters.moment.current and full is not None and not partial and not filters.category and not filters.kinds:
        # Whole months of the current ledger: the database adds the monthly totals up (the rows
        # `_kind_rows` would bring to Python), over the communities `summary` lists.
        month_clause, params = _month_clause(full, "t")
        unit_clause, unit_params = filters.unit.where("c") if filters.unit is not None else ("1 = 1", {})
        sql = (
            "SELECT t.month, sum(t.records), sum(t.minutes) FROM ledger_month_kind t "
            f"WHERE {month_clause} AND t.records <> 0 AND t.community IN "
            f"(SELECT c.code FROM ledger_communities c WHERE {unit_clause}) GROUP BY t.month"
        )
        for month, records, minutes in conn.execute(text(sql), {**params, **unit_params}):
            if month in totals:
                totals[month]["records"] += int(records)
                totals[month]["minutes"] += int(minutes or 0)
        return [totals[month] for month in sorted(totals)]
    known = {c["code"] for c in _communities(conn, filters.unit)}
    for community, month, _kind, records, minutes in _kind_rows(conn, filters):
        if community in known and month in totals:
            totals[month]["records"] += records
            totals[month]["minutes"] += minutes
    return [totals[month] for month in sorted(totals)]


def _communities(conn: Connection, unit: Unit | None) -> list[dict[str, Any]]:
    clause, params = unit.where() if unit is not None else ("1 = 1", {})
    rows = conn.execute(
        text(f"SELECT c.code, c.name, c.county, c.township FROM ledger_communities c WHERE {clause} ORDER BY c.code"),
        params,
    ).mappings()
    return [dict(row) for row in rows]


def _summary_months(conn: Connection, filters: Filters) -> list[str]:
    first, last = filters.date_from, filters.date_to
    if first is None or last is None:
        if filters.moment.current:
            sql, params = "SELECT min(month), max(month) FROM ledger_month_kind WHERE records > 0", {}
        else:  # the months that held records at that moment
            clause, params = filters.moment.where("r")
            sql = f"SELECT min(r.month), max(r.month) FROM ledger_revisions r WHERE {clause} AND r.status = 'active'"
        row = conn.execute(text(sql), params).first()
        lo = _month_bounds(row[0])[0] if row and row[0] else None
        hi = _month_bounds(row[1])[1] if row and row[1] else None
        first = first or lo
        last = last or hi
    if first is None or last is None or first > last:
        return []
    return _months(first, last)


MonthSpan = tuple[str | None, str | None] | None
"""Whole months (first, last) read from the monthly tables; None bounds are open; None = no month."""


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _split_range(filters: Filters) -> tuple[MonthSpan, list[tuple[date | None, date | None]]]:
    """The whole months the monthly tables answer, and the partial date ranges left for revisions."""
    lo, hi = filters.date_from, filters.date_to
    partial: list[tuple[date | None, date | None]] = []
    first_full: date | None = None
    last_full: date | None = None
    if lo is not None:
        if lo.day == 1:
            first_full = lo
        else:
            month_end = _month_bounds(_month_of(lo))[1]
            partial.append((lo, month_end if hi is None else min(month_end, hi)))
            first_full = _next_month(lo)
    if hi is not None:
        month_start, month_end = _month_bounds(_month_of(hi))
        if hi == month_end:
            last_full = month_start
        else:
            start = month_start if lo is None else max(month_start, lo)
            if not partial or start > partial[0][1]:  # type: ignore[operator]
                partial.append((start, hi))
            last_full = _month_bounds(_month_of(date.fromordinal(month_start.toordinal() - 1)))[0]
    if first_full is not None and last_full is not None and first_full > last_full:
        return None, partial
    return (
        _month_of(first_full) if first_full else None,
        _month_of(last_full) if last_full else None,
    ), partial


def _month_clause(span: MonthSpan, alias: str) -> tuple[str, dict[str, Any]]:
    if span is None:
        return "1 = 0", {}
    clauses, params = [], {}
    if span[0] is not None:
        clauses.append(f"{alias}.month >= :mo_lo")
        params["mo_lo"] = span[0]
    if span[1] is not None:
        clauses.append(f"{alias}.month <= :mo_hi")
        params["mo_hi"] = span[1]
    return " AND ".join(clauses) or "1 = 1", params


def _unit_on_totals(unit: Unit | None, alias: str) -> tuple[str, dict[str, Any]]:
    if unit is None:
        return "1 = 1", {}
    if unit.level == "community":
        return f"{alias}.community = :u_community", {"u_community": unit.community}
    clause, params = unit.where("c")
    return f"{alias}.community IN (SELECT c.code FROM ledger_communities c WHERE {clause})", params


def _kind_rows(conn: Connection, filters: Filters) -> list[tuple[str, str, str, int, int]]:
    rows: list[tuple[str, str, str, int, int]] = []
    if filters.moment.current:
        full, partial = _split_range(filters)
        table = "ledger_month_category_kind" if filters.category else "ledger_month_kind"
        clauses, params = [], {}
        month_clause, month_params = _month_clause(full, "t")
        unit_clause, unit_params = _unit_on_totals(filters.unit, "t")
        clauses += [month_clause, unit_clause, "t.records <> 0"]
        params.update(month_params, **unit_params)
        if filters.category:
            clauses.append("t.category = :cat")
            params["cat"] = filters.category
        if filters.kinds:
            names = [f":k{i}" for i in range(len(filters.kinds))]
            clauses.append(f"t.kind IN ({', '.join(names)})")
            params.update({f"k{i}": k for i, k in enumerate(filters.kinds)})
        if full is not None:
            rows += [
                tuple(r)  # type: ignore[misc]
                for r in conn.execute(
                    text(
                        f"SELECT t.community, t.month, t.kind, t.records, t.minutes FROM {table} t WHERE {' AND '.join(clauses)}"
                    ),
                    params,
                )
            ]
        ranges = partial
    else:
        ranges = [(filters.date_from, filters.date_to)]
    for lo, hi in ranges:
        sub = Filters(filters.unit, lo, hi, filters.kinds, filters.category, filters.moment)
        clauses, params = _revision_filters(sub)
        clauses.append("r.status = 'active'")
        rows += [
            tuple(r)  # type: ignore[misc]
            for r in conn.execute(
                text(
                    "SELECT r.community, r.month, r.kind, count(*), sum(r.minutes) FROM ledger_revisions r "
                    f"WHERE {' AND '.join(clauses)} GROUP BY r.community, r.month, r.kind"
                ),
                params,
            )
        ]
    return rows


def _served_counts(conn: Connection, filters: Filters, per_month: bool) -> dict[tuple[str, str | None], int]:
    """Distinct residents served per (community, month or None).

    When whole months of the current ledger answer the question (the usual month,
    quarter or year), the database counts them from the monthly resident table, so
    the rows never travel to Python; otherwise the distinct residents are gathered
    from the monthly table and the revisions of the partial months, and counted here.
    """
    if filters.moment.current and not filters.kinds:
        full, partial = _split_range(filters)
        if full is not None and not partial:
            table, where, params = _monthly_residents(filters, full)
            keys = "t.community, t.month" if per_month else "t.community"
            sql = f"SELECT {keys}, count(DISTINCT t.resident) FROM {table} t WHERE {where} GROUP BY {keys}"
            rows = conn.execute(text(sql), params)
            if per_month:
                return {(r[0], r[1]): int(r[2]) for r in rows}
            return {(r[0], None): int(r[1]) for r in rows}
    served: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for community, month, resident in _resident_rows(conn, filters):
        served[(community, month if per_month else None)].add(resident)
    return {key: len(residents) for key, residents in served.items()}


def _monthly_residents(filters: Filters, full: MonthSpan) -> tuple[str, str, dict[str, Any]]:
    """The monthly resident table (alias t) for these filters over whole months: table, WHERE, params."""
    table = "ledger_month_category_resident" if filters.category else "ledger_month_resident"
    month_clause, params = _month_clause(full, "t")
    unit_clause, unit_params = _unit_on_totals(filters.unit, "t")
    params.update(unit_params)
    clauses = [month_clause, unit_clause, "t.records > 0"]
    if filters.category:
        clauses.append("t.category = :cat")
        params["cat"] = filters.category
    return table, " AND ".join(clauses), params


def _resident_rows(conn: Connection, filters: Filters) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if filters.moment.current:
        full, partial = _split_range(filters)
        if filters.kinds:
            # The monthly resident tables do not split by kind: count from the revisions.
            full, partial = None, [(filters.date_from, filters.date_to)]
        if full is not None:
            table, where, params = _monthly_residents(filters, full)
            rows += [
                tuple(r)  # type: ignore[misc]
                for r in conn.execute(
                    text(f"SELECT t.community, t.month, t.resident FROM {table} t WHERE {where}"), params
                )
            ]
        ranges = partial
    else:
        ranges = [(filters.date_from, filters.date_to)]
    for lo, hi in ranges:
        sub = Filters(filters.unit, lo, hi, filters.kinds, filters.category, filters.moment)
        clauses, params = _revision_filters(sub)
        clauses.append("r.status = 'active'")
        category_clause = ""
        if filters.category:
            category_clause = " AND (';' || p.categories || ';') LIKE :cat_like"
            params["cat_like"] = f"%;{filters.category};%"
        rows += [
            tuple(r)  # type: ignore[misc]
            for r in conn.execute(
                text(
                    "SELECT DISTINCT r.community, r.month, p.resident FROM ledger_revisions r "
                    "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
                    f"WHERE {' AND '.join(clauses)}{category_clause}"
                ),
                params,
            )
        ]
    return rows


# ---- directories ---------------------------------------------------------------------------------
def community_rows(conn: Connection) -> list[dict[str, Any]]:
    sql = (
        "SELECT c.code, c.name, c.county, c.township, c.village, c.natural_villages, c.established_on, "
        "(SELECT count(*) FROM ledger_residents r WHERE r.community = c.code AND r.departed_on IS NULL) AS residents, "
        "(SELECT count(*) FROM ledger_providers p WHERE p.community = c.code AND p.retired_on IS NULL) AS providers, "
        "(SELECT coalesce(sum(t.records), 0) FROM ledger_month_kind t WHERE t.community = c.code) AS records "
        "FROM ledger_communities c ORDER BY c.code"
    )
    out = []
    for row in conn.execute(text(sql)).mappings():
        item = dict(row)
        item["natural_villages"] = [x for x in item["natural_villages"].split(";") if x]
        out.append(item)
    return out


def resident_rows(conn: Connection, community: str, category: str | None) -> list[dict[str, Any]]:
    check_unit(conn, Unit("community", community=community))
    params: dict[str, Any] = {"c": community}
    sql = "SELECT * FROM ledger_residents WHERE community = :c"
    if category:
        sql += " AND (';' || categories || ';') LIKE :cat"
        params["cat"] = f"%;{category};%"
    out = []
    for row in conn.execute(text(sql + " ORDER BY code"), params).mappings():
        item = dict(row)
        item["categories"] = [x for x in item["categories"].split(";") if x]
        out.append(item)
    return out


def provider_rows(conn: Connection, community: str) -> list[dict[str, Any]]:
    check_unit(conn, Unit("community", community=community))
    rows = conn.execute(text("SELECT * FROM ledger_providers WHERE community = :c ORDER BY code"), {"c": community})
    return [dict(row) for row in rows.mappings()]


def open_supervision_items(conn: Connection, moment: Moment | None = None) -> list[dict[str, Any]]:
    """Supervised items (督办事项) not yet resolved, every unit, by due date (the dashboard's red flag)."""
    valid, params = (moment or Moment()).where("i")
    sql = (
        "SELECT i.item_id, i.unit, i.item, i.due FROM acct_items i "
        f"WHERE {valid} AND i.resolved_on IS NULL ORDER BY i.due, i.item_id"
    )
    return [dict(row) for row in conn.execute(text(sql), params).mappings()]
