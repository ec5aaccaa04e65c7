"""Spreadsheet formula injection (OWASP "CSV injection"): exported cells are never formulas.

A name, note or code entered by anyone (a CLI argument, an imported spreadsheet
cell) may start with `=`, `+`, `-` or `@` — `=HYPERLINK("http://…?"&A1)`,
`=cmd|' /C calc'!A0` — or with a tab or carriage return, which some programs skip
before reading the rest as a formula. Opened in Excel, WPS or LibreOffice, such a
cell in an export would run. Each export format says "this is text" its own way:

- CSV has no types: a text cell that would be read as a formula gets a leading
  apostrophe (`'=1+1`), the OWASP recommendation. Numbers are written as numbers
  (a negative minute count or score is `-5`, not text) because a number cannot
  carry a formula. The importer removes that one apostrophe again (`unquote`), so
  an exported ledger imports back unchanged.
- XLSX has types: a text cell is stored as a string (never a formula) and, when it
  starts like a formula, with Excel's own "quote prefix" flag — exactly what Excel
  stores when a person types `'=1+1`: the cell shows `=1+1`, editing it keeps it
  text, and its value (what the importer reads back) is unchanged. Numbers and
  dates stay numbers and dates.
- JSON and the terminal table are not spreadsheets and stay as they are.

A text that itself starts with apostrophes before a trigger (`'=1+1` typed with
its apostrophe) gets one more on the way out and loses one on the way in, so the
round trip is exact for every text.
"""

from __future__ import annotations

from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet could read `text` as a formula (after any apostrophes it starts with)."""
    return text.lstrip("'").startswith(TRIGGERS)


def quote(text: str) -> str:
    """A CSV text cell no spreadsheet reads as a formula: `'` in front where it would."""
    return "'" + text if looks_like_formula(text) else text


def unquote(text: str) -> str:
    """The text `quote` was given: one leading `'` removed where the rest looks like a formula."""
    return text[1:] if text.startswith("'") and looks_like_formula(text[1:]) else text


def protect_sheet(sheet: Any) -> None:
    """Every text cell of an openpyxl worksheet as a string, with Excel's quote prefix where it
    starts like a formula. Call it once all rows are written, before saving."""
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                if cell.value.startswith(TRIGGERS):
                    cell.quotePrefix = True
