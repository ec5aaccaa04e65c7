"""Clerks' own sheets (tests/fixtures/sheets) imported through the CLI, on both stores.

What must hold: nothing in a sheet is lost in silence. Every column arrives in a field or is
named as ignored; footer and blank rows are counted; durations are read by their unit and a
bare number under a header that names none is refused (exit 2, nothing written) unless
--duration-unit says which; a village's sheet without 社区 column or years imports with
--community and --year.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, store_counts

SHEETS = Path(__file__).resolve().parents[1] / "fixtures" / "sheets"
VILLAGE = SHEETS / "石门村-2026年3月-服务台账.xlsx"
BY_NAME = SHEETS / "石门村-2026年3月-按姓名.xlsx"
TOWNSHIP = SHEETS / "贺街镇-2026年3月-服务台账.csv"


@pytest.fixture
def village(store: Cli) -> Cli:
    """HZ-001 with residents R1 张秀英, R2 王小明 and providers P1 李建国, P2 陈志强."""
    store.ok(*establish_args(COMMUNITY))
    store.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    store.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明")
    store.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "cadre")
    store.ok("provider", "register", "HZ-001", "P2", "--name", "陈志强", "--role", "volunteer")
    return store


def entries(cli: Cli) -> list[tuple[Any, ...]]:
    """The ledger as (local time, minutes, kind, residents, providers, place, note), in time order."""
    cli.ok("projections", "run")
    rows = cli.json("ledger", "entries", "--community", "HZ-001")
    return [
        (r["occurred_at"][:16], r["minutes"], r["kind"], r["residents"], r["providers"], r["place"], r["note"])
        for r in rows
    ]


def refused(cli: Cli, code: int, *args: str) -> list[str]:
    """Run an import that must write nothing; its stderr lines."""
    before = store_counts(cli.url)
    result = cli(*args)
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.stdout == ""
    assert store_counts(cli.url) == before
    return result.stderr.splitlines()


# ---- a village's own xlsx: title, 序号, 服务日期 + 服务时间, hours, no 社区, signature footer --------
VILLAGE_ENTRIES = [
    ("2026-03-05T09:30", 90, "life_care", ["R1"], ["P1"], "home_visit", "送米送油，打扫卫生\n老人身体尚好"),
    ("2026-03-06T14:00", 60, "family_care", ["R1", "R2"], ["P1", "P2"], "happiness_home", "陪同聊天，读报"),
    ("2026-03-12T08:15", 30, "counseling", ["R2"], ["P2"], "home_visit", "谈心\n孩子期中考试压力大"),
    ("2026-03-20T10:00", 120, "production_development", ["R1"], ["P2"], "service_center", "帮办养殖补贴申请"),
]


def test_a_village_sheet_imports_as_it_is_and_reports_what_it_left_out(village: Cli) -> None:
    doc = village.json("import", "services", str(VILLAGE), "--community", "HZ-001")
    assert doc == {
        "added": 4,
        "existing": 0,
        "skipped": 0,
        "ignored_columns": ["联系电话"],  # 序号 is a row number: not reported
        "footer_rows_skipped": 3,  # 填表人/审核人, 负责人（签字）, 制表日期
        "blank_rows_skipped": 2,  # one between entries, one above the signatures
    }
    # Places and notes (服务内容 and 备注, one line each) arrive; hours became minutes.
    assert entries(village) == VILLAGE_ENTRIES
    # The text report names the same; a re-import adds nothing.
    text = village.ok("import", "services", str(VILLAGE), "--community", "HZ-001").stdout.splitlines()
    assert text == [
        f"{VILLAGE.name}: added 0, existing 4, skipped 0",
        "ignored columns: 联系电话",
        "footer rows skipped: 3",
        "blank rows skipped: 2",
    ]
    zh = village.ok("import", "services", str(VILLAGE), "--community", "HZ-001", lang="zh").stdout.splitlines()
    assert zh[1:] == ["未导入的列：联系电话", "跳过的表尾行：3", "跳过的空行：2"]


def test_a_sheet_without_community_column_needs_community(village: Cli) -> None:
    (line,) = refused(village, 2, "import", "services", str(VILLAGE))
    assert line.startswith("Error: ") and "missing required column: community (社区" in line


def test_duration_unit_contradicting_the_header_is_refused(village: Cli) -> None:
    args = ("import", "services", str(VILLAGE), "--community", "HZ-001", "--duration-unit", "minutes")
    (line,) = refused(village, 2, *args)
    assert "--duration-unit minutes contradicts the column '时长（小时）', which counts hours" in line


def test_community_option_conflicting_with_the_sheet_is_a_row_error(village: Cli) -> None:
    lines = refused(
        village, 2, "import", "services", str(TOWNSHIP), "--community", "QT-2", "--duration-unit", "minutes"
    )
    assert lines[:3] == [f"row {n}: community: 'HZ-001' differs from --community QT-2" for n in (3, 4, 5)]
    assert "nothing imported" in lines[-1]


# ---- names, units in the cells, dates without a year -----------------------------------------
def test_dates_without_a_year_need_year(village: Cli) -> None:
    lines = refused(village, 2, "import", "services", str(BY_NAME), "--community", "HZ-001")
    assert lines[0] == "row 4: date: '3月5日' has no year; give --year YYYY for the dates of this sheet"
    assert len(lines) == 5  # four rows and the summary


def test_names_are_looked_up_in_the_community(village: Cli) -> None:
    # With --year the dates and the units in the cells (45分钟, 1小时30分, 90min, 1.5h) are read, and
    # the names (姓名, 帮扶人) are those of the community's active residents and providers.
    doc = village.json("import", "services", str(BY_NAME), "--community", "HZ-001", "--year", "2026")
    assert doc["added"] == 4 and doc["skipped"] == 0
    assert entries(village) == [
        ("2026-03-05T09:30", 45, "life_care", ["R1"], ["P1"], "home_visit", "送米送油"),
        ("2026-03-06T14:00", 90, "family_care", ["R1", "R2"], ["P1", "P2"], "happiness_home", "陪同聊天"),
        ("2026-03-12T08:15", 90, "counseling", ["R2"], ["P2"], "home_visit", "谈心"),
        ("2026-03-20T10:00", 90, "production_development", ["R1"], ["P2"], "service_center", "帮办补贴"),
    ]


def test_a_name_shared_by_two_residents_is_refused_listing_their_codes(village: Cli) -> None:
    village.ok("resident", "enroll", "HZ-001", "R3", "--name", "张 秀英")
    village.ok("projections", "run")
    lines = refused(village, 1, "import", "services", str(BY_NAME), "--community", "HZ-001", "--year", "2026")
    assert lines[0] == (
        "row 4: residents: resident 张秀英 names 2 active residents of community HZ-001: R1, R3; give one of these codes"
    )
    assert len(lines) == 4  # rows 4, 5 and 7 name 张秀英; the summary


# ---- a township's GB18030 CSV: 时长 in bare numbers ---------------------------------------------
def test_bare_durations_under_a_unitless_header_are_refused_until_the_unit_is_given(village: Cli) -> None:
    lines = refused(village, 2, "import", "services", str(TOWNSHIP))
    assert lines[0] == (
        "row 3: minutes: '120' is a bare number and the column's header names no unit; "
        "give --duration-unit minutes|hours, or write 45分钟 or 1.5小时 in the cell"
    )
    assert len(lines) == 4
    doc = village.json("import", "services", str(TOWNSHIP), "--duration-unit", "minutes")
    assert doc == {"added": 3, "existing": 0, "skipped": 0, "footer_rows_skipped": 2}  # 合计, 填表人
    assert entries(village) == [
        ("2026-03-07T08:00", 120, "life_care", ["R1"], ["P1"], "home_visit", "代购药品"),
        ("2026-03-09T16:45", 45, "emergency_aid", ["R2"], ["P2"], "other", None),
        ("2026-03-10T09:30", 60, "rights_protection", ["R1", "R2"], ["P1"], "service_center", "讲解赡养义务"),
    ]


def _csv(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode("gb18030"))
    return path


HEAD = ["社区", "服务类型", "服务对象", "服务人员", "服务日期", "时长"]


@pytest.mark.parametrize(
    ("minutes", "problem"),
    [
        ("0.01小时", "'0.01小时' is 0.6 minutes, not a whole number of minutes"),
        ("半天", "not a duration: '半天' (write 45, 45分钟, 1.5小时 or 1小时30分)"),
        ("25小时", "1500 is outside 1-1440"),
    ],
)
def test_a_bad_duration_is_refused_and_nothing_is_written(
    village: Cli, tmp_path: Path, minutes: str, problem: str
) -> None:
    good = ["HZ-001", "生活照料", "R1", "P1", "2026-03-05 09:30", "45分钟"]
    path = _csv(tmp_path / "s.csv", [HEAD, good, [*good[:5], minutes]])
    lines = refused(village, 2, "import", "services", str(path))
    assert lines[0] == f"row 3: minutes: {problem}"


def test_a_date_without_time_is_refused_unless_a_default_time_is_given(village: Cli, tmp_path: Path) -> None:
    path = _csv(tmp_path / "s.csv", [HEAD, ["HZ-001", "生活照料", "R1", "P1", "2026-03-05", "45分钟"]])
    (line, _summary) = refused(village, 2, "import", "services", str(path))
    assert (
        line
        == "row 2: occurred_at: '2026-03-05' is a date without a time of day; give the time, or --default-time HH:MM"
    )
    doc = village.json("import", "services", str(path), "--default-time", "08:30")
    assert doc == {"added": 1, "existing": 0, "skipped": 0}
    assert [e[:2] for e in entries(village)] == [("2026-03-05T08:30", 45)]


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--default-time", "8点"], "--default-time: expected HH:MM, got '8点'"),
        (["--year", "26"], "--year"),
        (["--duration-unit", "days"], "--duration-unit"),
    ],
)
def test_malformed_sheet_options_exit_2(village: Cli, option: list[str], needle: str) -> None:
    before = store_counts(village.url)
    error_line(village("import", "services", str(TOWNSHIP), *option), 2, needle)
    assert store_counts(village.url) == before


def test_sheet_options_of_services_are_refused_for_other_kinds(village: Cli, tmp_path: Path) -> None:
    path = _csv(tmp_path / "r.csv", [["编号", "姓名"], ["R9", "刘阿婆"]])
    error_line(
        village("import", "residents", str(path), "--year", "2026"), 2, "--year: applies to import services only"
    )
    doc = orjson.loads(village.ok("import", "residents", str(path), "--community", "HZ-001", "--format", "json").stdout)
    assert doc == {"added": 1, "existing": 0, "skipped": 0}
