"""Rubric v2 (fund_execution, issue 15): v1 stays, and an assessment as of a moment before v2 existed
reproduces v1's output byte for byte (tests/fixtures/assess_v1, written before v2 existed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from commands.assess import RUBRIC_V2, rubric_since
from tests.e2e.conftest import COMMUNITY, COMMUNITY_2, Cli, establish_args, record_args
from tests.funds_events import funds

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures"
BEFORE_V2 = "2026-11-30"  # store_v1 was recorded on 2026-11-29; v2 is in force from 2026-12-01 (+08:00)


@pytest.fixture
def store_v1(tmp_path: Path) -> Cli:
    shutil.copytree(FIXTURE / "store_v1", tmp_path / "v1")
    return Cli(f"sqlite:///{tmp_path / 'v1' / 'taizhang.db'}", tmp_path / "v1" / "taizhang.key")


def test_v2_takes_effect_after_the_v1_fixture_was_recorded() -> None:
    assert rubric_since(RUBRIC_V2) == "2026-11-30T16:00:00.000Z"


@pytest.mark.parametrize("level", ["township", "county"])
@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_an_assessment_as_of_before_v2_is_v1_byte_for_byte(store_v1: Cli, level: str, fmt: str) -> None:
    result = store_v1.ok("assess", "run", "--period", "2026-Q1", "--level", level, "--as-of", BEFORE_V2,
                         "--format", fmt, actor=None)  # fmt: skip
    assert result.stdout == (FIXTURE / "assess_v1" / f"{level}-2026-Q1.{fmt}").read_text(encoding="utf-8")
    # v1 by name gives the same, whatever the moment's default
    named = store_v1.ok("assess", "run", "--period", "2026-Q1", "--level", level, "--as-of", BEFORE_V2,
                        "--format", fmt, "--rubric", "v1", actor=None)  # fmt: skip
    assert named.stdout == result.stdout


@pytest.mark.clock  # "now" is after v2's `since`
def test_after_v2_the_default_is_v2_and_a_unit_without_funds_scores_as_under_v1(store_v1: Cli) -> None:
    v1 = orjson.loads((FIXTURE / "assess_v1" / "township-2026-Q1.json").read_bytes())
    now = store_v1.json("assess", "run", "--period", "2026-Q1", "--level", "township", actor=None)
    assert now["rubric"]["version"] == "2"
    (unit,) = now["units"]
    assert unit["metrics"]["fund_execution"] == {
        "value": None, "weight": 10.0, "points": None, "numerator": 0, "denominator": 0
    }  # fmt: skip
    assert unit["score"] == v1["units"][0]["score"]  # nothing to measure: left out, the rest renormalised
    text = store_v1.ok("assess", "run", "--period", "2026-Q1", "--level", "township", actor=None).stdout
    assert text.splitlines()[0].split()[-2:] == ["fund", "execution"]
    zh = store_v1.ok("assess", "run", "--period", "2026-Q1", "--level", "township", lang="zh", actor=None).stdout
    assert "资金执行率" in zh.splitlines()[0]


# ---- fund_execution on both stores ------------------------------------------------------------------
@pytest.fixture
def funded(run: Cli) -> Cli:
    """八步区 gets 10,000.00 of a line; it passes 6,000.00 to HZ-001 (贺街镇), which spends 3,000.00 and 500.00
    (the latter reversed) in March and 1,000.00 in April; QT-2's township gets nothing."""
    run.ok("init")
    run.ok(*establish_args(COMMUNITY))
    run.ok(*establish_args(COMMUNITY_2))
    run.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    run.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    run.ok(*record_args("HZ-001"))
    with funds(run.url, run.key) as f:
        line = f.allocate("民政局", "贺民发〔2026〕12号", 1_000_000, "county:八步区", "2026-01-10")
        f.transfer(line, "county:八步区", "township:八步区/贺街镇", 800_000, "2026-01-15")
        f.transfer(line, "township:八步区/贺街镇", "community:HZ-001", 600_000, "2026-01-20")
        f.spend(line, "HZ-001", 300_000, "2026-03-05", "记-001")
        wrong = f.spend(line, "HZ-001", 50_000, "2026-03-06", "记-002")
        f.reverse(line, wrong, "2026-03-07", "重复支付")
        f.spend(line, "HZ-001", 100_000, "2026-04-02", "记-003")
    run.ok("projections", "run")
    return run


def _metric(doc: dict[str, Any], unit: str) -> dict[str, Any]:
    return next(u for u in doc["units"] if u["unit"] == unit)["metrics"]["fund_execution"]


def test_fund_execution_is_the_units_execution_rate(funded: Cli) -> None:
    args = ("assess", "run", "--period", "2026-Q1", "--rubric", "v2")
    towns = funded.json(*args, "--level", "township")
    # 贺街镇: 3,000.00 net spent of the 8,000.00 that entered it
    assert _metric(towns, "township:八步区/贺街镇") | {"weight": 0} == {
        "value": 0.375, "weight": 0, "points": _metric(towns, "township:八步区/贺街镇")["points"],
        "numerator": 300_000, "denominator": 800_000,
    }  # fmt: skip
    assert _metric(towns, "township:Babu District/Hejie")["value"] is None  # nothing entered
    county = funded.json(*args, "--level", "county")
    assert (_metric(county, "county:八步区")["numerator"], _metric(county, "county:八步区")["denominator"]) == (
        300_000,
        1_000_000,
    )
    year = funded.json("assess", "run", "--period", "2026", "--rubric", "v2", "--level", "county")
    assert _metric(year, "county:八步区")["value"] == 0.4  # April's spend too
    explained = funded.json("assess", "explain", "--period", "2026-Q1", "--unit", "township:八步区/贺街镇",
                            "--metric", "fund_execution")  # fmt: skip
    assert explained["value"] == 0.375
    # v1 never reads the funds views: the same store's v1 document has no fund_execution
    v1 = funded.json(*args[:-1], "v1", "--level", "township")
    assert all("fund_execution" not in u["metrics"] for u in v1["units"])
