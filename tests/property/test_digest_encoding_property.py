"""The content digest's fast encoding writes the very bytes of the json.dumps it stands in for.

Digests are stored in ServiceRecorded events and compared with digests computed later (the format
is forever), so `domain.community.content_digest` may use orjson only where its bytes are provably
those of `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`, and must fall back elsewhere.
Hypothesis draws arbitrary texts (non-ASCII, quotes, backslashes, control characters, separators,
lone surrogates) and ints of any size.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.community import _plain_json, content_digest
from domain.ids import utc_text

HOSTILE = st.sampled_from(['"', "\\", "\n", "\x00", "\x1f", "\x7f", "\u2028", "\x85", "\ud800", "é", "居民", "😀", "/"])
texts = st.one_of(
    st.text(max_size=8), st.lists(HOSTILE, max_size=3).map("".join), st.text(alphabet="R0123-_", max_size=6)
)


def reference(content: list[Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def old_digest(**fields: Any) -> str:
    """content_digest as it was written before the fast path (json.dumps only)."""
    canonical = json.dumps(
        [
            fields["kind"],
            sorted(fields["residents"]),
            sorted(fields["providers"]),
            utc_text(fields["occurred_at"]),
            fields["minutes"],
            fields["place"],
            fields["entered_on"],
            fields["note_mac"],
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.one_of(texts, st.none(), st.integers(), st.lists(texts, max_size=3)), max_size=8),
)
def test_the_fast_bytes_are_json_dumps_bytes_or_nothing(content: list[Any]) -> None:
    strings = [x for item in content for x in (item if isinstance(item, list) else [item]) if isinstance(x, str)]
    fast = _plain_json(content, strings)
    if fast is not None:
        assert fast == reference(content)


@settings(max_examples=500, deadline=None)
@given(
    kind=texts,
    residents=st.lists(texts, min_size=1, max_size=3),
    providers=st.lists(texts, min_size=1, max_size=3),
    occurred_at=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone(timedelta(hours=8)))
    ),
    minutes=st.integers(),
    place=st.one_of(st.none(), texts),
    entered_on=st.one_of(st.none(), texts),
    note_mac=st.one_of(st.none(), texts),
)
def test_the_digest_is_the_json_dumps_digest(**fields: Any) -> None:
    try:
        want = old_digest(**fields)
    except UnicodeEncodeError:  # a lone surrogate: json.dumps' text cannot be encoded, and stays so
        with pytest.raises(UnicodeEncodeError):
            content_digest(**fields)
        return
    assert content_digest(**fields) == want


def test_a_stored_digest_is_unchanged() -> None:
    """A digest as ServiceRecorded events hold it (computed by the json.dumps-only code)."""
    fields = dict(
        kind="life_care",
        residents=["R2", "居民1"],
        providers=["P1"],
        occurred_at=datetime(2026, 3, 5, 1, 30, tzinfo=UTC),
        minutes=45,
        place="home_visit",
        entered_on=None,
        note_mac=None,
    )
    assert content_digest(**fields) == old_digest(**fields) == "8493970c849a4c82386c5619ab82d8e4"
    assert _plain_json([fields["kind"], ["R2", "居民1"]], ["life_care", "R2", "居民1"]) is not None  # the fast path
