"""domain.ids.utc_text is frozen text (record ids, digests and stored times are made of it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ids import utc_text

zones = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(min_value=-23 * 60, max_value=23 * 60)
)


@settings(max_examples=1000, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones))
def test_utc_text_is_the_strftime_text(moment: datetime) -> None:
    assert utc_text(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_utc_text_of_a_known_moment() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert utc_text(datetime(2026, 3, 5, 9, 30, 59, 999999, tzinfo=shanghai)) == "2026-03-05T01:30:59Z"
