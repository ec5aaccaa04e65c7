"""A ledger as a printable XLSX sheet (台账): title row, headers, one row per record, totals.

The entries sheet uses the import's own column names, so it imports back with
`taizhang import services` and adds nothing. Text cells are always stored as text,
never as formulas, with Excel's quote prefix where they start like one
(commands.formulas); numbers and dates stay numbers and dates.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from commands import formulas, labels
from commands.clock import TIME_FIELDS, XLSX_FORMAT, Shown

DATE_FIELDS = frozenset({"entered_on"})


def _dated(field: str, value: Any) -> Any:
    if isinstance(value, Shown):
        return value.cell()
    if field in DATE_FIELDS and isinstance(value, str):
        return date.fromisoformat(value)
    return _cell_value(value)


def _cell_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def write_xlsx(
    path: Path | BinaryIO, rows: list[dict[str, Any]], fields: list[str], lang: str, *, title: str, kind: str, zone: str
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "台账" if lang == "zh" else "ledger"
    sheet.append([title])
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    sheet.append(labels.headers(fields, lang))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    for row in rows:
        shown = labels.localise(row, lang)
        values = [shown.get(field) for field in fields]
        # Times and dates are real date cells in the store's local time, as clerks' own sheets have them.
        sheet.append([_dated(field, v) for field, v in zip(fields, values, strict=True)])
        for cell, value in zip(sheet[sheet.max_row], values, strict=True):
            if isinstance(value, Shown):
                cell.number_format = XLSX_FORMAT if value.digits else "yyyy-mm-dd hh:mm"
            elif isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    _totals(sheet, rows, fields, lang, kind)
    if kind == "entries":
        sheet.append([])
        sheet.append([labels.legend(zone, lang)])  # below the totals: an import stops reading there
        sheet.cell(row=sheet.max_row, column=1).alignment = Alignment(wrap_text=False)
    formulas.protect_sheet(sheet)  # every text cell a string, never a formula
    for index, field in enumerate(fields, start=1):
        width = 24 if field in ("record_id", "note", "community_name") else 20 if field in TIME_FIELDS else 12
        sheet.column_dimensions[sheet.cell(row=2, column=index).column_letter].width = width
    workbook.save(path)


def _totals(sheet: Any, rows: list[dict[str, Any]], fields: list[str], lang: str, kind: str) -> None:
    label = "合计" if lang == "zh" else "Total"
    totals: list[Any] = [label] + [None] * (len(fields) - 1)
    if kind == "entries":
        totals[1] = f"{len(rows)} 条" if lang == "zh" else f"{len(rows)} records"
        if "minutes" in fields:
            totals[fields.index("minutes")] = sum(int(r.get("minutes") or 0) for r in rows)
    else:
        for field in ("records", "minutes", "residents_served"):
            if field in fields:
                totals[fields.index(field)] = sum(int(r.get(field) or 0) for r in rows)
    sheet.append(totals)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
