"""Verifying the hash chain, sealing checkpoints and proving records — against an open store.

The pure parts (the chain's encoding and walk, Merkle trees, checkpoint and bundle
formats) live in infra.chain, infra.merkle and infra.checkpoint; this module reads
the store through the recorder's `log_reader()` (one snapshot of the log, its chain
entries and its commits) and puts them together.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from commands import clock
from commands.app import LedgerService
from domain.errors import LedgerError
from domain.ids import community_id
from infra import access_chain, chain, merkle
from infra.checkpoint import (
    BUNDLE_FORMAT,
    Checkpoint,
    SpilledTips,
    b64,
    log_tree,
    sign_checkpoint,
)
from projections.filters import utc_ms


class VerificationFailed(LedgerError):
    """The log, a checkpoint or a bundle does not verify (exit 1, one line)."""


# Problems of the chain itself; the others (version, time, noncanonical, malformed) are of the log's rows.
CHAIN_KINDS = frozenset(
    {"changed", "chain-altered", "missing", "unchained", "inserted", "chain-missing", "reordered", "mismatch"}
)


def failure(problem: chain.Problem) -> str:
    if problem.kind in CHAIN_KINDS:
        return f"the chain is broken at {problem}"
    return f"the log does not verify at {problem}"


def walk_log(service: LedgerService, **options: Any) -> chain.Walk:
    """Recompute the chain over the whole log, from one snapshot of it.

    A stored value in a non-canonical form is a problem at its position; the walk stops
    there (a malformed row may not even decode), so an earlier problem is still named first.
    """
    with service.recorder.log_reader() as reader:
        # Walk up to the first row that does not decode: a changed payload in a row that is merely
        # non-canonical is then named as a change.
        odd, before = reader.noncanonical()
        result = _walk(reader, [], options, before)
        if result.problem is not None or odd is not None or reader.chain_count() != result.events:
            orphans = reader.orphans(before)
            if orphans:  # a chain entry without its event: walk again so it is reported in log order
                result = _walk(reader, orphans, options, before)
        if odd is not None and (result.problem is None or result.problem.position > odd.position):
            result.problem = odd
        return result


def _walk(reader: Any, orphans: list[int], options: dict[str, Any], before: int | None) -> chain.Walk:
    rows, commits = reader.rows(before=before), reader.commits(before)
    try:
        return chain.walk(rows, commits, orphans, **options)
    finally:
        rows.close()
        commits.close()


def walk_access(service: LedgerService, at: int | None = None) -> access_chain.AccessWalk:
    """Recompute the access log's chain, from one snapshot of it."""
    with service.recorder.log_reader() as reader:
        orphans = reader.access_orphans()
        rows, subjects = reader.access_rows(), reader.access_subjects()
        try:
            return access_chain.walk(rows, subjects, orphans, at=at)
        finally:
            rows.close()
            subjects.close()


def verify_access(service: LedgerService, at: int | None = None) -> access_chain.AccessWalk:
    result = walk_access(service, at)
    if result.problem is not None:
        raise VerificationFailed(f"the access log does not verify at {result.problem}")
    return result


def verify_log(service: LedgerService) -> dict[str, Any]:
    result = walk_log(service)
    if result.problem is not None:
        raise VerificationFailed(failure(result.problem))
    access = verify_access(service)
    verify_record_state(service)
    return {
        "intact": True,
        "events": result.events,
        "last_position": result.last_position,
        "head_hash": result.head.hex(),
        "access_entries": access.entries,
        "access_head": access.head.hex(),
    }


def verify_record_state(service: LedgerService) -> None:
    """The store's record_state / record_people (what write rules consult) must be what the log
    says: recomputed from the service events and compared row by row (a colleague editing the file)."""
    problem = service.recorder.record_state_problem()
    if problem is not None:
        raise VerificationFailed(f"the record state does not agree with the log: {problem}")


def verify_community(service: LedgerService, code: str) -> dict[str, Any]:
    """One community's stream: versions 1..n in log order with no repeat, recorded times never
    decreasing, every event matching its chain entry — and no row of the log in a non-canonical
    form (such a row may be one of this community's, hidden from the application)."""
    oid = community_id(code).bytes
    with service.recorder.log_reader() as reader:
        odd, _ = reader.noncanonical()
        if odd is not None and odd.kind == "malformed":
            raise VerificationFailed(failure(odd))  # its stream might not even sort
        rows = sorted(reader.stream(oid), key=lambda row: (row[1], row[0]))
        orphans = reader.orphans()
    if not rows:
        raise VerificationFailed(f"community {code} has no events in the log")
    last_position = 0
    last_recorded = ""
    for expected_version, (position, version, topic, state, stored, prev, recorded) in enumerate(rows, 1):
        if expected_version > 1 and version == expected_version - 1:
            raise VerificationFailed(
                f"community {code}: position {position}: version {version} repeats the one at position {last_position}"
            )
        if version != expected_version:
            raise VerificationFailed(
                f"community {code}: position {position}: version {version} where {expected_version} was expected "
                f"(event version {expected_version} is missing)"
            )
        if position <= last_position:
            raise VerificationFailed(
                f"community {code}: position {position}: version {version} is stored before version {version - 1} "
                "(events reordered)"
            )
        last_position = position
        if recorded < last_recorded:
            raise VerificationFailed(
                f"community {code}: position {position}: recorded time {recorded} is earlier than {last_recorded}, "
                "recorded before it"
            )
        last_recorded = recorded
        if stored is None:
            raise VerificationFailed(f"community {code}: position {position}: the event is not in the chain")
        state = bytes(state)
        if bytes(stored) != chain.link(
            bytes(prev) if prev else chain.GENESIS, position, oid, version, topic, state, recorded
        ):
            raise VerificationFailed(
                f"community {code}: position {position}: the event does not match its chain entry "
                "(its payload or recorded time was changed, or the chain before it; run audit verify)"
            )
    if odd is not None:
        raise VerificationFailed(failure(odd))
    if orphans:
        raise VerificationFailed(
            f"position {orphans[0]}: a chain entry without its event (an event was deleted; run audit verify)"
        )
    return {"intact": True, "community": code, "events": len(rows), "last_position": last_position}


def seal(
    service: LedgerService, private: Ed25519PrivateKey, views_at: Callable[[int], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Verify the log and sign a checkpoint of it; `views_at(position)` gives the views' digest there."""
    # Both Merkle roots stream: no leaf of the log is kept, and the records' tips wait on disk.
    tips = SpilledTips()
    try:
        result = walk_log(service, log_root=True, records=True, records_spill=tips.add)
        if result.problem is not None:
            raise VerificationFailed(f"refusing to seal a broken log: {failure(result.problem)}")
        if result.events == 0:
            raise VerificationFailed("the log is empty: nothing to seal")
        assert result.log_root is not None and result.log_root.size == result.events
        records_size, records_root = tips.root()
    finally:
        tips.close()
    access = verify_access(service)
    body = {
        "access_size": access.entries,
        "access_head": access.head.hex(),
        "log_size": result.events,
        "last_position": result.last_position,
        "head_hash": result.head.hex(),
        "log_root": result.log_root.root().hex(),
        "records_size": records_size,
        "records_root": records_root.hex(),
        "sealed_at": _utc_now(),
    }
    if views_at is not None:
        body["views"] = views_at(result.last_position)
    return sign_checkpoint(body, private)


def _utc_now() -> str:
    return utc_ms(datetime.now(UTC))  # UTC inside the signed bytes


def verify_against(service: LedgerService, cp: Checkpoint) -> dict[str, Any]:
    """The current log is intact and an append-only extension of the sealed one (consistency proof)."""
    result = walk_log(service, collect=True)
    if result.problem is not None:
        raise VerificationFailed(failure(result.problem))
    assert result.leaves is not None and result.positions is not None
    if result.events < cp.log_size:
        raise VerificationFailed(
            f"the log holds {result.events} events, fewer than the {cp.log_size} sealed at {clock.text(cp.sealed_at, service.tz)}: "
            "events were removed"
        )
    tree = log_tree(result.leaves, result.events)
    proof = tree.consistency_proof(cp.log_size)
    if not merkle.verify_consistency(cp.log_size, tree.size, cp.log_root, tree.root(), proof):
        first = _first_rewritten(result, cp)
        raise VerificationFailed(
            f"the log is not an extension of the one sealed at {clock.text(cp.sealed_at, service.tz)}: history up to position "
            f"{cp.last_position} was rewritten{first}"
        )
    access = _access_against(service, cp)
    verify_record_state(service)
    return {
        "intact": True,
        "events": result.events,
        "access_entries": access.entries,
        "checkpoint_size": cp.log_size,
        "sealed_at": clock.shown(cp.sealed_at, service.tz),
        "appended_since": result.events - cp.log_size,
        "consistency_proof": [p.hex() for p in proof],
    }


def _access_against(service: LedgerService, cp: Checkpoint) -> access_chain.AccessWalk:
    """The access log is intact and, when the checkpoint sealed it, extends the sealed one."""
    access = verify_access(service, cp.access_size)
    if cp.access_size is None or cp.access_head is None:
        return access  # sealed before the access log was chained
    at = clock.text(cp.sealed_at, service.tz)
    if access.entries < cp.access_size:
        raise VerificationFailed(
            f"the access log holds {access.entries} entries, fewer than the {cp.access_size} sealed at {at}: "
            "entries were removed"
        )
    sealed_head = access.head_at if cp.access_size else access_chain.GENESIS
    if sealed_head != cp.access_head:
        raise VerificationFailed(
            f"the access log is not an extension of the one sealed at {at}: its first {cp.access_size} entries "
            "were changed (and the access chain recomputed)"
        )
    return access


def _first_rewritten(result: chain.Walk, cp: Checkpoint) -> str:
    assert result.positions is not None
    if result.positions[cp.log_size - 1] != cp.last_position:
        return f" (the sealed event {cp.log_size} was at position {cp.last_position}, now {result.positions[cp.log_size - 1]})"
    return " (the chain was recomputed after the change)"


def prove(service: LedgerService, record_id: str, cp: Checkpoint, community: str | None = None) -> dict[str, Any]:
    """The bundle that proves a record's events up to the checkpoint, for `audit check`.

    `community`: the community the record must belong to (`--community`, which the access policy
    judged: an auditor of a township proves the records of its communities, not others').
    """
    if community is not None:
        from commands.context import Refused

        owner = service.recorder.claims([record_id]).get(record_id)
        if owner is None or UUID(str(owner)) != community_id(community):
            raise Refused(f"record {record_id} is not a record of community {community}")

    def missing(at: str) -> NoReturn:
        raise VerificationFailed(f"record {record_id} is not in the log sealed at {at}")

    return _prove(service, record_id, cp, lambda: service.recorder.claims([record_id]).get(record_id), missing)


def prove_line(service: LedgerService, line: UUID, cp: Checkpoint, name: str) -> dict[str, Any]:
    """The bundle that proves every event of a funding line up to the checkpoint (record_id `line:<id>`)."""

    def missing(at: str) -> NoReturn:
        raise VerificationFailed(f"funding line {name} is not in the log sealed at {at}")

    return _prove(service, chain.line_key(line), cp, lambda: str(line), missing)


def _prove(
    service: LedgerService,
    key: str,
    cp: Checkpoint,
    owner_of: Callable[[], str | None],
    missing: Callable[[str], NoReturn],
) -> dict[str, Any]:
    # The records' tips wait on disk, as `seal` keeps them: a proof holds one path of the records
    # tree, not every record of the log.
    tips = SpilledTips()
    try:
        result = walk_log(service, collect=True, records=True, records_upto=cp.log_size, records_spill=tips.add)
        if result.problem is not None:
            raise VerificationFailed(failure(result.problem))
        assert result.leaves is not None and result.positions is not None
        if result.events < cp.log_size:
            raise VerificationFailed(f"this store holds {result.events} events, fewer than the checkpoint's {cp.log_size}")
        tree = log_tree(result.leaves, cp.log_size)
        if tree.root() != cp.log_root:
            raise VerificationFailed(f"this store's first {cp.log_size} events are not the ones in the checkpoint")
        tip = tips.tip(key)
        if tip is None:
            missing(clock.text(cp.sealed_at, service.tz))
        rindex, _size, rproof = tips.proof(key)
    finally:
        tips.close()
    owner = owner_of()
    if owner is None:
        raise VerificationFailed(f"record {key} is not claimed by any community")
    oid = UUID(owner).bytes
    with service.recorder.log_reader() as reader:
        rows = reader.stream(oid)
    events = []
    for position, version, topic, state, _stored, prev, recorded in rows:
        state = bytes(state)
        if position > cp.last_position or chain.record_id_of(topic, state, oid) != key:
            continue
        index = bisect.bisect_left(result.positions, position)
        events.append(
            {
                "index": index,
                "position": position,
                "originator_id": UUID(owner).hex,
                "originator_version": version,
                "topic": topic,
                "state": b64(state),
                "recorded_at": recorded,
                "prev_hash": (bytes(prev) if prev else chain.GENESIS).hex(),
                "proof": [p.hex() for p in tree.inclusion_proof(index)],
            }
        )
    events.sort(key=lambda e: e["position"])
    return {
        "format": BUNDLE_FORMAT,
        "record_id": key,
        "checkpoint": cp.raw,
        "events": events,
        "record": {
            "index": rindex,
            "count": tip.count,
            "latest_position": tip.position,
            "latest_hash": tip.hash.hex(),
            "proof": [p.hex() for p in rproof],
        },
    }
