"""`taizhang ledger entries|summary`: the service-information ledgers (服务信息台账)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from commands import clock, files, labels
from commands.context import WAIT, Env, MalformedInput, pass_env
from commands.ledger_reads import (  # noqa: F401  (other click modules import them from here)
    PRINT_FIELDS,
    SUMMARY_TAIL,
    _day,
    _refuse_unknown,
    attach_names,
    parse_as_of,
    parse_filters,
    parse_unit,
    print_fields,
    resolve_unit,
    sheet_heading,
    summary_fields,
    summary_rows,
    township_of,
    townships_named,
)
from commands.output import emit_to, say
from commands.views import prepared_views  # noqa: F401  (cli.assess, cli.people import it from here)
from projections import filters as queries

F = TypeVar("F", bound=Callable[..., Any])

ENTRY_TABLE_FIELDS = [
    "occurred_at",
    "community",
    "kind",
    "residents",
    "providers",
    "minutes",
    "place",
    "status",
    "revision",
    "late",
    "note",
    "record_id",
]


def unit_options(func: F) -> F:
    func = click.option("--county", metavar="NAME", help="Only this county or district, e.g. 八步区.")(func)
    func = click.option(
        "--township",
        metavar="[COUNTY/]NAME",
        help="Only this township, e.g. 八步区/贺街镇, or 贺街镇 alone where no other county has a township of that name.",
    )(func)
    func = click.option("--community", metavar="CODE", help="Only this community.")(func)
    return func


def range_options(func: F) -> F:
    func = click.option(
        "--category", metavar="CAT", help="Only records serving a resident of this category, e.g. 留守儿童."
    )(func)
    func = click.option(
        "--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind of service; repeat for several."
    )(func)
    func = click.option(
        "--period",
        metavar="PERIOD",
        help="Only this month, quarter or year: 2026-11, 2026-Q4 or 2026 (instead of --from/--to).",
    )(func)
    func = click.option(
        "--to",
        "date_to",
        metavar="DATE",
        help="Last day (inclusive, local date of the service); a month, quarter or year means its last day.",
    )(func)
    func = click.option(
        "--from",
        "date_from",
        metavar="DATE",
        help="First day (inclusive, local date of the service); a month (2026-11), quarter or year means its first day.",
    )(func)
    return func


def moment_options(func: F) -> F:
    func = click.option(
        "--wait",
        "wait",
        type=WAIT,
        default=None,
        metavar="SECONDS",
        help="PostgreSQL: first wait up to SECONDS for the projections to reach the log's head.",
    )(func)
    func = click.option(
        "--at-position",
        "at_position",
        type=click.IntRange(0, 2**62),
        default=None,
        metavar="N",
        help="The ledger as it stood at log position N.",
    )(func)
    func = click.option(
        "--as-of",
        "as_of",
        metavar="DT",
        help="The ledger as recorded at that moment, e.g. a recorded_at as printed (a date means the end of that local day, 09:30 the end of that minute); later records, corrections and voids are not applied.",
    )(func)
    return func


def output_options(func: F) -> F:
    func = click.option("--force", is_flag=True, help=files.FORCE_HELP)(func)
    func = click.option(
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Write to FILE (a new file, mode 0600) instead of standard output (required for xlsx).",
    )(func)
    func = click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv", "xlsx"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)
    return func


def _check_output(fmt: str, output: Path | None, force: bool) -> None:
    """Before any work: an output that will not be written is refused (commands.files)."""
    if fmt == "xlsx" and output is None:
        raise MalformedInput("--output: required with --format xlsx")
    if output is not None:
        files.check_output(output, "--output", force=force)


def _emit(
    env: Env,
    rows: list[dict[str, Any]],
    fields: list[str],
    fmt: str,
    output: Path | None,
    force: bool,
    *,
    heading: Any = None,
    kind: str,
    notes: list[str] | None = None,
) -> None:
    clock.localise(rows, env.zone())
    if fmt == "xlsx":
        from commands.export import write_xlsx

        assert output is not None
        with files.output_file(output, "--output", force=force) as f:
            write_xlsx(f, rows, fields, env.lang, heading=heading, kind=kind, zone=env.zone().key, notes=notes)
        click.echo(say(f"wrote {len(rows)} row(s) to {output}"), err=True)
        return
    shown = rows if fmt in ("json", "csv") else [labels.localise(r, env.lang) for r in rows]
    emit_to(shown, fields, fmt, labels.headers(fields, env.lang), output, force)


@click.group("ledger")
def ledger() -> None:
    """The service-information ledgers (服务信息台账): entries and summaries."""


# The parameters of the unit, range and moment options, as parse_filters names them.
FILTER_OPTIONS = ("community", "township", "county", "date_from", "date_to", "kinds", "category", "as_of",
                  "at_position", "period")  # fmt: skip


def _scoped_filters(env: Env, output: tuple[str, Path | None, bool], params: dict[str, Any]) -> Any:
    """The command's filters (from its parameters), its output checked, its unit placed in the store."""
    filters = parse_filters(env, **{name: params[name] for name in FILTER_OPTIONS})
    _check_output(*output)
    return dataclasses.replace(filters, unit=resolve_unit(env, filters.unit))


@ledger.command("entries")
@unit_options
@range_options
@click.option("--include-voided", is_flag=True, help="Also list voided records.")
@moment_options
@output_options
@pass_env
def entries(
    env: Env,
    community: str | None,
    township: str | None,
    county: str | None,
    date_from: str | None,
    date_to: str | None,
    period: str | None,
    kinds: tuple[str, ...],
    category: str | None,
    include_voided: bool,
    as_of: str | None,
    at_position: int | None,
    wait: float | None,
    fmt: str,
    output: Path | None,
    force: bool,
) -> None:
    """List service records, one row per record with its current (or as-of) revision.

    A record is late (逾期登记) when it was recorded more than 7 days after the
    service — or, when the paper ledger's entry date was given (--entered-on, an
    import's entered_on / 登记日期 column), when that date is more than 7 days after
    it: a back-filled ledger is not late. Times are shown in the store's time zone;
    any time printed, pasted into --as-of, selects the ledger that included it.

    --format xlsx writes the 台账 to print and sign: a title naming the unit and
    the period, A4 landscape one page wide, the header repeated on every page,
    names beside the codes (residents' only with the key file; the names shown
    are access-logged), 合计, the legend of late and signature lines. It keeps
    the import's columns and the record id last: it imports back adding nothing.

    \b
    Example:
      taizhang ledger entries --community HZ-P01 --from 2026-03-01 --to 2026-03-31
      taizhang ledger entries --township 贺街镇 --period 2026-11
      taizhang --lang zh ledger entries --township 八步区/贺街镇 --period 2026-Q4 --format xlsx --output 贺街镇台账.xlsx
      taizhang ledger entries --county 八步区 --as-of 2026-04-01 --format json
    """
    filters = _scoped_filters(env, (fmt, output, force), locals())
    from commands.views import open_notes
    from projections import queries as reads

    views = prepared_views(env, wait)
    named = True
    with views.read() as conn:
        rows = _refuse_unknown(lambda: reads.entries(conn, filters, include_voided=include_voided))
        if fmt == "xlsx":  # the printed 台账 shows names beside the codes
            named = attach_names(env, conn, rows)
            heading = sheet_heading(env, conn, "entries", filters)
    if not open_notes(env.service(), rows):
        if named:
            env.warn(f"no key file at {env.key_path}: notes are not shown")
        else:
            env.warn(f"no key file at {env.key_path}: notes and resident names are not shown")
    from commands.access_log import entry_residents
    from commands.views import ERASED, UNOPENED

    # The residents whose codes (and, in a printed sheet, names) the output shows: logged before it is written.
    env.log_access(entry_residents(rows), records=sum(1 for r in rows if r.get("note") not in (None, ERASED, UNOPENED)))
    if fmt == "xlsx":
        fields = print_fields(named=named, include_voided=include_voided)
        notes = None if named else [labels.words("no_names", env.lang)]
        _emit(env, rows, fields, fmt, output, force, heading=heading, kind="entries", notes=notes)
        return
    if fmt == "table":
        fields = ENTRY_TABLE_FIELDS
    else:
        fields = list(queries.ENTRY_FIELDS)
        for row in rows:
            row.pop("entered_on", None)
    _emit(env, rows, fields, fmt, output, force, kind="entries")


@ledger.command("summary")
@click.option(
    "--by",
    "by",
    type=click.Choice(["community", "township", "county"]),
    required=True,
    help="One row per unit of this level.",
)
@unit_options
@range_options
@click.option("--per", "per", type=click.Choice(["month"]), default=None, help="Also split by month.")
@moment_options
@output_options
@pass_env
def summary(
    env: Env,
    by: str,
    community: str | None,
    township: str | None,
    county: str | None,
    date_from: str | None,
    date_to: str | None,
    period: str | None,
    kinds: tuple[str, ...],
    category: str | None,
    per: str | None,
    as_of: str | None,
    at_position: int | None,
    wait: float | None,
    fmt: str,
    output: Path | None,
    force: bool,
) -> None:
    """Count records, minutes and distinct residents served, per unit (zeros included).

    Voided records never count. With --category, records serving a resident of it,
    and only those residents in residents_served.

    \b
    Example:
      taizhang ledger summary --by township --from 2026-01-01 --to 2026-03-31
      taizhang ledger summary --by community --township 贺街镇 --period 2026-Q1
      taizhang ledger summary --by county --category 留守儿童 --per month --format csv
    """
    filters = _scoped_filters(env, (fmt, output, force), locals())
    rows = summary_rows(env, filters, by=by, per_month=per == "month", wait=wait)
    fields = summary_fields(by, per == "month")
    heading = None
    if fmt == "xlsx":
        with env.views().read() as conn:
            heading = sheet_heading(env, conn, "summary", filters)
    _emit(env, rows, fields, fmt, output, force, heading=heading, kind="summary")


def register(group: click.Group) -> None:
    group.add_command(ledger)
