"""`taizhang audit history COMMUNITY | --line LINE`: every event of a community or of a funding line, in
order. Attached to the `audit` group."""

from __future__ import annotations

import click

from commands import clock, models
from commands.cli.assess import audit
from commands.cli.ledger import parse_as_of
from commands.context import Env, MalformedInput, format_option, pass_env
from commands.funds_history import MalformedLine, line_history, parse_line
from commands.history import Bound, history
from commands.history_text import JSON_FIELDS, TABLE_FIELDS, _changes_text, _fields_text, _header, shown_row
from commands.output import emit
from domain.units import UnitRef, parse_unit


@audit.command("history")
@click.argument("community", required=False)
@click.option(
    "--line",
    metavar="LINE",
    help="A funding line instead (its id, or DEPARTMENT/文号): every event of the line, balances old → new.",
)
@click.option(
    "--unit",
    metavar="UNIT",
    help="With --line: only the line's events touching this unit or a unit inside it (county:X, township:X/Y, community:CODE).",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="DT",
    help="Stop at that recorded moment: any recorded time this command printed (a date means the end of that local day).",
)
@click.option(
    "--at-position",
    "at_position",
    type=click.IntRange(0, 2**62),
    default=None,
    metavar="N",
    help="Stop at log position N.",
)
@format_option()
@pass_env
def audit_history(
    env: Env,
    community: str | None,
    line: str | None,
    unit: str | None,
    as_of: str | None,
    at_position: int | None,
    fmt: str,
) -> None:
    """Every event of a community, in order: who recorded, corrected, voided, closed what, and when.

    One row per event: its log position, the recorded time (the database's clock,
    shown in the store's time zone), the actor, what happened, its fields — a correction shows old → new — and
    its chain hash. Names, birth dates and notes are shown only with the key file,
    otherwise as (encrypted). With --as-of or --at-position the history stops there:
    exactly what an auditor would have seen at that moment.

    With --line, every event of a funding line instead: allocations, transfers, spends,
    reversals and returns, each with the balances it changed (old → new); a reversal shows
    the spend active → reversed with its reason. The payee is shown only with the key file
    (and the access is logged), otherwise withheld. COMMUNITY or --unit then narrow it to
    the events touching that unit.

    \b
    Example:
      taizhang audit history HZ-P01
      taizhang audit history --line 民政局/贺民发〔2026〕12号 --unit county:八步区
      taizhang --lang zh audit history HZ-P01 --as-of 2026-04-01
      taizhang audit history HZ-P01 --at-position 1200 --format json
    """
    if as_of is not None and at_position is not None:
        raise MalformedInput("--as-of and --at-position: give at most one")
    if line is None and community is None:
        raise MalformedInput("COMMUNITY: give a community, or a funding line with --line")
    if unit is not None and line is None:
        raise MalformedInput(f"--unit: only with --line, got {unit!r}")
    if unit is not None and community is not None:
        raise MalformedInput("COMMUNITY and --unit: give at most one")
    code = None
    if community is not None:
        try:
            code = models.clean_code(community)
        except ValueError as e:
            raise models.Malformed("COMMUNITY", str(e)) from None
    within = None
    if unit is not None:
        try:
            within = parse_unit(unit)
        except ValueError as e:
            raise MalformedInput(f"--unit: {e}") from None
    elif code is not None and line is not None:
        within = UnitRef("community", community=code)
    if line is not None:
        try:
            parse_line(line)
        except MalformedLine as e:
            raise MalformedInput(f"--line: {e}") from None
    bound = Bound(as_of=parse_as_of(env, as_of) if as_of else None, position=at_position)
    service = env.service()
    if line is not None:
        _line, rows, payees = line_history(service, line, bound, within)
        clock.localise(rows, service.tz)
        if payees:
            env.log_access(payees)  # payee names: logged before printing, like residents' names
        if service.master is None:
            env.warn(f"no key file at {env.key_path}: payees are shown as (encrypted)")
    else:
        assert code is not None
        rows = history(service, code, bound)
        clock.localise(rows, service.tz)
        from commands.access_log import history_residents

        env.log_access(*history_residents(code, rows))  # names, birth dates and notes: logged before printing
        if service.master is None:
            env.warn(f"no key file at {env.key_path}: names, birth dates and notes are shown as (encrypted)")
    if fmt == "json":
        emit(rows, JSON_FIELDS, fmt)
        return
    if fmt == "csv":
        flat = [
            {**row, "fields": _fields_text(row["fields"]), "changes": _changes_text(row["changes"])} for row in rows
        ]
        emit(flat, JSON_FIELDS, fmt)
        return
    shown = [shown_row(row, env.lang) for row in rows]
    emit(shown, TABLE_FIELDS, fmt, [_header(f, env.lang) for f in TABLE_FIELDS])
