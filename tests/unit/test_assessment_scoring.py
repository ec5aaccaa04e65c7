"""Scoring an assessment: the rubric, the score, the rank, visit-plan windows, units and periods.

Pure functions only (no store): facts are built by hand, rubric files are written to a temporary
directory. Every expectation is computed here from the issue's definitions, not from the code.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.assess import DEFAULT_RUBRIC, Rubric, RubricError, load_rubric, rank, score_unit
from domain.units import Period, UnitRef, parse_period, parse_unit
from projections.assessment import METRICS, Measure, UnitFacts, plan_windows

DEFAULT_WEIGHTS = {
    "coverage": 30.0,
    "visit_timeliness": 25.0,
    "breadth": 10.0,
    "target_attainment": 15.0,
    "supervision_closure": 10.0,
    "data_quality": 10.0,
}
TOWNSHIP = UnitRef("township", county="八步区", township="贺街镇")


def facts(**measures: tuple[float, float]) -> UnitFacts:
    """A unit whose named metrics have (numerator, denominator); the others have no data."""
    fact = UnitFacts(TOWNSHIP, ["HZ-A"])
    for metric, (numerator, denominator) in measures.items():
        fact.measures[metric] = Measure(numerator, denominator)
    return fact


def rubric(**weights: float) -> Rubric:
    return Rubric("test", "1", "0" * 64, {m: float(w) for m, w in weights.items()})


DEFAULT = rubric(**DEFAULT_WEIGHTS)


def write(tmp_path: Path, text: str | bytes, name: str = "rubric.toml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ==== score_unit ====================================================================================


def test_the_default_rubric_is_the_shipped_file_with_the_issue_weights() -> None:
    loaded = load_rubric(None)
    assert loaded.name == "hezhou-default"
    assert loaded.version == "1"
    assert loaded.weights == DEFAULT_WEIGHTS
    assert loaded.sha256 == hashlib.sha256(DEFAULT_RUBRIC.read_bytes()).hexdigest()
    assert loaded.describe() == {"name": "hezhou-default", "version": "1", "sha256": loaded.sha256}


def test_score_is_the_weighted_mean_of_the_metrics() -> None:
    fact = facts(
        coverage=(1, 2),  # 0.5
        visit_timeliness=(3, 4),  # 0.75
        breadth=(3, 6),  # 0.5
        target_attainment=(1.5, 2),  # 0.75
        supervision_closure=(1, 1),  # 1
        data_quality=(9, 10),  # 0.9
    )
    score, lines = score_unit(fact, DEFAULT)
    # 30*.5 + 25*.75 + 10*.5 + 15*.75 + 10*1 + 10*.9 = 69 (of 100)
    assert score == 69.0
    assert list(lines) == list(METRICS)
    assert lines["coverage"] == {"value": 0.5, "weight": 30.0, "points": 15.0, "numerator": 1, "denominator": 2}
    assert lines["visit_timeliness"]["points"] == 18.75
    assert lines["breadth"]["points"] == 5.0
    assert lines["target_attainment"] == {
        "value": 0.75, "weight": 15.0, "points": 11.25, "numerator": 1.5, "denominator": 2,
    }
    assert lines["supervision_closure"]["points"] == 10.0
    assert lines["data_quality"]["points"] == 9.0
    assert sum(line["points"] for line in lines.values()) == pytest.approx(score)


def test_metrics_without_data_are_left_out_and_the_weights_renormalised() -> None:
    fact = facts(visit_timeliness=(3, 4), breadth=(3, 6), target_attainment=(3, 4), data_quality=(9, 10))
    score, lines = score_unit(fact, DEFAULT)
    # (25*.75 + 10*.5 + 15*.75 + 10*.9) / (25 + 10 + 15 + 10) = 44 / 60
    assert score == 73.33
    for metric in ("coverage", "supervision_closure"):
        assert lines[metric] == {"value": None, "weight": DEFAULT_WEIGHTS[metric], "points": None,
                                 "numerator": 0, "denominator": 0}
    # the points are the renormalised shares: 25/60 of 100 at .75, …
    assert lines["visit_timeliness"]["points"] == round(100 * 0.75 * 25 / 60, 4)
    assert lines["data_quality"]["points"] == 15.0
    # the same as a rubric that never had the missing metrics
    without = rubric(**{m: w for m, w in DEFAULT_WEIGHTS.items() if m not in ("coverage", "supervision_closure")})
    assert score_unit(fact, without)[0] == score


def test_a_unit_with_no_data_at_all_has_no_score() -> None:
    score, lines = score_unit(facts(), DEFAULT)
    assert score is None
    assert all(line["value"] is None and line["points"] is None for line in lines.values())
    assert set(lines) == set(METRICS)


def test_data_only_in_a_metric_of_weight_zero_gives_no_score() -> None:
    zero_coverage = rubric(**{**DEFAULT_WEIGHTS, "coverage": 0})
    score, lines = score_unit(facts(coverage=(1, 2)), zero_coverage)
    assert score is None
    assert lines["coverage"]["value"] == 0.5
    assert lines["coverage"]["points"] is None


def test_a_metric_worth_zero_is_data_not_absence() -> None:
    """value 0.0 is falsy: it must still count (and pull the score down)."""
    score, lines = score_unit(facts(coverage=(0, 5)), DEFAULT)
    assert score == 0.0
    assert lines["coverage"]["points"] == 0.0
    score, _ = score_unit(facts(coverage=(0, 5), data_quality=(1, 1)), DEFAULT)
    assert score == 25.0  # (30*0 + 10*1) / 40


@pytest.mark.parametrize(
    ("measures", "expected"),
    [
        ({"coverage": (1, 3)}, 33.33),
        ({"coverage": (2, 3)}, 66.67),
        ({"coverage": (1, 1)}, 100.0),
        ({"coverage": (1, 3), "visit_timeliness": (1, 7)}, round(100 * (30 / 3 + 25 / 7) / 55, 2)),
        ({"breadth": (1, 6)}, 16.67),
        ({"target_attainment": (0.123456789, 1)}, 12.35),
    ],
)
def test_score_is_rounded_to_two_decimals(measures: dict[str, tuple[float, float]], expected: float) -> None:
    score, lines = score_unit(facts(**measures), DEFAULT)
    assert score == expected
    assert isinstance(score, float)
    assert score == round(score, 2)
    # values and points are rounded too (6 and 4 decimals)
    for line in lines.values():
        if line["value"] is not None:
            assert line["value"] == round(line["value"], 6)
            assert line["points"] == round(line["points"], 4)


measure_strategy = st.one_of(
    st.none(),
    st.integers(1, 50).flatmap(lambda d: st.tuples(st.integers(0, d), st.just(d))),
    st.integers(1, 5).flatmap(  # target attainment: sums of fractions
        lambda d: st.tuples(st.floats(0, d, allow_nan=False, allow_infinity=False), st.just(d))
    ),
)
weights_strategy = st.fixed_dictionaries({m: st.integers(0, 40) for m in METRICS}).filter(lambda w: any(w.values()))


@settings(max_examples=300, deadline=None)
@given(measures=st.fixed_dictionaries({m: measure_strategy for m in METRICS}), weights=weights_strategy)
def test_score_is_the_rounded_weighted_mean_and_points_add_up(
    measures: dict[str, tuple[float, float] | None], weights: dict[str, int]
) -> None:
    fact = facts(**{m: v for m, v in measures.items() if v is not None})
    score, lines = score_unit(fact, rubric(**weights))
    present = {m: v[0] / v[1] for m, v in measures.items() if v is not None and weights[m] > 0}
    if not present:
        assert score is None
        assert all(line["points"] is None for line in lines.values())
        return
    total = sum(weights[m] for m in present)
    exact = 100 * sum(weights[m] * present[m] for m in present) / total
    assert score is not None
    assert 0 <= score <= 100
    assert score == pytest.approx(round(exact, 2), abs=1e-9)
    assert abs(score - exact) <= 0.005 + 1e-9
    points = [line["points"] for line in lines.values() if line["points"] is not None]
    assert len(points) == len(present)
    # each line's points are rounded to 4 decimals, the score to 2
    assert abs(sum(points) - score) <= 0.005 + len(points) * 0.00005 + 1e-9


# ==== rubric files ===================================================================================


def test_a_custom_rubric_file(tmp_path: Path) -> None:
    text = (
        "# 钟山县考核细则\n"
        'name = " zhongshan-2026 "\n'
        "version = 3\n"
        "[weights]\n"
        "coverage = 2\n"
        "data_quality = 0.5\n"
    )
    path = write(tmp_path, text)
    loaded = load_rubric(path)
    assert loaded.name == "zhongshan-2026"
    assert loaded.version == "3"
    assert loaded.weights == {"coverage": 2.0, "data_quality": 0.5}
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # only the rubric's metrics are scored and reported
    fact = facts(coverage=(1, 2), data_quality=(1, 1), visit_timeliness=(0, 4))
    score, lines = score_unit(fact, loaded)
    assert set(lines) == {"coverage", "data_quality"}
    assert score == 60.0  # (2*.5 + .5*1) / 2.5


def test_a_rubric_with_a_string_version_and_every_metric(tmp_path: Path) -> None:
    body = "\n".join(f"{m} = {i + 1}" for i, m in enumerate(METRICS))
    loaded = load_rubric(write(tmp_path, f'name = "n"\nversion = "2026.1"\n[weights]\n{body}\n'))
    assert loaded.version == "2026.1"
    assert loaded.weights == {m: float(i + 1) for i, m in enumerate(METRICS)}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = 1\npopularity = 2\n', "popularity"),
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = -1\n', "coverage"),
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = -0.5\nbreadth = 3\n', "coverage"),
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = "30"\n', "coverage"),
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = true\n', "coverage"),
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = [1]\n', "coverage"),
        ('name = "x"\nversion = "1"\n[weights]\ncoverage = 0\nbreadth = 0\n', "every weight is 0"),
        ('name = "x"\nversion = "1"\n[weights]\n', "[weights]"),
        ('name = "x"\nversion = "1"\nweights = 3\n', "[weights]"),
        ('name = "x"\nversion = "1"\n', "[weights]"),
        ('version = "1"\n[weights]\ncoverage = 1\n', "name"),
        ('name = "  "\nversion = "1"\n[weights]\ncoverage = 1\n', "name"),
        ('name = "x"\n[weights]\ncoverage = 1\n', "version"),
        ('name = "x"\nversion = 1.5\n[weights]\ncoverage = 1\n', "version"),
    ],
)
def test_unusable_rubrics_are_refused_naming_the_option(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(RubricError) as raised:
        load_rubric(write(tmp_path, text))
    message = str(raised.value)
    assert message.startswith("--rubric: ")
    assert needle in message


@pytest.mark.parametrize(
    "text",
    [
        'name = "x"\nversion = "1"\n[weights\ncoverage = 1\n',
        'name = "x"\nversion = "1"\n[weights]\ncoverage = 1\ncoverage = 2\n',
        "name = x\n",
        "{}",
    ],
)
def test_bad_toml_is_refused_naming_the_option_and_the_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text, name="细则.toml")
    with pytest.raises(RubricError) as raised:
        load_rubric(path)
    message = str(raised.value)
    assert message.startswith("--rubric: ")
    assert "细则.toml" in message
    assert "not valid TOML" in message
    assert isinstance(raised.value, ValueError)


def test_a_rubric_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "考核"\nversion = "1"\n[weights]\ncoverage = 1\n'.encode("gb18030"))
    with pytest.raises(RubricError, match=r"^--rubric: rubric\.toml is not valid TOML"):
        load_rubric(path)


def test_a_missing_rubric_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match=r"^--rubric: cannot read .*nowhere\.toml"):
        load_rubric(tmp_path / "nowhere.toml")
    with pytest.raises(RubricError, match=r"^--rubric: .* is not a regular file"):
        load_rubric(tmp_path)  # a directory


@pytest.mark.parametrize("weight", ["nan", "inf", "+inf"])
def test_non_finite_weights_are_refused(tmp_path: Path, weight: str) -> None:
    path = write(tmp_path, f'name = "x"\nversion = "1"\n[weights]\ncoverage = {weight}\nbreadth = 1\n')
    with pytest.raises(RubricError, match=r"^--rubric: .*coverage"):
        load_rubric(path)


# ==== rank ==============================================================================================


def test_ties_share_a_rank_and_the_next_rank_is_skipped() -> None:
    assert rank({"a": 90.0, "b": 90.0, "c": 80.5}) == {"a": 1, "b": 1, "c": 3}
    assert rank({"e": 80.0, "d": 90.0, "c": 90.0, "b": 90.0, "a": 100.0}) == {"a": 1, "b": 2, "c": 2, "d": 2, "e": 5}


def test_no_score_no_rank_and_no_place_taken() -> None:
    assert rank({"a": None, "b": 50.0, "c": 70.0}) == {"a": None, "b": 2, "c": 1}
    assert rank({"a": None, "b": None}) == {"a": None, "b": None}
    assert rank({}) == {}
    assert rank({"zero": 0.0, "none": None}) == {"zero": 1, "none": None}


def test_rank_keeps_every_unit_in_its_order() -> None:
    scores = {"township:八步区/莲塘镇": 61.5, "township:八步区/贺街镇": 61.5, "township:钟山县/城关镇": None}
    ranks = rank(scores)
    assert list(ranks) == list(scores)
    assert ranks == {"township:八步区/莲塘镇": 1, "township:八步区/贺街镇": 1, "township:钟山县/城关镇": None}


@given(st.dictionaries(st.text(min_size=1, max_size=4), st.one_of(st.none(), st.integers(0, 10).map(float))))
def test_rank_is_one_plus_the_number_of_better_scores(scores: dict[str, float | None]) -> None:
    ranks = rank(scores)
    assert set(ranks) == set(scores)
    for unit, score in scores.items():
        if score is None:
            assert ranks[unit] is None
        else:
            assert ranks[unit] == 1 + sum(1 for other in scores.values() if other is not None and other > score)


# ==== plan_windows ========================================================================================


def plan(starts_on: str, every: int, ends_on: str | None = None) -> dict[str, Any]:
    return {"starts_on": starts_on, "every": every, "ends_on": ends_on}


def windows(starts_on: str, every: int, period: str, ends_on: str | None = None) -> list[tuple[str, str]]:
    return [(a.isoformat(), b.isoformat()) for a, b in plan_windows(plan(starts_on, every, ends_on), parse_period(period))]


def reference_windows(start: date, every: int, ends_on: date | None, period: Period) -> list[tuple[date, date]]:
    """The issue's definition, walked from the plan's first day."""
    out = []
    window_start = start
    while window_start <= period.last:
        window_end = window_start + timedelta(days=every - 1)
        if period.first <= window_end <= period.last and (ends_on is None or window_end < ends_on):
            out.append((window_start, window_end))
        window_start = window_end + timedelta(days=1)
    return out


def test_only_windows_that_end_inside_the_period_count() -> None:
    # 02-25..03-06 ends inside March (it began before); 03-27..04-05 ends after it
    assert windows("2026-02-25", 10, "2026-03") == [
        ("2026-02-25", "2026-03-06"),
        ("2026-03-07", "2026-03-16"),
        ("2026-03-17", "2026-03-26"),
    ]


def test_a_plan_starting_mid_period() -> None:
    assert windows("2026-03-10", 7, "2026-03") == [
        ("2026-03-10", "2026-03-16"),
        ("2026-03-17", "2026-03-23"),
        ("2026-03-24", "2026-03-30"),
    ]
    assert windows("2026-03-31", 1, "2026-03") == [("2026-03-31", "2026-03-31")]
    assert windows("2026-03-31", 2, "2026-03") == []


def test_a_plan_ended_mid_period() -> None:
    # ends_on is exclusive: a window ending the day before the end counts, one ending on it does not
    assert windows("2026-03-01", 7, "2026-03", ends_on="2026-03-15") == [
        ("2026-03-01", "2026-03-07"),
        ("2026-03-08", "2026-03-14"),
    ]
    assert windows("2026-03-01", 7, "2026-03", ends_on="2026-03-14") == [("2026-03-01", "2026-03-07")]
    assert windows("2026-03-01", 7, "2026-03", ends_on="2026-03-01") == []


def test_plans_outside_the_period() -> None:
    assert windows("2026-04-01", 7, "2026-03") == []
    assert windows("2026-01-01", 7, "2026-03", ends_on="2026-02-15") == []
    assert windows("2026-03-01", 60, "2026-03") == []  # the first window ends in April


def test_every_day() -> None:
    february = windows("2026-01-15", 1, "2026-02")
    days = [(date(2026, 2, 1) + timedelta(days=i)).isoformat() for i in range(28)]
    assert february == [(one, one) for one in days]
    assert len(windows("2024-01-01", 1, "2024-02")) == 29
    assert windows("2026-02-20", 1, "2026-02", ends_on="2026-02-25") == [
        (f"2026-02-{d}", f"2026-02-{d}") for d in range(20, 25)
    ]


def test_long_periods_and_old_plans() -> None:
    year = windows("2026-01-01", 1, "2026")
    assert len(year) == 365
    assert year[0] == ("2026-01-01", "2026-01-01") and year[-1] == ("2026-12-31", "2026-12-31")
    # a plan started years before: windows keep their phase
    old = plan_windows(plan("2016-03-07", 14, None), parse_period("2026"))
    assert old == reference_windows(date(2016, 3, 7), 14, None, parse_period("2026"))
    assert all((a - date(2016, 3, 7)).days % 14 == 0 for a, _b in old)
    assert all(b - a == timedelta(days=13) for a, b in old)
    assert all(nxt[0] == prev[1] + timedelta(days=1) for prev, nxt in zip(old, old[1:], strict=False))
    assert len(windows("2026-01-01", 366, "2026")) == 0
    assert windows("2025-01-01", 366, "2026") == [("2025-01-01", "2026-01-01")]
    quarter = windows("2025-12-20", 30, "2026-Q1")
    assert quarter == [
        ("2025-12-20", "2026-01-18"),
        ("2026-01-19", "2026-02-17"),
        ("2026-02-18", "2026-03-19"),
    ]


periods = st.one_of(
    st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(2024, 2027), st.integers(1, 12)),
    st.builds(lambda y, q: f"{y}-Q{q}", st.integers(2024, 2027), st.integers(1, 4)),
    st.builds(str, st.integers(2024, 2027)),
)


@settings(max_examples=400, deadline=None)
@given(
    start=st.dates(date(2018, 1, 1), date(2028, 6, 30)),
    every=st.one_of(st.integers(1, 31), st.integers(1, 366)),
    length=st.one_of(st.none(), st.integers(0, 800)),
    period_text=periods,
)
def test_plan_windows_match_the_definition(start: date, every: int, length: int | None, period_text: str) -> None:
    period = parse_period(period_text)
    ends_on = None if length is None else start + timedelta(days=length)
    got = plan_windows(plan(start.isoformat(), every, None if ends_on is None else ends_on.isoformat()), period)
    assert got == reference_windows(start, every, ends_on, period)


# ==== units and periods ===================================================================================


@pytest.mark.parametrize(
    ("text", "normal", "first", "last"),
    [
        ("2026-03", "2026-03", date(2026, 3, 1), date(2026, 3, 31)),
        ("2026-02", "2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("2024-02", "2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2000-02", "2000-02", date(2000, 2, 1), date(2000, 2, 29)),
        ("2100-02", "2100-02", date(2100, 2, 1), date(2100, 2, 28)),
        ("2026-12", "2026-12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026-Q1", "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-Q2", "2026-Q2", date(2026, 4, 1), date(2026, 6, 30)),
        ("2026-Q3", "2026-Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026-Q4", "2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2026", "2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("  2026-Q1 \n", "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("0001", "0001", date(1, 1, 1), date(1, 12, 31)),
        ("9999-12", "9999-12", date(9999, 12, 1), date(9999, 12, 31)),
    ],
)
def test_parse_period(text: str, normal: str, first: date, last: date) -> None:
    period = parse_period(text)
    assert (period.text, period.first, period.last) == (normal, first, last)
    assert str(period) == normal
    assert period.contains(first) and period.contains(last)
    if first > date(1, 1, 1):
        assert not period.contains(first - timedelta(days=1))
    if last < date(9999, 12, 31):
        assert not period.contains(last + timedelta(days=1))
    assert parse_period(period.text) == period


@pytest.mark.parametrize(
    "text",
    ["", "  ", "2026-13", "2026-00", "2026-Q0", "2026-Q5", "2026-q1", "2026-3", "26-03", "2026/03", "2026-03-01",
     "2026-H1", "2026-", "-2026", "20260", "2026-Q", "2026-Q12", "0000", "0000-01", "2026 -03", "二〇二六"],
)
def test_parse_period_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("county:八步区", UnitRef("county", county="八步区")),
        ("  county: 八步区 ", UnitRef("county", county="八步区")),
        ("township:八步区/贺街镇", UnitRef("township", county="八步区", township="贺街镇")),
        ("township: 八步区 / 贺街镇 ", UnitRef("township", county="八步区", township="贺街镇")),
        ("community:HZ-001", UnitRef("community", community="HZ-001")),
        ("county:a:b", UnitRef("county", county="a:b")),
    ],
)
def test_parse_unit(text: str, ref: UnitRef) -> None:
    assert parse_unit(text) == ref
    assert parse_unit(str(ref)) == ref


def test_unit_text_round_trips() -> None:
    assert str(parse_unit("township: 八步区 / 贺街镇")) == "township:八步区/贺街镇"
    assert str(parse_unit("community:HZ-001")) == "community:HZ-001"
    assert str(parse_unit("county:钟山县")) == "county:钟山县"


@pytest.mark.parametrize(
    "text",
    ["", "county", "county:", "county:  ", "county:八步区/贺街镇", "township:八步区", "township:/贺街镇",
     "township:八步区/", "township: / ", "village:石门村", "County:八步区", "community:", "community:   ",
     ":八步区", "八步区"],
)
def test_parse_unit_refuses(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_unit(text)
    assert repr(text) in str(raised.value) or text.strip() == ""


def test_units_contain_the_units_inside_them_only() -> None:
    county = parse_unit("county:八步区")
    township = parse_unit("township:八步区/贺街镇")
    other_township = parse_unit("township:钟山县/贺街镇")
    community_in = UnitRef("community", county="八步区", township="贺街镇", community="HZ-001")
    assert county.contains(township)
    assert county.contains(community_in)
    assert not county.contains(county)
    assert not county.contains(other_township)
    assert not county.contains(parse_unit("county:钟山县"))
    assert township.contains(community_in)
    assert not township.contains(township)
    assert not township.contains(county)
    assert not other_township.contains(community_in)
    assert not community_in.contains(community_in)
    # a community written as text names no county: containment is decided from the ledger instead
    assert not township.contains(parse_unit("community:HZ-001"))
