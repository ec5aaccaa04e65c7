"""Hostile import files: CSV and XLSX that are broken, misshapen or full of formulas.

Hypothesis builds import files for every kind — headers in English or Chinese
with columns missing, extra, duplicated or shuffled, title rows and 合计 footers,
cells that are plausible for the seeded store or hostile (formulas such as
`=cmd|' /C calc'!A0`, `=HYPERLINK(…)`, `+1+1`, `-2+3`, `@SUM(A1)`, SQL, control
characters, NUL, 40k-character cells) — and breaks them further: CSV in GBK,
UTF-16, truncated UTF-8, a BOM in the middle, NUL bytes; XLSX with formula cells,
numbers, dates and booleans where text belongs; empty files, binary garbage, a zip
that is not an XLSX. Whatever the file, the import keeps the contract of
`tests.fuzz.test_fuzz_cli.check_outcome` (exit 0/1/2, no traceback, one line per
bad row then one summary line, nothing written on rejection), and with
`--skip-invalid` its counts add up to the rows read and a second run adds nothing.
A second test mixes rows that are valid by construction with rows that are not,
and checks that `--skip-invalid` lands exactly the valid ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commands import formulas, tabular
from commands.importer import KINDS
from tests.fuzz.conftest import Seeded, examples
from tests.fuzz.grammar import CONTROL, HUGE, SQL, UNICODE, Invocation
from tests.fuzz.test_fuzz_cli import run_and_check

FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://example.invalid/?"&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "=1+1",
    "'=1+1",
    "=DDE(\"cmd\";\"/C calc\";\"__DdeLink_60_870516294\")",
    "\t=1+1",
    "\r=1+1",
    "-",
    "=",
]
HOSTILE_CELLS = FORMULAS + SQL + CONTROL + UNICODE + ["", " ", "0000-00-00", "9999-12-31", "-1", "1e9", "NaN", "合计"]

PLAUSIBLE: dict[str, list[Any]] = {
    "community": ["HZ-001", "QT-2", "NOPE"],
    "code": ["R1", "P1", "HZ-001"],
    "name": ["张三", "Li Hua", "=cmd|' /C calc'!A0"],
    "county": ["八步区"],
    "township": ["贺街镇"],
    "village": ["石门村"],
    "natural_villages": ["大岭;新塘", "大岭、新塘"],
    "established_on": ["2026-01-01", dt.date(2026, 1, 1)],
    "birth_date": ["1950-05-02", "1950/5/2", "1950年5月2日", dt.datetime(1950, 5, 2)],
    "gender": ["男", "female"],
    "categories": ["留守老人", "left_behind_child;五保户"],
    "grid": ["G1", "=G1"],
    "household": ["H1", "-H1"],
    "enrolled_on": ["2026-01-02"],
    "role": ["党员", "volunteer"],
    "team": ["先锋队", "@team"],
    "registered_on": ["2026-01-02"],
    "record_id": ["", "not-a-uuid"],
    "kind": ["life_care", "生活照料"],
    "residents": ["R1", "R1;R2", "R1、R2"],
    "providers": ["P1", "P1;P2"],
    "occurred_at": ["2026-03-05 09:30", "2026/3/5 9:30", dt.datetime(2026, 3, 5, 9, 30)],
    "minutes": ["45", 45, 45.0, "1440", 0, -5],
    "place": ["入户", "home_visit"],
    "note": ["送米送油", "=1+1", "+1+1", "@SUM(A1)", "-2+3", "'=1+1"],
    "entered_on": ["2026-03-20", ""],
}


@dataclass(frozen=True)
class Sheet:
    """An import file before it is written: rows of cells, and how to write them."""

    kind: str
    rows: list[list[Any]]
    form: str  # csv encodings, xlsx variants, or garbage
    skip_invalid: bool

    def __repr__(self) -> str:
        rows = [[c if not isinstance(c, str) or len(c) < 60 else f"{c[:20]}…({len(c)})" for c in r] for r in self.rows]
        return f"Sheet({self.kind}, {self.form}, skip_invalid={self.skip_invalid}, rows={rows!r})"


CSV_FORMS = ["utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16", "utf-16-le", "truncated", "bom-inside", "nul-bytes", "flipped"]
XLSX_FORMS = ["xlsx", "xlsx-formulas", "xlsx-two-sheets", "xlsx-truncated"]
GARBAGE_FORMS = ["empty.csv", "empty.xlsx", "binary.csv", "binary.xlsx", "zip.xlsx", "folder.csv", "none", "x.xls"]


def _plausible(column: str) -> st.SearchStrategy[Any]:
    if column == "code":
        return st.integers(0, 10**6).map(lambda n: f"F{n}")
    if column == "record_id":
        return st.one_of(st.just(""), st.uuids().map(str))
    if column == "community":
        return st.sampled_from(["HZ-001", "HZ-001", "QT-2", "NOPE"])
    return st.sampled_from(PLAUSIBLE.get(column, ["x"]))


def _cell(column: str) -> st.SearchStrategy[Any]:
    plausible = PLAUSIBLE.get(column, ["x"])
    if column == "code":
        fresh = st.integers(0, 10**6).map(lambda n: f"F{n}")
        return st.one_of(fresh, st.sampled_from(plausible), st.sampled_from(HOSTILE_CELLS))
    if column == "record_id":
        return st.one_of(st.just(""), st.uuids().map(str), st.sampled_from(plausible + HOSTILE_CELLS))
    return st.one_of(
        st.sampled_from(plausible),
        st.sampled_from(plausible),
        st.sampled_from(HOSTILE_CELLS),
        st.sampled_from(["A" * HUGE, "台" * 40_000]),
        st.text(max_size=20),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    )


@st.composite
def sheets(draw: st.DrawFn) -> Sheet:
    kind = draw(st.sampled_from(KINDS))
    columns = tabular.COLUMNS[kind]
    chinese = draw(st.booleans())
    header = [column.zh if chinese else column.name for column in columns]
    names = [column.name for column in columns]
    # Missing, extra, duplicated and shuffled columns.
    keep = draw(st.lists(st.booleans(), min_size=len(header), max_size=len(header)))
    if draw(st.integers(0, 3)) > 0:
        keep = [True] * len(header)  # mostly complete, so rows get checked
    pairs = [(h, n) for h, n, k in zip(header, names, keep, strict=True) if k]
    if draw(st.integers(0, 5)) == 0:
        pairs.append(("extra", "extra"))
    if draw(st.integers(0, 7)) == 0 and pairs:
        pairs.append(draw(st.sampled_from(pairs)))  # a duplicated header
    if draw(st.integers(0, 3)) == 0:
        order = draw(st.permutations(range(len(pairs))))
        pairs = [pairs[i] for i in order]
    rows: list[list[Any]] = []
    if draw(st.integers(0, 4)) == 0:
        rows.append(["2026年3月服务台账"])  # a title row above the header
    rows.append([h for h, _ in pairs])
    for _ in range(draw(st.integers(0, 5))):
        mode = draw(st.integers(0, 2))  # plausible throughout, one hostile cell, or anything
        row = [draw(_plausible(n) if mode < 2 else _cell(n)) for _, n in pairs]
        if mode == 1 and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(_cell("any"))
        rows.append(row)
        if draw(st.integers(0, 9)) == 0:
            rows.append([])
    if draw(st.integers(0, 5)) == 0:
        rows.append(["合计", "3 条"])
    form = draw(st.sampled_from(CSV_FORMS * 2 + XLSX_FORMS * 2 + GARBAGE_FORMS))
    return Sheet(kind, rows, form, draw(st.booleans()))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _csv_bytes(rows: list[list[Any]], form: str, data: st.DataObject) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([[_text(c) for c in row] for row in rows])
    content = buffer.getvalue()
    if form in ("utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16", "utf-16-le"):
        return content.encode(form, "surrogatepass" if form.startswith("utf-8") else "replace")
    raw = content.encode("utf-8", "surrogatepass")
    if not raw:
        return raw
    at = data.draw(st.integers(0, len(raw)), label="at")
    if form == "truncated":
        return raw[:at]  # cut anywhere, even inside a character
    if form == "bom-inside":
        return raw[:at] + "\ufeff".encode() + raw[at:]
    if form == "nul-bytes":
        return raw[:at] + b"\x00\x00" + raw[at:]
    flipped = bytearray(raw)
    flipped[min(at, len(raw) - 1)] ^= 0x80
    return bytes(flipped)


_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_value(value: Any, formulas: bool) -> Any:
    if isinstance(value, str):
        value = _ILLEGAL.sub("", value.encode("utf-8", "replace").decode("utf-8"))[:32_767]
        return value
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, int) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def _write_xlsx(path: Path, rows: list[list[Any]], form: str) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    if form == "xlsx-two-sheets":
        sheet.title = "说明"
        sheet.append(["这是说明页"])
        sheet = book.create_sheet("台账")
    formulas = form == "xlsx-formulas"
    for row in rows:
        sheet.append([_xlsx_value(c, formulas) for c in row])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str) and not formulas:
                cell.data_type = "s"  # a clerk's text that merely starts like a formula
    book.save(path)
    if form == "xlsx-truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


def write_sheet(folder: Path, sheet: Sheet, data: st.DataObject) -> Path:
    stem = f"in-{uuid.uuid4().hex[:8]}"
    form = sheet.form
    if form in CSV_FORMS:
        path = folder / f"{stem}.csv"
        path.write_bytes(_csv_bytes(sheet.rows, form, data))
    elif form in XLSX_FORMS:
        path = folder / f"{stem}.xlsx"
        _write_xlsx(path, sheet.rows, form)
    elif form == "empty.csv" or form == "empty.xlsx":
        path = folder / f"{stem}.{form.split('.')[1]}"
        path.write_bytes(b"")
    elif form in ("binary.csv", "binary.xlsx"):
        path = folder / f"{stem}.{form.split('.')[1]}"
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=300), label="bytes"))
    elif form == "zip.xlsx":
        path = folder / f"{stem}.xlsx"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("hello.txt", "not a workbook")
            z.writestr("[Content_Types].xml", "<Types/>")
    elif form == "folder.csv":
        path = folder / f"{stem}.csv"
        path.mkdir()
    elif form == "none":
        path = folder / f"{stem}-missing.csv"
    else:
        path = folder / f"{stem}.xls"
        path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    return path


def _rows_read(path: Path, kind: str) -> int | None:
    try:
        return len(tabular.read_table(path, kind).rows)
    except tabular.TabularError:
        return None


IMPORT_FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


def test_hostile_import_files(seeded: Seeded) -> None:
    @settings(max_examples=examples(120, 30, seeded.backend), **IMPORT_FUZZ)  # type: ignore[arg-type]
    @given(sheets(), st.data())
    def fuzz(sheet: Sheet, data: st.DataObject) -> None:
        path = write_sheet(seeded.folder, sheet, data)
        argv = ["--actor", "clerk01", "import", sheet.kind, path.name, "--format", "json"]
        if sheet.skip_invalid:
            argv.append("--skip-invalid")
        result = run_and_check(seeded, Invocation(argv, {}))
        event(f"exit {result.exit_code}")  # shown by --hypothesis-show-statistics
        if result.exit_code != 0:
            return
        counts = orjson.loads(result.stdout)
        event("rows added" if counts["added"] else "nothing added")
        skipped_lines = [line for line in result.stderr.splitlines() if line.startswith("skipped row ")]
        assert len({line.split(":", 1)[0] for line in skipped_lines}) == counts["skipped"], (sheet, result.stderr)
        rows = _rows_read(path, sheet.kind)
        assert rows is not None
        assert counts["added"] + counts["existing"] + counts["skipped"] == rows, (sheet, counts)
        if not sheet.skip_invalid:
            assert counts["skipped"] == 0
        again = run_and_check(seeded, Invocation(argv, {}))  # the same file again adds nothing
        assert again.exit_code == 0 and orjson.loads(again.stdout)["added"] == 0, (sheet, again.stderr)

    fuzz()


# ---- --skip-invalid lands exactly the good rows -----------------------------------------------------
BAD_RESIDENT_FIELDS: list[tuple[str, Any]] = [
    ("community", "NOPE-404"),  # refused by the store (exit 1 kind)
    ("code", "R 1"),
    ("code", "=cmd|' /C calc'!A0;x"),
    ("name", ""),
    ("name", "\x1b[31m"),
    ("name", "A" * HUGE),
    ("birth_date", "0000-00-00"),
    ("birth_date", "9999-12-31"),
    ("gender", "=1+1"),
    ("categories", "@SUM(A1)"),
    ("enrolled_on", "1e9"),
]


@st.composite
def mixed_residents(draw: st.DrawFn, fmt: str) -> tuple[list[dict[str, Any]], list[bool]]:
    # XLSX cannot hold control characters (openpyxl refuses them): those bad values are CSV only.
    bad_fields = [(f, v) for f, v in BAD_RESIDENT_FIELDS if fmt == "csv" or not _ILLEGAL.search(v)]
    count = draw(st.integers(1, 6))
    rows, good = [], []
    for _ in range(count):
        code = f"M{uuid.uuid4().hex[:10]}"
        row = {
            "community": "HZ-001",
            "code": code,
            "name": draw(st.sampled_from(["张三", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "'=1+1"])),
            "birth_date": "1950-05-02",
            "gender": "女",
            "categories": "留守老人",
            "enrolled_on": "2026-01-02",
        }
        bad = draw(st.booleans())
        if bad:
            field, value = draw(st.sampled_from(bad_fields))
            row[field] = value
        rows.append(row)
        good.append(not bad)
    return rows, good


def test_skip_invalid_lands_exactly_the_good_rows(seeded: Seeded) -> None:
    columns = ["community", "code", "name", "birth_date", "gender", "categories", "enrolled_on"]

    @settings(max_examples=examples(25, 6, seeded.backend), **IMPORT_FUZZ)  # type: ignore[arg-type]
    @given(st.sampled_from(["csv", "xlsx"]).flatmap(lambda fmt: st.tuples(st.just(fmt), mixed_residents(fmt))))
    def fuzz(drawn: tuple[str, tuple[list[dict[str, Any]], list[bool]]]) -> None:
        fmt, (rows, good) = drawn
        sheet = Sheet("residents", [columns] + [[row[c] for c in columns] for row in rows], "utf-8" if fmt == "csv" else "xlsx", True)
        path = write_sheet(seeded.folder, sheet, None)  # type: ignore[arg-type]
        result = run_and_check(seeded, Invocation(["--actor", "clerk01", "import", "residents", path.name, "--format", "json", "--skip-invalid"], {}))
        assert result.exit_code == 0, result.stderr
        counts = orjson.loads(result.stdout)
        assert counts == {"added": sum(good), "existing": 0, "skipped": len(good) - sum(good)}, (counts, result.stderr)
        reported = {int(m) for m in re.findall(r"^skipped row (\d+):", result.stderr, re.M)}
        assert reported == {i + 2 for i, ok in enumerate(good) if not ok}  # row 1 is the header
        listed = seeded.cli.json("resident", "list", "HZ-001")
        codes = {r["code"]: r for r in listed}
        for row, ok in zip(rows, good, strict=True):
            if ok:
                # A CSV's leading ' before a formula-like text is the CSV way of saying "text".
                expected = formulas.unquote(row["name"]) if fmt == "csv" else row["name"]
                assert codes[row["code"]]["name"] == expected
            else:
                assert row["code"] not in codes

    fuzz()
