"""The printed 台账 (`ledger entries|summary --format xlsx`), on both stores.

What a township prints and signs: the structure is checked cell by cell with openpyxl
(merged title, frozen and repeated header, page setup, borders, footer, names, totals,
legend, signatures, the record id last), the printout still imports back adding nothing,
the names it shows are access-logged, and a LibreOffice rendering (skipped where
LibreOffice is not installed) prints it A4 landscape with its page numbers.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from commands.output import display_width
from tests.e2e.conftest import COMMUNITY, Cli, establish_args
from tests.e2e.printed import plain_header, read_printed

FIRST, SECOND = str(uuid.uuid4()), str(uuid.uuid4())


def fill(cli: Cli) -> Cli:
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", "--category", "留守老人")
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明", "--category", "留守儿童")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    cli.ok("provider", "register", "HZ-001", "P2", "--name", "陈志强", "--role", "志愿者")
    cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--resident", "R2",
           "--provider", "P1", "--at", "2026-11-05 09:30", "--minutes", "45", "--place", "入户",
           "--note", "送米送油，测量血压", "--record-id", FIRST)  # fmt: skip
    cli.ok("service", "record", "HZ-001", "--kind", "counseling", "--resident", "R2", "--provider", "P1",
           "--provider", "P2", "--at", "2026-11-20 15:00", "--minutes", "30", "--record-id", SECOND,
           "--entered-on", "2026-11-21")  # fmt: skip
    cli.ok("projections", "run")
    return cli


@pytest.fixture
def filled(store: Cli) -> Cli:
    return fill(store)


def export(cli: Cli, path: Path, *args: str, lang: str = "zh", **kwargs: Any) -> Path:
    cli.ok("ledger", *args, "--format", "xlsx", "--output", str(path), lang=lang, **kwargs)
    return path


def sheet_of(path: Path) -> Any:
    import openpyxl  # type: ignore[import-untyped]

    return openpyxl.load_workbook(path).active


def test_the_printed_ledger_is_laid_out_for_a_page(filled: Cli, tmp_path: Path) -> None:
    path = export(filled, tmp_path / "台账.xlsx", "entries", "--township", "贺街镇", "--period", "2026-11")
    sheet = sheet_of(path)
    printed = read_printed(path)
    width = len(printed.header)
    last = sheet.cell(row=3, column=width).column_letter
    # A merged title and subtitle over the whole table.
    assert printed.title == "贺街镇 2026年11月 服务信息台账"
    assert {str(r) for r in sheet.merged_cells.ranges} >= {f"A1:{last}1", f"A2:{last}2"}
    assert "打印日期" in printed.subtitle and "数据截至" in printed.subtitle and "Asia/Shanghai" in printed.subtitle
    # The header row is frozen and repeats on every printed page.
    assert sheet.freeze_panes == "A4"
    assert sheet.print_title_rows.replace("$", "") == "3:3"
    # A4 landscape, one page wide, as many pages down as it takes, page numbers in the footer.
    setup = sheet.page_setup
    assert (setup.orientation, int(setup.paperSize)) == ("landscape", int(sheet.PAPERSIZE_A4))
    assert (int(setup.fitToWidth), int(setup.fitToHeight)) == (1, 0)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert "第 &P 页 共 &N 页" in sheet.oddFooter.center.text
    # Thin borders round every cell of the table, header to totals.
    for row in sheet.iter_rows(min_row=3, max_row=3 + len(printed.data) + 1, max_col=width):
        for cell in row:
            assert {cell.border.left.style, cell.border.right.style, cell.border.top.style, cell.border.bottom.style} == {"thin"}, cell.coordinate  # fmt: skip
    # The columns: a row number first, names beside the codes, the record id last.
    assert printed.header[0] == "序号" and printed.header[-1] == "记录编号"
    col = printed.column
    assert col("服务对象姓名") == col("服务对象") + 1 and col("服务人员姓名") == col("服务人员") + 1
    first, second = printed.data
    assert [first[0], second[0]] == [1, 2]
    assert [first[-1], second[-1]] == [FIRST, SECOND]
    assert first[col("服务对象")] == "R1;R2" and first[col("服务对象姓名")].splitlines() == ["张秀英", "王小明"]
    assert second[col("服务人员姓名")].splitlines() == ["李建国", "陈志强"]
    assert first[col("备注")] == "送米送油，测量血压" and first[col("服务类型")] == "生活照料"
    assert str(first[col("服务时间")]) == "2026-11-05 09:30:00"  # a real date cell, local time
    assert str(second[col("登记日期")]) == "2026-11-21 00:00:00"
    assert "状态" not in printed.header  # every row is active without --include-voided
    # 合计, the legend of late, then the signature lines.
    assert printed.total[0] == "合计" and printed.total[1] == "2 条" and printed.total[col("时长(分钟)")] == 75
    assert any("逾期登记" in line for line in printed.below)
    assert all(word in printed.below[-1] for word in ("填表人", "审核人", "日期"))
    # Widths fitted to the content, CJK counted double.
    widths = {h: sheet.column_dimensions[sheet.cell(row=3, column=i + 1).column_letter].width for i, h in enumerate(printed.header)}  # fmt: skip
    assert widths["社区名称"] >= min(display_width(COMMUNITY["name"]), 12)
    assert widths["服务对象姓名"] >= display_width("张秀英") and widths["序号"] < widths["服务时间"]


DERIVED = {
    "zh": ["社区名称", "服务对象姓名", "服务人员姓名", "修订次数", "逾期登记", "录入时间", "录入人"],
    "en": ["community name", "resident names", "provider names", "revision", "late", "recorded at", "recorded by"],
}


def test_the_printout_imports_back_adding_nothing(filled: Cli, tmp_path: Path) -> None:
    before = filled.json("ledger", "entries", "--include-voided")
    for lang in ("zh", "en"):
        path = export(filled, tmp_path / f"台账-{lang}.xlsx", "entries", "--period", "2026-11", lang=lang)
        doc = filled.json("import", "services", str(path))
        # What the printout derives is named as ignored (its wrapped headers on one line); the
        # totals, the legend and the signature lines are counted as footer rows.
        assert doc == {"added": 0, "existing": 2, "skipped": 0, "ignored_columns": DERIVED[lang], "footer_rows_skipped": 3}
    assert filled.json("ledger", "entries", "--include-voided") == before


def test_english_title_and_footer(filled: Cli, tmp_path: Path) -> None:
    printed = read_printed(export(filled, tmp_path / "ledger.xlsx", "entries", "--period", "2026-Q4", lang="en"))
    assert printed.title == "all communities Q4 2026 Service ledger"
    assert printed.header[0] == "No." and printed.header[-1] == plain_header("record id")
    assert printed.total[0] == "Total" and "Prepared by:" in printed.below[-1]
    assert "Page &P of &N" in sheet_of(tmp_path / "ledger.xlsx").oddFooter.center.text
    community = read_printed(export(filled, tmp_path / "c.xlsx", "entries", "--community", "HZ-001", "--from", "2026-11-03", "--to", "2026-11-20"))  # fmt: skip
    assert community.title == f"{COMMUNITY['name']} 2026年11月3日至2026年11月20日 服务信息台账"


def test_without_the_key_residents_are_codes_only_with_a_note(filled: Cli, tmp_path: Path) -> None:
    path = tmp_path / "无密钥.xlsx"
    result = filled.ok(
        "ledger", "entries", "--format", "xlsx", "--output", str(path), lang="zh", key=tmp_path / "none.key"
    )
    assert "不显示备注和服务对象姓名" in result.stderr
    printed = read_printed(path)
    assert "服务对象姓名" not in printed.header and "服务人员姓名" in printed.header  # provider names are not sealed
    assert any("仅列编号" in line for line in printed.below)
    assert all("张秀英" not in str(cell) for row in printed.data for cell in row)


def test_the_names_printed_are_access_logged(filled: Cli, tmp_path: Path) -> None:
    export(filled, tmp_path / "台账.xlsx", "entries", "--period", "2026-11")
    log = filled.json("audit", "access", "--resident", "HZ-001/R1")
    (entry,) = [row for row in log if row["command"] == "ledger entries"]
    assert "--format=xlsx" in entry["detail"] and "台账.xlsx" in entry["detail"] and entry["residents"] == 2


def test_the_printed_summary(filled: Cli, tmp_path: Path) -> None:
    path = export(filled, tmp_path / "汇总.xlsx", "summary", "--by", "community", "--township", "贺街镇", "--period", "2026-Q4")  # fmt: skip
    printed = read_printed(path)
    assert printed.title == "贺街镇 2026年第四季度 服务信息汇总"
    assert printed.total[0] == "合计" and printed.total[printed.column("服务记录")] == 2
    assert all(word in printed.below[-1] for word in ("填表人", "审核人", "日期"))
    sheet = sheet_of(path)
    assert sheet.freeze_panes == "A4" and sheet.page_setup.orientation == "landscape"


@pytest.mark.skipif(
    not (shutil.which("soffice") and shutil.which("pdftotext")), reason="LibreOffice or poppler missing"
)
def test_libreoffice_prints_it_a4_landscape_with_page_numbers(run: Cli, tmp_path: Path) -> None:
    if not run.url.startswith("sqlite"):
        pytest.skip("the rendering does not depend on the store")
    run.ok("init")
    fill(run)
    path = export(run, tmp_path / "ledger.xlsx", "entries", "--period", "2026-11")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}  # a profile of its own: never the user's
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
                   check=True, capture_output=True, timeout=180, env=env)  # fmt: skip
    pdf = tmp_path / "ledger.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size"))
    width, height = (float(v) for v in size.split(":")[1].split("pts")[0].split(" x "))
    assert (round(width), round(height)) == (842, 595)  # A4 landscape, in points
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    flat = "".join(text.split())  # pdftotext spaces CJK text its own way
    assert "全部社区2026年11月服务信息台账" in flat and "第1页共1页" in flat
    assert "张秀英" in flat and "填表人" in flat and FIRST in flat
