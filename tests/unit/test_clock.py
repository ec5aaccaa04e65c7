"""One clock for people (commands.clock): what is shown reads back as the same moment.

No wall clock is read here: every `now` is given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from commands import clock
from commands.output import render_csv, render_json, render_table
from projections.filters import utc_ms

pytestmark = pytest.mark.clock  # cheap; shows the clock rules hold whatever the process's zone

ZONES = [ZoneInfo(z) for z in ("Asia/Shanghai", "America/Los_Angeles", "Europe/London", "Asia/Kathmandu", "UTC")]
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)

# Stored recorded times: fixed-width UTC text to the millisecond, over years that cross DST changes.
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC, fold=0)
)


def stored(moment: datetime) -> str:
    return utc_ms(moment)


@given(instants, st.sampled_from(ZONES))
@example(datetime(2010, 3, 14, 10, 0, tzinfo=UTC), ZoneInfo("America/Los_Angeles"))  # clocks spring forward
@example(datetime(2010, 11, 7, 9, 30, tzinfo=UTC), ZoneInfo("America/Los_Angeles"))  # the repeated hour
@example(datetime(2010, 3, 14, 2, 0, tzinfo=UTC), ZoneInfo("America/Los_Angeles"))  # found by hypothesis
def test_json_time_reads_back_as_exactly_that_millisecond(moment: datetime, tz: ZoneInfo) -> None:
    shown = clock.shown(stored(moment), tz)
    assert shown is not None
    text = orjson.loads(render_json([{"recorded_at": shown}]))[0]["recorded_at"]
    # The instant itself, with the offset the zone has at that instant (ZoneInfo.utcoffset reads a wall time).
    assert datetime.fromisoformat(text) == moment
    assert datetime.fromisoformat(text).utcoffset() == moment.astimezone(tz).utcoffset()
    assert clock.as_of(text, tz, FAR_FUTURE) == stored(moment)


@given(instants, st.sampled_from(ZONES))
@example(datetime(2010, 11, 7, 9, 30, 5, 250_000, tzinfo=UTC), ZoneInfo("America/Los_Angeles"))  # 01:30 PST, again
@example(datetime(2010, 11, 7, 8, 30, 5, 250_000, tzinfo=UTC), ZoneInfo("America/Los_Angeles"))  # 01:30 PDT, first
def test_table_time_reads_back_as_the_end_of_that_second(moment: datetime, tz: ZoneInfo) -> None:
    shown = clock.shown(stored(moment), tz)
    line = render_table([{"recorded_at": shown}], ["recorded_at"], ["recorded at"]).splitlines()[2]
    assert len(line) == len("2026-12-03 01:08:09")
    bound = datetime.fromisoformat(clock.as_of(line, tz, FAR_FUTURE))
    # The printed second, wherever the millisecond fell in it: the event is included, the next second not.
    second = moment.replace(microsecond=0)
    local = moment.astimezone(tz)
    if local.replace(fold=1 - local.fold).utcoffset() == local.utcoffset():  # the common case: one wall time
        assert moment <= bound == second + timedelta(milliseconds=999)
    else:  # in the hour daylight saving repeats a table time ends with its second occurrence
        later = local.replace(fold=1).astimezone(UTC).replace(microsecond=0)
        assert moment <= bound == later + timedelta(milliseconds=999)


@given(instants, st.sampled_from(ZONES))
def test_csv_shows_what_json_shows(moment: datetime, tz: ZoneInfo) -> None:
    shown = clock.shown(stored(moment), tz)
    assert render_csv([{"at": shown}], ["at"]).splitlines()[1] == orjson.loads(render_json({"at": shown}))["at"]


@given(instants, st.sampled_from(ZONES))
def test_a_date_means_the_end_of_that_local_day(moment: datetime, tz: ZoneInfo) -> None:
    local = moment.astimezone(tz)
    bound = datetime.fromisoformat(clock.as_of(local.date().isoformat(), tz, FAR_FUTURE))
    assert bound.astimezone(tz).date() == local.date()
    assert (bound + timedelta(milliseconds=1)).astimezone(tz).date() == local.date() + timedelta(days=1)
    assert bound >= moment


@pytest.mark.parametrize(
    ("typed", "end"),
    [
        ("2026-12-03", "2026-12-03T15:59:59.999Z"),
        ("2026/12/3", "2026-12-03T15:59:59.999Z"),
        ("2026年12月3日", "2026-12-03T15:59:59.999Z"),
        ("2026-12-03 01:08", "2026-12-02T17:08:59.999Z"),
        ("2026-12-03 01:08:09", "2026-12-02T17:08:09.999Z"),
        ("2026-12-03T01:08:09.951+08:00", "2026-12-02T17:08:09.951Z"),
        ("2026-12-02T17:08:09.951Z", "2026-12-02T17:08:09.951Z"),
        ("2026-12-03T01:08:09.9+08:00", "2026-12-02T17:08:09.999Z"),
        ("2026-12-03 9时", "2026-12-03T01:59:59.999Z"),
    ],
)
def test_the_unit_a_time_names_ends_where_people_expect(typed: str, end: str) -> None:
    assert clock.as_of(typed, ZoneInfo("Asia/Shanghai"), FAR_FUTURE) == end


def test_a_day_of_daylight_saving_change_is_the_whole_local_day() -> None:
    la = ZoneInfo("America/Los_Angeles")
    assert clock.as_of("2026-03-08", la, FAR_FUTURE) == "2026-03-09T06:59:59.999Z"  # 23 hours long
    assert clock.as_of("2026-11-01", la, FAR_FUTURE) == "2026-11-02T07:59:59.999Z"  # 25 hours long


def test_never_in_the_future_but_the_current_unit_is_now() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 3, 1, 8, 9, 500_000, tzinfo=tz)
    assert clock.as_of("2026-12-03", tz, now) == "2026-12-02T17:08:09.500Z"  # today: so far
    assert clock.as_of("2026-12-03 01:08:09", tz, now) == "2026-12-02T17:08:09.500Z"  # this second: so far
    for later in ("2026-12-04", "2026-12-03 01:08:10", "2026-12-03T01:08:09.501+08:00"):
        with pytest.raises(ValueError, match="in the future"):
            clock.as_of(later, tz, now)
    with pytest.raises(ValueError, match="not a date and time"):
        clock.as_of("yesterday", tz, now)


def test_service_times_show_to_the_second_and_recorded_times_to_the_millisecond() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    row = {"occurred_at": "2026-03-05T09:30:00+08:00", "recorded_at": "2026-12-02T17:08:09.951Z", "minutes": 45}
    clock.localise([row], tz)
    assert orjson.loads(render_json(row)) == {
        "occurred_at": "2026-03-05T09:30:00+08:00",
        "recorded_at": "2026-12-03T01:08:09.951+08:00",
        "minutes": 45,
    }
    assert render_table([row], ["occurred_at", "recorded_at"], ["a", "b"]).splitlines()[2].split("  ") == [
        "2026-03-05 09:30:00",
        "2026-12-03 01:08:09",
    ]
    assert row["recorded_at"].cell() == datetime(2026, 12, 3, 1, 8, 9, 951_000)  # a naive local spreadsheet time
