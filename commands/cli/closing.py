"""`taizhang ledger close|reopen`: closed periods (结账 / 反结账). Attached to the `ledger` group."""

from __future__ import annotations

from datetime import date

import click

from commands.cli.ledger import ledger
from commands.context import Env, pass_env, write_format_option
from commands.output import emit_write
from commands.progress import Progress

UNIT_HELP = "county:NAME, township:COUNTY/NAME or community:CODE."
PERIOD_HELP = "YYYY-MM, YYYY-Qn or YYYY."


@ledger.command("close")
@click.option("--unit", required=True, help=UNIT_HELP)
@click.option("--period", required=True, help=PERIOD_HELP)
@click.option("--reason", required=True, help="Why the period is closed, e.g. 三月台账结账.")
@write_format_option
@pass_env
def close(env: Env, unit: str, period: str, reason: str, fmt: str) -> None:
    """Close a period (结账): nothing dated inside it can change until it is reopened.

    After the close no service dated in the period can be recorded (one by one or
    imported), corrected — neither from nor into the period — or voided, and no
    departure, retirement, visit plan or pairing dated in it can be recorded, in any
    community of the unit. Such a command is refused (exit 1) with the closure: unit,
    period, who closed it and when.

    The close covers the communities of the unit known to the store now: a community
    established later inside the township or county is not covered (close its period
    with --unit community:CODE). Closures are independent: a month may be closed
    inside a closed quarter, a community inside a closed township; a day stays
    closed while any closure covers it, and each is reopened by its own unit and
    period. Enrolments and registrations are not refused: their dates only say from
    when a person may be served. The close is an event in every community's history.

    Communities are closed one at a time, each in its own short transaction, so the
    close completes while clerks keep recording: each of their writes lands before its
    community's closure or is refused. A close that stopped half-way (the store stayed
    busy, the command was interrupted) is finished by running it again.

    \b
    Example:
      taizhang --actor sup01 ledger close --unit township:八步区/贺街镇 --period 2026-03 --reason 三月台账结账
      taizhang --actor sup01 ledger close --unit county:八步区 --period 2026-Q1 --reason 一季度结账
    """
    from commands import models
    from commands.accountability import period_arg, text_arg, unit_arg
    from commands.closing import close_period

    actor = env.writer()
    ref, span = unit_arg(unit), period_arg(period)
    why = text_arg(reason, "--reason")
    if span.first > date.fromisoformat(env.today()):
        raise models.Malformed("--period", f"{span.text} has not begun; only a period that has begun can be closed")
    with Progress("closing", 0) as bar:
        result = close_period(env.service(), ref, span, why, actor, lambda done, total: bar.set(done, total))
    count = len(result["communities"])
    line = f"closed {result['unit']} {result['period']} in {count} communit{'y' if count == 1 else 'ies'}"
    if result["closed_before"]:
        line += f" ({len(result['closed_before'])} of them by an earlier run of this close)"
    emit_write(result, fmt, line)


@ledger.command("reopen")
@click.option("--unit", required=True, help=UNIT_HELP + " The unit the period was closed for.")
@click.option("--period", required=True, help=PERIOD_HELP + " The period as it was closed.")
@click.option("--reason", required=True, help="Why the period is reopened, e.g. 补录漏登记录.")
@write_format_option
@pass_env
def reopen(env: Env, unit: str, period: str, reason: str, fmt: str) -> None:
    """Reopen a closed period (反结账) so its records can be changed again.

    Reopens the closure made with the same --unit and --period, in every community
    that carries it; refused (exit 1) when there is none. Other closures covering
    the same days (a closed quarter around the month, a closed township around the
    community) stay in force and are named in a note. The reopening is an event in
    every community's history, with its reason.

    \b
    Example:
      taizhang --actor sup01 ledger reopen --unit township:八步区/贺街镇 --period 2026-03 --reason 补录漏登记录
    """
    from commands.accountability import period_arg, text_arg, unit_arg
    from commands.closing import reopen_period

    actor = env.writer()
    ref, span = unit_arg(unit), period_arg(period)
    why = text_arg(reason, "--reason")
    result = reopen_period(env.service(), ref, span, why, actor)
    if result["still_closed"]:
        env.warn(f"days of {span.text} stay closed by: {', '.join(result['still_closed'])}")
    count = len(result["communities"])
    emit_write(result, fmt, f"reopened {result['unit']} {result['period']} in {count} communit{'y' if count == 1 else 'ies'}")

