"""`taizhang funds cost`: money spent per service record and per resident served. Attached to the `funds` group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from commands.cli.funds import funds
from commands.cli.ledger import _check_output, output_options
from commands.context import WAIT, Env, MalformedInput, Refused, pass_env
from commands.output import emit, say
from domain.units import parse_period, parse_unit

HEADERS: dict[str, tuple[str, str]] = {
    "unit": ("unit", "单位"),
    "unit_name": ("unit", "单位"),
    "spent": ("spent (yuan)", "支出（元）"),
    "linked_spent": ("linked to services", "关联服务的支出"),
    "spends": ("spends linked", "关联支出笔数"),
    "records": ("records", "服务记录"),
    "residents": ("residents served", "服务对象人数"),
    "per_record": ("per record", "每条记录"),
    "per_resident": ("per resident", "每位服务对象"),
}
SHOWN = ["unit_name", "spent", "linked_spent", "spends", "records", "residents", "per_record", "per_resident"]
NONE = "–"


@funds.command("cost")
@click.option(
    "--by",
    "by",
    type=click.Choice(["township", "county", "community"]),
    required=True,
    help="One row per township, county or community.",
)
@click.option(
    "--unit",
    metavar="UNIT",
    help="Only the units inside this one (or it): county:NAME, township:COUNTY/NAME or community:CODE.",
)
@click.option("--period", metavar="PERIOD", required=True, help="Spending dated in this month, quarter or year.")
@click.option(
    "--as-of",
    "as_of",
    metavar="DT",
    help="As recorded at that moment (a date means the end of that local day).",
)
@click.option(
    "--wait",
    "wait",
    type=WAIT,
    default=None,
    metavar="SECONDS",
    help="PostgreSQL: first wait up to SECONDS for the projections to reach the log's head.",
)
@output_options
@pass_env
def funds_cost(
    env: Env,
    by: str,
    unit: str | None,
    period: str,
    as_of: str | None,
    wait: float | None,
    fmt: str,
    output: Path | None,
    force: bool,
) -> None:
    """The cost of care: money spent per service record and per resident served, by unit.

    For each unit and the period: the money its communities spent (net of reversals: a
    reversed spend counts nothing), the part paid by spends linked to service records,
    how many records those spends paid for and how many residents those records served,
    and the cost per record and per resident. Units with nothing linked show –. json and
    csv keep amounts in fen; table and xlsx show yuan.

    --format xlsx writes the sheet to print and sign: a title naming the unit and the
    period, A4 landscape, the header repeated on every page, 合计 (the cost per record
    and per resident of the totals, not their sum) with the money also in Chinese
    capitals, and signature lines.

    \b
    Example:
      taizhang funds cost --by township --period 2026-Q1
      taizhang funds cost --by community --unit township:八步区/贺街镇 --period 2026-03 --format json
      taizhang --lang zh funds cost --by community --period 2026 --format xlsx --output 服务成本.xlsx
    """
    from commands import funds_cost as cost
    from commands.ledger_reads import parse_as_of
    from commands.views import prepared_views

    ref = None
    if unit is not None:
        try:
            ref = parse_unit(unit)
        except ValueError as e:
            raise MalformedInput(f"--unit: {e}") from None
    try:
        span = parse_period(period)
    except ValueError as e:
        raise MalformedInput(f"--period: {e}") from None
    moment = parse_as_of(env, as_of) if as_of is not None else None
    _check_output(fmt, output, force)
    views = prepared_views(env, wait)
    with views.read() as conn:
        position = _position_at(conn, moment) if moment is not None else None
        if ref is not None:
            try:
                ref = cost.locate(conn, ref, position)
            except cost.UnknownCommunity as e:
                raise Refused(str(e)) from None
        rows = cost.cost(conn, cost.CostFilters(by, span.first, span.last, ref, position))
        unit_words = None
        if fmt == "xlsx" and ref is not None:
            from projections.funds_queries import directory

            unit_words = directory(conn, position).name(ref)
    lang = 1 if env.lang == "zh" else 0
    headers = [HEADERS[f][lang] for f in SHOWN]
    if fmt == "xlsx":
        assert output is not None
        _sheet(env, rows, headers, output, force, unit_words, span, moment)
        return
    fields, shown_rows = (cost.FIELDS, rows) if fmt in ("json", "csv") else (SHOWN, [shown(row) for row in rows])
    heads = None if fmt in ("json", "csv") else headers
    if output is not None:
        from commands import files

        with files.output_text(output, "--output", force=force) as text:
            emit(shown_rows, fields, fmt, heads, file=text)
        return
    emit(shown_rows, fields, fmt, heads)


def _sheet(
    env: Env,
    rows: list[dict[str, Any]],
    headers: list[str],
    output: Path,
    force: bool,
    unit_words: str | None,
    span: Any,
    moment: str | None,
) -> None:
    """The printable sheet (commands.export, kind `cost`): yuan as numbers, – where nothing was linked."""
    from decimal import Decimal

    from commands import files, labels
    from commands.export import write_xlsx
    from commands.funds_cost import MONEY
    from commands.funds_reads import Ask, heading
    from commands.money import capitals
    from projections.funds_queries import FundsFilters

    cells = []
    for row in rows:
        cell = dict(row)
        for field in MONEY:
            cell[field] = NONE if cell[field] is None else Decimal(cell[field]) / 100
        cells.append(cell)
    ask = Ask(FundsFilters(None, span.first, span.last, None), moment)
    words = unit_words if unit_words is not None else labels.words("all_units", env.lang)
    lang = 1 if env.lang == "zh" else 0
    notes = [
        ("；" if env.lang == "zh" else "; ").join(
            labels.words("in_capitals", env.lang, what=what, words=capitals(sum(r[field] for r in rows)))
            for field, what in (
                ("spent", labels.header("spent", env.lang)),
                ("linked_spent", HEADERS["linked_spent"][lang]),
            )
        )
    ]
    with files.output_file(output, "--output", force=force) as f:
        write_xlsx(
            f,
            cells,
            SHOWN,
            env.lang,
            heading=heading(env, "cost", words, ask),
            kind="cost",
            zone=env.zone().key,
            notes=notes,
            headers=headers,
        )
    click.echo(say(f"wrote {len(rows)} row(s) to {output}"), err=True)


def shown(row: dict[str, Any]) -> dict[str, Any]:
    """A row for a person: yuan with two decimals, – where nothing was linked."""
    from commands.funds_cost import MONEY
    from commands.money import yuan

    out = dict(row)
    for field in MONEY:
        out[field] = NONE if out[field] is None else yuan(out[field])
    return out


def _position_at(conn: Any, moment: str) -> int:
    """The last log position recorded at or before `moment` (fixed-width UTC text)."""
    from sqlalchemy import text

    postgres = getattr(getattr(conn, "dialect", None), "name", "sqlite") == "postgresql"
    bound = "CAST(:m AS timestamptz)" if postgres else ":m"
    row = conn.execute(
        text(f"SELECT max(last_position) FROM taizhang_commits WHERE recorded_at <= {bound}"), {"m": moment}
    ).first()
    return int(row[0]) if row and row[0] is not None else 0
