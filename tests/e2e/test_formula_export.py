"""Exports never carry a spreadsheet formula, and an exported 台账 still imports back as nothing new.

Names, notes, codes and places that start with `=`, `+`, `-`, `@`, `|` (or their
full-width forms), or hold such a piece after a list separator (`x;=4+4`), entered on the
command line or imported, are exported on both stores as:
- csv: text with a leading `'` before each such piece (`'=1+1`, `x;'=4+4`), numbers as
  numbers; the importer drops those marks again;
- xlsx: string cells (never formulas) with Excel's quote prefix where they start
  like a formula, value unchanged; numbers and dates stay numbers and dates;
- json: unchanged.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from commands import formulas
from tests.e2e.conftest import Cli, event_count

NAME = "=cmd|' /C calc'!A0"
LINK = '=HYPERLINK("http://example.invalid/?"&A1,"click")'
NOTES = ["=1+1", "'=1+1", "+1+1", "-2+3", "@SUM(A1)", "送米送油"]
# A spreadsheet that splits CSV fields at `;` opens `x;=4+4` as two cells, the second a formula.
NOTES += ["送米;=4+4", "慰问；+1+1、@SUM(A1)", "|calc", "cmd;|' /C calc'!A0", "a; -1+1", "＝1+1"]


def hostile_store(cli: Cli) -> list[str]:
    """A store (already initialised) whose free text all looks like formulas; returns the record ids."""
    cli.ok("community", "establish", "HZ-001", "--name", LINK, "--county", "+1+1", "--township", "-2+3",
           "--village", "@SUM(A1)", "--natural-village", "=A1", "--established-on", "2026-01-01")  # fmt: skip
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", NAME, "--grid", "-1", "--household", "+86")
    cli.ok("resident", "enroll", "--name", "'=1+1", "--category", "留守老人", "--", "HZ-001", "-R2")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "@SUM(A1)", "--role", "党员", "--team", "=1+1")
    ids = []
    for minute, note in enumerate(NOTES):
        record_id = str(uuid.uuid4())
        cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "-R2" if minute % 2 else "R1",
               "--provider", "P1", "--at", f"2026-03-05 09:{minute:02d}", "--minutes", str(30 + minute),
               "--note", note, "--record-id", record_id)  # fmt: skip
        ids.append(record_id)
    cli.ok("projections", "run")
    return ids


QUERIES = [
    ["community", "list"],
    ["resident", "list", "HZ-001"],
    ["provider", "list", "HZ-001"],
    ["ledger", "entries"],
    ["ledger", "summary", "--by", "community"],
    ["ledger", "summary", "--by", "township", "--per", "month"],
    ["assess", "run", "--period", "2026-03", "--level", "township"],
    ["visits", "overdue"],
]


def _rendered(value: Any) -> str:
    """A JSON value as the csv prints it before quoting (lists joined with ';')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_rendered(v) for v in value)
    if isinstance(value, dict):
        return ";".join(f"{k}={_rendered(v)}" for k, v in value.items())
    return str(value)


def test_csv_exports_quote_formula_text_and_keep_numbers(store: Cli, tmp_path: Path) -> None:
    hostile_store(store)
    seen_quoted = 0
    for query in QUERIES:
        documents = store.json(*query)
        rows = documents if isinstance(documents, list) else documents.get("units", [])
        text_out = store.ok(*query, "--format", "csv").stdout
        lines = list(csv.reader(io.StringIO(text_out)))
        header, body = lines[0], lines[1:]
        for line in body:
            for cell in line:
                for piece in formulas.pieces(cell):  # the cell and each part after a list separator
                    assert not formulas.starts_like_formula(piece), (query, cell)
        if query[0] == "assess":
            continue  # its csv is the ranking table, not the JSON document's shape
        assert len(body) == len(rows), query
        for line, doc in zip(body, rows, strict=True):
            for name, cell in zip(header, line, strict=True):
                value = doc[name]
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    assert cell == str(value), (query, name, cell)  # a number stays a number
                else:
                    assert cell == formulas.quote(_rendered(value)), (query, name, cell)
                    seen_quoted += cell != _rendered(value)
    assert seen_quoted >= 10  # the hostile texts really went through the quoting
    # The JSON is untouched.
    notes = [e["note"] for e in store.json("ledger", "entries")]
    assert sorted(notes) == sorted(NOTES)


def _xlsx_cells(path: Path) -> list[Any]:
    import openpyxl  # type: ignore[import-untyped]

    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<f[ >]", z.read(name)), f"a formula in {name}"
    sheet = openpyxl.load_workbook(path).active
    return [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]


@pytest.mark.parametrize(
    "query",
    [
        ["ledger", "entries"],
        ["ledger", "summary", "--by", "community"],
        ["assess", "run", "--period", "2026-03", "--level", "township"],
    ],
    ids=["entries", "summary", "assess"],
)
def test_xlsx_exports_hold_no_formula(store: Cli, tmp_path: Path, query: list[str]) -> None:
    hostile_store(store)
    for lang in ("en", "zh"):
        path = tmp_path / f"export-{lang}.xlsx"
        result = store(*query, "--format", "xlsx", "--output", str(path), lang=lang)
        assert result.exit_code == 0, result.stderr
        cells = _xlsx_cells(path)
        texts = [c for c in cells if isinstance(c.value, str)]
        for cell in texts:
            assert cell.data_type == "s", (cell.coordinate, cell.value)
            assert cell.quotePrefix == formulas.starts_like_formula(cell.value), (cell.coordinate, cell.value)
        if query[1] == "entries":
            values = {c.value for c in texts}
            assert {"=1+1", "'=1+1", "-2+3", "@SUM(A1)", LINK} <= values  # the value itself is unchanged
            minutes = [c.value for c in cells if isinstance(c.value, int)]
            assert set(range(30, 30 + len(NOTES))) <= set(minutes)  # numbers stay numbers


# The columns of `ledger entries` that no import field takes: what the ledger derives (names,
# status, revisions, who recorded when). A re-import names them as ignored, as any other.
EXPORT_ONLY = [
    "community name", "county", "township", "status", "revision", "late",
    "recorded at", "recorded by", "revised at", "revised by",
]  # fmt: skip
# The printed xlsx shows fewer of them, and the names beside the codes.
PRINTED_ONLY = ["community name", "resident names", "provider names", "revision", "late", "recorded at", "recorded by"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_exported_ledger_with_formula_notes_imports_back_as_nothing_new(store: Cli, tmp_path: Path, fmt: str) -> None:
    ids = hostile_store(store)
    path = tmp_path / f"台账.{fmt}"
    store.ok("ledger", "entries", "--format", fmt, "--output", str(path))
    before = store.json("ledger", "entries", "--include-voided")
    events = event_count(store.url)
    doc = store.json("import", "services", str(path))
    ignored = [column.replace("_", " ") for column in doc.pop("ignored_columns")]
    assert ignored == (EXPORT_ONLY if fmt == "csv" else PRINTED_ONLY)
    footer = {"footer_rows_skipped": 3} if fmt == "xlsx" else {}  # the printout's totals, legend, signatures
    assert doc == {"added": 0, "existing": len(ids), "skipped": 0, **footer}
    assert event_count(store.url) == events
    store.ok("projections", "run")
    after = store.json("ledger", "entries", "--include-voided")
    assert after == before
    assert sorted(e["note"] for e in after) == sorted(NOTES)


def test_a_clerks_csv_with_a_quoted_formula_imports_as_the_formula_text(store: Cli, tmp_path: Path) -> None:
    """`'=1+1` in a CSV cell is the CSV way of writing the text `=1+1` (as our own exports do)."""
    store.ok("community", "establish", "HZ-001", "--name", "n", "--county", "c", "--township", "t", "--village", "v",
             "--established-on", "2026-01-01")  # fmt: skip
    path = tmp_path / "residents.csv"
    path.write_text("community,code,name\nHZ-001,R1,'=1+1\nHZ-001,R2,''=2\nHZ-001,R3,'plain\n", encoding="utf-8")
    assert store.json("import", "residents", str(path))["added"] == 3
    store.ok("projections", "run")
    names = {r["code"]: r["name"] for r in store.json("resident", "list", "HZ-001")}
    assert names == {"R1": "=1+1", "R2": "'=2", "R3": "'plain"}
    out = store.ok("resident", "list", "HZ-001", "--format", "csv").stdout
    assert "'=1+1" in out and "''=2" in out and "'plain" in out
