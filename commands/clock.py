"""One clock for people: the times a command prints, and the times `--as-of` reads back.

UTC stays inside the database and inside hashed or signed bytes (fixed-width text
such as `2026-12-02T17:08:09.951Z`). Every time shown to a person is in the store's
time zone with its offset: JSON and CSV `2026-12-03T01:08:09.951+08:00`, a table
`2026-12-03 01:08:09`, an xlsx cell a real date-time.

What you see is what you can ask: a time given to `--as-of` means the end of the
last unit it names — a date the end of that day, `01:08` the end of that minute,
`01:08:09` the end of that second, `01:08:09.951` that millisecond. So any time a
command printed, pasted back as it is, selects the state that included that event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from projections.filters import parse_utc, utc_ms

TABLE_FORMAT = "%Y-%m-%d %H:%M:%S"
XLSX_FORMAT = "yyyy-mm-dd hh:mm:ss"
ONE_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Shown:
    """A moment as people see it: in the store's time zone.

    `digits` is how many fraction digits JSON and CSV show: 3 for recorded times
    (the log keeps milliseconds), 0 for the times of services (kept to the second).
    """

    at: datetime  # aware, in the store's time zone
    digits: int = 3

    def iso(self) -> str:
        return self.at.isoformat(timespec="milliseconds" if self.digits else "seconds")

    def cell(self) -> datetime:
        """A naive local date-time for a spreadsheet cell."""
        return self.at.replace(tzinfo=None, microsecond=self.at.microsecond // 1000 * 1000 if self.digits else 0)

    def __str__(self) -> str:
        return self.at.strftime(TABLE_FORMAT)


def parse_stored(value: str | datetime) -> datetime:
    """A stored time (`…Z` UTC text, or ISO 8601 with an offset) as an aware datetime."""
    moment = value if isinstance(value, datetime) else parse_utc(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def shown(value: str | datetime | None, tz: tzinfo, digits: int = 3) -> Shown | None:
    """A stored time as people see it; None stays None."""
    if value is None or value == "":
        return None
    return Shown(parse_stored(value).astimezone(tz), digits)


# The fields that hold times in the rows commands print, and the fraction digits each shows.
RECORDED = 3
SERVICE = 0
TIME_FIELDS: dict[str, int] = {
    "recorded_at": RECORDED,
    "revised_at": RECORDED,
    "at": RECORDED,
    "granted_at": RECORDED,
    "revoked_at": RECORDED,
    "sealed_at": RECORDED,
    "filed_at": RECORDED,
    "established_at": RECORDED,
    "occurred_at": SERVICE,
}


def localise(rows: Iterable[dict[str, Any]], tz: tzinfo, fields: Mapping[str, int] = TIME_FIELDS) -> None:
    """Turn the stored times of each row into `Shown` moments of the store's zone, in place."""
    for row in rows:
        for name, digits in fields.items():
            value = row.get(name)
            if isinstance(value, (str, datetime)) and value != "":
                row[name] = Shown(parse_stored(value).astimezone(tz), digits)


def plain(value: Any) -> Any:
    """JSON's and CSV's form of a shown time (orjson `default`, csv cells)."""
    if isinstance(value, Shown):
        return value.iso()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def text(value: str | datetime | None, tz: tzinfo) -> str:
    """One stored time for a sentence: ISO 8601 in the store's zone, with milliseconds."""
    moment = shown(value, tz)
    return moment.iso() if moment is not None else ""  # the same as projections.filters.local_iso


# ---- reading a time back ---------------------------------------------------------------------
def span(value: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """The first and last instant a typed time names: a date is its whole local day, `09:30` its
    minute, `09:30:15` its second, `09:30:15.951` its millisecond. Raises tabular.CellError."""
    from commands import tabular

    start, unit = tabular.parse_instant(value)
    if start.tzinfo is None:
        start = start.replace(tzinfo=tz)
    # Calendar arithmetic in the zone (a day is not always 24 hours), then back to an instant.
    if unit == tabular.DAY:
        next_day = datetime.combine(start.date() + timedelta(days=1), start.time(), start.tzinfo)
        return start, next_day.astimezone(UTC) - ONE_MS
    # A local time in the hour that daylight saving repeats names two units: it begins with the
    # first and ends with the second, so it reads back as a state that includes either event.
    first = start.replace(fold=0).astimezone(UTC)  # an instant: aware arithmetic in one zone is wall-clock
    last = start.replace(fold=1).astimezone(UTC)
    return first, last + max(unit, ONE_MS) - ONE_MS


def as_of(value: str, tz: tzinfo, now: datetime) -> str:
    """`--as-of` as fixed-width UTC text: the end of the unit the value names, never after now.

    Raises ValueError when the value is not a time, or names a moment that has not begun.
    """
    from commands import tabular

    try:
        first, last = span(value, tz)
    except tabular.CellError as e:
        raise ValueError(str(e)) from None
    if first > now:
        raise ValueError(f"{value!r} is in the future")
    return utc_ms(min(last, now))
