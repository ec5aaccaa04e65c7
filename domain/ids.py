"""Deterministic identifiers. These rules are frozen like the event format."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from uuid import UUID, uuid5

COMMUNITY_NAMESPACE = UUID("5b0c58f8-0f5c-4b7e-9d55-2f1f6a7f2a01")
IMPORTED_RECORD_NAMESPACE = UUID("8c3e1d7a-6a4b-4f7e-a8f5-3b6a9f0c1d02")


def community_id(code: str) -> UUID:
    """The aggregate id of the community with this code."""
    return uuid5(COMMUNITY_NAMESPACE, code)


@lru_cache(maxsize=1 << 14)  # an import asks twice per row (its record id, its digest); equal instants, equal text
def utc_text(moment: datetime) -> str:
    """An aware datetime as fixed-width UTC text, to the second: 2026-03-05T01:30:00Z."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in the ledger")
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:  # isoformat's text is strftime's then, and it is quicker (tests/unit/test_ids.py)
        return utc.isoformat(timespec="seconds")[:-6] + "Z"  # without its "+00:00"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def imported_record_id(
    *,
    community: str,
    kind: str,
    residents: Iterable[str],
    providers: Iterable[str],
    occurred_at: datetime,
    minutes: int,
    place: str | None,
    index: int,
) -> str:
    """The record id of a services row imported without one (DESIGN §3, frozen).

    uuid5 of the canonical content: community, kind, sorted residents, sorted
    providers, occurred_at in UTC, minutes, place, and the row's index (0-based)
    among identical rows of the file.
    """
    canonical = json.dumps(
        [
            community,
            kind,
            sorted(residents),
            sorted(providers),
            utc_text(occurred_at),
            minutes,
            place or "",
            index,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return str(uuid5(IMPORTED_RECORD_NAMESPACE, canonical))
