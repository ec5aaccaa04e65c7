"""A ledger as a printable XLSX sheet (台账) a township can print, sign and file.

Layout, top to bottom: a merged title (`贺街镇 2026年11月 服务信息台账`), a subtitle with
the print date and the moment the data is as of, the header row (frozen, and repeated on
every printed page), one bordered row per record, a 合计 row, the legend of `late`, and
the signature lines (填表人 / 审核人 / 日期). A4 landscape, one page wide, page numbers in
the footer, column widths fitted to the content (CJK characters count double).

The entries sheet keeps the import's own column names and the record id as its last
column, so it imports back with `taizhang import services` adding nothing: the importer
finds the header row by its names (the title and subtitle above it are skipped) and stops
at the 合计 row (the legend and signatures below it are never read). The extra columns
(序号, names) are not import columns. Text cells are always stored as text, never as
formulas, with Excel's quote prefix where they start like one (commands.formulas);
numbers and dates stay numbers and dates.
"""

from __future__ import annotations

import math
from copy import copy
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, BinaryIO

from commands import formulas, labels
from commands.clock import Shown
from commands.output import display_width

DATE_FIELDS = frozenset({"entered_on"})
NAME_FIELDS = frozenset({"resident_names", "provider_names", "linked_records"})  # one a line
# Columns whose text wraps, and the width (characters; CJK count double) each may grow to.
WRAPPED: dict[str, int] = {
    "note": 24,
    "kinds": 24,
    "community_name": 12,
    "residents": 12,
    "providers": 10,
    "resident_names": 12,
    "provider_names": 12,
    "place": 12,
    "linked_records": 24,
}
MAX_WIDTH = 40
MONEY_FIELDS = frozenset(
    {"amount", "allocated", "received", "passed_down", "spent", "reversed", "returned", "balance"}
    | {"linked_spent", "per_record", "per_resident"}
)  # yuan, as numbers (the funding ledger: commands/funds_reads.py; the cost of care: commands/funds_cost.py)
PER_FIELDS = {"per_record": "records", "per_resident": "residents"}  # linked_spent ÷ that count
MONEY_FORMAT = "#,##0.00"
RATE_FIELDS = frozenset({"execution_rate"})
SMALL = {"record_id": 7, "linked_records": 7}  # printed small: a 36-character id must not take a sixth of the page
BODY_SIZE = 10
THIN_GREY = "808080"


@dataclass(frozen=True)
class Heading:
    """The two lines above the table."""

    title: str
    subtitle: str


# ---- words of the heading ---------------------------------------------------------------------
_QUARTERS_ZH = "一二三四"
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")  # fmt: skip


def _day_words(day: date, lang: str) -> str:
    return labels.words("day", lang, day=day.isoformat(), year=day.year, month=day.month, d=day.day)


def period_words(first: date | None, last: date | None, lang: str) -> str:
    """The dates of a ledger as people say them: 2026年11月, 2026年第四季度, 2026年, or a range."""
    if first is None and last is None:
        return ""
    if first is not None and last is not None:
        month_end = _month_end(first)
        if first.day == 1 and first.year == last.year:
            if last == month_end:
                return labels.words(
                    "month", lang, year=first.year, month=first.month, month_en=_MONTHS_EN[first.month - 1]
                )
            if first.month % 3 == 1 and last == _month_end(date(first.year, first.month + 2, 1)):
                q = (first.month - 1) // 3 + 1
                return labels.words("quarter", lang, year=first.year, q=q, q_zh=_QUARTERS_ZH[q - 1])
            if first.month == 1 and last == date(first.year, 12, 31):
                return labels.words("year", lang, year=first.year)
        return labels.words("range", lang, first=_day_words(first, lang), last=_day_words(last, lang))
    if first is not None:
        return labels.words("from", lang, first=_day_words(first, lang))
    assert last is not None
    return labels.words("to", lang, last=_day_words(last, lang))


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


# ---- cells ------------------------------------------------------------------------------------
def _dated(field: str, value: Any) -> Any:
    if field in NAME_FIELDS and isinstance(value, list):
        return "\n".join(str(v) for v in value) or None  # one name a line: a name is never broken
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
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _shown_width(value: Any, number_format: str | None) -> int:
    """How many characters a cell takes as printed (CJK double), for fitting its column."""
    if value is None:
        return 0
    if isinstance(value, date):
        return len(number_format or "yyyy-mm-dd")
    return max((display_width(line) for line in str(value).splitlines()), default=0)


def _header_lines(text: str, room: int) -> str:
    """A header as printed in a column `room` characters wide: a CJK header longer than that on
    two lines (`时长` / `(分钟)`, `修订` / `次数`); the importer ignores the line break."""
    if display_width(text) <= room or " " in text:
        return text
    for opening in ("(", "（"):  # `时长(分钟)`, `支出（元）`
        head, bracket, rest = text.partition(opening)
        if bracket and head:
            return f"{head}\n{opening}{rest}"
    half = len(text) - 2 if text.endswith(("姓名", "编号", "日期", "时间")) else math.ceil(len(text) / 2)
    return f"{text[:half]}\n{text[half:]}" if len(text) >= 4 else text


def _header_width(text: str) -> int:
    """The width a header needs once wrapped: its longest word or line."""
    return max(display_width(word) for word in text.split())


# ---- the sheet --------------------------------------------------------------------------------
def write_xlsx(
    path: Path | BinaryIO,
    rows: list[dict[str, Any]],
    fields: list[str],
    lang: str,
    *,
    heading: Heading,
    kind: str,
    zone: str,
    notes: list[str] | None = None,
    headers: list[str] | None = None,
) -> None:
    """One printable sheet of `rows` (entries or summary rows) with `fields` as its columns.

    `headers`: the column headers when not the labels of `fields` (commands.labels)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = labels.words(f"sheet_{kind}", lang)
    columns = ["seq", *fields] if kind == "entries" else list(fields)
    width = len(columns)
    last = get_column_letter(width)
    thin = Side(style="thin", color=THIN_GREY)
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    body = Font(size=BODY_SIZE)

    def merged_line(text: str, font: Any, align: Any, height: float | None = None) -> int:
        sheet.append([text])
        row = sheet.max_row
        sheet.merge_cells(f"A{row}:{last}{row}")
        cell = sheet.cell(row=row, column=1)
        cell.font, cell.alignment = font, align
        if height:
            sheet.row_dimensions[row].height = height
        return row

    merged_line(heading.title, Font(size=16, bold=True), Alignment(horizontal="center", vertical="center"), 30)
    merged_line(heading.subtitle, Font(size=BODY_SIZE), Alignment(horizontal="right", vertical="center"), 18)

    header_row = sheet.max_row + 1
    headers = list(headers) if headers is not None else labels.headers(columns, lang)
    sheet.append(headers)  # each fitted to its column once the rows are in
    for cell in sheet[header_row]:
        cell.font = Font(size=BODY_SIZE, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.fill = PatternFill("solid", fgColor="E7E6E6")
        cell.border = box
    sheet.row_dimensions[header_row].height = 30

    widths = [min(_header_width(h), 6) for h in headers]  # a longer header wraps (_header_lines)
    wrapped_text: list[tuple[int, int, str]] = []  # (row, column, text) of wrapped cells, to size their rows
    # A column's cells share a few looks (font, border, alignment, number format): each look is built
    # once and copied, not built and hashed again for every cell.
    styled: dict[tuple[int, str], Any] = {}
    for index, row in enumerate(rows, start=1):
        shown = labels.localise(row, lang)
        values = [index if field == "seq" else shown.get(field) for field in columns]
        # Times and dates are real date cells in the store's local time, as clerks' own sheets have them.
        sheet.append([_dated(field, v) for field, v in zip(columns, values, strict=True)])
        # The row's cells by their coordinates: `sheet[n]` and `sheet.max_row` look at every cell of
        # the sheet, which made writing a sheet take time quadratic in its rows.
        appended = [sheet.cell(row=header_row + index, column=c) for c in range(1, width + 1)]
        for column, (cell, field, value) in enumerate(zip(appended, columns, values, strict=True)):
            if isinstance(value, Shown):
                # Shown to the minute; the cell keeps the second (a recorded time its millisecond).
                number_format = "yyyy-mm-dd hh:mm"
            elif field in MONEY_FIELDS and not isinstance(value, str):
                number_format = MONEY_FORMAT
            elif field in RATE_FIELDS and isinstance(value, float):
                number_format = "0.00%"
            elif isinstance(cell.value, date):
                number_format = "yyyy-mm-dd"
            else:
                number_format = cell.number_format
            look = styled.get((column, number_format))
            if look is not None:
                cell._style = copy(look)  # the style of the column's first such cell, as openpyxl copies one
            else:
                cell.number_format = number_format
                cell.border = box
                cell.font = Font(size=SMALL[field]) if field in SMALL else body
                cell.alignment = Alignment(
                    vertical="center",
                    wrap_text=field in WRAPPED,
                    horizontal="center"
                    if field in ("seq", "status", "late", "revision")
                    else "right"
                    if field in MONEY_FIELDS or field in RATE_FIELDS
                    else None,
                )
                styled[(column, number_format)] = cell._style
            if field in WRAPPED and isinstance(cell.value, str):
                wrapped_text.append((cell.row, column, cell.value))
            seen = _shown_width(cell.value, cell.number_format if isinstance(cell.value, date) else None)
            if field in MONEY_FIELDS and isinstance(value, (int, float, Decimal)):
                seen = len(f"{value:,.2f}")
            if field in SMALL:
                seen = math.ceil(seen * SMALL[field] / BODY_SIZE)
            widths[column] = max(widths[column], min(seen, WRAPPED.get(field, MAX_WIDTH)))

    totals = _totals(rows, columns, lang, kind)
    sheet.append(totals)
    for field, cell in zip(columns, sheet[sheet.max_row], strict=True):
        cell.font = Font(size=BODY_SIZE, bold=True)
        cell.border = box
        cell.alignment = Alignment(vertical="center")
        if field in MONEY_FIELDS:
            cell.number_format = MONEY_FORMAT
            cell.alignment = Alignment(vertical="center", horizontal="right")
    for column, value in enumerate(totals):
        if columns[column] in MONEY_FIELDS and isinstance(value, (int, float, Decimal)):
            value = f"{value:,.2f}"
        widths[column] = max(widths[column], _shown_width(value, None) if column else 0)

    # Below the totals: an import stops reading at 合计, so nothing here is ever taken for a record.
    page_width = sum(max(w, 3) + 2 for w in widths)
    wrapped_below = Alignment(wrap_text=True, vertical="top")
    for text in [*(notes or []), labels.legend(zone, lang) if kind == "entries" else None]:
        if text:
            sheet.append([])
            lines = max(1, math.ceil(display_width(text) / max(page_width * 0.9, 1)))
            merged_line(text, Font(size=9), wrapped_below, 14 * lines + 4)
    _signatures(sheet, sheet.max_row + 3, width, lang, Font(size=11))  # two blank rows above

    for column, (cell, text) in enumerate(zip(sheet[header_row], headers, strict=True)):
        cell.value = _header_lines(text, widths[column] + 1)
        widths[column] = max(widths[column], _header_width(cell.value))
    formulas.protect_sheet(sheet)  # every text cell a string, never a formula
    for column, fitted in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = max(fitted, 3) + 2
    # Spreadsheets do not grow a row for its wrapped text when they open a file: say how high it is.
    heights: dict[int, float] = {}
    for row_number, column, text in wrapped_text:
        scale = SMALL.get(columns[column], BODY_SIZE) / BODY_SIZE  # a small font: more a line, lower lines
        room = (widths[column] + 1) * 1.2 / scale  # a 10-point character is narrower than a width unit
        needed = sum(max(1, math.ceil(display_width(part) / room)) for part in text.splitlines() or [""])
        if needed > 1:
            heights[row_number] = max(heights.get(row_number, 0.0), 13.5 * scale * needed + 2)
    for row_number, height in heights.items():
        if height > 15:
            sheet.row_dimensions[row_number].height = height

    sheet.freeze_panes = f"A{header_row + 1}"
    sheet.print_title_rows = f"{header_row}:{header_row}"
    setup = sheet.page_setup
    setup.orientation = "landscape"
    setup.paperSize = sheet.PAPERSIZE_A4
    setup.fitToWidth = 1
    setup.fitToHeight = 0  # as many pages down as it takes
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.print_options.horizontalCentered = True
    margins = sheet.page_margins
    margins.left = margins.right = 0.4
    margins.top, margins.bottom, margins.footer = 0.5, 0.6, 0.3
    sheet.oddFooter.center.text = labels.words("footer", lang)
    sheet.oddFooter.center.size = 9
    workbook.save(path)


def _totals(rows: list[dict[str, Any]], columns: list[str], lang: str, kind: str) -> list[Any]:
    totals: list[Any] = [labels.words("total", lang)] + [None] * (len(columns) - 1)
    if kind == "entries":
        totals[1] = labels.words("records", lang, n=len(rows))
        if "minutes" in columns:
            totals[columns.index("minutes")] = sum(int(r.get("minutes") or 0) for r in rows)
    elif kind == "funds":
        for field in MONEY_FIELDS - {"amount"}:
            if field in columns:
                totals[columns.index(field)] = sum((r.get(field) or 0) for r in rows)
    elif kind == "cost":
        # Money and counts add up (each record and resident is counted in its own community's row);
        # the cost per record and per resident is the totals' quotient, never a sum of quotients.
        for field in ("spent", "linked_spent", "spends", "records", "residents"):
            if field in columns:
                totals[columns.index(field)] = sum(
                    (r.get(field) or 0) for r in rows if isinstance(r.get(field), (int, Decimal))
                )
        for field, count in PER_FIELDS.items():
            if field in columns and "linked_spent" in columns and count in columns:
                money, n = totals[columns.index("linked_spent")], totals[columns.index(count)]
                totals[columns.index(field)] = (
                    (Decimal(money) / n).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if n else "–"
                )
    elif kind == "trace":
        totals[1] = labels.words("entries_n", lang, n=len(rows))
    else:
        for field in ("records", "minutes", "residents_served"):
            if field in columns:
                totals[columns.index(field)] = sum(int(r.get(field) or 0) for r in rows)
    return totals


def _signatures(sheet: Any, row: int, width: int, lang: str, font: Any) -> None:
    """填表人 / 审核人 / 日期 on `row`, spread over the width of the table, each with room to sign."""
    from openpyxl.styles import Alignment
    from openpyxl.utils import get_column_letter

    keys = ("filled_by", "checked_by", "date")
    share = max(width // len(keys), 1)
    for i, key in enumerate(keys):
        start = 1 + i * share
        if start > width:
            break
        end = width if i == len(keys) - 1 else min(start + share - 1, width)
        cell = sheet.cell(row=row, column=start, value=labels.words(key, lang))
        cell.font = font
        cell.alignment = Alignment(horizontal="left", vertical="bottom")
        if end > start:
            sheet.merge_cells(f"{get_column_letter(start)}{row}:{get_column_letter(end)}{row}")
    sheet.row_dimensions[row].height = 30
