"""`taizhang funds cost`: money spent per service record and per resident served. Attached to the `funds` group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from commands.cli.funds import funds
from commands.cli.funds_reads import AS_OF_HELP, UNIT_HELP, WAIT_HELP, print_rows
from commands.cli.ledger import _check_output, output_options
from commands.context import WAIT, Env, pass_env
from commands.output import say

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
@click.option("--unit", metavar="UNIT", help=UNIT_HELP)
@click.option("--period", metavar="PERIOD", required=True, help="Spending dated in this month, quarter or year.")
@click.option("--as-of", "as_of", metavar="DT", help=AS_OF_HELP)
@click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
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
    from commands import funds_reads as r
    from commands.views import prepared_views

    ask = r.parse_ask(env, unit=unit, period=period, as_of=as_of)
    _check_output(fmt, output, force)
    views = prepared_views(env, wait)
    with views.read() as conn:
        filters = r.prepared(ask, conn)
        assert filters.first is not None and filters.last is not None  # --period is required
        rows = cost.cost(conn, cost.CostFilters(by, filters.first, filters.last, filters.unit, filters.position))
        unit_words = None
        if fmt == "xlsx" and filters.unit is not None:
            from projections.funds_queries import directory

            unit_words = directory(conn, filters.position).name(filters.unit)
    lang = 1 if env.lang == "zh" else 0
    headers = [HEADERS[f][lang] for f in SHOWN]
    if fmt == "xlsx":
        assert output is not None
        _sheet(env, rows, headers, output, force, unit_words, ask)
        return
    if fmt in ("json", "csv"):
        print_rows(env, rows, cost.FIELDS, fmt, output, force)
        return
    print_rows(env, [shown(row) for row in rows], SHOWN, fmt, output, force, headers=headers)


def _sheet(
    env: Env,
    rows: list[dict[str, Any]],
    headers: list[str],
    output: Path,
    force: bool,
    unit_words: str | None,
    ask: Any,
) -> None:
    """The printable sheet (commands.export, kind `cost`): yuan as numbers, – where nothing was linked."""
    from decimal import Decimal

    from commands import files, labels
    from commands.export import write_xlsx
    from commands.funds_cost import MONEY
    from commands.funds_reads import heading
    from commands.money import capitals

    cells = []
    for row in rows:
        cell = dict(row)
        for field in MONEY:
            cell[field] = NONE if cell[field] is None else Decimal(cell[field]) / 100
        cells.append(cell)
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
