"""The words of a printed ledger's title: periods as people say them (commands/export.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.export import period_words
from domain.units import parse_period


@pytest.mark.parametrize(
    ("first", "last", "zh", "en"),
    [
        (date(2026, 11, 1), date(2026, 11, 30), "2026年11月", "November 2026"),
        (date(2026, 10, 1), date(2026, 12, 31), "2026年第四季度", "Q4 2026"),
        (date(2026, 1, 1), date(2026, 12, 31), "2026年", "2026"),
        (date(2026, 3, 1), date(2026, 3, 15), "2026年3月1日至2026年3月15日", "2026-03-01 – 2026-03-15"),
        (date(2026, 11, 1), date(2027, 1, 31), "2026年11月1日至2027年1月31日", "2026-11-01 – 2027-01-31"),
        (date(2026, 3, 1), None, "2026年3月1日起", "from 2026-03-01"),
        (None, date(2026, 3, 31), "截至2026年3月31日", "to 2026-03-31"),
        (None, None, "", ""),
    ],
)
def test_period_words(first: date | None, last: date | None, zh: str, en: str) -> None:
    assert period_words(first, last, "zh") == zh
    assert period_words(first, last, "en") == en


@given(st.integers(2000, 2099), st.sampled_from(["", *(f"-{m:02d}" for m in range(1, 13)), "-Q1", "-Q2", "-Q3", "-Q4"]))
def test_every_period_reads_as_itself_not_as_a_range(year: int, suffix: str) -> None:
    period = parse_period(f"{year}{suffix}")
    words = period_words(period.first, period.last, "zh")
    assert words.startswith(f"{year}年") and "至" not in words
