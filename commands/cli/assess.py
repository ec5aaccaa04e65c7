"""`taizhang assess run|explain`, `taizhang visits overdue`, `taizhang audit responsibility`."""

from __future__ import annotations

from pathlib import Path

import click

from commands import files, i18n, labels
from commands.accountability import period_arg, unit_arg
from commands.assess import (
    RubricError,
    default_rubric,
    html_page,
    load_rubric,
    metrics_of,
    now_utc,
    ranking_rows,
    write_xlsx,
)
from commands.assess_reads import (
    ALL_METRIC_NAMES,
    OVERDUE_FIELDS,
    as_of_day,
    assessment_document,
    explain_document,
    explain_measure,
    moment_of,
    overdue_rows,
)
from commands.cli.ledger import _check_output, prepared_views, unit_options
from commands.context import WAIT, Env, MalformedInput, Refused, format_option, pass_env
from commands.output import emit, render_json

AS_OF_HELP = "Compute from what had been recorded at that moment, in the store's time zone (a date means the end of that local day)."
WAIT_HELP = "PostgreSQL: first wait up to SECONDS for the projections to reach the log's head."


@click.group("assess")
def assess() -> None:
    """Accountability assessment (考核) of townships or counties, scored from the evidence."""


@assess.command("run")
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY.")
@click.option(
    "--level", required=True, type=click.Choice(["township", "county"]), help="Score every unit of this level."
)
@click.option(
    "--as-of", "as_of", metavar="DATETIME", help=AS_OF_HELP + " The output is then the same whenever it is run."
)
@click.option(
    "--rubric",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="A TOML rubric, or v1 / v2 (the shipped ones). Default: the shipped one in force at the moment assessed (v2 from 2026-12-01, v1 before).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "xlsx", "html"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write to FILE (a new file, mode 0600; required for xlsx and html).",
)
@click.option("--force", is_flag=True, help=files.FORCE_HELP)
@click.option("--wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
@pass_env
def assess_run(
    env: Env,
    period: str,
    level: str,
    as_of: str | None,
    rubric: Path | None,
    fmt: str,
    output: Path | None,
    force: bool,
    wait: float | None,
) -> None:
    """Score each township or county for a period, with a rank and every metric behind the score.

    table, html and xlsx list the units best first by their names (八步区贺街镇),
    scores with one decimal and metrics as percentages (49.2%), headers in the
    language of --lang; json and csv keep the exact numbers and the unit ids.

    \b
    Example:
      taizhang assess run --period 2026-Q1 --level township
      taizhang assess run --period 2026-Q1 --level county --as-of 2026-04-10 --format json
      taizhang --lang zh assess run --period 2026-03 --level township --format html --output 考核.html
    """
    span = period_arg(period)
    moment = moment_of(env, as_of)
    try:
        chosen = load_rubric(rubric) if rubric is not None else default_rubric(moment.as_of, now_utc())
    except RubricError as e:
        raise MalformedInput(str(e)) from None
    if fmt in ("xlsx", "html") and output is None:
        raise MalformedInput(f"--output: required with --format {fmt}")
    _check_output("json", output, force)
    document = assessment_document(env, span, level, moment, chosen, wait)
    if fmt == "json":
        _write(output, force, render_json(document) + "\n")
    elif fmt == "html":
        assert output is not None
        _write(output, force, html_page(document, env.lang))
        click.echo(f"wrote {output}", err=True)
    elif fmt == "xlsx":
        assert output is not None
        with files.output_file(output, "--output", force=force) as f:
            write_xlsx(f, document, env.lang)
        click.echo(f"wrote {output}", err=True)
    else:
        metric_names = metrics_of(document)  # v1's six, then fund_execution when the rubric weighs it
        fields = ["rank", "unit", "score", *metric_names]
        if fmt == "table":  # by rank, units by name, one decimal, percentages (json and csv stay exact)
            rows = ranking_rows(document)
        else:
            rows = [
                {
                    "rank": u["rank"],
                    "unit": u["unit"],
                    "score": u["score"],
                    **{m: (u["metrics"].get(m) or {}).get("value") for m in metric_names},
                }
                for u in document["units"]
            ]
        if output is not None:
            with files.output_text(output, "--output", force=force) as text:
                emit(rows, fields, fmt, labels.headers(fields, env.lang), file=text)
        else:
            emit(rows, fields, fmt, labels.headers(fields, env.lang))


def _write(output: Path | None, force: bool, content: str) -> None:
    if output is None:
        click.echo(content, nl=False)
    else:
        with files.output_text(output, "--output", force=force) as text:
            text.write(content)


@assess.command("explain")
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY.")
@click.option("--unit", required=True, help="township:COUNTY/NAME or county:NAME (or community:CODE).")
@click.option("--metric", required=True, type=click.Choice(list(ALL_METRIC_NAMES)), help="The metric to explain.")
@click.option("--as-of", "as_of", metavar="DATETIME", help=AS_OF_HELP)
@format_option()
@click.option("--wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
@pass_env
def assess_explain(
    env: Env, period: str, unit: str, metric: str, as_of: str | None, fmt: str, wait: float | None
) -> None:
    """List the evidence behind one metric of one unit: what was counted and what was not.

    \b
    Example:
      taizhang assess explain --period 2026-Q1 --unit township:八步区/贺街镇 --metric coverage
    """
    span, ref = period_arg(period), unit_arg(unit)
    moment = moment_of(env, as_of)
    measure_ = explain_measure(env, span, ref, metric, moment, wait)
    if fmt == "json":
        click.echo(render_json(explain_document(env, span, ref, metric, moment, measure_)))
        return
    fields = list(measure_.evidence[0]) if measure_.evidence else ["counted"]
    if fmt == "table":
        value = "—" if measure_.value is None else f"{measure_.value:.4f}"
        line = f"{metric} of {ref} in {span.text}: {value} ({measure_.numerator:g} / {measure_.denominator:g})"
        click.echo(i18n.translate(line, env.lang))
    emit(measure_.evidence, fields, fmt, labels.headers(fields, env.lang))


@click.group("visits")
def visits() -> None:
    """Key visits (重点巡访) as planned and as delivered."""


@visits.command("overdue")
@unit_options
@click.option("--as-of", "as_of", metavar="DATETIME", help="Judge on that day, from what had been recorded then.")
@format_option()
@click.option("--wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
@pass_env
def visits_overdue(
    env: Env,
    community: str | None,
    township: str | None,
    county: str | None,
    as_of: str | None,
    fmt: str,
    wait: float | None,
) -> None:
    """List residents whose visit plan is in force and whose last visit is more than `every` days ago.

    \b
    Example:
      taizhang visits overdue --township 八步区/贺街镇
    """
    rows = overdue_rows(env, community, township, county, as_of, wait)
    emit(rows, OVERDUE_FIELDS, fmt, labels.headers(OVERDUE_FIELDS, env.lang))


RESPONSIBILITY_FIELDS = ["obligation", "subject", "detail", "status", "evidence"]


@click.group("audit")
def audit() -> None:
    """Audits: who answered for what (and, later, the history and its proofs)."""


@audit.command("responsibility")
@click.option("--unit", required=True, help="county:NAME, township:COUNTY/NAME or community:CODE.")
@click.option("--period", required=True, help="YYYY-MM, YYYY-Qn or YYYY.")
@click.option("--as-of", "as_of", metavar="DATETIME", help=AS_OF_HELP)
@format_option()
@click.option("--wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
@pass_env
def audit_responsibility(env: Env, unit: str, period: str, as_of: str | None, fmt: str, wait: float | None) -> None:
    """List every obligation of a unit for a period, with its status and the evidence.

    Duties, debriefings, visit plans, pairings, targets and supervision items, each
    met, missed, open or overdue.

    \b
    Example:
      taizhang audit responsibility --unit township:八步区/贺街镇 --period 2026-Q1
    """
    from projections.assessment import units_of
    from projections.responsibility import obligations

    span, ref = period_arg(period), unit_arg(unit)
    moment = moment_of(env, as_of)
    views = prepared_views(env, wait)
    with views.read() as conn:
        if ref not in units_of(conn, ref.level, moment):
            raise Refused(f"no {ref.level} {str(ref).split(':', 1)[1]} in the ledger")
        rows = obligations(conn, ref, span, moment, as_of_day(env, moment), env.zone())
    emit(rows, RESPONSIBILITY_FIELDS, fmt, labels.headers(RESPONSIBILITY_FIELDS, env.lang))


def register(group: click.Group) -> None:
    for command in (assess, visits, audit):
        group.add_command(command)
