"""Read the spreadsheets village clerks already keep (CSV or XLSX) into rows.

``read_table`` finds the header row, maps English or Chinese headers onto the
column names of an import kind and returns the raw cell values; the ``parse_*``
functions turn those cells into dates, numbers and lists.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import os
import re
import tomllib
import unicodedata
import zipfile
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import openpyxl

from commands import files, formulas
from commands.messages import one_line

__all__ = [
    "COLUMNS",
    "CellError",
    "Column",
    "Row",
    "Table",
    "TabularError",
    "complete_year",
    "parse_date",
    "parse_datetime",
    "parse_gender",
    "parse_duration",
    "parse_int",
    "parse_time_of_day",
    "open_table",
    "read_table",
    "split_list",
    "text",
]

HEADER_SEARCH_ROWS = 20
# Stated limits of one import file (README "Limits"), besides its size on disk
# (commands.files.MAX_IMPORT_BYTES): rows of an XLSX as the spreadsheet numbers them, and what an
# XLSX (a zip) may unpack to in all and in its shared-strings part, the one part read whole.
# A CSV has no row limit: it is streamed, and an import holds a bounded part of it at a time
# (docs/decisions: imports in bounded memory); its size on disk bounds it.
MAX_ROWS = 200_000
MAX_XLSX_UNPACKED = 512 * files.MiB
MAX_XLSX_STRINGS = 128 * files.MiB

Cell = str | dt.datetime | dt.date | dt.time | int | float | bool | None
_D = TypeVar("_D", dt.date, dt.datetime)


class TabularError(Exception):
    """A problem with the file as a whole; the message is one line."""


class CellError(ValueError):
    """A cell value that cannot be read as the expected type."""


@dataclass(frozen=True)
class Column:
    """One importable column: English name, Chinese header, alternatives."""

    name: str
    zh: str
    required: bool
    aliases: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.name} ({' / '.join(h for h in (self.zh, *self.aliases) if h != self.name)})"


@dataclass(slots=True)
class Row:
    """A data row; ``number`` is the row number as the spreadsheet shows it."""

    number: int
    values: dict[str, object]


@dataclass
class Table:
    """The recognised columns (in ``COLUMNS`` order) and the data rows, with what was left out:
    the columns no field takes (``ignored``: their headers, or ``column H`` for data under no
    header), and the footer and blank rows skipped below the header."""

    columns: list[str]
    rows: list[Row] | StreamedRows  # StreamedRows (open_table): read again from the file each time
    header_row: int
    ignored: list[str] = field(default_factory=list)
    footer_rows: int = 0
    blank_rows: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # field -> its header as the sheet writes it

    def duration_unit(self) -> str | None:
        """The unit the duration column's header names (`时长(小时)`: hours), if any."""
        header = self.headers.get("minutes")
        return None if header is None else _DURATION_UNITS.get(_header_key(header))


# The fields of each import kind, in the order of its columns, and whether a sheet must have them.
# Which headers mean which field is data: commands/headers.toml, where a county can read it.
_FIELDS: dict[str, list[tuple[str, bool]]] = {
    "communities": [
        ("code", True), ("name", True), ("county", True), ("township", True), ("village", True),
        ("natural_villages", False), ("established_on", False),
    ],
    "residents": [
        ("community", True), ("code", True), ("name", True), ("birth_date", False), ("gender", False),
        ("categories", False), ("grid", False), ("household", False), ("enrolled_on", False),
    ],
    "providers": [
        ("community", True), ("code", True), ("name", True), ("role", True), ("team", False),
        ("registered_on", False),
    ],
    "services": [
        ("community", True), ("record_id", False), ("kind", True), ("residents", True), ("providers", True),
        ("occurred_at", True), ("date", False), ("minutes", True), ("place", False), ("note", False),
        ("entered_on", False),
    ],
    # the funding ledger (commands/funds_import.py)
    "allocations": [
        ("department", True), ("document", True), ("purpose", True), ("amount", True), ("granted_on", True),
        ("unit", True),
    ],
    "spending": [
        ("department", True), ("document", True), ("community", True), ("spent_on", True), ("voucher", True),
        ("payee", False), ("purpose", True), ("amount", True), ("records", False), ("project", False),
        ("home", False),
    ],
}  # fmt: skip
# A required field another column can stand for: a 服务日期 column carries the service's date.
_STANDS_FOR: dict[str, str] = {"occurred_at": "date"}
# Fields several columns may fill, joined one line each (服务内容 and 备注 are both a note).
JOINED = frozenset({"note"})
DURATION_UNITS = ("minutes", "hours")
NO_HEADER = " (no header)"  # how the report names data in a column without a header: `column K (no header)`


def _load_headers() -> dict[str, Any]:
    raw = resources.files("commands").joinpath("headers.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def _columns(table: dict[str, Any]) -> dict[str, list[Column]]:
    columns: dict[str, list[Column]] = {}
    for kind, fields in _FIELDS.items():
        headers: dict[str, list[str]] = table[kind]
        if set(headers) != {name for name, _ in fields}:
            raise RuntimeError(f"headers.toml [{kind}] does not list the fields {[name for name, _ in fields]}")
        columns[kind] = [Column(name, headers[name][0], required, tuple(headers[name][1:])) for name, required in fields]
    return columns


_HEADER_TABLE = _load_headers()
COLUMNS: dict[str, list[Column]] = _columns(_HEADER_TABLE)


# --- headers -------------------------------------------------------------

# "*" marks required columns in many Chinese templates ("*姓名").
_HEADER_NOISE = re.compile(r"[\s_\-*]+")


def _header_key(cell: object) -> str:
    """Normalise a header: NFKC folds （）and full-width letters, case folded,
    and spaces, ``_``, ``-`` and ``*`` dropped so ``Record-ID`` == ``record_id``."""
    if cell is None:
        return ""
    folded = unicodedata.normalize("NFKC", str(cell)).casefold()
    return _HEADER_NOISE.sub("", folded)


def _header_lookup(kind: str) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for column in COLUMNS[kind]:
        for label in (column.name, column.zh, *column.aliases):
            key = _header_key(label)
            if lookup.setdefault(key, column.name) != column.name:
                raise RuntimeError(f"headers.toml [{kind}]: {label!r} is listed under two fields")
    return lookup


_LOOKUPS: dict[str, dict[str, str]] = {kind: _header_lookup(kind) for kind in COLUMNS}
_QUIET = frozenset(_header_key(h) for h in _HEADER_TABLE["quiet"]["headers"])
_DURATION_UNITS: dict[str, str] = {_header_key(h): u for h, u in _HEADER_TABLE["duration_units"].items()}
if not set(_DURATION_UNITS.values()) <= set(DURATION_UNITS):
    raise RuntimeError(f"headers.toml [duration_units]: a unit is not one of {DURATION_UNITS}")


def _recognise(cells: Sequence[object], lookup: dict[str, str]) -> dict[str, list[int]]:
    """Column name -> indexes of the cells in this row carrying its header."""
    found: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        name = lookup.get(_header_key(cell))
        if name is not None:
            found.setdefault(name, []).append(index)
    return found


def _missing_required(kind: str, found: dict[str, list[int]], supplied: frozenset[str] = frozenset()) -> list[Column]:
    """Required columns the row lacks; `supplied` are given otherwise (`--community`)."""
    return [
        c
        for c in COLUMNS[kind]
        if c.required and c.name not in found and c.name not in supplied and _STANDS_FOR.get(c.name) not in found
    ]


def column_letter(index: int) -> str:
    """A 0-based column index as the spreadsheet names it: 0 -> A, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _ignored_headers(cells: Sequence[Cell], used: set[int]) -> tuple[list[str], list[int]]:
    """The headers of the columns no field takes (序号 and the like left out), and the indexes of
    the columns under an empty header (reported only if a row has data there)."""
    ignored: list[str] = []
    unheaded: list[int] = []
    for index, cell in enumerate(cells):
        if index in used:
            continue
        header = text(cell)
        if header is None:
            unheaded.append(index)
        elif _header_key(header) not in _QUIET:
            ignored.append("".join(header.splitlines()))  # a header wrapped in its cell (服务对象\n姓名), on one line
    return ignored, unheaded


# --- reading -------------------------------------------------------------


@dataclass
class _Tally:
    """What the data rows left out, counted while they are read."""

    footer: int = 0
    blank: int = 0
    pending_blank: int = 0  # blank rows not yet known to lie between rows (trailing ones are not counted)
    stray: set[int] = field(default_factory=set)  # unheaded columns holding data

    def seen(self) -> None:
        self.blank += self.pending_blank
        self.pending_blank = 0


def read_table(path: str | os.PathLike[str], kind: str, supplied: frozenset[str] = frozenset()) -> Table:
    """Read a CSV or XLSX file of the given import kind (a key of ``COLUMNS``); `supplied` names
    required columns the import gets otherwise (``--community``)."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown import kind: {kind!r}")
    source = Path(path)
    label = source.name
    # closing() releases the workbook even when the header search fails.
    with closing(_raw_rows(source, label)) as raw:
        rows = _numbered(raw, label)
        header_row, positions, cells = _find_header(rows, kind, label, supplied)
        order = [c.name for c in COLUMNS[kind] if c.name in positions]
        pairs = [(name, index) for name in order for index in positions[name]]
        used = {index for _, index in pairs}
        ignored, unheaded = _ignored_headers(cells, used)
        tally = _Tally()
        data = list(_data_rows(rows, pairs, tally, unheaded, len(cells)))
        ignored += [f"column {column_letter(i)}{NO_HEADER}" for i in sorted(tally.stray)]
        headers = {name: str(cells[positions[name][0]]).strip() for name in order}
        return Table(order, data, header_row, ignored, tally.footer, tally.blank, headers)


def open_table(path: str | os.PathLike[str], kind: str, supplied: frozenset[str] = frozenset()) -> Table:
    """`read_table` without holding the rows: the header is found now, and `rows` reads the data rows
    from the file again each time it is iterated. What was left out (`ignored`, `footer_rows`,
    `blank_rows`) is complete once an iteration has reached the end."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown import kind: {kind!r}")
    source = Path(path)
    label = source.name
    opened: list[tuple[int, ...]] = []
    with closing(_raw_rows(source, label, opened)) as raw:
        header_row, positions, cells = _find_header(_numbered(raw, label), kind, label, supplied)
        order = [c.name for c in COLUMNS[kind] if c.name in positions]
        pairs = [(name, index) for name in order for index in positions[name]]
        ignored, unheaded = _ignored_headers(cells, {index for _, index in pairs})
        headers = {name: str(cells[positions[name][0]]).strip() for name in order}
    table = Table(order, [], header_row, ignored, 0, 0, headers)
    table.rows = StreamedRows(source, label, table, pairs, unheaded, len(cells), opened[0])
    return table


class FileChanged(TabularError):
    """The file was replaced or changed between two readings of one import."""


@dataclass
class StreamedRows:
    """The data rows of an `open_table`, read from the file at each iteration."""

    source: Path
    label: str
    table: Table
    pairs: list[tuple[str, int]]
    unheaded: list[int]
    width: int
    fingerprint: tuple[int, ...]

    def __iter__(self) -> Iterator[Row]:
        header_row = self.table.header_row
        stray_headers = [name for name in self.table.ignored if not name.endswith(NO_HEADER)]
        opened: list[tuple[int, ...]] = []
        with closing(_raw_rows(self.source, self.label, opened)) as raw:
            rows = _numbered(raw, self.label)
            for number, _cells in rows:
                if number == header_row:
                    break
            if opened != [self.fingerprint]:
                raise FileChanged(f"{self.label}: the file changed while it was being imported; nothing imported")
            tally = _Tally()
            yield from _data_rows(rows, self.pairs, tally, self.unheaded, self.width)
        self.table.ignored = stray_headers + [f"column {column_letter(i)}{NO_HEADER}" for i in sorted(tally.stray)]
        self.table.footer_rows, self.table.blank_rows = tally.footer, tally.blank


def _fingerprint(stream: BinaryIO) -> tuple[int, ...]:
    """Which file an open stream reads, and in what state (device, inode, size, change times)."""
    info = os.fstat(stream.fileno())
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _raw_rows(
    source: Path, label: str, opened: list[tuple[int, ...]] | None = None
) -> Generator[Sequence[Cell], None, None]:
    """The file's rows of cells; `opened` receives the `_fingerprint` of the file once it is open."""
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(source, label, opened)
    if suffix == ".xlsx":
        return _xlsx_rows(source, label, opened)
    shown = suffix or "(none)"
    raise TabularError(f"{label}: unsupported file type {shown} (expected .csv or .xlsx)")


def _numbered(raw: Iterable[Sequence[Cell]], label: str) -> Iterator[tuple[int, Sequence[Cell]]]:
    """Rows with their numbers as the spreadsheet counts them (a sheet's rows up to MAX_ROWS: the
    XLSX reader refuses more while it reads)."""
    return enumerate(raw, start=1)


def _one_line(message: object) -> str:
    return one_line(message)


def _os_error(label: str, error: OSError) -> TabularError:
    return TabularError(f"{label}: cannot read file: {_one_line(error.strerror or error)}")


def _input_error(label: str, problem: files.InputProblem) -> TabularError:
    if problem.strerror is not None:
        return TabularError(f"{label}: cannot read file: {_one_line(problem.strerror)}")
    if problem.limit is not None:
        return TabularError(f"{label}: larger than the limit of {files.limit_text(problem.limit)} for one import")
    return TabularError(f"{label}: not a regular file")  # a pipe or a device would be read for ever


def _encoding(stream: BinaryIO, label: str) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes so, else GB18030 (what Chinese Excel
    saves as "CSV"); read in pieces, nothing kept. The stream is left at its start."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        stream.seek(0)
        try:
            while piece := stream.read(files.MiB):
                decoder.decode(piece)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        finally:
            stream.seek(0)
        return encoding
    raise TabularError(f"{label}: not UTF-8 or GB18030 text")


def _text_lines(stream: BinaryIO, encoding: str) -> Iterator[str]:
    """The decoded lines as io.StringIO(newline="") yields them, without a BOM at the start."""
    lines = io.TextIOWrapper(stream, encoding=encoding, newline="")
    first = True
    for line in lines:
        if first:
            line = line.removeprefix("\ufeff")
            first = False
            if not line:  # the file held only its BOM
                return
        yield line


def _csv_rows(source: Path, label: str, opened: list[tuple[int, ...]] | None) -> Generator[list[str], None, None]:
    try:
        stream = files.open_input(source, label, files.MAX_IMPORT_BYTES)
    except files.InputProblem as problem:
        raise _input_error(label, problem) from None
    try:
        if opened is not None:
            opened.append(_fingerprint(stream))
        try:
            encoding = _encoding(stream, label)
        except OSError as error:
            raise _os_error(label, error) from None
        reader = csv.reader(_text_lines(stream, encoding))
        try:
            for cells in reader:
                # The `'` a CSV export put before a formula-like text (commands.formulas) goes again.
                yield [formulas.unquote(cell) if "'" in cell else cell for cell in cells]  # no `'`: nothing to undo
        except csv.Error as error:
            raise TabularError(f"{label}: line {reader.line_num}: {_one_line(error)}") from None
        except OSError as error:
            raise _os_error(label, error) from None
    finally:
        stream.close()


def _check_archive(stream: BinaryIO, label: str) -> None:
    """Refuse a workbook whose parts would unpack to more than the limits (a zip bomb): the
    sizes a zip states bound what zipfile will ever unpack from it."""
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise TabularError(f"{label}: not a readable XLSX file ({_one_line(error)})") from None
    finally:
        stream.seek(0)
    total = sum(member.file_size for member in members)
    if total > MAX_XLSX_UNPACKED:
        raise TabularError(
            f"{label}: unpacks to more than {files.limit_text(MAX_XLSX_UNPACKED)} (the limit of one import); split the file"
        )
    for member in members:
        if member.filename.lower().endswith("sharedstrings.xml") and member.file_size > MAX_XLSX_STRINGS:
            raise TabularError(
                f"{label}: its shared strings unpack to more than {files.limit_text(MAX_XLSX_STRINGS)}; split the file"
            )


_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb"""(?:^|\s)r\s*=\s*["'](\d+)""")
_CHUNK = 1 << 20
_LONGEST_TAG = 4096


def _count_rows_first(stream: BinaryIO, member: str | None, label: str) -> None:
    """Refuse a sheet whose last row lies past MAX_ROWS before its cells are parsed (a fast scan
    of the row tags: parsing 200,000 rows of cells takes the better part of a minute).

    Rows are numbered as openpyxl numbers them: a row's `r`, or the one after the previous row.
    `member` is the sheet's part in the zip (openpyxl's own attribute; without it, the count
    while reading still refuses such a sheet, only later)."""
    if not member:
        return
    highest = 0
    try:
        with zipfile.ZipFile(stream) as archive, archive.open(member.lstrip("/")) as sheet:
            tail = b""
            while chunk := sheet.read(_CHUNK):
                data = tail + chunk
                cut = data.rfind(b"<")
                tail = data[cut:] if cut >= 0 and len(data) - cut < _LONGEST_TAG else b""
                for match in _ROW_TAG.finditer(data, 0, len(data) - len(tail)):
                    number = _ROW_NUMBER.search(match.group(1))
                    highest = int(number.group(1)) if number else highest + 1
                    if highest > MAX_ROWS:
                        raise TabularError(f"{label}: more than {MAX_ROWS:,} rows (the limit of one import); split the file")
    except (KeyError, zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # openpyxl reports a damaged file in its own words
    finally:
        stream.seek(0)


def _xlsx_rows(
    source: Path, label: str, opened: list[tuple[int, ...]] | None
) -> Generator[tuple[Cell, ...], None, None]:
    try:
        stream = files.open_input(source, label, files.MAX_IMPORT_BYTES)
    except files.InputProblem as problem:
        raise _input_error(label, problem) from None
    if opened is not None:
        opened.append(_fingerprint(stream))
    try:
        _check_archive(stream, label)
        # Read-only mode streams the sheet row by row; only the shared strings are held whole.
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except TabularError:
        stream.close()
        raise
    except OSError as error:
        stream.close()
        raise _os_error(label, error) from None
    except Exception as error:  # openpyxl raises many types for a damaged file
        stream.close()
        raise TabularError(f"{label}: not a readable XLSX file ({_one_line(error)})") from None
    try:
        if not book.worksheets:
            raise TabularError(f"{label}: the workbook has no worksheet")
        sheet = book.worksheets[0]
        _count_rows_first(stream, getattr(sheet, "_worksheet_path", None), label)
        # The stored dimensions are often wrong in files written by other tools (or claim a
        # million rows): never trusted, the rows are counted as they come.
        sheet.reset_dimensions()
        # Counted as they come as well: a sheet whose rows the fast scan could not count is refused here.
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS:
                raise TabularError(f"{label}: more than {MAX_ROWS:,} rows (the limit of one import); split the file")
            yield cells
    except TabularError:
        raise
    except Exception as error:
        raise TabularError(f"{label}: not a readable XLSX file ({_one_line(error)})") from None
    finally:
        book.close()
        stream.close()


def _find_header(
    rows: Iterator[tuple[int, Sequence[Cell]]], kind: str, label: str, supplied: frozenset[str]
) -> tuple[int, dict[str, list[int]], Sequence[Cell]]:
    """Consume rows up to the header; return its number, column positions and cells."""
    lookup = _LOOKUPS[kind]
    best: dict[str, list[int]] = {}
    for number, cells in rows:
        found = _recognise(cells, lookup)
        if not _missing_required(kind, found, supplied):
            return number, _positions(found, cells, number, label), cells
        if len(found) > len(best):
            best = found
        if number >= HEADER_SEARCH_ROWS:
            break
    raise TabularError(_header_problem(kind, best, label, supplied))


def _positions(
    found: dict[str, list[int]], cells: Sequence[Cell], number: int, label: str
) -> dict[str, list[int]]:
    for name, indexes in found.items():
        if len(indexes) > 1 and name not in JOINED:
            headers = ", ".join(repr(str(cells[i]).strip()) for i in indexes)
            raise TabularError(
                f"{label}: duplicate column: {name} (headers {headers} in row {number})"
            )
    return found


def _header_problem(kind: str, best: dict[str, list[int]], label: str, supplied: frozenset[str]) -> str:
    if not best:
        expected = ", ".join(c.describe() for c in COLUMNS[kind] if c.required and c.name not in supplied)
        return (
            f"{label}: no header row found in the first {HEADER_SEARCH_ROWS} rows "
            f"(expected columns: {expected})"
        )
    missing = _missing_required(kind, best, supplied)
    noun = "column" if len(missing) == 1 else "columns"
    return f"{label}: missing required {noun}: " + "; ".join(c.describe() for c in missing)


_FOOTER_ZH = ("合计", "总计", "小计")
_FOOTER_INITIALS = frozenset("合总小Tt")
# The signature lines under a clerk's sheet (`填表人：赵敏  审核人：`), with or without values.
_SIGNATURE = re.compile(
    r"(?:填表|填报|制表|统计|审核|审批|复核|经办|负责|联系)人|(?:制表|填表|填报|报送)(?:日期|时间)"
    r"|联系电话|(?:单位)?[(（]?(?:盖章|签章|签字|签名)"
)
_SIGNATURE_INITIALS = frozenset("填制统审复经负联报单盖签(（")


def _is_footer(cell: object) -> bool:
    """Whether a row's first non-empty (already stripped) cell starts a footer."""
    if not isinstance(cell, str) or cell[0] not in _FOOTER_INITIALS:
        return False
    if cell.startswith(_FOOTER_ZH):
        return True
    head = cell[:7].casefold()
    for word in ("totals", "total"):
        if head.startswith(word):
            following = head[len(word) : len(word) + 1]
            # "Total:", "Totals 12" end the table; "Totally…" is someone's data.
            return not (following.isascii() and following.isalpha())
    return False


def _is_signature(cell: object) -> bool:
    """Whether a row's first non-empty (already stripped) cell is a signature line of the foot."""
    return isinstance(cell, str) and cell[0] in _SIGNATURE_INITIALS and _SIGNATURE.match(cell) is not None


def _first_value(cells: Iterable[Cell]) -> Cell:
    for cell in cells:
        if isinstance(cell, str):
            cell = cell.strip()
            if cell:
                return cell
        elif cell is not None:
            return cell
    return None


def _data_rows(
    rows: Iterator[tuple[int, Sequence[Cell]]],
    pairs: list[tuple[str, int]],
    tally: _Tally,
    unheaded: list[int],
    width: int,
) -> Iterator[Row]:
    names = [name for name, _ in pairs]
    indexes = [index for _, index in pairs]
    joined = len(set(names)) < len(names)
    for number, cells in rows:
        first = _first_value(cells)
        if first is None:
            tally.pending_blank += 1
            continue
        if _is_footer(first):
            tally.seen()
            tally.footer += 1 + _count_footer(rows)
            return
        if _is_signature(first):
            tally.seen()
            tally.footer += 1
            continue
        values = _pick(cells, indexes)
        # A template row with only its 序号 filled in carries nothing to import.
        if values.count(None) == len(values):
            tally.pending_blank += 1
            continue
        tally.seen()
        if len(cells) > width or unheaded:
            _note_stray(cells, unheaded, width, tally)
        yield Row(number, _join(names, values) if joined else dict(zip(names, values, strict=True)))


def _count_footer(rows: Iterator[tuple[int, Sequence[Cell]]]) -> int:
    """The non-blank rows below a 合计 row: never read as data, only counted."""
    return sum(1 for _, cells in rows if _first_value(cells) is not None)


def _note_stray(cells: Sequence[Cell], unheaded: list[int], width: int, tally: _Tally) -> None:
    """Remember the columns without a header that hold data in this row."""
    for index in unheaded:
        if index < len(cells) and _clean(cells[index]) is not None:
            tally.stray.add(index)
    for index in range(width, len(cells)):
        if _clean(cells[index]) is not None:
            tally.stray.add(index)


def _join(names: list[str], values: list[Cell]) -> dict[str, object]:
    """A row's values when several columns fill one field (JOINED): their texts, one line each."""
    row: dict[str, object] = {}
    for name, value in zip(names, values, strict=True):
        if name in row and value is not None:
            earlier = row[name]
            row[name] = value if earlier is None else f"{text(earlier)}\n{text(value)}"
        else:
            row.setdefault(name, value)
    return row


def _pick(cells: Sequence[Cell], indexes: list[int]) -> list[Cell]:
    width = len(cells)
    return [_clean(cells[index]) if index < width else None for index in indexes]


def _clean(value: Cell) -> Cell:
    if isinstance(value, str):
        return value.strip() or None
    return value


# --- cell parsers --------------------------------------------------------

_MIDNIGHT = dt.time()

_DATETIME = re.compile(
    r"""
    (?P<y>[0-9]{4})
    (?:
        (?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})
      | \s*年\s*(?P<zm>[0-9]{1,2})\s*月\s*(?P<zd>[0-9]{1,2})\s*[日号]?
      | (?P<cm>[0-9]{2})(?P<cd>[0-9]{2})
    )
    (?:
        (?:[Tt]|\s+|(?<=[日号]))
        (?:
            (?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})
            (?::(?P<S>[0-9]{2})(?:[.,](?P<F>[0-9]{1,6}))?)?
          | (?P<zH>[0-9]{1,2})\s*[时点]\s*
            (?:(?P<zM>[0-9]{1,2})\s*分\s*(?:(?P<zS>[0-9]{1,2})\s*秒)?)?
        )
        \s*(?P<tz>[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?
    )?
    """,
    re.VERBOSE,
)


def _group_int(match: re.Match[str], *names: str) -> int:
    for name in names:
        value = match.group(name)
        if value is not None:
            return int(value)
    return 0


def _offset(raw: str | None) -> dt.tzinfo | None:
    if raw is None:
        return None
    if raw in ("Z", "z"):
        return dt.UTC
    digits = raw[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if minutes > 59:
        raise ValueError("offset minutes out of range")
    delta = dt.timedelta(hours=hours, minutes=minutes)
    # dt.timezone rejects offsets of 24 hours or more with ValueError.
    return dt.timezone(-delta if raw[0] == "-" else delta)


# The form nearly every cell of an export has, parsed without NFKC and the general pattern.
_PLAIN_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ Tt]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")


def _parse_text_datetime(raw: str, what: str) -> tuple[dt.datetime, bool]:
    plain = _PLAIN_DATETIME.fullmatch(raw)
    if plain is not None:  # ASCII only: what the general pattern below reads it as, the same value
        y, m, d, hour, minute, second = plain.groups()
        try:
            value = dt.datetime(int(y), int(m), int(d), int(hour), int(minute), int(second or 0))
        except ValueError:
            raise CellError(f"not {what}: {raw!r}") from None
        return _in_years(value, what, raw), True
    match = _DATETIME.fullmatch(unicodedata.normalize("NFKC", raw).strip())
    if match is None:
        raise CellError(f"not {what}: {raw!r}")
    has_time = match.group("H") is not None or match.group("zH") is not None
    fraction = (match.group("F") or "").ljust(6, "0")
    try:
        value = dt.datetime(
            _group_int(match, "y"),
            _group_int(match, "m", "zm", "cm"),
            _group_int(match, "d", "zd", "cd"),
            _group_int(match, "H", "zH"),
            _group_int(match, "M", "zM"),
            _group_int(match, "S", "zS"),
            int(fraction),
            tzinfo=_offset(match.group("tz")),
        )
    except ValueError:
        raise CellError(f"not {what}: {raw!r}") from None
    return _in_years(value, what, raw), has_time


# Nothing in a ledger of living people and present-day services lies outside these years; the
# bounds also keep a time zone's or a day's shift inside what datetime can hold.
MIN_YEAR, MAX_YEAR = 1900, 2999


def _in_years(value: _D, what: str, raw: object) -> _D:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        shown = raw.isoformat() if isinstance(raw, dt.date) else raw
        raise CellError(f"not {what}: {shown!r} is outside the years {MIN_YEAR}–{MAX_YEAR}")
    return value


def _require_text(value: object, what: str) -> str:
    raw = text(value)
    if raw is None:
        raise CellError(f"empty cell, expected {what}")
    return raw


def parse_date(value: object) -> dt.date:
    """A calendar date; a datetime cell or a midnight time gives its date."""
    if isinstance(value, dt.datetime):
        return _in_years(value, "a date", value).date()
    if isinstance(value, dt.date):
        return _in_years(value, "a date", value)
    raw = _require_text(value, "a date")
    parsed, has_time = _parse_text_datetime(raw, "a date")
    # Excel's CSV export of a date cell can append "0:00"; any other time is suspect.
    if has_time and (parsed.tzinfo is not None or parsed.time() != _MIDNIGHT):
        raise CellError(f"not a date (has a time of day): {raw!r}")
    return parsed.date()


DAY = dt.timedelta(days=1)


def parse_instant(raw: str) -> tuple[dt.datetime, dt.timedelta]:
    """A typed date or date-time and the unit it is given to: a day for a date, an hour for `9时`,
    a minute for `09:30`, a second for `09:30:15`, 10⁻ⁿ s for n fraction digits."""
    value, _ = _parse_text_datetime(raw, "a date and time")
    match = _DATETIME.fullmatch(unicodedata.normalize("NFKC", raw).strip())
    if match is None:  # cannot happen: parsed just above
        raise CellError(f"not a date and time: {raw!r}")
    if match.group("F") is not None:
        return value, dt.timedelta(microseconds=10 ** (6 - len(match.group("F"))))
    if match.group("S") is not None or match.group("zS") is not None:
        return value, dt.timedelta(seconds=1)
    if match.group("M") is not None or match.group("zM") is not None:
        return value, dt.timedelta(minutes=1)
    if match.group("zH") is not None:
        return value, dt.timedelta(hours=1)
    return value, DAY


def parse_datetime(value: object) -> tuple[dt.datetime, bool]:
    """A datetime and whether it carried a time of day (else it is midnight).

    An XLSX datetime cell at exactly midnight counts as a date without time:
    a date-formatted cell cannot be told apart from one.
    """
    if isinstance(value, dt.datetime):
        return _in_years(value, "a date and time", value), value.tzinfo is not None or value.time() != _MIDNIGHT
    if isinstance(value, dt.date):
        return dt.datetime.combine(_in_years(value, "a date and time", value), _MIDNIGHT), False
    raw = _require_text(value, "a date and time")
    return _parse_text_datetime(raw, "a date and time")


_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")


def parse_int(value: object) -> int:
    """A whole number; integral floats (``30.0``) are accepted."""
    if isinstance(value, bool):
        raise CellError(f"not a whole number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise CellError(f"not a whole number: {value!r}")
    raw = _require_text(value, "a whole number")
    normal = unicodedata.normalize("NFKC", raw)
    if _INTEGER.fullmatch(normal) is None:
        raise CellError(f"not a whole number: {raw!r}")
    return int(normal.split(".", 1)[0])


# --- durations -------------------------------------------------------------

_BARE_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?|[+-]?\.[0-9]+")
_NUMBER = r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+"
# `1.5小时`, `1小时30分`, `1小时30`, `45分钟`, `90min`, `1.5h`, `2h30m` (after NFKC and casefold).
_DURATION = re.compile(
    rf"""
    (?:(?P<h>{_NUMBER})\s*(?:个?小时|个?钟头|hours?|hrs?|h)\s*)?
    (?:(?P<m>{_NUMBER})\s*(?:分钟|分|minutes?|mins?|m)?\s*)?
    """,
    re.VERBOSE,
)
_MINUTES_PER = {"minutes": 1, "hours": 60}


def parse_duration(value: object, unit: str | None) -> int:
    """Whole minutes from a duration cell, read by the unit it is written with (`45分钟`,
    `1.5小时`, `1小时30分`, `90min`, `1.5h`). A bare number (`45`, `1.5`, a number cell) is read in
    `unit` (``minutes`` or ``hours``), which the column's header or --duration-unit gives; with
    no unit a bare number is refused, never guessed."""
    if isinstance(value, bool):
        raise CellError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return _bare_duration(value, str(value), unit)
    raw = _require_text(value, "a duration")
    normal = unicodedata.normalize("NFKC", raw).casefold().strip()
    if _BARE_NUMBER.fullmatch(normal):
        return _bare_duration(normal, raw, unit)
    match = _DURATION.fullmatch(normal)
    if match is None or not (match.group("h") or match.group("m")) or _unitless_minutes(match, normal):
        raise CellError(f"not a duration: {raw!r} (write 45, 45分钟, 1.5小时 or 1小时30分)")
    total = Decimal(match.group("h") or 0) * 60 + Decimal(match.group("m") or 0)
    return _whole_minutes(total, raw)


def _unitless_minutes(match: re.Match[str], normal: str) -> bool:
    """`30` alone matched the minutes group without a unit: only after hours (`1小时30`) is it minutes."""
    return match.group("h") is None and normal[-1:].isdigit()


def _bare_duration(number: object, raw: str, unit: str | None) -> int:
    if unit is None:
        raise CellError(
            f"{raw!r} is a bare number and the column's header names no unit; "
            "give --duration-unit minutes|hours, or write 45分钟 or 1.5小时 in the cell"
        )
    try:
        amount = Decimal(str(number))
    except InvalidOperation:
        raise CellError(f"not a duration: {raw!r}") from None
    if not amount.is_finite():
        raise CellError(f"not a duration: {raw!r}")
    return _whole_minutes(amount * _MINUTES_PER[unit], f"{raw} {unit}" if unit == "hours" else raw)


def _whole_minutes(minutes: Decimal, raw: str) -> int:
    if minutes != minutes.to_integral_value():
        raise CellError(f"{raw!r} is {minutes.normalize():f} minutes, not a whole number of minutes")
    return int(minutes)


# --- dates without a year and times of day ---------------------------------

# `3月5日`, `3月5号`, `03-05`, `3/5`, each perhaps followed by a time (`3月5日 9:30`). Read as
# month and day, the order Chinese dates always have; `3.5` is a number, never a date.
_YEARLESS = re.compile(
    r"(?P<m>[0-9]{1,2})\s*(?:月\s*(?P<zd>[0-9]{1,2})\s*[日号]?|[-/](?P<d>[0-9]{1,2}))(?P<rest>(?:[\sTt日号].*)?)",
    re.DOTALL,
)


def complete_year(raw: str, year: int | None) -> str:
    """A date written without its year (`3月5日`) with `year` put in front; other text as it is.
    Without `year`, such a date is refused: the year is never guessed."""
    match = _YEARLESS.fullmatch(unicodedata.normalize("NFKC", raw).strip())
    if match is None:
        return raw
    if year is None:
        raise CellError(f"{raw!r} has no year; give --year YYYY for the dates of this sheet")
    day = match.group("zd") or match.group("d")
    rest = match.group("rest")
    if match.group("zd") is not None:
        return f"{year}年{match.group('m')}月{day}日{rest.removeprefix('日').removeprefix('号')}"
    return f"{year}-{match.group('m')}-{day}{rest}"


_TIME_OF_DAY = re.compile(
    r"(?P<H>[0-9]{1,2})(?::(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2}))?|\s*[时点]\s*(?:(?P<zM>[0-9]{1,2})\s*分?)?)"
)
# Excel keeps a time-only cell as a fraction of a day; some tools hand it over on Excel's epoch.
_EXCEL_EPOCHS = frozenset({dt.date(1899, 12, 30), dt.date(1899, 12, 31), dt.date(1900, 1, 1)})


def parse_time_of_day(value: object, on: dt.date) -> dt.time:
    """The time of a 服务时间 cell beside a 服务日期 column: `9:30`, `09:30:00`, `9时30分`, a
    time cell, or a date and time of that same day."""
    if isinstance(value, dt.datetime):
        if value.date() in _EXCEL_EPOCHS or value.date() == on:
            return value.time().replace(microsecond=0)
        raise CellError(f"{text(value)!r} is not a time of day on {on.isoformat()}")
    if isinstance(value, dt.time):
        return value.replace(microsecond=0, tzinfo=None)
    raw = _require_text(value, "a time of day")
    match = _TIME_OF_DAY.fullmatch(unicodedata.normalize("NFKC", raw).strip())
    if match is None:
        parsed, has_time = _parse_text_datetime(raw, "a time of day")
        if has_time and parsed.tzinfo is None and parsed.date() == on:
            return parsed.time().replace(microsecond=0)
        raise CellError(f"{raw!r} is not a time of day on {on.isoformat()}")
    try:
        return dt.time(_group_int(match, "H"), _group_int(match, "M", "zM"), _group_int(match, "S"))
    except ValueError:
        raise CellError(f"not a time of day: {raw!r}") from None


_LIST_SEPARATORS = re.compile(r"[;；、,，]")


def split_list(value: object) -> list[str]:
    """Items separated by ``;`` ``；`` ``、`` ``,`` or ``，``; empty items dropped."""
    raw = text(value)
    if raw is None:
        return []
    items = (item.strip() for item in _LIST_SEPARATORS.split(raw))
    return [item for item in items if item]


_GENDERS = {
    "male": "male",
    "m": "male",
    "男": "male",
    "男性": "male",
    "female": "female",
    "f": "female",
    "女": "female",
    "女性": "female",
}


def parse_gender(value: object) -> str | None:
    """``male``/``female`` from English or Chinese spellings; empty gives None."""
    raw = text(value)
    if raw is None:
        return None
    gender = _GENDERS.get(unicodedata.normalize("NFKC", raw).casefold())
    if gender is None:
        raise CellError(f"not a gender (expected 男/女 or male/female): {raw!r}")
    return gender


def text(value: object) -> str | None:
    """A cell as stripped text; integral floats lose ``.0``, dates are ISO."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == _MIDNIGHT:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value).strip() or None
