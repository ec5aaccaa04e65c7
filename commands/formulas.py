"""Spreadsheet formula injection (OWASP "CSV injection"): exported cells are never formulas.

A name, note or code entered by anyone (a CLI argument, an imported spreadsheet
cell) may start like a formula — `=HYPERLINK("http://…?"&A1)`, `=cmd|' /C calc'!A0`,
`@SUM(A1)`, `|calc` — and, opened in Excel, WPS or LibreOffice, such a cell in an
export would run. What counts as "starts like a formula" (`TRIGGERS`):

- `=`, `+`, `-`, `@`: OWASP's CSV-injection list and CWE-1236; Excel and LibreOffice
  read a cell starting with any of them as a formula (`+`/`-`/`@` are Lotus-style);
- tab and carriage return: OWASP; some programs skip them and read the rest as a formula;
- NUL: OWASP ASVS 1.2.10 lists it with the others;
- `|`: the DDE form (`|calc`, `cmd|' /C calc'!A0`) that older spreadsheet programs start;
- the full-width `＝ ＋ － ＠` that Chinese input methods type: no spreadsheet documents
  whether it reads them as formulas, so they are treated like the ASCII ones;
- any of these after leading spaces (ASCII or ideographic), which a CSV reader may trim.

A ledger cell also holds lists (`R1;R2`) and free text with `;` in it. A spreadsheet
whose locale separates CSV fields with `;` opens `x;=4+4` as two cells, the second a
formula; so every piece of a CSV cell after a list separator (`;`, `；`, `、`) is judged
like a cell of its own.

Each export format says "this is text" its own way:

- CSV has no types: each piece (the cell, and each part after a list separator) that
  starts like a formula gets a leading apostrophe (`'=1+1`, `x;'=4+4`), the OWASP
  recommendation. Numbers are written as numbers (a negative minute count or score
  is `-5`, not text) because a number cannot carry a formula. The importer removes
  those apostrophes again (`unquote`), so an exported ledger imports back unchanged.
- XLSX has types: a text cell is stored as a string (never a formula) and, when it
  starts like a formula, with Excel's own "quote prefix" flag — exactly what Excel
  stores when a person types `'=1+1`: the cell shows `=1+1`, editing it keeps it
  text, and its value (what the importer reads back) is unchanged. A string cell is
  never split at `;`, so only its start matters. Numbers and dates stay numbers and dates.
- JSON and the terminal table are not spreadsheets and stay as they are.

A piece that itself starts with apostrophes before a trigger (`'=1+1` typed with its
apostrophe) gets one more on the way out and loses one on the way in, so the round
trip is exact for every text: whether a piece is quoted depends only on what follows
its leading apostrophes, and the apostrophe is not a separator.
"""

from __future__ import annotations

import re
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "|", "\t", "\r", "\x00", "＝", "＋", "－", "＠")
SEPARATORS = (";", "；", "、")
_SPACES = " \u3000"
_PIECES = re.compile("([;；、])")


def starts_like_formula(text: str) -> bool:
    """Whether `text` starts with a trigger, after any spaces."""
    return text.lstrip(_SPACES).startswith(TRIGGERS)


def looks_like_formula(text: str) -> bool:
    """Whether a CSV piece needs the mark: it starts like a formula after any apostrophes."""
    return starts_like_formula(text.lstrip("'"))


def _quote_piece(text: str) -> str:
    return "'" + text if looks_like_formula(text) else text


def _unquote_piece(text: str) -> str:
    return text[1:] if text.startswith("'") and looks_like_formula(text[1:]) else text


def quote(text: str) -> str:
    """A CSV text cell no spreadsheet reads as a formula: `'` before every piece that would be
    one — the cell's start and each part after a list separator."""
    return "".join(_quote_piece(piece) for piece in _PIECES.split(text))


def unquote(text: str) -> str:
    """The text `quote` was given: one leading `'` removed from each piece that looks like a formula."""
    return "".join(_unquote_piece(piece) for piece in _PIECES.split(text))


def pieces(text: str) -> list[str]:
    """The cell's start and each part after a list separator, as a spreadsheet might split them."""
    return _PIECES.split(text)[::2]


def protect_sheet(sheet: Any) -> None:
    """Every text cell of an openpyxl worksheet as a string, with Excel's quote prefix where it
    starts like a formula. Call it once all rows are written, before saving."""
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                if starts_like_formula(cell.value):
                    cell.quotePrefix = True
