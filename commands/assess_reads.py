"""The reads behind `assess run|explain` and `visits overdue`, for both doors (CLI and web).

Moved out of commands/cli/assess.py so that the web builds the same documents with the same
arguments: the numbers a page or /api/v1 shows are the ones `--format json` prints.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from commands import clock
from commands.assess import Rubric, rank, score_unit
from commands.context import Env, Refused
from commands.ledger_reads import parse_as_of, parse_unit, resolve_unit
from commands.views import prepared_views
from domain.units import Period, UnitRef
from projections.filters import Moment

METRIC_NAMES = ("coverage", "visit_timeliness", "breadth", "target_attainment", "supervision_closure", "data_quality")
ALL_METRIC_NAMES = (*METRIC_NAMES, "fund_execution")  # fund_execution: rubric v2, from the funding ledger
OVERDUE_FIELDS = ["community", "resident", "provider", "every", "starts_on", "last_visit", "due", "days_overdue"]


def moment_of(env: Env, as_of: str | None) -> Moment:
    return Moment(as_of=parse_as_of(env, as_of) if as_of else None)


def as_of_day(env: Env, moment: Moment) -> date:
    """The local day the obligations are judged on: the as-of moment's, or today."""
    if moment.as_of is None:
        return date.fromisoformat(env.today())
    return clock.parse_stored(moment.as_of).astimezone(env.zone()).date()


def _position(views: Any, moment: Moment) -> int:
    if moment.as_of is not None:
        return int(views.runner.position_at(moment.as_of))
    return int(views.runner.position())


def assessment_document(
    env: Env, span: Period, level: str, moment: Moment, chosen: Rubric, wait: float | None
) -> dict[str, Any]:
    """`assess run --format json`: every unit of the level, scored, ranked, with its metrics."""
    from projections.assessment import assess as measure
    from projections.assessment import responsible

    views = prepared_views(env, wait)
    with views.read() as conn:
        facts = measure(
            conn,
            level=level,
            period=span,
            moment=moment,
            day=as_of_day(env, moment),
            evidence=False,
            funds=chosen.funds,
        )
        units = []
        scores: dict[str, float | None] = {}
        for fact in facts:
            score, metrics = score_unit(fact, chosen)
            scores[str(fact.unit)] = score
            units.append(
                {
                    "unit": str(fact.unit),
                    "name": fact.unit.name(),
                    "county": fact.unit.county,
                    "township": fact.unit.township or None,
                    "score": score,
                    "rank": None,
                    "responsible": responsible(conn, fact.unit, span, moment),
                    "metrics": metrics,
                }
            )
    ranks = rank(scores)
    for unit in units:
        unit["rank"] = ranks[unit["unit"]]
    units.sort(key=lambda u: u["unit"])
    return {
        "period": span.text,
        "level": level,
        "as_of": clock.shown(moment.as_of, env.zone()),
        "position": _position(views, moment),
        "rubric": chosen.describe(),
        "units": units,
    }


def explain_measure(env: Env, span: Period, ref: UnitRef, metric: str, moment: Moment, wait: float | None) -> Any:
    """The measure of one metric of one unit, with its evidence (refused: no such unit)."""
    from projections.assessment import assess as measure

    views = prepared_views(env, wait)
    with views.read() as conn:
        facts = measure(
            conn,
            level=ref.level,
            period=span,
            moment=moment,
            only=ref,
            day=as_of_day(env, moment),
            funds=metric == "fund_execution",
        )
    if not facts:
        raise Refused(f"no {ref.level} {str(ref).split(':', 1)[1]} in the ledger")
    return facts[0].measures[metric]


def explain_document(
    env: Env, span: Period, ref: UnitRef, metric: str, moment: Moment, measure_: Any
) -> dict[str, Any]:
    """`assess explain --format json`."""
    return {
        "period": span.text,
        "unit": str(ref),
        "metric": metric,
        "as_of": clock.shown(moment.as_of, env.zone()),
        "value": None if measure_.value is None else round(measure_.value, 6),
        "numerator": round(measure_.numerator, 6),
        "denominator": round(measure_.denominator, 6),
        "evidence": measure_.evidence,
    }


def overdue_rows(
    env: Env, community: str | None, township: str | None, county: str | None, as_of: str | None, wait: float | None
) -> list[dict[str, Any]]:
    """`visits overdue`: residents whose visit plan is in force and whose last visit is overdue."""
    from projections.responsibility import communities_in, overdue_visits

    filter_unit = resolve_unit(env, parse_unit(community, township, county))
    ref = None
    if filter_unit is not None:
        ref = UnitRef(
            filter_unit.level,
            county=filter_unit.county or "",
            township=filter_unit.township or "",
            community=filter_unit.community or "",
        )
    moment = moment_of(env, as_of)
    views = prepared_views(env, wait)
    with views.read() as conn:
        codes = communities_in(conn, ref, moment)
        if ref is not None and not codes:
            raise Refused(f"no {ref.level} {str(ref).split(':', 1)[1]} in the ledger")
        rows: list[dict[str, Any]] = overdue_visits(conn, codes, as_of_day(env, moment), moment)
    return rows
