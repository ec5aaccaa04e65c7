"""The dashboard's extra reads: key-group coverage per unit, and the red flags of a scope.

Each number is one the CLI already prints, from the same function: coverage is the `coverage`
metric of `assess` (projections.assessment.assess, the figure `assess explain --metric coverage`
shows), overdue key visits are `visits overdue` (commands.assess_reads.overdue_rows), open
supervised items are the items `supervise open` made and `supervise resolve` has not closed.
"""

from __future__ import annotations

from typing import Any

from commands.context import Env
from commands.views import prepared_views
from domain.units import Period, UnitRef, parse_unit


def unit_ref(by: str, row: dict[str, Any]) -> UnitRef:
    """The unit of a `ledger summary --by BY` row, as `assess` names it."""
    if by == "county":
        return UnitRef("county", county=row["county"])
    if by == "township":
        return UnitRef("township", county=row["county"], township=row["township"])
    return UnitRef("community", community=row["community"])


def coverage(env: Env, span: Period, by: str, units: list[UnitRef]) -> dict[UnitRef, dict[str, Any]]:
    """`assess`'s coverage of each of these units for the period: key-group residents served / eligible
    (projections.assessment.coverage: only these units' communities are counted)."""
    from projections import assessment

    views = prepared_views(env, None)
    with views.read() as conn:
        measures = assessment.coverage(conn, level=by, period=span, units=units)
    return {
        unit: {"value": m.value, "served": int(m.numerator), "eligible": int(m.denominator)}
        for unit, m in measures.items()
    }


def open_items(env: Env, scope: Any) -> list[dict[str, Any]]:
    """Unresolved supervised items whose unit lies inside `scope` (an actor's Scope), by due date."""
    from projections.queries import community_rows, open_supervision_items

    views = prepared_views(env, None)
    with views.read() as conn:
        items = open_supervision_items(conn)
        located = {row["code"]: row for row in community_rows(conn)} if items else {}
    today = env.today()
    found = []
    for item in items:
        try:
            ref = parse_unit(item["unit"])
        except ValueError:
            continue
        if ref.level == "community" and ref.community in located:
            row = located[ref.community]
            ref = UnitRef("community", county=row["county"], township=row["township"], community=ref.community)
        if scope.covers(ref):
            found.append({**item, "overdue": item["due"] < today})
    return found
