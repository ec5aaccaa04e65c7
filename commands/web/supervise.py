"""Supervisors' pages and API reads: the assessment ranking with its `explain` drill-down, and overdue key visits.

The documents are the ones `assess run|explain --format json` and `visits overdue --format json`
print (commands.assess_reads, the services both doors use); the pages show them as the CLI's
table does (by rank, units by name, one decimal, percentages). Each route follows the access
rule of its CLI command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from commands import labels
from commands.context import MalformedInput
from commands.web import words
from commands.web.app import _failure, _json, _plain, _problem, _units_or_scope, scope_params
from commands.web.door import Door
from commands.web.policy import Who, needs

LEVELS = {"township": "townships", "county": "counties"}  # level -> the word a page shows


def _unit_param(request: Request, _actor: Any) -> dict[str, Any]:
    """`assess explain --unit`: the unit the request names (required)."""
    unit = request.query_params.get("unit", "").strip()
    if not unit:
        raise MalformedInput("unit: required")
    return {"unit": unit}


def _period(env: Any, text: str | None) -> Any:
    from commands.accountability import period_arg

    return period_arg(text or env.today()[:7], "period")


def assessment(door: Door, who: Who, q: Any) -> dict[str, Any]:
    """`assess run --format json` for the query's period, level and as-of (the shipped rubric in force then)."""
    from commands.assess import default_rubric, now_utc
    from commands.assess_reads import assessment_document, moment_of

    env = door.env_for(who.name, who.lang)
    level = q.get("level") or "township"
    if level not in LEVELS:
        raise MalformedInput(f"level: expected township or county, got {level!r}")
    span = _period(env, q.get("period"))
    moment = moment_of(env, q.get("as_of") or None)
    return assessment_document(env, span, level, moment, default_rubric(moment.as_of, now_utc()), None)


def explanation(door: Door, who: Who, q: Any) -> dict[str, Any]:
    """`assess explain --format json` for the query's period, unit, metric and as-of."""
    from commands.accountability import unit_arg
    from commands.assess_reads import ALL_METRIC_NAMES, explain_document, explain_measure, moment_of

    env = door.env_for(who.name, who.lang)
    metric = q.get("metric") or ""
    if metric not in ALL_METRIC_NAMES:
        raise MalformedInput(f"metric: expected one of {', '.join(ALL_METRIC_NAMES)}, got {metric!r}")
    span, ref = _period(env, q.get("period")), unit_arg(q.get("unit") or "", "unit")
    moment = moment_of(env, q.get("as_of") or None)
    measure = explain_measure(env, span, ref, metric, moment, None)
    return explain_document(env, span, ref, metric, moment, measure)


def overdue(door: Door, who: Who, q: Any) -> list[dict[str, Any]]:
    """`visits overdue --format json` for the query's unit (none: the actor's scope) and as-of."""
    from commands.assess_reads import overdue_rows

    env = door.env_for(who.name, who.lang)
    units = {k: q.get(k) or None for k in ("community", "township", "county")}
    if not any(units.values()):
        units.update(scope_params(who.actor))
    return overdue_rows(env, units["community"], units["township"], units["county"], q.get("as_of") or None, None)


def ranking_table(document: dict[str, Any], lang: str, as_of: str) -> list[dict[str, Any]]:
    """The ranking as the CLI's table reads (commands.assess.ranking_rows), each metric linked to its evidence."""
    from commands.assess import by_rank, metrics_of, ratio_text, score_text

    rows = []
    for unit in by_rank(document["units"]):
        cells = []
        for metric in metrics_of(document):
            query = {"period": document["period"], "unit": unit["unit"], "metric": metric}
            if as_of:
                query["as_of"] = as_of
            value = ratio_text((unit["metrics"].get(metric) or {}).get("value"))
            cells.append({"text": value, "href": "/assess/explain?" + urlencode(query)})
        rows.append(
            {
                "rank": "—" if unit["rank"] is None else unit["rank"],
                "name": unit.get("name") or unit["unit"],
                "unit": unit["unit"],
                "score": score_text(unit["score"]),
                "metrics": cells,
            }
        )
    return rows


def register(app: FastAPI, door: Door, templates: Jinja2Templates, context: Callable[..., dict[str, Any]]) -> None:
    """The routes of this module, on the app (commands.web.app.create_app calls it once)."""

    def page(request: Request, who: Who, name: str, **extra: Any) -> Response:
        return templates.TemplateResponse(request, name, context(request, who, **extra))

    def refused(request: Request, who: Who, error: Exception) -> Response:
        status, message = _failure(error)
        if status is None:
            raise error
        text = words.translate(message, who.lang)
        return templates.TemplateResponse(
            request, "error.html", context(request, who, message=text, status=status), status_code=status
        )

    def problem(who: Who, error: Exception) -> Response:
        status, message = _failure(error)
        if status is None:
            raise error
        return _problem(status, words.translate(message, who.lang))

    @app.get("/assess", response_class=HTMLResponse)
    def assess_page(request: Request, who: Who = needs("assess run")) -> Response:
        from commands.assess import columns_of

        q = request.query_params
        try:
            document = assessment(door, who, q)
        except Exception as e:
            return refused(request, who, e)
        as_of = q.get("as_of") or ""
        return page(
            request, who, "assess.html", document=document, as_of=as_of, level=document["level"],
            rows=ranking_table(document, who.lang, as_of), headers=labels.headers(list(columns_of(document)), who.lang),
            levels=[(lv, words.word(w, who.lang)) for lv, w in LEVELS.items()],
        )  # fmt: skip

    @app.get("/assess/explain", response_class=HTMLResponse)
    def explain_page(request: Request, who: Who = needs("assess explain", _unit_param)) -> Response:
        from commands.assess import ratio_text

        q = request.query_params
        try:
            document = explanation(door, who, q)
        except Exception as e:
            return refused(request, who, e)
        evidence = document["evidence"]
        fields = list(evidence[0]) if evidence else ["counted"]
        value = "—" if document["value"] is None else f"{document['value']:.4f}"
        line = (
            f"{document['metric']} of {document['unit']} in {document['period']}: {value} "
            f"({document['numerator']:g} / {document['denominator']:g})"
        )
        back = {"period": document["period"], "level": document["unit"].split(":", 1)[0]}
        if q.get("as_of"):
            back["as_of"] = q["as_of"]
        return page(
            request, who, "assess_explain.html", document=document, line=words.translate(line, who.lang),
            percent=ratio_text(document["value"]), metric=labels.headers([document["metric"]], who.lang)[0],
            fields=fields, headers=labels.headers(fields, who.lang), back="/assess?" + urlencode(back),
            rows=[labels.localise(_plain(row), who.lang) for row in evidence],
        )  # fmt: skip

    @app.get("/visits/overdue", response_class=HTMLResponse)
    def overdue_page(request: Request, who: Who = needs("visits overdue", _units_or_scope)) -> Response:
        from commands.assess_reads import OVERDUE_FIELDS

        q = request.query_params
        try:
            rows = overdue(door, who, q)
        except Exception as e:
            return refused(request, who, e)
        return page(
            request, who, "overdue.html", q=q, fields=OVERDUE_FIELDS, headers=labels.headers(OVERDUE_FIELDS, who.lang),
            rows=[labels.localise(_plain(row), who.lang) for row in rows],
        )  # fmt: skip

    # ---- the JSON API: the documents `--format json` prints ------------------------------------
    @app.get("/api/v1/assess")
    def api_assess(
        request: Request, period: str | None = None, level: str = "township", as_of: str | None = None,
        who: Who = needs("assess run"),
    ) -> Response:  # fmt: skip
        """`assess run --period P --level L [--as-of T] --format json` (default rubric)."""
        try:
            return _json(assessment(door, who, request.query_params))
        except Exception as e:
            return problem(who, e)

    @app.get("/api/v1/assess/explain")
    def api_explain(
        request: Request, unit: str | None = None, metric: str | None = None, period: str | None = None, as_of: str | None = None,
        who: Who = needs("assess explain", _unit_param),
    ) -> Response:  # fmt: skip
        """`assess explain --period P --unit U --metric M [--as-of T] --format json`."""
        try:
            return _json(explanation(door, who, request.query_params))
        except Exception as e:
            return problem(who, e)

    @app.get("/api/v1/visits/overdue")
    def api_overdue(
        request: Request, community: str | None = None, township: str | None = None, county: str | None = None,
        as_of: str | None = None, who: Who = needs("visits overdue", _units_or_scope),
    ) -> Response:  # fmt: skip
        """`visits overdue [--community C | --township T | --county C] [--as-of T] --format json` (none: the scope)."""
        try:
            return _json(overdue(door, who, request.query_params))
        except Exception as e:
            return problem(who, e)
