"""`taizhang ledger entries|summary`: the service-information ledgers (服务信息台账)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from commands import clock, files, labels
from commands.context import WAIT, Env, MalformedInput, Refused, pass_env
from commands.output import emit
from commands.views import prepared_views  # noqa: F401  (cli.assess, cli.people import it from here)
from domain.units import parse_period
from domain.vocab import CATEGORIES, KINDS
from projections import filters as queries

F = TypeVar("F", bound=Callable[..., Any])

SUMMARY_TAIL = ["records", "minutes", "residents_served", "kinds"]
# The printed 台账 (xlsx): what a township reads and signs; the import's own columns keep their
# names, and the record id stays last, so the sheet imports back adding nothing.
PRINT_FIELDS = [
    "community",
    "community_name",
    "occurred_at",
    "kind",
    "residents",
    "resident_names",
    "providers",
    "provider_names",
    "minutes",
    "place",
    "note",
    "status",
    "revision",
    "late",
    "entered_on",
    "recorded_at",
    "recorded_by",
    "record_id",
]
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
    func = click.option("--category", metavar="CAT", help="Only records serving a resident of this category, e.g. 留守儿童.")(func)
    func = click.option("--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind of service; repeat for several.")(func)
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
    func = click.option("--wait", "wait", type=WAIT, default=None, metavar="SECONDS", help="PostgreSQL: first wait up to SECONDS for the projections to reach the log's head.")(func)
    func = click.option("--at-position", "at_position", type=click.IntRange(0, 2**62), default=None, metavar="N", help="The ledger as it stood at log position N.")(func)
    func = click.option("--as-of", "as_of", metavar="DT", help="The ledger as recorded at that moment, e.g. a recorded_at as printed (a date means the end of that local day, 09:30 the end of that minute); later records, corrections and voids are not applied.")(func)
    return func


def output_options(func: F) -> F:
    func = click.option("--force", is_flag=True, help=files.FORCE_HELP)(func)
    func = click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Write to FILE (a new file, mode 0600) instead of standard output (required for xlsx).")(func)
    func = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "xlsx"]), default="table", show_default=True, help="Output format.")(func)
    return func


def parse_unit(community: str | None, township: str | None, county: str | None) -> queries.Unit | None:
    options = (("--community", community), ("--township", township), ("--county", county))
    given = [name for name, value in options if value is not None]
    if len(given) > 1:
        raise MalformedInput(f"{' and '.join(given)}: give at most one unit filter")
    for name, value in options:
        if value is not None and not value.strip():
            raise MalformedInput(f"{name}: must not be empty")
    if community:
        return queries.Unit("community", community=community.strip())
    if township:
        county_name, sep, name = township.partition("/")
        if not sep:  # a township's name alone: its county is looked up in the store (resolve_unit)
            return queries.Unit("township", county=None, township=township.strip())
        if not county_name.strip() or not name.strip():
            raise MalformedInput(f"--township: expected COUNTY/NAME or NAME, got {township!r}")
        return queries.Unit("township", county=county_name.strip(), township=name.strip())
    if county:
        return queries.Unit("county", county=county.strip())
    return None


def townships_named(units: Iterable[tuple[str, str, str]], name: str) -> list[str]:
    """The counties that have a township called `name`, from (code, county, township) rows."""
    return sorted({county for _code, county, township in units if township == name})


def township_of(counties: list[str], name: str) -> str:
    """The one county of a township given by its name alone; Refused when none or several."""
    if not counties:
        raise Refused(f"--township: no township {name} in the ledger")
    if len(counties) > 1:
        raise Refused(
            f"--township: {name} is a township in {len(counties)} counties ({', '.join(counties)}); "
            f"give COUNTY/NAME, e.g. {counties[0]}/{name}"
        )
    return counties[0]


def resolve_unit(env: Env, unit: queries.Unit | None) -> queries.Unit | None:
    """A township given by its name alone, placed in its county (from the store's write-time index)."""
    if unit is None or unit.level != "township" or unit.county is not None:
        return unit
    name = unit.township or ""
    county = township_of(townships_named(env.service().recorder.units(), name), name)
    return queries.Unit("township", county=county, township=name)


def _day(option: str, value: str | None, *, last: bool = False) -> date | None:
    """A date, or a month, quarter or year: its first day (--from) or its last (--to)."""
    if value is None:
        return None
    from commands import tabular

    try:
        return tabular.parse_date(value)
    except tabular.CellError as e:
        try:
            period = parse_period(value)
        except ValueError:
            raise MalformedInput(f"{option}: {e}") from None
        return period.last if last else period.first


def _range(date_from: str | None, date_to: str | None, period: str | None) -> tuple[date | None, date | None]:
    if period is not None:
        if date_from is not None or date_to is not None:
            raise MalformedInput("--period: give either --period or --from/--to, not both")
        try:
            span = parse_period(period)
        except ValueError as e:
            raise MalformedInput(f"--period: {e}") from None
        return span.first, span.last
    first, last = _day("--from", date_from), _day("--to", date_to, last=True)
    if first and last and first > last:
        raise MalformedInput(f"--from {first} is after --to {last}")
    return first, last


def parse_filters(
    env: Env,
    *,
    community: str | None,
    township: str | None,
    county: str | None,
    date_from: str | None,
    date_to: str | None,
    kinds: tuple[str, ...],
    category: str | None,
    as_of: str | None,
    at_position: int | None,
    period: str | None = None,
) -> queries.Filters:
    """Everything judged without the store (exit 2 on a bad value)."""
    unit = parse_unit(community, township, county)
    first, last = _range(date_from, date_to, period)
    try:
        kind_slugs = tuple(dict.fromkeys(KINDS.parse(k) for k in kinds))
    except ValueError as e:
        raise MalformedInput(f"--kind: {e}") from None
    try:
        category_slug = CATEGORIES.parse(category) if category else None
    except ValueError as e:
        raise MalformedInput(f"--category: {e}") from None
    if as_of is not None and at_position is not None:
        raise MalformedInput("--as-of and --at-position: give at most one")
    if at_position is not None and at_position < 0:
        raise MalformedInput(f"--at-position: must be 0 or more, got {at_position}")
    moment = queries.Moment(as_of=parse_as_of(env, as_of) if as_of else None, position=at_position)
    return queries.Filters(unit, first, last, kind_slugs, category_slug, moment)


def parse_as_of(env: Env, value: str) -> str:
    """--as-of as fixed-width UTC text: the end of the unit it names (commands.clock); never in the future."""
    tz = env.zone()
    try:
        return clock.as_of(value, tz, datetime.now(tz))
    except ValueError as e:
        raise MalformedInput(f"--as-of: {e}") from None


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
        click.echo(f"wrote {len(rows)} row(s) to {output}", err=True)
        return
    shown = rows if fmt in ("json", "csv") else [labels.localise(r, env.lang) for r in rows]
    if output is not None:
        with files.output_text(output, "--output", force=force) as text:
            emit(shown, fields, fmt, labels.headers(fields, env.lang), file=text)
        return
    emit(shown, fields, fmt, labels.headers(fields, env.lang))


@click.group("ledger")
def ledger() -> None:
    """The service-information ledgers (服务信息台账): entries and summaries."""


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
    filters = parse_filters(
        env, community=community, township=township, county=county, date_from=date_from, date_to=date_to,
        kinds=kinds, category=category, as_of=as_of, at_position=at_position, period=period,
    )
    _check_output(fmt, output, force)
    filters = dataclasses.replace(filters, unit=resolve_unit(env, filters.unit))
    from commands.views import open_notes
    from projections import queries as reads

    views = prepared_views(env, wait)
    named = True
    with views.read() as conn:
        rows = _refuse_unknown(lambda: reads.entries(conn, filters, include_voided=include_voided))
        if fmt == "xlsx":  # the printed 台账 shows names beside the codes
            named = _attach_names(env, conn, rows)
            heading = _heading(env, conn, "entries", filters)
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
        dropped = {"resident_names"} if not named else set()
        if not include_voided:
            dropped.add("status")  # every row is active
        fields = [f for f in PRINT_FIELDS if f not in dropped]
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
@click.option("--by", "by", type=click.Choice(["community", "township", "county"]), required=True, help="One row per unit of this level.")
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
    filters = parse_filters(
        env, community=community, township=township, county=county, date_from=date_from, date_to=date_to,
        kinds=kinds, category=category, as_of=as_of, at_position=at_position, period=period,
    )
    _check_output(fmt, output, force)
    filters = dataclasses.replace(filters, unit=resolve_unit(env, filters.unit))
    rows = summary_rows(env, filters, by=by, per_month=per == "month", wait=wait)
    fields = summary_fields(by, per == "month")
    heading = None
    if fmt == "xlsx":
        with env.views().read() as conn:
            heading = _heading(env, conn, "summary", filters)
    _emit(env, rows, fields, fmt, output, force, heading=heading, kind="summary")


def summary_fields(by: str, per_month: bool) -> list[str]:
    fields = list(queries.LEVEL_KEYS[by])
    if by == "community":
        fields.append("community_name")
    if per_month:
        fields.append("month")
    return fields + SUMMARY_TAIL


def summary_rows(env: Env, filters: queries.Filters, *, by: str, per_month: bool = False, wait: float | None = None) -> list[dict[str, Any]]:
    from projections import queries as reads

    views = prepared_views(env, wait)
    with views.read() as conn:
        return _refuse_unknown(lambda: reads.summary(conn, filters, by=by, per_month=per_month))


def _refuse_unknown(run: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    try:
        return run()
    except queries.UnknownUnit as e:
        raise Refused(str(e)) from None


def _unit_words(conn: Any, unit: queries.Unit | None, lang: str) -> str:
    """The unit a sheet covers, as people name it: 贺街镇, 八步区, a community's name."""
    if unit is None:
        return labels.words("all", lang)
    if unit.level == "community":
        from sqlalchemy import text

        found = conn.execute(text("SELECT name FROM ledger_communities WHERE code = :c"), {"c": unit.community}).first()
        return str(found[0]) if found else str(unit.community)
    return str(unit.township if unit.level == "township" else unit.county)


def _heading(env: Env, conn: Any, what: str, filters: queries.Filters) -> Any:
    """The title (unit, period, what) and the subtitle (print date, as-of moment) of a printed sheet."""
    from commands.export import Heading, period_words

    lang = env.lang
    period = period_words(filters.date_from, filters.date_to, lang)
    title = " ".join(part for part in (_unit_words(conn, filters.unit, lang), period, labels.words(what, lang)) if part)
    zone = env.zone()
    now = env.service().now()
    if filters.moment.position is not None:
        moment = labels.words("at_position", lang, n=filters.moment.position)
    else:
        shown = clock.shown(filters.moment.as_of, zone) if filters.moment.as_of else clock.Shown(now, 0)
        moment = labels.words("as_of", lang, moment=str(shown), zone=zone.key)
    printed = labels.words("printed", lang, day=now.date().isoformat())
    return Heading(title, ("\u3000" if lang == "zh" else "; ").join((printed, moment)))


def _attach_names(env: Env, conn: Any, rows: list[dict[str, Any]]) -> bool:
    """`resident_names` and `provider_names` beside the codes of each row, in the codes' order.

    Provider names are kept in clear; resident names are opened with the master key (only
    those of residents on these rows). False when there is no key: residents by code only.
    """
    from commands.views import ERASED, UNOPENED, open_notes
    from projections.queries import provider_rows, resident_rows

    wanted = {(row["community"], code) for row in rows for code in row.get("residents") or ()}
    residents: list[dict[str, Any]] = []
    providers: dict[tuple[str, str], str] = {}
    for community in sorted({row["community"] for row in rows}):
        residents += [r for r in resident_rows(conn, community, None) if (community, r["code"]) in wanted]
        providers.update({(community, p["code"]): p["name"] for p in provider_rows(conn, community)})
    opened = open_notes(env.service(), residents, "name")
    marks = {ERASED: labels.ERASED, UNOPENED: labels.UNOPENED}
    names = {}
    for r in residents:
        mark = marks.get(r["name"])
        names[(r["community"], r["code"])] = (mark[1] if env.lang == "zh" else mark[0]) if mark else r["name"]
    for row in rows:
        row["provider_names"] = [providers.get((row["community"], code)) or "" for code in row.get("providers") or ()]
        if opened:
            row["resident_names"] = [names.get((row["community"], code)) or "" for code in row.get("residents") or ()]
    return opened


def register(group: click.Group) -> None:
    group.add_command(ledger)
