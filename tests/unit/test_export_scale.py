"""The printed 台账 is written in time linear in its rows. openpyxl's `Worksheet.max_row` and
`max_column` (behind `sheet[n]`) look at every cell of the sheet: asked once a row, they made a
township's 8,000-row quarter take 74 s to write (tests/perf/bench_export.py; BENCHMARKS.md §1).
How often the sheet is scanned must not depend on how many rows it has (counted, never timed)."""

from __future__ import annotations

import io
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from commands import clock
from commands.export import Heading, write_xlsx
from tests.perf.bench_export import FIELDS, entries


def _written(rows: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], bytes]:
    scans: Counter[str] = Counter()
    for name in ("max_row", "max_column"):
        real = getattr(Worksheet, name)

        def counted(sheet: Worksheet, real: property = real, name: str = name) -> int:
            scans[name] += 1
            return real.fget(sheet)  # type: ignore[misc]

        monkeypatch.setattr(Worksheet, name, property(counted))
    shown = entries(rows)
    clock.localise(shown, ZoneInfo("Asia/Shanghai"))
    out = io.BytesIO()
    write_xlsx(out, shown, FIELDS, "zh", heading=Heading("台账", "打印日期"), kind="entries", zone="Asia/Shanghai")
    monkeypatch.undo()
    return scans, out.getvalue()


def test_writing_the_sheet_scans_it_as_often_for_200_rows_as_for_20(monkeypatch: pytest.MonkeyPatch) -> None:
    small, _ = _written(20, monkeypatch)
    large, sheet = _written(200, monkeypatch)
    assert small == large
    # and the 200 rows are all there, each in its own row under the header, styled as the first
    rows = list(load_workbook(io.BytesIO(sheet)).active.iter_rows(values_only=False))
    header = next(i for i, row in enumerate(rows) if row[0].value == "序号")
    body = rows[header + 1 : header + 201]
    assert [row[0].value for row in body] == list(range(1, 201))
    assert {(row[3].number_format, row[3].font.size, row[3].border.left.style) for row in body} == {
        ("yyyy-mm-dd hh:mm", 10, "thin")
    }
