"""The hash chain over the access log (who printed personal data, when), and its walk.

The access log has its own chain, separate from the event log's (infra.chain): each
access-log entry gets one `access_chain` row, written in the transaction that writes the
entry (infra.sqlitestore / infra.pgstore `log_access`):

    hash(i) = SHA-256(hash(i-1) ‖ entry(i)),   hash(before the first entry) = 32 zero bytes
    entry(i) = "taizhang-access/1" ‖ id u64 ‖ str at ‖ actor ‖ str command ‖ str detail
               ‖ u64 residents ‖ u64 records ‖ u32 n ‖ n × (str community ‖ str resident)

where `str` is u32 length ‖ UTF-8, `actor` is 0x00 (none) or 0x01 ‖ str, integers are
big-endian and the residents are in (community, resident) order. `at` is the stored time
as UTC text (SQLite: as stored; PostgreSQL: to the microsecond, `…T01:30:00.123456Z`).
Dropping the append-only triggers and deleting, changing or inserting a row then breaks
the chain; deleting the newest entries with their chain rows is caught by a sealed
checkpoint (`access_size`, `access_head`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = bytes(32)
TAG = b"taizhang-access/1"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

# (id, at, actor, command, detail, residents, records, chain hash or None)
Entry = tuple[int, str, str | None, str, str, int, int, bytes | None]


def _text(value: str) -> bytes:
    data = value.encode()
    return _U32.pack(len(data)) + data


def entry(
    access_id: int, at: str, actor: str | None, command: str, detail: str, residents: int, records: int,
    subjects: Sequence[tuple[str, str]],
) -> bytes:  # fmt: skip
    """The unambiguous bytes one access-log entry contributes to its chain."""
    parts = [TAG, _U64.pack(access_id), _text(at), b"\x00" if actor is None else b"\x01" + _text(actor)]
    parts += [_text(command), _text(detail), _U64.pack(residents), _U64.pack(records), _U32.pack(len(subjects))]
    for community, resident in sorted(subjects):
        parts += [_text(community), _text(resident)]
    return b"".join(parts)


def link(prev: bytes, *fields: Any) -> bytes:
    return hashlib.sha256(prev + entry(*fields)).digest()


@dataclass(frozen=True)
class Problem:
    access_id: int
    detail: str

    def __str__(self) -> str:
        return f"entry {self.access_id}: {self.detail}"


@dataclass
class AccessWalk:
    entries: int = 0
    head: bytes = GENESIS
    head_at: bytes | None = None  # the chain hash after `at` entries, when asked for
    problem: Problem | None = None


def _well_typed(row: Entry) -> bool:
    access_id, at, actor, command, detail, residents, records, _hash = row
    return (
        type(access_id) is int and access_id >= 1 and isinstance(at, str) and (actor is None or isinstance(actor, str))
        and isinstance(command, str) and isinstance(detail, str) and type(residents) is int and residents >= 0
        and type(records) is int and records >= 0
    )  # fmt: skip


def walk(
    rows: Iterable[Entry], subjects: Iterator[tuple[int, str, str]], orphans: Sequence[int], *, at: int | None = None
) -> AccessWalk:
    """Recompute the access chain in id order and stop at the first bad entry.

    `rows` are the entries with their chain hash, `subjects` the (access id, community,
    resident) rows in that order, `orphans` the sorted ids of chain rows whose entry is gone.
    """
    result = AccessWalk()
    prev = GENESIS
    pending = next(subjects, None)
    orphan_iter = iter(orphans)
    next_orphan = next(orphan_iter, None)
    for row in rows:
        access_id = row[0]
        if next_orphan is not None and next_orphan < access_id:
            result.problem = Problem(next_orphan, "deleted: its chain entry remains")
            return result
        mine: list[tuple[str, str]] = []
        while pending is not None and pending[0] <= access_id:
            if pending[0] < access_id:
                result.problem = Problem(pending[0], "deleted: the residents it listed remain")
                return result
            mine.append((pending[1], pending[2]))
            pending = next(subjects, None)
        if not _well_typed(row):
            result.problem = Problem(access_id, "a column is not stored in its canonical form")
            return result
        _id, stamp, actor, command, detail, residents, records, stored = row
        if stored is None:
            result.problem = Problem(access_id, "not in the access chain (inserted outside taizhang, or its chain entry deleted)")
            return result
        expected = link(prev, access_id, stamp, actor, command, detail, residents, records, mine)
        if bytes(stored) != expected:
            result.problem = Problem(
                access_id, "does not match its chain entry (it or its residents were changed, or an entry before it was deleted)"
            )
            return result
        prev = expected
        result.entries += 1
        if at is not None and result.entries == at:
            result.head_at = prev
    if next_orphan is not None:
        result.problem = Problem(next_orphan, "deleted: its chain entry remains")
    elif pending is not None:
        result.problem = Problem(pending[0], "deleted: the residents it listed remain")
    result.head = prev
    return result
