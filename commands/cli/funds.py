"""`taizhang funds …`: the funding ledger (资金台账), from the granting department to the voucher.

The writes (allocate, transfer, spend, reverse, return) are defined here; the reads (ledger,
trace, cost) in commands.cli.funds_reads, attached to this group.
"""

from __future__ import annotations

from datetime import date

import click

from commands import models
from commands.context import Env, pass_env, write_format_option
from commands.funds import (
    Funds,
    LineRef,
    community_arg,
    day_arg,
    department_arg,
    parse_yuan,
    record_arg,
    text_arg,
    unit_arg,
)
from commands.output import emit_write
from domain.funds import yuan

UNIT_HELP = "county:NAME, township:COUNTY/NAME or community:CODE."
AMOUNT_HELP = "Amount in yuan, exact to the fen: 12000, 12,000.00 or 1.2万."
ON_HELP = "The date of the entry (default: today); never in the future."
LINE_HELP = "The funding line's id (or name it by --department and --document)."
DEPARTMENT_HELP = "The line's department (资金来源), e.g. 民政局; the list is commands/departments.toml."
DOCUMENT_HELP = "The line's document number (文号), e.g. 贺民发〔2026〕12号."


@click.group("funds")
def funds() -> None:
    """The funding ledger (资金台账): money from each department to the voucher that spent it.

    Amounts are in yuan with up to two decimals (12,000.00 or 1.2万) and are kept exactly, in fen.
    """


def _on(env: Env, value: str | None, option: str = "--on") -> date:
    today = date.fromisoformat(env.today())
    if value is None:
        return today
    day = day_arg(value, option)
    if day > today:
        raise models.Malformed(option, f"{day.isoformat()} is in the future")
    return day


def _line_options(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        [
            click.option("--line", "line", metavar="ID", help=LINE_HELP),
            click.option("--department", help=DEPARTMENT_HELP),
            click.option("--document", help=DOCUMENT_HELP),
        ]
    ):
        func = option(func)
    return func


@funds.command("allocate")
@click.option("--department", required=True, help=DEPARTMENT_HELP)
@click.option("--document", required=True, help=DOCUMENT_HELP)
@click.option("--purpose", required=True, help="What the money is for (用途).")
@click.option("--amount", required=True, metavar="YUAN", help=AMOUNT_HELP)
@click.option("--unit", required=True, help="The unit the money is granted to: " + UNIT_HELP)
@click.option("--on", "on", metavar="DATE", help=ON_HELP)
@write_format_option
@pass_env
def allocate(
    env: Env, department: str, document: str, purpose: str, amount: str, unit: str, on: str | None, fmt: str
) -> None:
    """Allocate (下达) a department's money to a unit under a document number.

    The same department and document number name one line: allocating it again is refused.

    \b
    Example:
      taizhang --actor sup01 funds allocate --department 民政局 --document '贺民发〔2026〕12号' \\
        --purpose 幸福院运营补助 --amount 1.2万 --unit county:八步区 --on 2026-01-15
    """
    actor = env.writer()
    dept, doc = department_arg(department), text_arg(document, "--document")
    what, fen, ref = text_arg(purpose, "--purpose"), parse_yuan(amount), unit_arg(unit)
    day = _on(env, on)
    result = Funds(env.service()).allocate(
        department=dept, document=doc, purpose=what, amount=fen, unit=ref, on=day, actor=actor
    )
    emit_write(result, fmt, f"allocated {yuan(fen)} yuan of line {dept} {doc} to {result['unit']} on {day}")


@funds.command("transfer")
@_line_options
@click.option(
    "--from", "from_unit", required=True, metavar="UNIT", help="The unit passing the money down: " + UNIT_HELP
)
@click.option("--to", "to_unit", required=True, metavar="UNIT", help="The unit inside it that receives the money.")
@click.option("--amount", required=True, metavar="YUAN", help=AMOUNT_HELP)
@click.option("--on", "on", metavar="DATE", help=ON_HELP)
@click.option("--note", help="A note on the transfer (e.g. the 拨付 document).")
@write_format_option
@pass_env
def transfer(
    env: Env,
    line: str | None,
    department: str | None,
    document: str | None,
    from_unit: str,
    to_unit: str,
    amount: str,
    on: str | None,
    note: str | None,
    fmt: str,
) -> None:
    """Transfer (拨付) money of a line down from a unit to a unit inside it; never up or sideways.

    \b
    Example:
      taizhang --actor sup01 funds transfer --department 民政局 --document '贺民发〔2026〕12号' \\
        --from county:八步区 --to township:八步区/贺街镇 --amount 6,000.00 --on 2026-02-01
    """
    actor = env.writer()
    ref = LineRef.of(line, department, document)
    source, target = unit_arg(from_unit, "--from"), unit_arg(to_unit, "--to")
    fen, day = parse_yuan(amount), _on(env, on)
    text = None if note is None else text_arg(note, "--note")
    result = Funds(env.service()).transfer(
        line=ref, from_unit=source, to_unit=target, amount=fen, on=day, note=text, actor=actor
    )
    emit_write(result, fmt, f"transferred {yuan(fen)} yuan from {result['from']} to {result['to']} on {day}")


@funds.command("spend")
@click.argument("community")
@_line_options
@click.option("--amount", required=True, metavar="YUAN", help=AMOUNT_HELP)
@click.option("--voucher", required=True, help="The voucher number (凭证号), unique in the community's year.")
@click.option("--purpose", required=True, help="What was paid for (摘要).")
@click.option("--payee", help="Who was paid (收款人); a person's name is stored encrypted.")
@click.option(
    "--record",
    "records",
    multiple=True,
    metavar="RECORD_ID",
    help="A service record the money paid for (a current record of this community); repeat for several.",
)
@click.option("--project", help="The project the money paid for.")
@click.option("--home", help="The happiness home (幸福院) the money paid for.")
@click.option("--on", "on", metavar="DATE", help=ON_HELP)
@write_format_option
@pass_env
def spend(
    env: Env,
    community: str,
    line: str | None,
    department: str | None,
    document: str | None,
    amount: str,
    voucher: str,
    purpose: str,
    payee: str | None,
    records: tuple[str, ...],
    project: str | None,
    home: str | None,
    on: str | None,
    fmt: str,
) -> None:
    """Spend (支出) money of a line in a community, under a voucher number.

    \b
    Example:
      taizhang --actor clerk01 funds spend HZ-001 --department 民政局 --document '贺民发〔2026〕12号' \\
        --amount 350 --voucher 记-2026-031 --purpose 送餐服务 --payee 张秀英 --on 2026-03-05
    """
    actor = env.writer()
    code = community_arg(community)
    ref = LineRef.of(line, department, document)
    fen, day = parse_yuan(amount), _on(env, on)
    number, what = text_arg(voucher, "--voucher", models.MAX_CODE), text_arg(purpose, "--purpose")
    result = Funds(env.service()).spend(
        line=ref,
        community=code,
        amount=fen,
        on=day,
        purpose=what,
        voucher=number,
        payee=None if payee is None else text_arg(payee, "--payee", models.MAX_CODE),
        records=[record_arg(r) for r in records],
        project=None if project is None else text_arg(project, "--project"),
        home=None if home is None else text_arg(home, "--home"),
        actor=actor,
    )
    emit_write(result, fmt, f"spent {yuan(fen)} yuan in community {code} on {day}, voucher {number}")


@funds.command("reverse")
@click.argument("community")
@click.argument("voucher")
@click.option("--reason", required=True, help="Why the spend is cancelled (红字冲销).")
@click.option(
    "--year", type=click.IntRange(1900, 2999), metavar="YYYY", help="The voucher's year (default: the year of --on)."
)
@click.option("--on", "on", metavar="DATE", help="The date of the reversal (default: today); on or after the spend.")
@write_format_option
@pass_env
def reverse(env: Env, community: str, voucher: str, reason: str, year: int | None, on: str | None, fmt: str) -> None:
    """Reverse (红字冲销) the spend of a voucher in full; the spend is never edited and its number stays used.

    \b
    Example:
      taizhang --actor clerk01 funds reverse HZ-001 记-2026-031 --reason 重复报销 --on 2026-03-20
    """
    actor = env.writer()
    code = community_arg(community)
    number, why = text_arg(voucher, "VOUCHER", models.MAX_CODE), text_arg(reason, "--reason")
    day = _on(env, on)
    result = Funds(env.service()).reverse(
        community=code, voucher=number, year=year or day.year, on=day, reason=why, actor=actor
    )
    emit_write(result, fmt, f"reversed the spend of voucher {number} in community {code} on {day}")


@funds.command("return")
@_line_options
@click.option("--unit", required=True, help="The unit returning unspent money: " + UNIT_HELP)
@click.option("--amount", required=True, metavar="YUAN", help=AMOUNT_HELP)
@click.option("--reason", required=True, help="Why the money goes back to the department (退回).")
@click.option("--on", "on", metavar="DATE", help=ON_HELP)
@write_format_option
@pass_env
def return_(
    env: Env,
    line: str | None,
    department: str | None,
    document: str | None,
    unit: str,
    amount: str,
    reason: str,
    on: str | None,
    fmt: str,
) -> None:
    """Return (退回) unspent money of a line from a unit to its department.

    \b
    Example:
      taizhang --actor sup01 funds return --department 民政局 --document '贺民发〔2026〕12号' \\
        --unit township:八步区/贺街镇 --amount 500 --reason 年末结余退回 --on 2026-12-20
    """
    actor = env.writer()
    ref = LineRef.of(line, department, document)
    where, fen = unit_arg(unit), parse_yuan(amount)
    why, day = text_arg(reason, "--reason"), _on(env, on)
    result = Funds(env.service()).return_unspent(line=ref, unit=where, amount=fen, on=day, reason=why, actor=actor)
    line = f"{result['department']} {result['document']}"
    emit_write(result, fmt, f"returned {yuan(fen)} yuan of line {line} from {result['unit']} on {day}")


def register(root: click.Group) -> None:
    root.add_command(funds)
