"""The ledger's reads as both doors use them: filters judged without the store, units placed in it, summaries.

The CLI (commands/cli/ledger.py) and the web (commands/web/) call these with an `Env`; neither
door imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from commands import clock, labels
from commands.context import Env, MalformedInput, Refused
from commands.views import prepared_views
from domain.units import parse_period
from domain.vocab import CATEGORIES, KINDS
from projections import filters as queries

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


def print_fields(*, named: bool, include_voided: bool) -> list[str]:
    """The columns of the printed 台账: no resident names without the key; no status when every row is active."""
    dropped = {"resident_names"} if not named else set()
    if not include_voided:
        dropped.add("status")
    return [f for f in PRINT_FIELDS if f not in dropped]


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


def summary_fields(by: str, per_month: bool) -> list[str]:
    fields = list(queries.LEVEL_KEYS[by])
    if by == "community":
        fields.append("community_name")
    if per_month:
        fields.append("month")
    return fields + SUMMARY_TAIL


def summary_rows(
    env: Env, filters: queries.Filters, *, by: str, per_month: bool = False, wait: float | None = None
) -> list[dict[str, Any]]:
    from projections import queries as reads

    views = prepared_views(env, wait)
    with views.read() as conn:
        return _refuse_unknown(lambda: reads.summary(conn, filters, by=by, per_month=per_month))


def month_totals(env: Env, filters: queries.Filters) -> list[dict[str, Any]]:
    """Records and minutes per month of the range (projections.queries.month_totals)."""
    from projections import queries as reads

    views = prepared_views(env, None)
    with views.read() as conn:
        return _refuse_unknown(lambda: reads.month_totals(conn, filters))


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


def sheet_heading(env: Env, conn: Any, what: str, filters: queries.Filters) -> Any:
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


def attach_names(env: Env, conn: Any, rows: list[dict[str, Any]]) -> bool:
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
