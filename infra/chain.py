"""The tamper-evident hash chain over the event log, and its verification.

Each stored event gets one chain entry, written by the store's write-time hook in
the transaction that stores the event (infra.sqlitestore, infra.pgstore):

    hash(i) = SHA-256(hash(i-1) ‖ entry(i)),   hash(before the first event) = 32 zero bytes
    entry(i) = position u64 ‖ originator id (16 raw bytes) ‖ originator version u64
               ‖ u32 len ‖ topic (UTF-8) ‖ u32 len ‖ state ‖ u32 len ‖ recorded time (UTF-8)

(integers big-endian). The recorded time is the event's commit time as the store
shows it (`taizhang_commits.recorded_at`, fixed-width UTC text such as
`2026-03-05T01:30:00.123Z`), so rewriting a recorded time — or a commit's
boundaries — breaks the chain like rewriting the payload does. Snapshots are not
events and are not chained. `i` runs over the log order; positions may have gaps
(PostgreSQL sequences), so an entry is chained to the previous *entry*, not to
position - 1.

`walk` also checks what the chain cannot see by itself: each aggregate's versions run
1, 2, 3… along the log with no gap or repeat, and recorded times never decrease. The
stores' log readers refuse a stored value that is not in its one canonical form (an
upper-cased originator id hashes like the lower-cased one, but the application no longer
finds the event): see `noncanonical()` of infra.sqlitestore and infra.pgstore.

The chain alone catches anyone who changes rows without recomputing every later
hash. Someone who can rewrite the database can recompute the chain too: that is
what sealed checkpoints (infra.checkpoint) are for — they pin the Merkle root over
the chain entries as they stood when sealed.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson

from infra import merkle

GENESIS = bytes(32)
CHAIN_VERSION = 1
RECORD_TOPICS = frozenset(
    {
        "taizhang:Community.ServiceRecorded",
        "taizhang:Community.ServiceCorrected",
        "taizhang:Community.ServiceVoided",
    }
)
# The events of a funding line (domain.funds.FundingLine): a line is proved like a record, its
# events counted under the key `line:<line id>` in the checkpoint's records tree.
LINE_TOPICS = frozenset(
    {
        "taizhang:FundingLine.Allocated",
        "taizhang:FundingLine.Transferred",
        "taizhang:FundingLine.Spent",
        "taizhang:FundingLine.Reversed",
        "taizhang:FundingLine.Returned",
    }
)
LINE_PREFIX = "line:"
TIP_TOPICS = RECORD_TOPICS | LINE_TOPICS

_HEAD = struct.Struct(">Q16sQI")
_LEN = struct.Struct(">I")
_sha256 = hashlib.sha256


def entry(position: int, originator_id: bytes, version: int, topic: str, state: bytes, recorded_at: str) -> bytes:
    """The unambiguous bytes one event contributes to the chain."""
    t = topic.encode()
    r = recorded_at.encode()
    return b"".join(
        (_HEAD.pack(position, originator_id, version, len(t)), t, _LEN.pack(len(state)), state, _LEN.pack(len(r)), r)
    )


def link(
    prev: bytes, position: int, originator_id: bytes, version: int, topic: str, state: bytes, recorded_at: str
) -> bytes:
    return _sha256(prev + entry(position, originator_id, version, topic, state, recorded_at)).digest()


def id_bytes(originator_id: Any) -> bytes:
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    if isinstance(originator_id, bytes | bytearray | memoryview):
        return bytes(originator_id)
    return UUID(str(originator_id)).bytes


def chain_events(
    prev: bytes, positions: Sequence[int], stored_events: Sequence[Any], recorded_at: str
) -> list[tuple[int, bytes]]:
    """(position, hash) of newly stored events, linked after `prev` (the write-time hook).

    The same bytes as `entry`, inlined: this runs for every event written.
    """
    r = recorded_at.encode()
    tail = _LEN.pack(len(r)) + r
    sha, head_pack, len_pack = _sha256, _HEAD.pack, _LEN.pack
    rows = []
    for position, s in zip(positions, stored_events, strict=True):
        oid = s.originator_id
        oid = oid.bytes if isinstance(oid, UUID) else id_bytes(oid)
        t = s.topic.encode()
        state = bytes(s.state)
        prev = sha(
            b"".join(
                (prev, head_pack(position, oid, s.originator_version, len(t)), t, len_pack(len(state)), state, tail)
            )
        ).digest()
        rows.append((position, prev))
    return rows


def relink(prev: bytes, rows: Iterable[Row], commits: Iterable[tuple[int, int, str]]) -> Iterator[tuple[int, bytes]]:
    """(position, hash) of stored events chained after `prev` with their recorded times (upgrades)."""
    commit_iter = iter(commits)
    c_first, c_last, c_time = next(commit_iter, (0, -1, ""))
    for position, oid, version, topic, state, _stored in rows:
        while c_last < position:
            c_first, c_last, c_time = next(commit_iter, (0, 1 << 62, ""))
        prev = link(prev, position, oid, version, topic, state, c_time if c_first <= position <= c_last else "")
        yield position, prev


def append_backlog(
    prev: bytes,
    rows: Iterable[Row],
    commits: Iterable[tuple[int, int, str]],
    insert: Callable[[list[tuple[int, bytes]]], Any],
    batch_size: int = 5000,
) -> int:
    """Chain stored events after `prev` (an upgraded store), handing `insert` batches of
    (position, hash) rows to write in the caller's transaction; returns how many."""
    batch: list[tuple[int, bytes]] = []
    done = 0
    for item in relink(prev, rows, commits):
        batch.append(item)
        if len(batch) >= batch_size:
            insert(batch)
            done += len(batch)
            batch = []
    if batch:
        insert(batch)
    return done + len(batch)


def line_key(line: UUID) -> str:
    """The key a funding line's events are counted under in the records tree (`line:<uuid>`)."""
    return f"{LINE_PREFIX}{line}"


def record_id_of(topic: str, state: bytes, originator_id: bytes | None = None) -> str | None:
    """The service record (or, given its originator id, the funding line) an event belongs to, or None."""
    if topic in LINE_TOPICS:
        return None if originator_id is None else line_key(UUID(bytes=originator_id))
    if topic not in RECORD_TOPICS:
        return None
    value = orjson.loads(state).get("record_id")
    return value if isinstance(value, str) else None


# ---- verification ------------------------------------------------------------------------

# Row = (position, originator id bytes, version, topic, state, chain hash or None)
Row = tuple[int, bytes, int, str, bytes, bytes | None]


@dataclass(frozen=True)
class Problem:
    position: int
    # changed | chain-altered | missing | unchained | inserted | chain-missing | reordered | mismatch
    # | version | time | noncanonical (a stored form the walk still decodes) | malformed (one it cannot)
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"position {self.position}: {self.detail}"


SPILL_TIPS = 20_000  # record tips a walk holds before handing them to its records_spill


@dataclass
class RecordTip:
    count: int
    position: int
    hash: bytes


@dataclass
class Walk:
    """What one pass over the log found."""

    events: int = 0
    head: bytes = GENESIS
    last_position: int = 0
    problem: Problem | None = None
    leaves: bytearray | None = None  # the chain hashes in log order, 32 bytes each, when collected
    positions: array[int] | None = None  # their positions, when collected
    records: dict[str, RecordTip] = field(default_factory=dict)
    log_root: merkle.RootBuilder | None = None  # the Merkle root over the chain hashes, when streamed


def walk(
    rows: Iterable[Row],
    commits: Iterable[tuple[int, int, str]],
    orphans: Sequence[int],
    *,
    collect: bool = False,
    records: bool = False,
    records_upto: int | None = None,
    log_root: bool = False,
    records_spill: Callable[[dict[str, RecordTip]], None] | None = None,
) -> Walk:
    """Recompute the chain in one pass and stop at the first bad position.

    `rows` are the events in log order, each with its chain entry (None if it has
    none); `commits` the (first, last, recorded_at) commit rows in order; `orphans`
    the sorted positions of chain entries whose event is gone. With `collect`, keep
    the chain hashes (the Merkle leaves) and positions; with `records`, the latest
    event of every service record (and funding line) among the first `records_upto` events; with `log_root`,
    the Merkle root over the chain hashes, built as they come (no leaf is kept). With
    `records_spill`, the record tips are handed to it every SPILL_TIPS records and at the end
    (each batch holds the later tips), and `records` of the result is left empty.
    """
    result = Walk(leaves=bytearray() if collect else None, positions=array("q") if collect else None)
    add_leaf = None
    if log_root:
        result.log_root = merkle.RootBuilder()
        add_leaf = result.log_root.add
    leaf_hash = merkle.leaf_hash
    leaves = result.leaves
    kept_positions = result.positions
    records_limit = records_upto if records_upto is not None else 1 << 62
    tips = result.records
    commit_iter = iter(commits)
    c_first, c_last, c_time = next(commit_iter, (0, -1, ""))
    next_orphan = orphans[0] if orphans else None
    prev = GENESIS
    prev_position = 0
    count = 0
    versions: dict[bytes, tuple[int, int]] = {}  # originator id -> (last version, its position)
    last_time = ""
    sha = _sha256
    head_pack, len_pack = _HEAD.pack, _LEN.pack
    rows_iter = iter(rows)
    for row in rows_iter:
        position, oid, version, topic, state, stored = row
        if next_orphan is not None and next_orphan < position:
            result.problem = Problem(
                next_orphan, "missing", "event missing: its chain entry remains, the event was deleted"
            )
            break
        while c_last < position:
            c_first, c_last, c_time = next(commit_iter, (0, 1 << 62, ""))
        recorded = c_time if c_first <= position <= c_last else ""
        t = topic.encode()
        r = recorded.encode()
        expected = sha(
            b"".join(
                (prev, head_pack(position, oid, version, len(t)), t, len_pack(len(state)), state, len_pack(len(r)), r)
            )
        ).digest()
        if stored != expected:
            result.problem = _diagnose(row, prev, expected, rows_iter, commit_iter, (c_first, c_last, c_time))
            break
        seen = versions.get(oid)
        if version != (seen[0] + 1 if seen else 1):
            result.problem = version_problem(position, oid, version, seen)
            break
        versions[oid] = (version, position)
        if recorded < last_time:
            result.problem = Problem(
                position, "time", f"recorded time {recorded} is earlier than {last_time}, recorded before it"
            )
            break
        last_time = recorded
        prev = expected
        prev_position = position
        count += 1
        if leaves is not None and kept_positions is not None:
            leaves += expected
            kept_positions.append(position)
        if add_leaf is not None:
            add_leaf(leaf_hash(expected))
        if records and topic in TIP_TOPICS and count <= records_limit:
            record_id = record_id_of(topic, state, oid)
            if record_id is not None:
                tip = tips.get(record_id)
                if tip is None:
                    tips[record_id] = RecordTip(1, position, expected)
                    if records_spill is not None and len(tips) >= SPILL_TIPS:
                        records_spill(tips)
                        tips.clear()
                else:
                    tip.count += 1
                    tip.position = position
                    tip.hash = expected
    else:
        if next_orphan is not None:
            result.problem = Problem(
                next_orphan, "missing", "event missing: its chain entry remains, the event was deleted"
            )
    if records_spill is not None and tips:
        records_spill(tips)
        tips.clear()
    result.events = count
    result.head = prev
    result.last_position = prev_position
    return result


def version_problem(position: int, oid: bytes, version: int, seen: tuple[int, int] | None) -> Problem:
    """What is wrong with an aggregate's version that does not follow its last one."""
    aggregate = oid.hex()
    if seen is None:
        return Problem(position, "version", f"aggregate {aggregate} starts at version {version}, not 1")
    last, at = seen
    if version == last:
        return Problem(
            position, "version", f"aggregate {aggregate}: version {version} repeats the one at position {at}"
        )
    if version > last:
        return Problem(
            position,
            "version",
            f"aggregate {aggregate}: version {version} follows version {last} (a version is missing)",
        )
    return Problem(
        position, "version", f"aggregate {aggregate}: version {version} comes after version {last} (position {at})"
    )


def _diagnose(
    row: Row,
    prev: bytes,
    expected: bytes,
    rest: Iterator[Row],
    commit_iter: Iterator[tuple[int, int, str]],
    commit: tuple[int, int, str],
) -> Problem:
    """Say what is wrong at the first position whose chain entry does not match."""
    position, oid, version, topic, state, stored = row
    c_first, c_last, c_time = commit

    def recorded_at(p: int) -> str:
        nonlocal c_first, c_last, c_time
        while c_last < p:
            nxt = next(commit_iter, None)
            if nxt is None:
                c_first, c_last, c_time = 0, 1 << 62, ""
                break
            c_first, c_last, c_time = nxt
        return c_time if c_first <= p <= c_last else ""

    following = next(rest, None)
    if following is not None and following[5] is None:
        following = None  # the next event is not chained either: nothing to compare with
    if following is not None:
        n_pos, n_oid, n_ver, n_topic, n_state, n_stored = following
        n_time = recorded_at(n_pos)
        if stored is None:
            if n_stored == link(expected, n_pos, n_oid, n_ver, n_topic, n_state, n_time):
                return Problem(position, "chain-missing", "chain entry missing (deleted); the event itself is intact")
            if n_stored == link(prev, n_pos, n_oid, n_ver, n_topic, n_state, n_time):
                return Problem(position, "inserted", "event inserted: it is not in the chain")
        else:
            if n_stored == link(expected, n_pos, n_oid, n_ver, n_topic, n_state, n_time):
                return Problem(position, "chain-altered", "chain entry altered; the event matches the chain around it")
            moved = _find_elsewhere(row, stored, following, n_time, rest, recorded_at)
            if moved is not None:
                return Problem(
                    position, "reordered", f"events reordered: the event stored here was chained at position {moved}"
                )
            return Problem(
                position, "changed", "event changed: its payload or recorded time differs from what was chained"
            )
    if stored is None:
        return Problem(position, "unchained", "event not in the chain (inserted, or its chain entry deleted)")
    return Problem(
        position, "mismatch", "the last event does not match its chain entry (the event or the entry was changed)"
    )


def _find_elsewhere(
    row: Row, stored: bytes, following: Row, following_time: str, rest: Iterator[Row], recorded_at: Any
) -> int | None:
    """The later position at which this event's content was chained, if any (a swap of rows)."""
    _position, oid, version, topic, state, _stored = row
    prev = stored
    c_pos, _o, _v, _t, _s, c_stored = following
    if c_stored == link(prev, c_pos, oid, version, topic, state, following_time):
        return c_pos
    prev = c_stored  # type: ignore[assignment]
    for candidate in rest:
        c_pos, _o, _v, _t, _s, c_stored = candidate
        if c_stored is None:
            return None
        if c_stored == link(prev, c_pos, oid, version, topic, state, recorded_at(c_pos)):
            return c_pos
        prev = c_stored
    return None
