"""The import's fast validation of services rows agrees with the RecordService model on every row.

`commands.importer.fast_service` runs the model's own field validators without pydantic; on any
problem it returns None and the model validates the row (and words the problem). So: whenever the
fast path accepts a row, the model accepts it with equal values; and whenever the model refuses a
row, the fast path refuses it too (it never lets through what the model would refuse).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import models
from commands.importer import _data, fast_service
from domain.vocab import KINDS, PLACES

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=TZ)

GOOD = {
    "community": "HZ-P01",
    "kind": "life_care",
    "residents": "R1;R2",
    "providers": "P1",
    "occurred_at": "2026-03-05 09:30",
    "minutes": "45",
    "place": "home_visit",
    "note": "送米送油",
}


def both(row: dict[str, Any]) -> tuple[Any, Any]:
    data = _data("services", row)
    fast = fast_service(dict(data), TZ, NOW)
    try:
        model: Any = models.validate(models.RecordService, dict(data), tz=TZ, now=NOW)
    except models.Malformed as e:
        model = e
    return fast, model


def test_a_plain_row_takes_the_fast_path_with_the_models_values() -> None:
    fast, model = both(dict(GOOD))
    assert fast is not None
    assert fast.model_dump() == model.model_dump()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("community", "HZ P01"),
        ("kind", "unknown_kind"),
        ("residents", "R1;R1"),
        ("residents", ""),
        ("occurred_at", "2026-02-30 09:30"),
        ("occurred_at", "2027-01-01 09:30"),
        ("occurred_at", "1899-01-01 09:30"),
        ("occurred_at", "2026-03-05 24:30"),
        ("minutes", "0"),
        ("minutes", "4.5"),
        ("place", "moon"),
        ("note", "a\x00b"),
        ("record_id", "not-a-uuid"),
    ],
)
def test_a_bad_cell_leaves_the_fast_path_and_the_model_words_it(field: str, value: str) -> None:
    fast, model = both({**GOOD, field: value})
    assert fast is None
    assert isinstance(model, models.Malformed)


cells = st.one_of(
    st.sampled_from(["", " ", "R1", "R1;R2", "R1；R2", "P1", "HZ-P01", "x y", "'=1", "45", "0", "1e3", "30.0"]),
    st.sampled_from([*KINDS.labels, *PLACES.labels, "Life_Care", "上门"]),
    st.sampled_from(
        [
            "2026-03-05 09:30",
            "2026-03-05T09:30:15",
            "2026-3-5 9:30",
            "2026年3月5日 9时",
            "２０２６-03-05 09:30",
            "2026-03-05 09:30+08:00",
            "2026-13-05 09:30",
            "2026-06-01 12:00:01",
            "2026-06-01 12:00",
            "2026-03-05",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {name: cells for name in ("community", "kind", "residents", "providers", "occurred_at", "minutes")},
        optional={"place": cells, "note": cells, "record_id": cells},
    )
)
def test_the_fast_path_never_disagrees_with_the_model(row: dict[str, Any]) -> None:
    fast, model = both(row)
    if fast is not None:
        assert not isinstance(model, models.Malformed), model
        assert fast.model_dump() == model.model_dump()


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(GOOD) + ["record_id"]), cells)
def test_one_changed_cell_of_a_good_row_never_makes_them_disagree(field: str, value: str) -> None:
    fast, model = both({**GOOD, field: value})
    if fast is not None:
        assert not isinstance(model, models.Malformed), model
        assert fast.model_dump() == model.model_dump()
    else:
        assert isinstance(model, models.Malformed) or field in (
            "occurred_at",
            "minutes",
        )  # the model may accept odd forms


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["R1", "R-2", "r/3", "居民", 'R"4', "R\\5", "R 6", "é"]), min_size=1, max_size=3, unique=True
    ),
    st.sampled_from(["HZ-P01", "社区1", "A'B"]),
    st.sampled_from([None, "home_visit", "上门"]),
    st.one_of(st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=10**9)),
)
def test_the_plain_record_id_is_the_domains(
    residents: list[str], community: str, place: str | None, index: int
) -> None:
    from commands.importer import _plain_record_id, _ServiceRow
    from domain.ids import imported_record_id

    at = datetime(2026, 3, 5, 9, 30, tzinfo=TZ)
    row = _ServiceRow(community, "life_care", residents, ["P1"], at, 45, place, None, None, None)
    fast = _plain_record_id(row, index)
    expected = imported_record_id(
        community=community,
        kind="life_care",
        residents=residents,
        providers=["P1"],
        occurred_at=at,
        minutes=45,
        place=place,
        index=index,
    )
    assert fast in (None, expected)
    if all(text.isascii() and '"' not in text and "\\" not in text for text in [community, *residents, place or ""]):
        assert fast == expected


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["R1", "R1", "R-2", "居民", "R;3", "R，4", "R 5", " R6 ", "", "R/7"]), st.text(max_size=4)
        ),
        max_size=4,
    ),
)
def test_the_cached_code_lists_are_models_codes(items: list[str]) -> None:
    """The fast path's remembered code cells give models.codes' list, or refuse as it does."""
    from commands.importer import _listed

    try:
        want: list[str] | None = models._nonempty(models.codes(list(items), what="resident"), "resident")
    except ValueError:
        want = None
    for _twice in range(2):  # the second time from the cache
        try:
            got: list[str] | None = _listed(list(items), "resident")
        except ValueError:
            got = None
        assert got == want
