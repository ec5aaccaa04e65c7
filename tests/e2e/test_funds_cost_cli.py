"""`funds cost`: money per service record and per resident served, on SQLite and PostgreSQL.

The funding events are saved through the application (tests/funds_events.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.e2e.conftest import COMMUNITY, COMMUNITY_2, Cli, error_line, establish_args, record_args
from tests.funds_events import funds

LINE = "民政局/贺民发〔2026〕12号"


def _record(cli: Cli, *residents: str, at: str = "2026-03-02 09:00") -> str:
    args = record_args("HZ-001")
    args = [a for a in args if a not in ("--resident", "R1")]
    args[args.index("--at") + 1] = at
    for resident in residents:
        args += ["--resident", resident]
    return str(cli.json(*args)["record_id"])


@pytest.fixture
def told(run: Cli) -> tuple[Cli, dict[str, Any]]:
    """HZ-001 spends 300 yuan on two records (R1; R1 and R2), 100 on a third (reversed), 50 unlinked in March,
    200 in April; QT-2 spends nothing."""
    run.ok("init")
    run.ok(*establish_args(COMMUNITY))
    run.ok(*establish_args(COMMUNITY_2))
    run.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    run.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明")
    run.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    r1, r2, r3 = _record(run, "R1"), _record(run, "R1", "R2"), _record(run, "R2")
    with funds(run.url, run.key) as f:
        line = f.allocate("民政局", "贺民发〔2026〕12号", 1_000_000, "county:八步区", "2026-01-10")
        f.transfer(line, "county:八步区", "community:HZ-001", 500_000, "2026-01-20")
        f.spend(line, "HZ-001", 30_000, "2026-03-05", "记-001", payee="王大妈", records=(r1, r2))
        wrong = f.spend(line, "HZ-001", 10_000, "2026-03-06", "记-002", records=(r3,))
        f.spend(line, "HZ-001", 5_000, "2026-03-07", "记-003")
        f.reverse(line, wrong, "2026-03-08", "重复支付")
        f.spend(line, "HZ-001", 20_000, "2026-04-02", "记-004", records=(r3,))
    run.ok("projections", "run")
    return run, {"records": (r1, r2, r3), "wrong": wrong}


def test_cost_per_record_and_resident_by_community_and_township(told: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ids = told
    rows = cli.json("funds", "cost", "--by", "community", "--period", "2026-03")
    assert rows == [
        {
            "unit": "community:HZ-001", "unit_name": COMMUNITY["name"], "spent": 35_000, "linked_spent": 30_000,
            "spends": 1, "records": 2, "residents": 2, "per_record": 15_000, "per_resident": 15_000,
        },
        {
            "unit": "community:QT-2", "unit_name": COMMUNITY_2["name"], "spent": 0, "linked_spent": 0,
            "spends": 0, "records": 0, "residents": 0, "per_record": None, "per_resident": None,
        },
    ]  # fmt: skip
    towns = cli.json("funds", "cost", "--by", "township", "--period", "2026-Q1")
    assert [(r["unit"], r["per_record"], r["per_resident"]) for r in towns] == [
        ("township:Babu District/Hejie", None, None),
        ("township:八步区/贺街镇", 15_000, 15_000),
    ]
    # April: 200 yuan on r3 alone (R2).
    april = cli.json("funds", "cost", "--by", "county", "--unit", "county:八步区", "--period", "2026-04")
    assert [(r["unit"], r["linked_spent"], r["records"], r["residents"], r["per_resident"]) for r in april] == [
        ("county:八步区", 20_000, 1, 1, 20_000)
    ]
    year = cli.json("funds", "cost", "--by", "community", "--unit", "community:HZ-001", "--period", "2026")
    assert [(r["spent"], r["linked_spent"], r["records"], r["residents"]) for r in year] == [(55_000, 50_000, 3, 2)]
    assert year[0]["per_record"] == 16_667  # 500.00 / 3, rounded half up to the fen


def test_the_table_shows_yuan_and_a_dash_where_nothing_is_linked(told: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ids = told
    text = cli.ok("funds", "cost", "--by", "community", "--period", "2026-03").stdout
    hz, qt = (line for line in text.splitlines() if COMMUNITY["name"] in line or COMMUNITY_2["name"] in line)
    assert "350.00" in hz and "150.00" in hz
    assert qt.split()[-2:] == ["–", "–"]
    zh = cli.ok("funds", "cost", "--by", "community", "--period", "2026-03", lang="zh").stdout
    assert "每位服务对象" in zh.splitlines()[0]
    csv = cli.ok("funds", "cost", "--by", "community", "--period", "2026-03", "--format", "csv").stdout
    assert csv.splitlines()[0] == "unit,unit_name,spent,linked_spent,spends,records,residents,per_record,per_resident"


def test_as_of_before_the_reversal_counts_the_spend(told: tuple[Cli, dict[str, Any]]) -> None:
    cli, ids = told
    history = cli.json("audit", "history", "--line", LINE)
    spent = next(r for r in history if r["event"] == "funds_spent" and r["fields"]["spend_id"] == ids["wrong"])
    rows = cli.json("funds", "cost", "--by", "community", "--unit", "community:HZ-001", "--period", "2026-03",
                    "--as-of", spent["recorded_at"])  # fmt: skip
    assert [(r["spent"], r["linked_spent"], r["records"], r["residents"]) for r in rows] == [(40_000, 40_000, 3, 2)]
    assert rows[0]["per_record"] == 13_333 and rows[0]["per_resident"] == 20_000


def test_bad_input(told: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ids = told
    error_line(cli("funds", "cost", "--by", "township", "--period", "2026-13"), 2, "--period")
    error_line(cli("funds", "cost", "--by", "township", "--period", "2026-03", "--unit", "region:x"), 2, "--unit")
    error_line(cli("funds", "cost", "--by", "village", "--period", "2026-03"), 2, "--by")
    error_line(
        cli("funds", "cost", "--by", "community", "--period", "2026-03", "--unit", "community:NOPE"),
        1,
        "no community NOPE",
    )


def test_printed_sheet_and_output_file(told: tuple[Cli, dict[str, Any]], tmp_path: Path) -> None:
    cli, _ids = told
    path = tmp_path / "服务成本.xlsx"
    args = ("funds", "cost", "--by", "community", "--period", "2026", "--format", "xlsx", "--output", str(path))
    cli.ok(*args, lang="zh")
    sheet = load_workbook(path).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "全市 2026年 服务成本台账"
    assert values[1][0].startswith("打印日期")
    assert [h.replace("\n", "") for h in values[2]] == ["单位", "支出（元）", "关联服务的支出", "关联支出笔数", "服务记录", "服务对象人数", "每条记录", "每位服务对象"]  # fmt: skip
    hz = next(row for row in values if row[0] == COMMUNITY["name"])
    qt = next(row for row in values if row[0] == COMMUNITY_2["name"])
    assert [float(v) for v in hz[1:3]] == [550.0, 500.0] and hz[3:6] == [2, 3, 2]
    assert float(hz[6]) == 166.67 and float(hz[7]) == 250.0  # yuan, numbers
    assert qt[1:] == [0, 0, 0, 0, 0, "–", "–"]
    total = next(row for row in values if row[0] == "合计")
    # money and counts add up; the cost per record and per resident is the totals' quotient
    assert [float(total[1]), float(total[2]), *total[3:6]] == [550.0, 500.0, 2, 3, 2]
    assert float(total[6]) == 166.67 and float(total[7]) == 250.0
    assert any(isinstance(row[0], str) and "支出合计（大写）：人民币伍佰伍拾元整" in row[0] for row in values)
    assert any(isinstance(row[0], str) and row[0].startswith("填表人") for row in values)
    assert sheet.cell(row=4, column=2).number_format == "#,##0.00"
    assert sheet.freeze_panes == "A4" and sheet.print_title_rows == "$3:$3"
    assert sheet.page_setup.orientation == "landscape" and int(sheet.page_setup.paperSize) == 9  # A4
    assert sheet.cell(row=4, column=1).border.left.style == "thin"
    result = cli(*args)
    assert result.exit_code != 0 and "--output" in result.stderr  # an existing file is not overwritten
    cli.ok(*args, "--force")
    town = tmp_path / "town.xlsx"
    cli.ok("funds", "cost", "--by", "township", "--unit", "township:八步区/贺街镇", "--period", "2026-Q1",
           "--format", "xlsx", "--output", str(town), lang="zh")  # fmt: skip
    assert load_workbook(town).active["A1"].value == "八步区贺街镇 2026年第一季度 服务成本台账"


def test_output_for_every_format_and_xlsx_needs_it(told: tuple[Cli, dict[str, Any]], tmp_path: Path) -> None:
    cli, _ids = told
    args = ("funds", "cost", "--by", "community", "--period", "2026-03")
    for fmt in ("json", "csv", "table"):
        path = tmp_path / f"cost.{fmt}"
        cli.ok(*args, "--format", fmt, "--output", str(path))
        assert path.read_text(encoding="utf-8").strip() == cli.ok(*args, "--format", fmt).stdout.strip()
    rows = list(csv.DictReader(io.StringIO((tmp_path / "cost.csv").read_text(encoding="utf-8"))))
    as_json = cli.json(*args)
    assert [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in as_json] == rows  # csv equals json
    error_line(cli(*args, "--format", "xlsx"), 2, "--output")
