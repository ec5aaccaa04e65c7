"""Read the spreadsheets village clerks already keep (CSV or XLSX) into rows.

``read_table`` finds the header row, maps English or Chinese headers onto the
column names of an import kind and returns the raw cell values; the ``parse_*``
functions turn those cells into dates, numbers and lists.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import re
import unicodedata
import zipfile
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

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
    "parse_date",
    "parse_datetime",
    "parse_gender",
    "parse_int",
    "read_table",
    "split_list",
    "text",
]

HEADER_SEARCH_ROWS = 20
# Stated limits of one import file (README "Limits"), besides its size on disk
# (commands.files.MAX_IMPORT_BYTES): rows as the spreadsheet numbers them, and what an
# XLSX (a zip) may unpack to in all and in its shared-strings part, the one part read whole.
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
        return f"{self.name} ({' / '.join((self.zh, *self.aliases))})"


@dataclass(slots=True)
class Row:
    """A data row; ``number`` is the row number as the spreadsheet shows it."""

    number: int
    values: dict[str, object]


@dataclass
class Table:
    """The recognised columns (in ``COLUMNS`` order) and the data rows."""

    columns: list[str]
    rows: list[Row]
    header_row: int


def _c(name: str, zh: str, required: bool = False, *aliases: str) -> Column:
    return Column(name, zh, required, tuple(aliases))


COLUMNS: dict[str, list[Column]] = {
    "communities": [
        _c("code", "编码", True),
        _c("name", "名称", True),
        _c("county", "县区", True),
        _c("township", "乡镇", True),
        _c("village", "行政村", True),
        _c("natural_villages", "自然村"),
        _c("established_on", "成立日期"),
    ],
    "residents": [
        _c("community", "社区", True),
        _c("code", "编号", True),
        _c("name", "姓名", True),
        _c("birth_date", "出生日期"),
        _c("gender", "性别"),
        _c("categories", "类别"),
        _c("grid", "网格"),
        _c("household", "户号"),
        _c("enrolled_on", "入册日期"),
    ],
    "providers": [
        _c("community", "社区", True),
        _c("code", "编号", True),
        _c("name", "姓名", True),
        _c("role", "角色", True),
        _c("team", "队伍"),
        _c("registered_on", "登记日期"),
    ],
    "services": [
        _c("community", "社区", True),
        _c("record_id", "记录编号"),
        _c("kind", "服务类型", True),
        _c("residents", "服务对象", True),
        _c("providers", "服务人员", True),
        _c("occurred_at", "服务时间", True),
        _c("minutes", "时长(分钟)", True, "时长", "分钟"),
        _c("place", "地点"),
        _c("note", "备注"),
        _c("entered_on", "登记日期"),
    ],
}


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
            lookup[_header_key(label)] = column.name
    return lookup


_LOOKUPS: dict[str, dict[str, str]] = {kind: _header_lookup(kind) for kind in COLUMNS}


def _recognise(cells: Sequence[object], lookup: dict[str, str]) -> dict[str, list[int]]:
    """Column name -> indexes of the cells in this row carrying its header."""
    found: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        name = lookup.get(_header_key(cell))
        if name is not None:
            found.setdefault(name, []).append(index)
    return found


def _missing_required(kind: str, found: dict[str, list[int]]) -> list[Column]:
    return [c for c in COLUMNS[kind] if c.required and c.name not in found]


# --- reading -------------------------------------------------------------


def read_table(path: str | os.PathLike[str], kind: str) -> Table:
    """Read a CSV or XLSX file of the given import kind (a key of ``COLUMNS``)."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown import kind: {kind!r}")
    source = Path(path)
    label = source.name
    # closing() releases the workbook even when the header search fails.
    with closing(_raw_rows(source, label)) as raw:
        rows = _numbered(raw, label)
        header_row, positions = _find_header(rows, kind, label)
        order = [c.name for c in COLUMNS[kind] if c.name in positions]
        pairs = [(name, positions[name]) for name in order]
        return Table(columns=order, rows=list(_data_rows(rows, pairs)), header_row=header_row)


def _raw_rows(source: Path, label: str) -> Generator[Sequence[Cell], None, None]:
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(source, label)
    if suffix == ".xlsx":
        return _xlsx_rows(source, label)
    shown = suffix or "(none)"
    raise TabularError(f"{label}: unsupported file type {shown} (expected .csv or .xlsx)")


def _numbered(raw: Iterable[Sequence[Cell]], label: str) -> Iterator[tuple[int, Sequence[Cell]]]:
    """Rows with their numbers as the spreadsheet counts them, up to MAX_ROWS: a file that holds
    more is refused while it is read, before its rows can fill the memory."""
    for number, cells in enumerate(raw, start=1):
        if number > MAX_ROWS:
            raise TabularError(f"{label}: more than {MAX_ROWS:,} rows (the limit of one import); split the file")
        yield number, cells


def _one_line(message: object) -> str:
    return one_line(message)


def _os_error(label: str, error: OSError) -> TabularError:
    return TabularError(f"{label}: cannot read file: {_one_line(error.strerror or error)}")


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Chinese Excel saves "CSV" in the ANSI code page, i.e. GBK/GB18030.
        return data.decode("gb18030").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise TabularError(f"{label}: not UTF-8 or GB18030 text") from None


def _input_error(label: str, problem: files.InputProblem) -> TabularError:
    if problem.strerror is not None:
        return TabularError(f"{label}: cannot read file: {_one_line(problem.strerror)}")
    if problem.limit is not None:
        return TabularError(f"{label}: larger than the limit of {files.limit_text(problem.limit)} for one import")
    return TabularError(f"{label}: not a regular file")  # a pipe or a device would be read for ever


# A line as io.StringIO(newline="") yields it: ended by \r\n, \r or \n, kept; the last may have none.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _lines(text: str) -> Iterator[str]:
    """The text's lines one by one, without the copy io.StringIO makes (4 bytes a character)."""
    for match in _LINE.finditer(text):
        yield match.group()


def _csv_rows(source: Path, label: str) -> Generator[list[str], None, None]:
    try:
        data = files.read_input(source, label, files.MAX_IMPORT_BYTES)
    except files.InputProblem as problem:
        raise _input_error(label, problem) from None
    text = _decode(data, label)
    del data
    reader = csv.reader(_lines(text))
    try:
        for cells in reader:
            # The `'` a CSV export put before a formula-like text (commands.formulas) goes again.
            yield [formulas.unquote(cell) if "'" in cell else cell for cell in cells]  # no `'`: nothing to undo
    except csv.Error as error:
        raise TabularError(f"{label}: line {reader.line_num}: {_one_line(error)}") from None


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


def _xlsx_rows(source: Path, label: str) -> Generator[tuple[Cell, ...], None, None]:
    try:
        stream = files.open_input(source, label, files.MAX_IMPORT_BYTES)
    except files.InputProblem as problem:
        raise _input_error(label, problem) from None
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
        yield from sheet.iter_rows(values_only=True)
    except TabularError:
        raise
    except Exception as error:
        raise TabularError(f"{label}: not a readable XLSX file ({_one_line(error)})") from None
    finally:
        book.close()
        stream.close()


def _find_header(
    rows: Iterator[tuple[int, Sequence[Cell]]], kind: str, label: str
) -> tuple[int, dict[str, int]]:
    """Consume rows up to the header; return its number and column positions."""
    lookup = _LOOKUPS[kind]
    best: dict[str, list[int]] = {}
    for number, cells in rows:
        found = _recognise(cells, lookup)
        if not _missing_required(kind, found):
            return number, _positions(found, cells, number, label)
        if len(found) > len(best):
            best = found
        if number >= HEADER_SEARCH_ROWS:
            break
    raise TabularError(_header_problem(kind, best, label))


def _positions(
    found: dict[str, list[int]], cells: Sequence[Cell], number: int, label: str
) -> dict[str, int]:
    for name, indexes in found.items():
        if len(indexes) > 1:
            headers = ", ".join(repr(str(cells[i]).strip()) for i in indexes)
            raise TabularError(
                f"{label}: duplicate column: {name} (headers {headers} in row {number})"
            )
    return {name: indexes[0] for name, indexes in found.items()}


def _header_problem(kind: str, best: dict[str, list[int]], label: str) -> str:
    if not best:
        expected = ", ".join(c.describe() for c in COLUMNS[kind] if c.required)
        return (
            f"{label}: no header row found in the first {HEADER_SEARCH_ROWS} rows "
            f"(expected columns: {expected})"
        )
    missing = _missing_required(kind, best)
    noun = "column" if len(missing) == 1 else "columns"
    return f"{label}: missing required {noun}: " + "; ".join(c.describe() for c in missing)


_FOOTER_ZH = ("合计", "总计", "小计")
_FOOTER_INITIALS = frozenset("合总小Tt")


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
    rows: Iterator[tuple[int, Sequence[Cell]]], pairs: list[tuple[str, int]]
) -> Iterator[Row]:
    names = [name for name, _ in pairs]
    indexes = [index for _, index in pairs]
    for number, cells in rows:
        first = _first_value(cells)
        if first is None:
            continue
        if _is_footer(first):
            return
        values = _pick(cells, indexes)
        # A template row with only its 序号 filled in carries nothing to import.
        if values.count(None) < len(values):
            yield Row(number, dict(zip(names, values, strict=True)))


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
