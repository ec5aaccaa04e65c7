"""`taizhang funds ledger|trace`: reading the funding ledger. Attached to the `funds` group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from commands import labels
from commands.cli.funds import funds
from commands.cli.ledger import _check_output, output_options
from commands.context import WAIT, Env, pass_env
from commands.output import say

UNIT_HELP = "Only this unit and the units inside it: county:NAME, township:COUNTY/NAME or community:CODE."
AS_OF_HELP = (
    "The ledger as recorded at that moment, e.g. a recorded_at as printed (a date means the end of that "
    "local day); later entries are not applied."
)
WAIT_HELP = "PostgreSQL: first wait up to SECONDS for the projections to reach the log's head."


@funds.command("ledger")
@click.option(
    "--by",
    "by",
    type=click.Choice(["department", "unit", "line"]),
    required=True,
    help="One row per department, per unit or per funding line.",
)
@click.option("--unit", metavar="UNIT", help=UNIT_HELP)
@click.option(
    "--period",
    metavar="PERIOD",
    help="Flows dated inside this month, quarter or year (2026-11, 2026-Q4, 2026); the balance at its last day.",
)
@click.option("--as-of", "as_of", metavar="DT", help=AS_OF_HELP)
@click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
@output_options
@pass_env
def ledger(
    env: Env,
    by: str,
    unit: str | None,
    period: str | None,
    as_of: str | None,
    wait: float | None,
    fmt: str,
    output: Path | None,
    force: bool,
) -> None:
    """Allocated, received, passed down, spent, reversed, returned, balance and execution rate (执行率).

    Per unit: each unit's own flows (every county, township and community in scope
    appears, zeros included); its balance = allocated + received + reversed − passed
    down − spent − returned. Per department or line: the sums over the units in scope.
    The execution rate is net spent (spent − reversed) by the communities inside
    ÷ the money that entered from outside, both up to the period's end; – when
    nothing entered. json and csv give amounts in fen (whole numbers) and the
    rate as a fraction (null when nothing entered); table and xlsx in yuan.

    --format xlsx writes the 资金台账 to print and sign: a title naming the unit
    and the period, A4 landscape, the header repeated on every page, 合计 with the
    totals also in Chinese capitals (人民币…), and signature lines.

    \b
    Example:
      taizhang funds ledger --by unit --period 2026
      taizhang funds ledger --by line --unit township:八步区/贺街镇 --format json
      taizhang --lang zh funds ledger --by department --period 2026 --format xlsx --output 资金台账.xlsx
    """
    from commands import funds_reads as r

    ask = r.parse_ask(env, unit=unit, period=period, as_of=as_of)
    _check_output(fmt, output, force)
    rows, unit_words = r.ledger_rows(env, ask, by=by, wait=wait)
    if fmt in ("json", "csv"):
        print_rows(env, rows, r.LEDGER_FIELDS[by], fmt, output, force)
        return
    fields = r.SHOWN_FIELDS[by]
    if fmt == "table":
        print_rows(env, r.shown_rows(rows, env.lang), fields, fmt, output, force)
        return
    from commands import files
    from commands.export import write_xlsx

    assert output is not None
    heading = r.heading(env, "funds", unit_words, ask)
    with files.output_file(output, "--output", force=force) as f:
        write_xlsx(
            f,
            r.shown_rows(rows, env.lang, cells=True),
            fields,
            env.lang,
            heading=heading,
            kind="funds",
            zone=env.zone().key,
            notes=[r.total_words(rows, env.lang)],
        )
    click.echo(say(f"wrote {len(rows)} row(s) to {output}"), err=True)


@funds.command("trace")
@click.argument("line", metavar="LINE")
@click.option("--unit", metavar="UNIT", help=UNIT_HELP)
@click.option("--as-of", "as_of", metavar="DT", help=AS_OF_HELP)
@click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help=WAIT_HELP)
@output_options
@pass_env
def trace(
    env: Env,
    line: str,
    unit: str | None,
    as_of: str | None,
    wait: float | None,
    fmt: str,
    output: Path | None,
    force: bool,
) -> None:
    """Follow one funding line from the department to every voucher that spent it.

    LINE is the line's id or DEPARTMENT/文号. Each unit the money reached is shown
    under the unit that passed it the money, with its transfers, its spends (voucher,
    amount, date, purpose, linked service records; reversed ones marked), the
    red-letter reversals and the returns, then its balance. With --unit, only that
    unit and the units inside it. json gives amounts in fen.

    csv gives one row per movement, the units in the tree's order (unit, depth and the
    unit above, kind, entry id, voucher, date, amount in fen, counterpart, purpose,
    linked records, reversed on). --format xlsx writes it to print and sign: the line's
    department, 文号, purpose and amount in the title, its amount in Chinese capitals,
    A4 landscape, and signature lines.

    \b
    Example:
      taizhang funds trace 民政局/贺民发〔2026〕12号
      taizhang funds trace 民政局/贺民发〔2026〕12号 --unit community:HZ-P01 --format json
      taizhang --lang zh funds trace 民政局/贺民发〔2026〕12号 --format xlsx --output 资金流向.xlsx
    """
    from commands import funds_reads as r
    from commands.output import emit, render_json

    ask = r.parse_ask(env, unit=unit, period=None, as_of=as_of)
    _check_output(fmt, output, force)
    document = r.trace_document(env, line, ask, wait=wait)
    if fmt == "json":
        if output is not None:
            from commands import files

            with files.output_text(output, "--output", force=force) as text:
                text.write(render_json(document) + "\n")
            return
        click.echo(render_json(document))
        return
    if fmt == "csv":
        print_rows(env, r.trace_flat(document), r.TRACE_FLAT_FIELDS, fmt, output, force)
        return
    if fmt == "xlsx":
        assert output is not None
        _trace_sheet(env, document, ask, output, force)
        return
    title = f"{document['department']} {document['document']} — {document['purpose']}"
    rows = r.shown_rows(r.trace_rows(document), env.lang)
    if output is not None:
        from commands import files

        with files.output_text(output, "--output", force=force) as text:
            text.write(title + "\n")
            emit(rows, r.TRACE_FIELDS, "table", labels.headers(r.TRACE_FIELDS, env.lang), file=text)
        return
    click.echo(title)
    emit(rows, r.TRACE_FIELDS, "table", labels.headers(r.TRACE_FIELDS, env.lang))


def _trace_sheet(env: Env, document: dict[str, Any], ask: Any, output: Path, force: bool) -> None:
    """The printed trace (commands.export, kind `trace`): the line in the title, its amount in capitals."""
    from commands import files
    from commands import funds_reads as r
    from commands.export import Heading, write_xlsx
    from commands.money import capitals, yuan

    lang = env.lang
    title = labels.words(
        "trace_title",
        lang,
        department=document["department"],
        document=document["document"],
        purpose=document["purpose"] or "",
        amount=yuan(int(document["amount"])),
        what=labels.words("trace", lang),
    )
    subtitle = r.heading(env, "trace", "", ask).subtitle
    rows = r.trace_sheet_rows(document)
    for row in rows:
        row["movement"] = labels.movement(row["movement"], lang)
    with files.output_file(output, "--output", force=force) as f:
        write_xlsx(
            f,
            rows,
            r.TRACE_SHEET_FIELDS,
            lang,
            heading=Heading(title, subtitle),
            kind="trace",
            zone=env.zone().key,
            notes=[labels.words("line_in_capitals", lang, words=capitals(int(document["amount"])))],
        )
    click.echo(say(f"wrote {len(rows)} row(s) to {output}"), err=True)


def print_rows(
    env: Env,
    rows: list[dict[str, Any]],
    fields: list[str],
    fmt: str,
    output: Path | None,
    force: bool,
    headers: list[str] | None = None,
) -> None:
    """Rows as table, json or csv, to the terminal or to --output (headers: the labels of `fields`)."""
    from commands.output import emit_to

    emit_to(rows, fields, fmt, labels.headers(fields, env.lang) if headers is None else headers, output, force)
