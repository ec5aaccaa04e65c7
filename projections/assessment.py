"""The accountability assessment (考核): scores per township or county for a period, from the views.

Every number is computed from the bitemporal views at one moment (current, as of a
recorded time, or at a log position), so an assessment "as of T" gives the same
answer whenever it is run. Each metric keeps its evidence (the residents, windows,
records or items counted and not counted) for `assess explain`.

Metrics, each in [0, 1] (None when there is nothing to measure):
- coverage: eligible residents (a category, enrolled by the period's last day, not departed
  before its first) served by at least one active record in the period;
- visit_timeliness: visit-plan windows of `every` days from the plan's start that end inside the
  period and before the plan ended, met when the resident got any active service in the window;
- breadth: distinct kinds delivered in the period, over 6;
- target_attainment: mean over the unit's targets for the period of min(1, actual / target);
- supervision_closure: items due in the period resolved by their due date, over items due;
- data_quality: 1 - (records late or voided) / (records that occurred in the period, voided included).

Optional metrics, measured only when a rubric weighs them (rubric v2):
- fund_execution: the unit's 执行率 (issue 15): net spent (spent − reversed) by the communities
  inside it ÷ the money that entered it (allocations to it or a unit inside it + transfers into
  it from outside), both dated up to the period's last day and recorded by the moment (the funds
  views: funds_movements).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text

from domain.units import Period, UnitRef
from domain.vocab import KINDS
from projections.filters import Moment

METRICS = ("coverage", "visit_timeliness", "breadth", "target_attainment", "supervision_closure", "data_quality")
OPTIONAL_METRICS = ("fund_execution",)  # measured only when asked for (a rubric that weighs them)
ALL_METRICS = (*METRICS, *OPTIONAL_METRICS)


@dataclass
class Measure:
    numerator: float = 0
    denominator: float = 0
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def value(self) -> float | None:
        return None if not self.denominator else self.numerator / self.denominator


@dataclass
class UnitFacts:
    unit: UnitRef
    communities: list[str]
    measures: dict[str, Measure] = field(default_factory=lambda: {m: Measure() for m in ALL_METRICS})


def _valid(moment: Moment, alias: str) -> tuple[str, dict[str, Any]]:
    return moment.where(alias)


def communities_at(conn: Connection, moment: Moment) -> list[dict[str, Any]]:
    if moment.as_of is not None:
        clause, params = "established_at <= :t", {"t": moment.as_of}
    elif moment.position is not None:
        clause, params = "established_position <= :n", {"n": moment.position}
    else:
        clause, params = "1 = 1", {}
    rows = conn.execute(
        text(f"SELECT code, county, township FROM ledger_communities WHERE {clause} ORDER BY code"), params
    ).mappings()
    return [dict(r) for r in rows]


def units_of(conn: Connection, level: str, moment: Moment) -> dict[UnitRef, list[str]]:
    units: dict[UnitRef, list[str]] = defaultdict(list)
    for c in communities_at(conn, moment):
        if level == "county":
            ref = UnitRef("county", county=c["county"])
        elif level == "township":
            ref = UnitRef("township", county=c["county"], township=c["township"])
        else:
            ref = UnitRef("community", community=c["code"])
        units[ref].append(c["code"])
    return dict(units)


def _scope(moment: Moment, alias: str, codes: list[str], period: Period) -> tuple[str, str, dict[str, Any]]:
    """The moment's validity clause on `alias`, the communities' IN list, and their parameters."""
    valid, params = _valid(moment, alias)
    inside, in_params = _in(codes, "c")
    params.update(in_params, first=period.first.isoformat(), last=period.last.isoformat())
    return valid, inside, params


def _in(codes: list[str], prefix: str) -> tuple[str, dict[str, Any]]:
    names = [f":{prefix}{i}" for i in range(len(codes))]
    return f"({', '.join(names) or 'NULL'})", {f"{prefix}{i}": c for i, c in enumerate(codes)}


def assess(
    conn: Connection,
    *,
    level: str,
    period: Period,
    moment: Moment,
    only: UnitRef | None = None,
    day: date | None = None,
    evidence: bool = True,
    funds: bool = False,
) -> list[UnitFacts]:
    """Measure every unit of `level` (or just `only`) for `period` as the views stood at `moment`.

    With `funds`, also fund_execution (from the funds views); without, those views are not read.

    `day` is the day the period is judged on, to its end (the as-of day, or today; by default
    the period's last day): visit windows ending and supervision items due after it are not
    counted yet, met or not — a period in progress is judged on what is already due.
    """
    judged = min(day or period.last, period.last)
    units = units_of(conn, level, moment)
    if only is not None:
        units = {only: units.get(only, [])} if only in units else {}
    code_to_unit = {code: ref for ref, codes in units.items() for code in codes}
    facts = {ref: UnitFacts(ref, sorted(codes)) for ref, codes in units.items()}
    if not facts:
        return []
    codes = sorted(code_to_unit)
    if moment.current and not evidence:
        # The answer from the monthly totals: its cost follows communities x months, not records.
        _coverage_from_totals(conn, facts, code_to_unit, codes, period, moment)
        _breadth_and_quality_from_totals(conn, facts, code_to_unit, codes, period)
        _targets_from_totals(conn, facts, period, moment, code_to_unit, codes)
    else:
        services = _services(conn, codes, period, moment)
        _coverage(conn, facts, code_to_unit, codes, period, moment, services)
        _breadth_and_quality(conn, facts, code_to_unit, codes, period, moment)
        _targets(conn, facts, period, moment, services, code_to_unit)
    _visits(conn, facts, code_to_unit, codes, period, moment, judged)
    _supervision(conn, facts, period, moment, judged)
    if funds:
        _fund_execution(conn, facts, period, moment, evidence)
    return [facts[ref] for ref in sorted(facts, key=_unit_sort_key)]


ENTERING = {"allocated": 1, "received": 1, "passed_down": -1}  # money moves down only: what a subtree
SPENDING = {"spent": 1, "reversed": -1}  # received from outside = its receipts less its passings-down


def _position_at(conn: Connection, moment: Moment) -> int | None:
    """The log position a moment stands at (None: current)."""
    if moment.position is not None:
        return moment.position
    if moment.as_of is None:
        return None
    postgres = getattr(getattr(conn, "dialect", None), "name", "sqlite") == "postgresql"
    bound = "CAST(:m AS timestamptz)" if postgres else ":m"
    row = conn.execute(
        text(f"SELECT max(last_position) FROM taizhang_commits WHERE recorded_at <= {bound}"), {"m": moment.as_of}
    ).first()
    return int(row[0]) if row and row[0] is not None else 0


def _has_table(conn: Connection, name: str) -> bool:
    if getattr(getattr(conn, "dialect", None), "name", "sqlite") == "postgresql":
        return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar() is True
    found = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"), {"n": name}).first()
    return found is not None


def _fund_execution(
    conn: Connection, facts: dict[UnitRef, UnitFacts], period: Period, moment: Moment, evidence: bool
) -> None:
    if not _has_table(conn, "funds_movements"):
        return  # a store whose views predate the funding ledger: nothing to measure
    position = _position_at(conn, moment)
    clause = " AND position <= :p" if position is not None else ""
    rows = conn.execute(
        text(
            "SELECT county, township, kind, sum(amount) FROM funds_movements"
            f" WHERE day <= :last{clause} GROUP BY county, township, kind ORDER BY county, township, kind"
        ),
        {"last": period.last.isoformat(), "p": position},
    ).all()
    for ref, fact in facts.items():
        measure = fact.measures["fund_execution"]
        sums: dict[str, int] = defaultdict(int)
        for county, township, kind, amount in rows:
            if county != ref.county or (ref.level == "township" and township != ref.township):
                continue
            if ref.level == "community":
                continue  # a community's own rows need its code: not assessed at this level
            sums[kind] += int(amount)
        measure.numerator = sum(sign * sums[k] for k, sign in SPENDING.items())
        measure.denominator = sum(sign * sums[k] for k, sign in ENTERING.items())
        if evidence:
            measure.evidence = [{"kind": k, "amount": sums[k]} for k in (*ENTERING, *SPENDING)]


def coverage(conn: Connection, *, level: str, period: Period, units: Collection[UnitRef]) -> dict[UnitRef, Measure]:
    """The current `coverage` measure of these units of `level` alone (the dashboard's column):
    `assess(..., evidence=False)`'s figure for each, from the monthly totals, counting only their
    communities (a township's dashboard no longer counts the whole city). Units not in the store
    are left out."""
    wanted = set(units)
    found = {ref: codes for ref, codes in units_of(conn, level, Moment()).items() if ref in wanted}
    facts = {ref: UnitFacts(ref, sorted(codes)) for ref, codes in found.items()}
    if facts:
        code_to_unit = {code: ref for ref, codes in found.items() for code in codes}
        _coverage_from_totals(conn, facts, code_to_unit, sorted(code_to_unit), period, Moment())
    return {ref: fact.measures["coverage"] for ref, fact in facts.items()}


def _unit_sort_key(ref: UnitRef) -> tuple[str, str, str]:
    return (ref.county, ref.township, ref.community)


def _services(conn: Connection, codes: list[str], period: Period, moment: Moment) -> list[dict[str, Any]]:
    """Active records (as at `moment`) that occurred in the period, with their residents."""
    valid, inside, params = _scope(moment, "r", codes, period)
    rows = conn.execute(
        text(
            "SELECT r.record_id, r.community, r.kind, r.minutes, r.occurred_on, p.resident "
            "FROM ledger_revisions r JOIN ledger_revision_residents p ON p.position_from = r.position_from "
            f"WHERE {valid} AND r.status = 'active' AND r.community IN {inside} "
            "AND r.occurred_on >= :first AND r.occurred_on <= :last ORDER BY r.occurred_on, r.record_id"
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


def _coverage(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
    period: Period,
    moment: Moment,
    services: list[dict[str, Any]],
) -> None:
    served: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in services:
        served[(s["community"], s["resident"])].append(s["record_id"])
    _coverage_from(conn, facts, code_to_unit, codes, period, moment, served, evidence=True)


def _coverage_from(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
    period: Period,
    moment: Moment,
    served: Any,
    *,
    evidence: bool,
) -> None:
    valid, inside, params = _scope(moment, "s", codes, period)
    rows = conn.execute(
        text(
            "SELECT s.community, s.code, s.categories FROM acct_resident_states s "
            f"WHERE {valid} AND s.community IN {inside} AND s.categories <> '' AND s.enrolled_on <= :last "
            "AND (s.departed_on IS NULL OR s.departed_on >= :first) ORDER BY s.community, s.code"
        ),
        params,
    ).mappings()
    for row in rows:
        measure = facts[code_to_unit[row["community"]]].measures["coverage"]
        key = (row["community"], row["code"])
        measure.denominator += 1
        if not evidence:
            measure.numerator += 1 if key in served else 0
            continue
        records = sorted(set(served.get(key, [])))
        measure.numerator += 1 if records else 0
        measure.evidence.append(
            {
                "community": row["community"],
                "resident": row["code"],
                "categories": row["categories"].split(";"),
                "counted": bool(records),
                "records": records,
            }
        )


def _visits(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
    period: Period,
    moment: Moment,
    judged: date,
) -> None:
    valid, params = _valid(moment, "v")
    inside, in_params = _in(codes, "c")
    params.update(in_params, last=period.last.isoformat())
    plans = [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT v.community, v.resident, v.plan, v.every, v.provider, v.starts_on, v.ends_on "
                f"FROM acct_visit_plans v WHERE {valid} AND v.community IN {inside} AND v.starts_on <= :last "
                "ORDER BY v.community, v.resident, v.plan"
            ),
            params,
        ).mappings()
    ]
    if not plans:
        return
    earliest = min(date.fromisoformat(p["starts_on"]) for p in plans)
    visits = _service_days(conn, codes, earliest, period.last, moment)
    departures = _departures(conn, codes, moment)
    for plan in plans:
        measure = facts[code_to_unit[plan["community"]]].measures["visit_timeliness"]
        departed = departures.get((plan["community"], plan["resident"]))
        for window in plan_windows(plan, period):
            start, end = window
            if departed is not None and end >= departed:
                break  # the resident left: no visits are owed from then on
            records = [rid for day, rid in visits.get((plan["community"], plan["resident"]), []) if start <= day <= end]
            if end > judged:
                break  # not over on the day of judgement: not counted yet
            measure.denominator += 1
            measure.numerator += 1 if records else 0
            measure.evidence.append(
                {
                    "community": plan["community"],
                    "resident": plan["resident"],
                    "provider": plan["provider"],
                    "every": plan["every"],
                    "window": [start.isoformat(), end.isoformat()],
                    "counted": bool(records),
                    "records": sorted(set(records)),
                }
            )


def _months_of(period: Period) -> tuple[str, str]:
    return period.first.isoformat()[:7], period.last.isoformat()[:7]


def _served_counts(conn: Connection, codes: list[str], period: Period) -> dict[str, int]:
    """community -> residents with a service in the period's months (counted by the database)."""
    inside, params = _in(codes, "c")
    params["m_lo"], params["m_hi"] = _months_of(period)
    rows = conn.execute(
        text(
            "SELECT t.community, count(DISTINCT t.resident) FROM ledger_month_resident t "
            f"WHERE t.month >= :m_lo AND t.month <= :m_hi AND t.records > 0 AND t.community IN {inside} "
            "GROUP BY t.community"
        ),
        params,
    )
    return {str(r[0]): int(r[1]) for r in rows}


def _months_in(period: Period) -> list[str]:
    """Every month (`YYYY-MM`) from the period's first to its last, both included."""
    year, month = period.first.year, period.first.month
    months = []
    while (year, month) <= (period.last.year, period.last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _coverage_from_totals(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
    period: Period,
    moment: Moment,
) -> None:
    """Coverage counted by the database, per community: the residents in a category during the
    period, and of them those with a service in one of its months (monthly totals, probed by
    their full key, so the cost follows the residents of the unit, not the records)."""
    valid, inside, params = _scope(moment, "s", codes, period)
    months, month_params = _in(_months_in(period), "m")
    params.update(month_params)
    rows = conn.execute(
        text(
            "SELECT s.community, count(*), sum(CASE WHEN EXISTS (SELECT 1 FROM ledger_month_resident t "
            f"WHERE t.community = s.community AND t.month IN {months} AND t.resident = s.code AND t.records > 0) "
            "THEN 1 ELSE 0 END) FROM acct_resident_states s "
            f"WHERE {valid} AND s.community IN {inside} AND s.categories <> '' AND s.enrolled_on <= :last "
            "AND (s.departed_on IS NULL OR s.departed_on >= :first) GROUP BY s.community"
        ),
        params,
    )
    for community, residents, served in rows:
        measure = facts[code_to_unit[community]].measures["coverage"]
        measure.denominator += int(residents)
        measure.numerator += int(served or 0)


def _breadth_and_quality_from_totals(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
    period: Period,
) -> None:
    inside, params = _in(codes, "c")
    params["m_lo"], params["m_hi"] = _months_of(period)
    for community, records, flawed in conn.execute(
        text(
            "SELECT q.community, sum(q.records), sum(q.flawed) FROM ledger_month_quality q "
            f"WHERE q.month >= :m_lo AND q.month <= :m_hi AND q.community IN {inside} GROUP BY q.community"
        ),
        params,
    ):
        quality = facts[code_to_unit[community]].measures["data_quality"]
        quality.denominator += int(records)
        quality.numerator += int(records) - int(flawed)
    kinds: dict[UnitRef, set[str]] = defaultdict(set)
    for community, kind in conn.execute(
        text(
            "SELECT DISTINCT t.community, t.kind FROM ledger_month_kind t "
            f"WHERE t.month >= :m_lo AND t.month <= :m_hi AND t.records > 0 AND t.community IN {inside}"
        ),
        params,
    ):
        kinds[code_to_unit[community]].add(kind)
    for unit, fact in facts.items():
        if fact.measures["data_quality"].denominator == 0:
            continue
        fact.measures["breadth"].denominator = len(KINDS.labels)
        fact.measures["breadth"].numerator = len(kinds.get(unit, ()))


def _targets_from_totals(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    period: Period,
    moment: Moment,
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
) -> None:
    valid, params = _valid(moment, "t")
    params["period"] = period.text
    targets = [
        dict(r)
        for r in conn.execute(
            text(
                f"SELECT t.unit, t.metric, t.kind, t.at_least FROM acct_targets t WHERE {valid} AND t.period = :period"
            ),
            params,
        ).mappings()
    ]
    if not targets:
        return
    inside, totals_params = _in(codes, "c")
    totals_params["m_lo"], totals_params["m_hi"] = _months_of(period)
    by_kind: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for community, kind, records, minutes in conn.execute(
        text(
            "SELECT t.community, t.kind, sum(t.records), sum(t.minutes) FROM ledger_month_kind t "
            f"WHERE t.month >= :m_lo AND t.month <= :m_hi AND t.community IN {inside} GROUP BY t.community, t.kind"
        ),
        totals_params,
    ):
        by_kind[(community, kind)] = [int(records), int(minutes)]
    served = _served_counts(conn, codes, period) if any(t["metric"] == "residents_served" for t in targets) else {}
    need_kind_residents = any(t["metric"] == "residents_served" and t["kind"] for t in targets)
    services = _services(conn, codes, period, moment) if need_kind_residents else []
    for ref, fact in facts.items():
        mine = sorted((t for t in targets if t["unit"] == str(ref)), key=lambda t: (t["metric"], t["kind"]))
        members = set(fact.communities)
        measure = fact.measures["target_attainment"]
        for target in mine:
            metric, kind = target["metric"], target["kind"] or None
            if metric == "coverage":
                actual = fact.measures["coverage"].value or 0.0
            elif metric in ("records", "minutes"):
                index = 0 if metric == "records" else 1
                actual = float(
                    sum(v[index] for (c, k), v in by_kind.items() if c in members and (kind is None or k == kind))
                )
            elif kind is None:
                actual = float(sum(served.get(c, 0) for c in members))
            else:
                actual = float(
                    len(
                        {
                            (s["community"], s["resident"])
                            for s in services
                            if s["community"] in members and s["kind"] == kind
                        }
                    )
                )
            goal = float(target["at_least"])
            attained = 1.0 if goal <= 0 else min(1.0, actual / goal)
            measure.denominator += 1
            measure.numerator += attained


def _departures(conn: Connection, codes: list[str], moment: Moment) -> dict[tuple[str, str], date]:
    valid, params = _valid(moment, "s")
    inside, in_params = _in(codes, "c")
    params.update(in_params)
    rows = conn.execute(
        text(
            "SELECT s.community, s.code, s.departed_on FROM acct_resident_states s "
            f"WHERE {valid} AND s.community IN {inside} AND s.departed_on IS NOT NULL"
        ),
        params,
    )
    return {(r[0], r[1]): date.fromisoformat(r[2]) for r in rows}


def plan_windows(plan: dict[str, Any], period: Period) -> list[tuple[date, date]]:
    """The plan's windows of `every` days that end inside the period and before the plan ended."""
    start = date.fromisoformat(plan["starts_on"])
    every = int(plan["every"])
    ends_on = date.fromisoformat(plan["ends_on"]) if plan["ends_on"] else None
    windows = []
    # Jump to the first window that could end inside the period.
    skip = max(0, (period.first - start).days // every - 1)
    window_start = start + timedelta(days=skip * every)
    while True:
        window_end = window_start + timedelta(days=every - 1)
        if window_end > period.last or (ends_on is not None and window_end >= ends_on):
            return windows
        if window_end >= period.first:
            windows.append((window_start, window_end))
        window_start = window_end + timedelta(days=1)


def _service_days(
    conn: Connection, codes: list[str], first: date, last: date, moment: Moment
) -> dict[tuple[str, str], list[tuple[date, str]]]:
    valid, params = _valid(moment, "r")
    inside, in_params = _in(codes, "c")
    params.update(in_params, first=first.isoformat(), last=last.isoformat())
    days: dict[tuple[str, str], list[tuple[date, str]]] = defaultdict(list)
    for row in conn.execute(
        text(
            "SELECT r.community, p.resident, r.occurred_on, r.record_id FROM ledger_revisions r "
            "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
            f"WHERE {valid} AND r.status = 'active' AND r.community IN {inside} "
            "AND r.occurred_on >= :first AND r.occurred_on <= :last"
        ),
        params,
    ):
        days[(row[0], row[1])].append((date.fromisoformat(row[2]), row[3]))
    return days


def _breadth_and_quality(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    code_to_unit: dict[str, UnitRef],
    codes: list[str],
    period: Period,
    moment: Moment,
) -> None:
    valid, inside, params = _scope(moment, "r", codes, period)
    kinds: dict[UnitRef, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in conn.execute(
        text(
            "SELECT r.record_id, r.community, r.kind, r.status, r.late FROM ledger_revisions r "
            f"WHERE {valid} AND r.community IN {inside} AND r.occurred_on >= :first AND r.occurred_on <= :last "
            "ORDER BY r.occurred_utc, r.record_id"
        ),
        params,
    ).mappings():
        unit = code_to_unit[row["community"]]
        quality = facts[unit].measures["data_quality"]
        flawed = bool(row["late"]) or row["status"] == "voided"
        quality.denominator += 1
        quality.numerator += 0 if flawed else 1
        quality.evidence.append(
            {
                "record_id": row["record_id"],
                "community": row["community"],
                "late": bool(row["late"]),
                "voided": row["status"] == "voided",
                "counted": not flawed,
            }
        )
        if row["status"] == "active":
            kinds[unit][row["kind"]].append(row["record_id"])
    for unit, fact in facts.items():
        breadth = fact.measures["breadth"]
        delivered = kinds.get(unit, {})
        if fact.measures["data_quality"].denominator == 0:
            continue  # no records at all: breadth is not measured
        breadth.denominator = len(KINDS.labels)
        breadth.numerator = len(delivered)
        breadth.evidence = [
            {"kind": kind, "counted": kind in delivered, "records": sorted(delivered.get(kind, []))}
            for kind in KINDS.labels
        ]


def _targets(
    conn: Connection,
    facts: dict[UnitRef, UnitFacts],
    period: Period,
    moment: Moment,
    services: list[dict[str, Any]],
    code_to_unit: dict[str, UnitRef],
) -> None:
    valid, params = _valid(moment, "t")
    params["period"] = period.text
    by_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in conn.execute(
        text(
            "SELECT t.unit, t.metric, t.kind, t.at_least FROM acct_targets t "
            f"WHERE {valid} AND t.period = :period ORDER BY t.unit, t.metric, t.kind"
        ),
        params,
    ).mappings():
        by_unit[row["unit"]].append(dict(row))
    for ref, fact in facts.items():
        mine = by_unit.get(str(ref), [])
        measure = fact.measures["target_attainment"]
        codes = set(fact.communities)
        unit_services = [s for s in services if s["community"] in codes]
        for target in mine:
            actual = _actual(target["metric"], target["kind"] or None, unit_services, fact)
            goal = float(target["at_least"])
            attained = 1.0 if goal <= 0 else min(1.0, actual / goal)
            measure.denominator += 1
            measure.numerator += attained
            measure.evidence.append(
                {
                    "metric": target["metric"],
                    "kind": target["kind"] or None,
                    "at_least": goal,
                    "actual": round(actual, 6),
                    "attainment": round(attained, 6),
                    "counted": True,
                }
            )


def _actual(metric: str, kind: str | None, services: list[dict[str, Any]], fact: UnitFacts) -> float:
    if metric == "coverage":
        return fact.measures["coverage"].value or 0.0
    chosen = [s for s in services if kind is None or s["kind"] == kind]
    records = {s["record_id"]: s["minutes"] for s in chosen}
    if metric == "records":
        return float(len(records))
    if metric == "minutes":
        return float(sum(records.values()))
    return float(len({(s["community"], s["resident"]) for s in chosen}))


def _supervision(
    conn: Connection, facts: dict[UnitRef, UnitFacts], period: Period, moment: Moment, judged: date
) -> None:
    valid, params = _valid(moment, "i")
    params.update(first=period.first.isoformat(), last=period.last.isoformat())
    rows = [
        dict(r)
        for r in conn.execute(
            text(
                "SELECT i.item_id, i.unit, i.item, i.due, i.resolved_on FROM acct_items i "
                f"WHERE {valid} AND i.due >= :first AND i.due <= :last ORDER BY i.due, i.item_id"
            ),
            params,
        ).mappings()
    ]
    for ref, fact in facts.items():
        measure = fact.measures["supervision_closure"]
        for row in rows:
            item_unit = _parse(row["unit"])
            if item_unit != ref and not ref.contains(item_unit) and not _community_in(item_unit, fact):
                continue
            closed = row["resolved_on"] is not None and row["resolved_on"] <= row["due"]
            if row["due"] > judged.isoformat():
                continue  # not due yet on the day of judgement: not counted, resolved or not
            measure.denominator += 1
            measure.numerator += 1 if closed else 0
            measure.evidence.append(
                {
                    "item_id": row["item_id"],
                    "unit": row["unit"],
                    "item": row["item"],
                    "due": row["due"],
                    "resolved_on": row["resolved_on"],
                    "counted": closed,
                }
            )


def _parse(unit: str) -> UnitRef:
    from domain.units import parse_unit

    return parse_unit(unit)


def _community_in(unit: UnitRef, fact: UnitFacts) -> bool:
    return unit.level == "community" and unit.community in fact.communities


def responsible(conn: Connection, unit: UnitRef, period: Period, moment: Moment) -> list[dict[str, Any]]:
    """Officials whose duty for the unit overlapped the period, as known at `moment`."""
    valid, params = _valid(moment, "d")
    params.update(unit=str(unit), first=period.first.isoformat(), last=period.last.isoformat())
    rows = conn.execute(
        text(
            "SELECT DISTINCT d.official, o.name, d.duty FROM acct_duties d JOIN acct_officials o ON o.code = d.official "
            f"WHERE {valid} AND d.unit = :unit AND d.starts_on <= :last AND (d.ends_on IS NULL OR d.ends_on > :first) "
            "ORDER BY d.duty, d.official"
        ),
        params,
    ).mappings()
    return [{"official": r["official"], "name": r["name"], "duty": r["duty"]} for r in rows]
