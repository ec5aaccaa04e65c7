"""Importing the spreadsheets clerks already keep: communities, residents, providers, services.

An import is all-or-nothing unless `skip_invalid`: every row is validated (exit 2
problems) before anything is written, then checked against the store's rules (exit 1
problems) while the new events go into one transaction, chunk by chunk, with their
record state and data keys. A re-import adds nothing: existing codes and identical
records count as `existing`. Memory holds one chunk of rows, however long the file
(docs/decisions/0013): the file is streamed, the valid rows wait in a sealed spill, and
what earlier chunks wrote is read back from the transaction. A large file is checked by a process
of its own while this one applies the chunks already checked (commands.checkpass,
docs/decisions/0032).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import os
import pickle
import sqlite3
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, StoredEvent

from commands import models, names, tabular
from commands.app import BulkSave, Busy, KeySession, LedgerService
from commands.messages import one_line
from domain.community import Community, content_digest
from domain.errors import LedgerError
from domain.ids import IMPORTED_RECORD_NAMESPACE, community_id, imported_record_id, utc_text
from infra import crypto, recordstate
from infra.codec import stored_event

KINDS = ("communities", "residents", "providers", "services")
MAX_ATTEMPTS = 5
_RECORDED = Community.ServiceRecorded
CHUNK = 5000  # rows applied between two writes into the import's one transaction
FIRST_CHUNK = 1000  # rows in the check pass's first chunk
HEAD_ROWS = 4000  # rows the importing process checks itself while a check process starts beside

MODELS: dict[str, type[models.Command]] = {
    "communities": models.EstablishCommunity,
    "residents": models.EnrollResident,
    "providers": models.RegisterProvider,
    "services": models.RecordService,
}


@dataclass(frozen=True)
class Problem:
    row: int
    field: str
    problem: str
    malformed: bool

    def __str__(self) -> str:
        return one_line(f"row {self.row}: {self.field}: {self.problem}")


@dataclass(frozen=True)
class SheetOptions:
    """What a village's own sheet leaves out, given with the import: the community of every row
    (`--community`), the year of dates written without one (`--year`), the unit of bare durations
    (`--duration-unit`) and the time of a service given only a date (`--default-time`)."""

    community: str | None = None
    year: int | None = None
    duration_unit: str | None = None
    default_time: dt.time | None = None

    def supplied(self) -> frozenset[str]:
        """The required columns these options stand for."""
        return frozenset({"community"}) if self.community else frozenset()


@dataclass
class ImportResult:
    added: int = 0
    existing: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)
    # What the sheet held that was not imported, besides bad rows: reported, never dropped in silence.
    ignored_columns: list[str] = field(default_factory=list)
    footer_rows: int = 0
    blank_rows: int = 0

    @property
    def malformed(self) -> int:
        return sum(1 for p in self.problems if p.malformed)

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "existing": self.existing, "skipped": self.skipped}

    def left_out(self) -> dict[str, Any]:
        """The columns and rows the sheet held that were not imported (only those there were)."""
        found: dict[str, Any] = {
            "ignored_columns": self.ignored_columns,
            "footer_rows_skipped": self.footer_rows,
            "blank_rows_skipped": self.blank_rows,
        }
        return {key: value for key, value in found.items() if value}

    def report(self) -> dict[str, Any]:
        """The json report: the counts, then what was left out."""
        return {**self.counts(), **self.left_out()}


class ImportRefused(Exception):
    """Rows had problems and the import wrote nothing."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        rows = len({p.row for p in result.problems})
        kind = "malformed" if result.malformed else "refused"
        super().__init__(f"{rows} row(s) {kind}; nothing imported (use --skip-invalid to import the good rows)")

    @property
    def exit_code(self) -> int:
        return 2 if self.result.malformed else 1


class _Previewed(Exception):
    """A preview's result, raised out of the import's transaction to roll it back."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__()
        self.result = result


Progress = Callable[[int, int], None]


def _noop(_done: int, _total: int) -> None:
    return None


@dataclass(slots=True)
class _Valid:
    row: int
    cmd: Any
    record_id: str | None = None
    digest: str | None = None  # of a services row without a note (domain.community.content_digest)


def _field_of(kind: str, message: str) -> str:
    """Which column a rule's refusal is about, from its message."""
    head = message.split(" ", 1)[0]
    if head == "community":
        return "community"
    if kind == "services":
        return {
            "resident": "residents",
            "provider": "providers",
            "record": "record_id",
            "minutes": "minutes",
            "a": "residents" if "resident" in message else "providers",
        }.get(head, "occurred_at")
    return "code"


def _data(kind: str, values: dict[str, object], community: str | None = None) -> dict[str, Any]:
    data = {name: value for name, value in values.items() if value is not None}
    if community is not None:
        _fill_community(data, community)
    if kind == "services" and "residents" not in data:
        data["residents"] = []
    if kind == "services" and "providers" not in data:
        data["providers"] = []
    for listed in ("residents", "providers"):
        if listed in data and not isinstance(data[listed], list):
            data[listed] = _split(data[listed])
    return data


@lru_cache(maxsize=1 << 14)
def _split_text(value: str) -> tuple[str, ...]:
    return tuple(tabular.split_list(value))


def _split(value: object) -> list[str]:
    """tabular.split_list, remembered per cell text (a sheet repeats its cells); a new list each time."""
    return list(_split_text(value)) if type(value) is str else tabular.split_list(value)


def _fill_community(data: dict[str, Any], community: str) -> None:
    """`--community` for a row: its own community cell, if any, must say the same."""
    given = data.get("community")
    if given is None:
        data["community"] = community
    elif tabular.text(given) != community:
        raise models.Malformed("community", f"{tabular.text(given)!r} differs from --community {community}")


@dataclass(frozen=True)
class _ServiceCells:
    """How a sheet's service cells are read: the unit of bare durations, the year of dates
    without one, the time of a date without one, and whether a 服务日期 column carries the day."""

    unit: str | None
    year: int | None
    default_time: dt.time | None
    dated: bool

    def prepare(self, data: dict[str, Any]) -> None:
        """Durations in whole minutes and the service's date and time, before the model's checks."""
        if "minutes" in data:
            data["minutes"] = _cell("minutes", tabular.parse_duration, data["minutes"], self.unit)
        day = data.pop("date", None)
        if self.dated and day is not None:
            data["occurred_at"] = self._on_day(day, data.get("occurred_at"))
        elif "occurred_at" in data:
            data["occurred_at"] = self._moment(data["occurred_at"])

    def _on_day(self, day: object, at: object) -> dt.datetime:
        """The 服务日期 cell with the 服务时间 beside it; without one, the date cell's own time."""
        if at is None:
            return self._moment(day, "date")
        on = _cell("date", tabular.parse_date, self._with_year(day, "date"))
        return dt.datetime.combine(on, _cell("occurred_at", tabular.parse_time_of_day, at, on))

    def _moment(self, at: object, field_name: str = "occurred_at") -> dt.datetime:
        parsed, has_time = _cell(field_name, tabular.parse_datetime, self._with_year(at, field_name))
        if has_time:
            return parsed
        return dt.datetime.combine(parsed.date(), self._time_for(tabular.text(at) or ""))

    def _with_year(self, value: object, field: str) -> object:
        return _cell(field, tabular.complete_year, value, self.year) if isinstance(value, str) else value

    def _time_for(self, day: str) -> dt.time:
        if self.default_time is None:
            raise models.Malformed(
                "occurred_at", f"{day!r} is a date without a time of day; give the time, or --default-time HH:MM"
            )
        return self.default_time


def _cell(field_name: str, parse: Callable[..., Any], *args: Any) -> Any:
    """A cell parser's result; its CellError as the row's problem with that field."""
    try:
        return parse(*args)
    except tabular.CellError as e:
        raise models.Malformed(field_name, str(e)) from None


def duration_unit(table: tabular.Table, options: SheetOptions, label: str) -> str | None:
    """The unit of bare durations: the duration header's, or --duration-unit's; never both differing."""
    named = table.duration_unit()
    if named is not None and options.duration_unit is not None and named != options.duration_unit:
        header = table.headers["minutes"]
        raise tabular.TabularError(
            f"{label}: --duration-unit {options.duration_unit} contradicts the column {header!r}, which counts {named}"
        )
    return named or options.duration_unit


_SERVICE_REQUIRED = frozenset({"community", "kind", "residents", "providers", "occurred_at", "minutes"})
_SERVICE_FIELDS = _SERVICE_REQUIRED | {"place", "note", "record_id", "entered_on"}


@dataclass(frozen=True)
class _Context:
    """What pydantic hands a validator as `info`: the context, and the fields validated so far."""

    context: dict[str, Any]
    data: dict[str, Any]


@dataclass(slots=True)
class _ServiceRow:
    """A services row the fast path accepted: the attributes of models.RecordService, a tenth of its memory."""

    community: str
    kind: str
    residents: list[str]
    providers: list[str]
    occurred_at: Any
    minutes: int
    place: str | None
    note: str | None
    record_id: str | None
    entered_on: Any

    def model_dump(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


_SERVICE_SLOTS: tuple[str, ...] = _ServiceRow.__slots__  # type: ignore[attr-defined]


# A file names the same few communities, residents and providers on every row: their cells are
# checked once. Only texts are remembered (1 == 1.0 == True as keys, but not as cells); a
# refused cell raises each time (lru_cache keeps no exception), and the model then words it.
@lru_cache(maxsize=1 << 12)
def _clean_code(text: str) -> str:
    return models.clean_code(text)


def _code(value: Any) -> str:
    return _clean_code(value) if type(value) is str else models.clean_code(value)


def _listed(value: Any, what: str) -> list[str]:
    """models.codes of a residents/providers cell, non-empty (as the model's validators say): a
    code clean_code accepts holds no list separator, so codes() would have kept it whole."""
    if type(value) is list and all(type(item) is str for item in value):
        try:
            result = [_clean_code(item) for item in value]
        except ValueError:
            result = None  # perhaps a list inside a cell: models.codes splits it, or words the problem
        if result and len(set(result)) == len(result):
            return result
    return models._nonempty(models.codes(value, what=what), what)


_VOCABULARIES = {"kind": models.KINDS, "place": models.PLACES}


@lru_cache(maxsize=1024)
def _vocab_text(name: str, value: str) -> str:
    return models.vocab(_VOCABULARIES[name], value)


def _vocab(name: str, value: Any) -> str:
    """models.vocab of the kind or place vocabulary, remembered per cell text (a sheet repeats a
    handful of spellings; a refused text raises each time, unremembered)."""
    return _vocab_text(name, value) if type(value) is str else models.vocab(_VOCABULARIES[name], value)


def fast_service(data: dict[str, Any], tz: Any, now: Any) -> models.RecordService | None:
    """A services row validated by the very field validators of models.RecordService, in its field
    order, without pydantic's per-row machinery; None when anything is wrong (or unusual), and the
    caller then validates the row with the model itself, which words the problem."""
    if not _SERVICE_REQUIRED <= data.keys() or not data.keys() <= _SERVICE_FIELDS:
        return None
    get = data.get
    try:
        values: dict[str, Any] = {
            "community": _code(data["community"]),
            "kind": _vocab("kind", data["kind"]),
            "residents": _listed(data["residents"], "resident"),
            "providers": _listed(data["providers"], "provider"),
        }
        info = _Context({"tz": tz, "now": now}, values)
        values["occurred_at"] = models.moment(data["occurred_at"], info)  # type: ignore[arg-type]
        values["minutes"] = models._minutes(data["minutes"])
        place = get("place")
        values["place"] = (
            None
            if place is None or (isinstance(place, str) and not place.strip())
            else _vocab("place", place)
        )
        values["note"] = models.optional_text(get("note"), limit=models.MAX_NOTE, what="note", multiline=True)
        values["record_id"] = models._record_id(get("record_id"))
        entered = models.optional_day(get("entered_on"))
        if entered is not None:
            return None  # rare in imports: the model checks it against the service day and today
        values["entered_on"] = None
    except Exception:  # any problem: the model says it in its words
        return None
    return _ServiceRow(**values)  # type: ignore[return-value]


class _RowChecker:
    """Validates one row at a time (exit 2 problems), with the names in its cells made codes first."""

    def __init__(
        self,
        kind: str,
        table: tabular.Table,
        options: SheetOptions,
        label: str,
        *,
        tz: Any,
        now: Any,
        require_master: Callable[[], object],
        row_names: names.RowNames | None = None,
    ) -> None:
        self.kind = kind
        self.model = MODELS[kind]
        self.options = options
        self.row_names = row_names
        self.tz, self.now = tz, now
        self.require_master = require_master
        self.cells = None
        if kind == "services":
            self.cells = _ServiceCells(
                duration_unit(table, options, label), options.year, options.default_time, "date" in table.columns
            )
        self.fast = fast_service if kind == "services" else None
        self.master_checked = kind != "services"

    def check(self, row: tabular.Row) -> tuple[_Valid | None, list[Problem]]:
        """The row's command, or its problems (as names.settle words them)."""
        named: list[names.RowProblem] = []
        if self.row_names is not None:
            row, named = self.row_names.row(row)
        if not self.master_checked and row.values.get("note"):
            self.require_master()  # a note is sealed with a data key
            self.master_checked = True
        problems: list[Problem] = []
        valid: list[_Valid] = []
        try:
            data = _data(self.kind, row.values, self.options.community)
            if self.cells is not None:
                self.cells.prepare(data)
            cmd = self.fast(data, self.tz, self.now) if self.fast is not None else None
            if cmd is None:
                cmd = models.validate(self.model, data, tz=self.tz, now=self.now)
        except models.Malformed as e:
            problems.append(Problem(row.number, e.field, e.message, malformed=True))
        else:
            valid.append(_Valid(row.number, cmd))
        if named:
            valid, problems = names.settle(named, valid, problems, Problem)  # NAMES
        return (valid[0] if valid else None), problems


def validate_rows(
    service: LedgerService,
    kind: str,
    table: tabular.Table,
    progress: Progress,
    options: SheetOptions | None = None,
    label: str = "",
) -> tuple[list[_Valid], list[Problem]]:
    """Every row of a held table validated (the rows' commands kept; imports stream instead)."""
    checker = _RowChecker(
        kind, table, options or SheetOptions(), label, tz=service.tz, now=service.now(), require_master=service.require_master
    )
    checker.master_checked = True
    valid: list[_Valid] = []
    problems: list[Problem] = []
    rows = list(table.rows)
    total = len(rows)
    for i, row in enumerate(rows, 1):
        item, found = checker.check(row)
        if item is not None:
            valid.append(item)
        problems += found
        if i % 2000 == 0:
            progress(i, total)
    progress(total, total)
    if kind == "services":
        _assign_record_ids(valid)
    return valid, problems


def _plain_content(cmd: Any) -> bytes | None:
    """The canonical text of the frozen id rule without its index (the list's last item), for a row
    whose texts are printable ASCII without `"` or `\\`, where orjson writes the very bytes of its
    json.dumps(ensure_ascii=False, separators=(",", ":")); None for any other row."""
    # Each test holds of the joined text exactly when it holds of every text.
    texts = "".join([cmd.community, cmd.kind, *cmd.residents, *cmd.providers, cmd.place or ""])
    if not (texts.isascii() and texts.isprintable()) or '"' in texts or "\\" in texts:
        return None
    return orjson.dumps(
        [
            cmd.community,
            cmd.kind,
            sorted(cmd.residents),
            sorted(cmd.providers),
            utc_text(cmd.occurred_at),
            cmd.minutes,
            cmd.place or "",
        ]
    )


_NAMESPACE = IMPORTED_RECORD_NAMESPACE.bytes


def _indexed_id(content: bytes, index: int) -> str:
    """uuid5 of a `_plain_content` with the index appended as the list's last item: what
    str(uuid5(IMPORTED_RECORD_NAMESPACE, text)) gives, without building a UUID object (tested)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + content[:-1] + b",%d]" % index).digest()[:16])  # noqa: S324
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _plain_record_id(cmd: Any, index: int) -> str | None:
    """domain.ids.imported_record_id for a row `_plain_content` can write; None for any other row
    (the domain function then does it)."""
    content = _plain_content(cmd)
    return None if content is None else _indexed_id(content, index)


def _plain(chunk: list[_Valid]) -> list[tuple[Any, ...]]:
    """A chunk of valid rows as plain tuples (row, record id, the command): a services row's command
    as its attributes, since pickling the slotted objects themselves costs 5× more."""
    return [
        (item.row, item.record_id, item.digest, *[getattr(item.cmd, name) for name in _SERVICE_SLOTS])
        if type(item.cmd) is _ServiceRow
        else (item.row, item.record_id, item.digest, item.cmd)
        for item in chunk
    ]


def _from_plain(plain: list[tuple[Any, ...]]) -> list[_Valid]:
    return [
        _Valid(values[0], _ServiceRow(*values[3:]), values[1], values[2])
        if len(values) > 4
        else _Valid(values[0], values[3], values[1], values[2])
        for values in plain
    ]


class _Spill:
    """The check pass's valid rows, a chunk at a time, for the apply pass: pickled (`_plain`) into an
    unnamed temporary file (removed when closed), each chunk sealed with AES-GCM under a key that
    exists only in this process: the rows hold personal data (names, notes), and the apply pass
    unpickles only what the check pass made. Memory holds one chunk; disk about 200 bytes a row."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.aead = AESGCM(AESGCM.generate_key(bit_length=128))
        self.count = 0

    def add(self, chunk: list[_Valid]) -> None:
        self.add_pickled(pickle.dumps(_plain(chunk), protocol=5))

    def add_pickled(self, pickled: bytes) -> None:
        """A chunk as `_plain` pickled it (here, or in the check pass's own process)."""
        sealed = self.aead.encrypt(self.count.to_bytes(12, "big"), pickled, None)
        self.file.seek(0, 2)
        self.file.write(len(sealed).to_bytes(8, "big") + sealed)
        self.count += 1

    def chunks(self) -> Iterator[list[_Valid]]:
        """The chunks in the order they were added (again at each call: an attempt lost to a race is
        redone), as many as there were when it was called."""
        offset = 0
        for index in range(self.count):
            self.file.seek(offset)
            size = int.from_bytes(self.file.read(8), "big")
            sealed = self.file.read(size)
            offset += 8 + size
            yield _from_plain(pickle.loads(self.aead.decrypt(index.to_bytes(12, "big"), sealed, None)))  # noqa: S301

    def close(self) -> None:
        self.file.close()


class IdenticalRows:
    """How many rows of the same content came earlier in the file: the index of the frozen id rule.

    Counted by a digest of the content in a private temporary SQLite database (a file the OS
    removes when it is closed, with SQLite's small page cache), so that memory stays flat
    however long the file; a chunk of rows costs one lookup and one upsert per 500 contents.
    """

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # "": a private temporary database on disk
        self.db.execute("CREATE TABLE seen (content BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")

    def indexes(self, contents: list[bytes]) -> list[int]:
        distinct = list(dict.fromkeys(contents))
        counts: dict[bytes, int] = {}
        for start in range(0, len(distinct), 500):
            batch = distinct[start : start + 500]
            sql = f"SELECT content, n FROM seen WHERE content IN ({','.join('?' * len(batch))})"
            counts.update(self.db.execute(sql, batch).fetchall())
        found = []
        for content in contents:
            index = counts.get(content, 0)
            found.append(index)
            counts[content] = index + 1
        self.db.executemany(
            "INSERT INTO seen (content, n) VALUES (?, ?) ON CONFLICT (content) DO UPDATE SET n = excluded.n",
            [(content, counts[content]) for content in distinct],
        )
        return found

    def seen(self) -> list[tuple[bytes, int]]:
        """What was counted so far (to go on counting elsewhere: `count_from`)."""
        return self.db.execute("SELECT content, n FROM seen").fetchall()

    def count_from(self, seen: list[tuple[bytes, int]]) -> None:
        self.db.executemany("INSERT INTO seen (content, n) VALUES (?, ?)", seen)

    def close(self) -> None:
        self.db.close()


def _content_key(cmd: Any, plain: bytes | None) -> bytes:
    """A digest of what makes two rows identical (the id rule's content, without the index): of
    its canonical text when the row has one (`plain`), else of the content as orjson writes it."""
    if plain is not None:
        return hashlib.blake2b(b"p" + plain, digest_size=16).digest()
    content = orjson.dumps(
        [
            cmd.community,
            cmd.kind,
            sorted(cmd.residents),
            sorted(cmd.providers),
            cmd.occurred_at.timestamp(),  # aware and to the second: equal exactly when utc_text is
            cmd.minutes,
            cmd.place or "",
        ]
    )
    return hashlib.blake2b(b"j" + content, digest_size=16).digest()


def _assign_record_ids(valid: list[_Valid], identical: IdenticalRows | None = None) -> None:
    """Rows without an id get uuid5 of their content and index among identical rows (frozen rule);
    `identical` counts the rows of earlier chunks of the same file."""
    unnamed = [item for item in valid if not item.cmd.record_id]
    for item in valid:
        if item.cmd.record_id:
            item.record_id = item.cmd.record_id
    if not unnamed:
        return
    plain = [_plain_content(item.cmd) for item in unnamed]
    keys = [_content_key(item.cmd, content) for item, content in zip(unnamed, plain, strict=True)]
    if identical is not None:
        indexes = identical.indexes(keys)
    else:
        seen: Counter[bytes] = Counter()
        indexes = []
        for key in keys:
            indexes.append(seen[key])
            seen[key] += 1
    for item, content, index in zip(unnamed, plain, indexes, strict=True):
        cmd: models.RecordService = item.cmd
        item.record_id = (
            _indexed_id(content, index)
            if content is not None
            else imported_record_id(
                community=cmd.community,
                kind=cmd.kind,
                residents=cmd.residents,
                providers=cmd.providers,
                occurred_at=cmd.occurred_at,
                minutes=cmd.minutes,
                place=cmd.place,
                index=index,
            )
        )


Ask = Callable[[tuple[Any, ...]], Any]
"""How a check pass asks what only the store knows (`_answer` answers): ("master",), ("codes",
[community, …]), ("cells", [(who, community, cell), …])."""


class _NotACode(Exception):
    """A value that is not a code of its community: only the store can say what it names."""


class _CodesOnly:
    """NameResolver.resolve for the values that are codes, from the codes the store told."""

    def __init__(self) -> None:
        self.codes: dict[str, tuple[frozenset[str], frozenset[str]] | None] = {}

    def resolve(self, who: str, community: str, values: list[str]) -> list[str]:
        known = self.codes[community]
        if known is None:
            return list(values)  # not established: kept as it is, and the rules say so
        codes = known[0] if who == names.RESIDENT else known[1]
        found = []
        for value in values:
            text = value.strip()
            if text not in codes:
                raise _NotACode
            found.append(text)
        return found


class _AskedNames(names.RowNames):
    """RowNames for a check pass that does not read the store (it may run in a process of its own):
    the codes of a chunk's communities, then what the cells that hold anything but codes resolve to,
    are asked once per chunk (`prepare`), before its rows are checked; every value that is a code is
    resolved here, as NameResolver would."""

    def __init__(self, ask: Ask, default_community: str | None) -> None:
        super().__init__(None, default_community=default_community)
        self.ask = ask
        self.resolver = _CodesOnly()  # type: ignore[assignment]
        self.answers: dict[tuple[str, str, object], object] = {}
        self.preparing = False

    def prepare(self, rows: list[tabular.Row]) -> None:
        known = self.resolver.codes  # type: ignore[attr-defined]
        communities = {self.community(row) for row in rows} - {None} - known.keys()
        if communities:
            known.update(self.ask(("codes", sorted(communities))))  # type: ignore[type-var]
        self.answers = {}
        asked: dict[tuple[str, str, object], tuple[str, str, object]] = {}
        self.preparing = True
        try:
            for row in rows:
                community = self.community(row)
                if community is None:
                    continue
                for column, who in names.PEOPLE_COLUMNS:
                    cell = row.values.get(column)
                    if cell:
                        try:
                            self.resolved(who, community, cell)
                        except _NotACode:
                            asked[names.cell_key(who, community, cell)] = (who, community, cell)
        finally:
            self.preparing = False
        if asked:
            self._ask_cells(asked)

    def _ask_cells(self, asked: dict[tuple[str, str, object], tuple[str, str, object]]) -> None:
        replies = self.ask(("cells", list(asked.values())))
        for key, (resolved, out) in zip(asked, replies, strict=True):
            self.answers[key] = out if resolved else names.NameRefused(out)

    def resolve_cell(self, who: str, community: str, cell: object) -> object:
        try:
            return names._cell(self.resolver, who, community, cell)  # type: ignore[arg-type]
        except _NotACode:
            key = names.cell_key(who, community, cell)
            if key not in self.answers:
                if self.preparing:
                    raise
                self._ask_cells({key: (who, community, cell)})  # forgotten since `prepare` (DONE_CELLS)
            return self.answers[key]


def _answer(service: LedgerService, row_names: names.RowNames | None, question: tuple[Any, ...]) -> Any:
    """What a check pass asks of the store (`Ask`), answered by the importing process."""
    what = question[0]
    if what == "master":
        service.require_master()  # raises when notes cannot be sealed
        return None
    assert row_names is not None, what
    if what == "codes":
        return {community: row_names.resolver.codes(community) for community in question[1]}
    if what == "cells":
        replies: list[tuple[bool, object]] = []
        for who, community, cell in question[1]:
            out = row_names.resolved(who, community, cell)
            replies.append((False, str(out)) if isinstance(out, names.NameRefused) else (True, out))
        return replies
    raise RuntimeError(f"unknown question {what!r}")  # a programming error


class CheckPass:
    """The check pass of an import, a chunk of rows at a time: every row read, its names made codes,
    validated (exit 2 problems), and a services row given its record id. What only the store knows
    it asks with `ask`: answered at once in the importing process, or between two chunks when the
    pass runs in a process of its own beside the apply pass (commands.checkpass)."""

    def __init__(
        self,
        kind: str,
        table: tabular.Table,
        options: SheetOptions,
        label: str,
        *,
        tz: Any,
        now: Any,
        ask: Ask,
        first: int = FIRST_CHUNK,
        after: tuple[int, list[tuple[bytes, int]]] = (0, []),
    ) -> None:
        self.kind, self.table = kind, table
        self.names = _AskedNames(ask, options.community) if kind == "services" else None
        self.checker = _RowChecker(
            kind, table, options, label, tz=tz, now=now, require_master=lambda: ask(("master",)), row_names=self.names
        )
        self.identical = IdenticalRows() if kind == "services" else None
        self.first = first
        # Rows another check pass has checked already: how many, and what its IdenticalRows counted.
        self.skip, seen = after
        if self.identical is not None and seen:
            self.identical.count_from(seen)
        self.rows = 0

    def chunks(self) -> Iterator[tuple[list[_Valid], list[Problem]]]:
        """Each chunk's valid rows and problems, CHUNK rows of the file at a time; the first one
        smaller (`first`), so that an apply pass beside waits less for its first rows. The rows
        another check pass has checked (`after`) are read and passed over."""
        rows = iter(self.table.rows)
        if self.skip:
            deque(islice(rows, self.skip), maxlen=0)
        size = min(CHUNK, self.first)
        while batch := list(islice(rows, size)):
            size = CHUNK
            if self.names is not None:
                self.names.prepare(batch)
            valid: list[_Valid] = []
            problems: list[Problem] = []
            for row in batch:
                item, found = self.checker.check(row)
                if item is not None:
                    valid.append(item)
                if found:
                    problems += found
            self.rows += len(batch)
            if self.identical is not None:
                _assign_record_ids(valid, self.identical)
                _digest_plain_rows(valid)
            yield valid, problems

    def close(self) -> None:
        if self.identical is not None:
            self.identical.close()


class Checked:
    """The check pass's outcome as the apply pass reads it: the valid rows a chunk at a time (those
    kept in the spill, then, while the check pass still runs beside, each as it comes: `_receive`),
    the malformed rows' problems and what the sheet left out, complete once `chunks` has ended."""

    def __init__(self) -> None:
        self.spill = _Spill()
        self.malformed: list[Problem] = []
        self.valid_rows = 0
        self.ignored: list[str] = []
        self.footer_rows = self.blank_rows = 0
        self.finished = False

    def keep(self, valid: list[_Valid] | bytes, count: int, problems: list[Problem]) -> None:
        """A chunk of the check pass: its valid rows (or `_plain` pickled), kept in the spill."""
        if count:
            if isinstance(valid, bytes):
                self.spill.add_pickled(valid)
            else:
                self.spill.add(valid)
            self.valid_rows += count
        self.malformed += problems

    def finish(self, ignored: list[str], footer_rows: int, blank_rows: int) -> None:
        self.ignored, self.footer_rows, self.blank_rows = list(ignored), footer_rows, blank_rows
        self.finished = True

    def chunks(self) -> Iterator[list[_Valid]]:
        """Every chunk, from the first (each attempt of the apply pass reads them all)."""
        yield from self.spill.chunks()
        while not self.finished:
            chunk = self._receive()
            if chunk:
                yield chunk

    def _receive(self) -> list[_Valid] | None:
        raise RuntimeError("the check pass has not finished")  # a programming error: only a pass beside has more

    def close(self) -> None:
        self.spill.close()


def _check_here(
    service: LedgerService,
    kind: str,
    table: tabular.Table,
    options: SheetOptions,
    label: str,
    row_names: names.RowNames | None,
    progress: Progress,
) -> Checked:
    """The whole check pass in this process, before the apply pass takes the write lock."""
    checked = Checked()
    check = CheckPass(
        kind, table, options, label, tz=service.tz, now=service.now(), ask=partial(_answer, service, row_names)
    )
    try:
        for valid, problems in check.chunks():
            checked.keep(valid, len(valid), problems)
            progress(check.rows, check.rows)
    except BaseException:
        checked.close()
        raise
    finally:
        check.close()
    checked.finish(table.ignored, table.footer_rows, table.blank_rows)
    return checked


CHECK_BESIDE_BYTES = 1 << 20
"""From this file size on (about 10,000 rows of CSV) the check pass runs in a process of its own."""


def _check_beside(path: Path) -> bool:
    """Whether this file's check pass runs beside the apply pass: TAIZHANG_CHECK_PROCESS=on / off
    decides, else the file's size (a second process costs about 0.3 s to start)."""
    setting = os.environ.get("TAIZHANG_CHECK_PROCESS", "").strip().lower()
    if setting in ("on", "off"):
        return setting == "on"
    try:
        return path.stat().st_size >= CHECK_BESIDE_BYTES
    except OSError:
        return False


def _digest_plain_rows(valid: list[_Valid]) -> None:
    """The content digest of each services row without a note, made while checking (beside the
    apply pass when the check pass has a process of its own); a row with a note is digested with
    its note's MAC when it is sealed."""
    for item in valid:
        cmd = item.cmd
        if cmd.note is None and cmd.entered_on is None:  # (entered_on: rare in imports, digested later)
            item.digest = content_digest(
                kind=cmd.kind,
                residents=cmd.residents,
                providers=cmd.providers,
                occurred_at=cmd.occurred_at,
                minutes=cmd.minutes,
                place=cmd.place,
                entered_on=None,
                note_mac=None,
            )


def _uuid(value: Any) -> UUID:
    """A record_state row's community: 32 hex digits on SQLite, a uuid on PostgreSQL."""
    return value if isinstance(value, UUID) else UUID(str(value))


class _ChunkWriter:
    """Sends a chunk's write (BulkSave.write) into the import's transaction: on a thread of its own
    when `threaded` (PostgreSQL: the client waits on the server, the GIL is free meanwhile), else at
    once. One write at a time, in order; `wait` returns when the last one is done and raises what it
    raised."""

    def __init__(self, saver: BulkSave, threaded: bool) -> None:
        self.saver = saver
        self.threaded = threaded
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="taizhang-import-write") if threaded else None
        self.running: Future[None] | None = None

    def submit(self, staged: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
        self.wait()
        args, kwargs = staged
        if self.pool is None:
            self.saver.write(*args, **kwargs)
        else:
            self.running = self.pool.submit(self.saver.write, *args, **kwargs)

    def wait(self) -> None:
        running, self.running = self.running, None
        if running is not None:
            running.result()

    def close(self) -> None:
        """Let a write still running end (its error, if any, is not the one to report: the caller is
        already leaving with another) before the transaction is rolled back or committed."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class _Attempt:
    """One pass of applying the valid rows to freshly loaded aggregates."""

    def __init__(self, service: LedgerService, kind: str, actor: str, skip_invalid: bool = False) -> None:
        self.service = service
        self.skip_invalid = skip_invalid
        self.kind = kind
        self.actor = actor
        self.keys: KeySession = service.key_session()
        self.aggregates: dict[str, Community | None] = {}
        self.claimed_here: dict[str, str] = {}
        # a community's code -> its id as str() and as hex writes it, said once, not per row
        self.idents: dict[str, tuple[str, str]] = {}
        self.result = ImportResult()
        # The services' events, encoded here rather than pending in their aggregates (no event
        # objects: infra.codec.stored_event), with their record_state / record_people rows.
        self.stored: list[StoredEvent] = []
        self.written: dict[str, Community] = {}
        self.states: list[tuple[Any, ...]] = []
        self.people: list[tuple[Any, ...]] = []
        # What the chunk before this one wrote, while its write may still be on its way to the store
        # (_ChunkWriter): its new records' record_state rows and its new note keys.
        self.unwritten_states: dict[str, dict[str, Any]] = {}
        self.unwritten_keys: dict[str, bytes] = {}
        self.erased_here = True  # whether a resident of the chunk may have been erased (_prefetch)
        self.collected_at = 0  # problems when the collector last ran (_let_go)

    def community(self, code: str) -> Community:
        if code not in self.aggregates:
            try:
                self.aggregates[code] = self.service.app.repository.get(community_id(code))  # type: ignore[assignment]
            except AggregateNotFoundError:
                self.aggregates[code] = None
        found = self.aggregates[code]
        if found is None:
            raise LedgerError(f"community {code} is not established")
        return found

    def run(
        self,
        chunks: Iterable[list[_Valid]],
        progress: Progress,
        saver: BulkSave | None = None,
        total: Callable[[], int] = lambda: 0,
    ) -> ImportResult:
        """Apply every row, chunk by chunk; with a saver, stream each chunk's new events into its
        transaction (which the caller rolls back when a row had a problem, unless it skips invalid
        rows). Once a chunk is written, what the rules know of its records is let go: the next
        chunks read it back from the store's tables inside the transaction (record_state,
        data_keys), so memory does not grow with the file. A services row comes with its record id
        (`_assign_record_ids`)."""
        if saver is not None and self.kind == "services":
            return self._run_overlapped(chunks, progress, saver, total)
        done = 0
        for chunk in chunks:
            if self.kind == "services":
                self._prefetch(chunk)
            self._apply_chunk(chunk)
            done += len(chunk)
            progress(done, max(total(), done))
            if saver is not None:
                self.flush(saver)
                self._let_go()
        progress(done, max(total(), done))
        return self.result

    def _run_overlapped(
        self,
        chunks: Iterable[list[_Valid]],
        progress: Progress,
        saver: BulkSave,
        total: Callable[[], int],
    ) -> ImportResult:
        """Services, chunk by chunk. On PostgreSQL each chunk's write is on its way while the next
        chunk's rows are applied (the server's work and the rules' overlap; docs/decisions/0029): a
        chunk looks its records and note keys up before the previous chunk's write is sent, so the
        two never share the connection at once; the store answers for every chunk before that one,
        and `unwritten_states` / `unwritten_keys` for that one. On SQLite a chunk is written as soon
        as it is applied (a writer thread would fight the rules for the GIL)."""
        writer = _ChunkWriter(saver, threaded=self.service.store.backend == "postgres")
        staged: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        done = 0
        try:
            for chunk in chunks:
                writer.wait()  # the write before the previous chunk's is in the store now
                self._prefetch(chunk)
                if staged is not None:
                    writer.submit(staged)
                    staged = None
                self._apply_chunk(chunk)
                done += len(chunk)
                progress(done, max(total(), done))
                staged = self._stage(remember=writer.threaded)
                self._let_go()
                if not writer.threaded:  # nothing to overlap: write now, not holding it through the next read
                    writer.submit(staged)
                    staged = None
            writer.wait()
            if staged is not None:
                writer.submit(staged)
            writer.wait()
        finally:
            writer.close()
        self.unwritten_states, self.unwritten_keys = {}, {}
        progress(done, max(total(), done))
        return self.result

    def _apply_chunk(self, chunk: list[_Valid]) -> None:
        for item in chunk:
            mark = len(self.keys.pending)
            try:
                added = self._apply(item)
            except LedgerError as e:
                self.keys.drop_pending(mark)  # a refused row writes nothing, not even its note's key
                message = str(e)
                self.result.problems.append(Problem(item.row, _field_of(self.kind, message), message, malformed=False))
            else:
                if added:
                    self.result.added += 1
                else:
                    self.result.existing += 1

    def _stage(self, remember: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The write of the chunk just applied (BulkSave.write's arguments) and, when `remember`, what
        the next chunk must know of it until it is in the store. A services chunk leaves no pending
        events in its aggregates (its events are encoded here), which is what lets the write go on
        while the next chunk changes them."""
        pending = [a for a in self.aggregates.values() if a is not None and a.pending_events]
        if pending:
            raise RuntimeError("a services chunk left pending events in its aggregates")  # a programming error
        args = ((), self.keys.pending)
        kwargs = {"stored": self.stored, "written": list(self.written.values()), "record_rows": (self.states, self.people)}
        if remember:
            self.unwritten_states = {
                row[0]: recordstate.row_from_db(dict(zip(recordstate.COLUMNS, row, strict=True))) for row in self.states
            }
            self.unwritten_keys = {key_id: self.keys.cache[key_id] for key_id, _master, _wrapped in self.keys.pending}
        self.keys.pending = []
        self.stored, self.written, self.states, self.people = [], {}, [], []
        return args, kwargs

    def flush(self, saver: BulkSave) -> None:
        """Write the events pending since the last flush, with their record state and new data keys."""
        saver.write(
            self.aggregates.values(),
            self.keys.pending,
            stored=self.stored,
            written=list(self.written.values()),
            record_rows=(self.states, self.people),
        )
        self.keys.pending = []
        self.stored, self.written, self.states, self.people = [], {}, [], []

    def _let_go(self) -> None:
        """Forget the written chunk's records, claims and note keys (the transaction holds them)."""
        if self.kind != "services":
            return
        for community in self.aggregates.values():
            if community is not None:
                community.forget_records()
        self.claimed_here = {}
        self.keys.cache.clear()
        self.keys.absent.clear()
        self.keys.known_live.clear()  # every note key looked up is "live" here: asked again per chunk
        # The collector is paused for the import (_collector_paused). A chunk whose rows were all
        # accepted leaves no cycles (measured: a full collection after each chunk of a 100,000-row
        # import freed nothing and cost 0.3 s); a refused row's error might, so only then collect.
        if len(self.result.problems) != self.collected_at:
            self.collected_at = len(self.result.problems)
            gc.collect()

    def _prefetch(self, valid: list[_Valid]) -> None:
        """Load communities, record states, claims and note keys of a chunk in bulk rather than row by row."""
        wanted: dict[str, list[str]] = {}
        for item in valid:
            wanted.setdefault(item.cmd.community, []).append(item.record_id)
        # The rows' records that exist in any community, in one look at the store's record_state (the
        # aggregates keep no records): a row's own community learns its records, and a record of
        # another community is that community's claim (docs/decisions/0027).
        unknown: set[str] = set()
        for code, record_ids in wanted.items():
            known = self._records_of(code)
            unknown.update(r for r in record_ids if r not in known)
        unwritten = {r: self.unwritten_states[r] for r in unknown if r in self.unwritten_states}
        states = {**self.service.recorder.record_states(None, unknown - unwritten.keys()), **unwritten}
        self.claimed_elsewhere = {r: str(_uuid(row["community_id"])) for r, row in states.items()}
        for code, record_ids in wanted.items():
            community = self.aggregates.get(code)
            if community is not None:
                ident = community.id
                community.know_records(
                    {
                        r: recordstate.compact(states[r])
                        for r in record_ids
                        if r in states and _uuid(states[r]["community_id"]) == ident
                    }
                )
        notes = [crypto.note_key_id(item.record_id) for item in valid if item.cmd.note is not None]
        # Whether any listed resident was erased, in one pass rather than row by row: when none was,
        # the rows need not ask again.
        self.erased_here = bool(
            self.keys.erased_among(
                {crypto.resident_key_id(item.cmd.community, code) for item in valid for code in item.cmd.residents}
            )
        )
        for key_id in notes:  # a note key the previous chunk made, perhaps not in the store yet
            if key_id in self.unwritten_keys:
                self.keys.cache[key_id] = self.unwritten_keys[key_id]
        if notes:
            self.keys.prefetch(notes)

    def _records_of(self, code: str) -> Any:
        """The records a row's community knows already (none when it is not established)."""
        try:
            return self.community(code).records
        except LedgerError:
            return ()

    def _apply(self, item: _Valid) -> bool:
        cmd = item.cmd
        if self.kind == "communities":
            return self._establish(cmd)
        community = self.community(cmd.community)
        if self.kind == "residents":
            if cmd.code in community.residents:
                return False
            self.service.apply_enroll(community, cmd, self.keys, self.actor)
            return True
        if self.kind == "providers":
            if cmd.code in community.providers:
                return False
            LedgerService.apply_register(community, cmd, self.actor)
            return True
        record_id = item.record_id
        assert record_id is not None
        ident, hex_id = self.idents.get(cmd.community) or self.idents.setdefault(
            cmd.community, (str(community.id), community.id.hex)
        )
        if record_id not in community.records:
            owner = self.claimed_elsewhere.get(record_id) or self.claimed_here.get(record_id)
            if owner is not None and owner != ident:
                raise LedgerError(f"record {record_id} is already recorded in another community; use service correct")
        fields = LedgerService.service_fields(
            community, cmd, record_id, self.keys, self.actor, erased_among=self.erased_here, digest=item.digest
        )
        if fields is None:
            return False
        timestamp = _RECORDED.create_timestamp()
        version = community.recorded(fields, timestamp)
        self.stored.append(stored_event(_RECORDED, community.id, version, timestamp, fields))
        self.written[cmd.community] = community
        self.states.append(recordstate.recorded_tuple(hex_id, version, recordstate.RECORDED, fields))
        self.people += recordstate.recorded_people(hex_id, fields)
        self.claimed_here[record_id] = ident
        return True

    def _establish(self, cmd: models.EstablishCommunity) -> bool:
        if cmd.code not in self.aggregates:
            try:
                self.community(cmd.code)
            except LedgerError:
                pass
        if self.aggregates.get(cmd.code) is not None:
            return False
        self.aggregates[cmd.code] = Community.establish(
            code=cmd.code,
            name=cmd.name,
            county=cmd.county,
            township=cmd.township,
            village=cmd.village,
            natural_villages=cmd.natural_villages,
            established_on=cmd.established_on or self.service.now().date(),
            actor=self.actor,
        )
        return True

    def changed(self) -> list[Community]:
        return [c for c in self.aggregates.values() if c is not None and c.pending_events]


_TABLES: dict[tuple[str, str, int, int, frozenset[str]], tabular.Table] = {}


def load_table(path: Path, kind: str, supplied: frozenset[str] = frozenset()) -> tabular.Table:
    """Open an import file once per command (its header found; its rows are read from the file each
    time they are iterated): access control reads its rows before the import does."""
    try:
        stat = path.stat()
        key = (str(path.resolve()), kind, stat.st_mtime_ns, stat.st_size, supplied)
    except OSError:
        return tabular.open_table(path, kind, supplied)  # reports the problem in its own words
    if key not in _TABLES:
        _TABLES.clear()
        _TABLES[key] = tabular.open_table(path, kind, supplied)
    return _TABLES[key]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the bulk phase: it would rescan every row, command
    and record held so far, again and again, for cycles that these objects do not form (about a
    quarter of an import's CPU). What exists on entry is frozen out of later scans for good measure."""
    enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def import_file(
    service: LedgerService,
    kind: str,
    path: Path,
    actor: str,
    *,
    skip_invalid: bool = False,
    progress: Callable[[str], Progress] | None = None,
    options: SheetOptions | None = None,
    log_names: Callable[[list[tuple[str, str]]], None] | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import one file; raises ImportRefused (writing nothing) when rows have problems.

    `log_names` receives the (community, resident code) pairs that names in the sheet revealed.
    `dry_run`: everything but the commit (the transaction is rolled back; `preview_file`).
    """
    options = options or SheetOptions()
    with _collector_paused():
        return _import_file(
            service,
            kind,
            path,
            actor,
            skip_invalid=skip_invalid,
            progress=progress,
            options=options,
            log_names=log_names,
            dry_run=dry_run,
        )


def _import_file(
    service: LedgerService,
    kind: str,
    path: Path,
    actor: str,
    *,
    skip_invalid: bool,
    progress: Callable[[str], Progress] | None,
    options: SheetOptions,
    log_names: Callable[[list[tuple[str, str]]], None] | None = None,
    dry_run: bool = False,
) -> ImportResult:
    stage = progress or (lambda _label: _noop)
    table = load_table(path, kind, options.supplied())
    _TABLES.clear()
    if kind == "residents":
        service.require_master()
    beside = _check_beside(path)
    # NAMES (commands/names.py): residents/providers cells that are names become codes, before validation.
    # Beside the apply pass, a name is looked up while the import holds the write lock: as the views are.
    row_names = (
        names.RowNames(service, log=log_names, default_community=options.community, catch_up=not beside)
        if kind == "services"
        else None
    )
    checked: Checked | None = None
    try:
        if beside:
            from commands import checkpass

            answer = partial(_answer, service, row_names)
            checked = checkpass.start(table, path.name, kind, options, service.tz, service.now(), answer)
        if checked is None:
            # Every row read and validated before the apply pass; the valid rows wait in the spill.
            checked = _check_here(service, kind, table, options, path.name, row_names, stage("checking rows"))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            pass_ = _Attempt(service, kind, actor, skip_invalid)
            try:
                # One transaction, written in chunks as the rules accept rows (bounded memory);
                # a refusal raised inside rolls every chunk back: nothing is imported. A file already
                # refused (a malformed row, a row the rules refused) is still written chunk by chunk,
                # so that its later rows are checked against the earlier ones in bounded memory too,
                # and then rolled back.
                with service.bulk_save() as saver:
                    # Against the rows checked so far: all of them, unless the check pass still runs beside.
                    result = pass_.run(checked.chunks(), stage("applying rules"), saver, lambda: checked.valid_rows)
                    result.ignored_columns = checked.ignored
                    result.footer_rows, result.blank_rows = checked.footer_rows, checked.blank_rows
                    result.problems = sorted(checked.malformed + result.problems, key=lambda p: p.row)
                    if result.problems and not skip_invalid:
                        raise ImportRefused(result)
                    result.skipped = len({p.row for p in result.problems})
                    if dry_run:
                        raise _Previewed(result)  # rolls every chunk back: nothing is written
                    pass_.flush(saver)
            except IntegrityError:
                if attempt == MAX_ATTEMPTS:
                    break
                continue
            except _Previewed as previewed:
                return previewed.result
            return result
    finally:
        if checked is not None:
            checked.close()
        if row_names is not None:
            row_names.close()
    raise Busy("other writers kept changing the same communities during the import; try again")


def preview_file(
    service: LedgerService,
    kind: str,
    path: Path,
    actor: str,
    *,
    options: SheetOptions | None = None,
    log_names: Callable[[list[tuple[str, str]]], None] | None = None,
) -> ImportResult:
    """What `import_file` would do with this file now, writing nothing (the web's report before a
    clerk confirms, the API's dry run): the import itself with invalid rows skipped, its chunks
    written into the one transaction and then rolled back — the same reading, names, validation
    and rules, in the memory an import takes. Problems are returned, never raised."""
    return import_file(service, kind, path, actor, skip_invalid=True, options=options, log_names=log_names, dry_run=True)
