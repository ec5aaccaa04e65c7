"""A services import sends each chunk's write while the next chunk is applied (on PostgreSQL on a
thread of its own; docs/decisions/0029): the next chunk learns the previous chunk's records and note
keys from memory, not from the store. Whatever the chunk size, the same files give the same results
and the same store, and a write that fails fails the import with nothing written."""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import importer
from commands.app import BulkSave, LedgerService
from commands.importer import ImportRefused, import_file
from domain.community import Community
from infra.store import parse_url
from tests.conftest import fresh_store_url
from tests.integration.test_import_bulk_events import _log
from tests.integration.test_service import store_counts

COMMUNITIES = ("B000", "B001")
GIVEN_IDS = ("", "", "0b7c2f9e-6a51-4c1e-9a38-2d5f3c8e1a01", "5d1e0c3a-1f2b-4c3d-8e4f-5a6b7c8d9e0f")
HEADER = ["community", "record_id", "kind", "residents", "providers", "occurred_at", "minutes", "place", "note"]

row = (
    st.tuples(
        st.sampled_from(COMMUNITIES),
        st.sampled_from(GIVEN_IDS),
        st.sampled_from(["life_care", "counseling"]),
        st.sampled_from(["R000", "R001", "R000;R001", "R009"]),  # R009 is nobody: the rules refuse the row
        st.sampled_from(["2025-03-01 09:00", "2025-03-02 10:30"]),
        st.sampled_from([30, 45]),
        st.sampled_from(["", "送米"]),
    )
)
# Rows drawn from a few templates, so that the same row (a given id with the same content and note)
# comes back within a file and across files, in the next chunk as well as further on.
rows = st.lists(row, min_size=1, max_size=5).flatmap(lambda pool: st.lists(st.sampled_from(pool), min_size=1, max_size=12))


def _write_base(service: LedgerService, folder: Path) -> None:
    sheets = {
        "communities": (["code", "name", "county", "township", "village", "established_on"],
                        [[c, f"社区{c}", "县0", "镇0", f"村{c}", "2025-01-01"] for c in COMMUNITIES]),
        "residents": (["community", "code", "name", "birth_date", "categories"],
                      [[c, r, f"居民{c}{r}", "1950-01-01", "left_behind_elderly"] for c in COMMUNITIES
                       for r in ("R000", "R001")]),
        "providers": (["community", "code", "name", "role"], [[c, "P00", f"服务者{c}", "volunteer"] for c in COMMUNITIES]),
    }  # fmt: skip
    for kind, (header, body) in sheets.items():
        path = folder / f"{kind}.csv"
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([header, *body])
        import_file(service, kind, path, "clerk")


def _sheet(path: Path, drawn: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for community, record_id, kind, residents, at, minutes, note in drawn:
            w.writerow([community, record_id, kind, residents, "P00", at, minutes, "other", note])
    return path


def _outcome(service: LedgerService, path: Path, chunk: int, skip_invalid: bool) -> tuple[Any, ...]:
    saved = importer.CHUNK
    importer.CHUNK = chunk
    try:
        result = import_file(service, "services", path, "clerk", skip_invalid=skip_invalid)
    except ImportRefused as refused:
        return ("refused", [(p.row, p.field) for p in refused.result.problems])
    finally:
        importer.CHUNK = saved
    return ("imported", result.counts(), [(p.row, p.field) for p in result.problems])


def _store(service: LedgerService, base: int) -> tuple[Any, ...]:
    """What must agree between the two stores: the services' events after the base (but their times
    and keyed bytes; by community and version: PostgreSQL orders a chunk's events by community, so
    the log's order across communities follows the chunks), every record_state row (keyed columns
    masked), the note keys' ids."""
    states = {}
    for code in COMMUNITIES:
        for record_id, row in service.recorder.records_of(Community.id_for(code)).items():
            states[record_id] = {**row, "note_mac": "(keyed)", "digest": "(keyed)"} if row["note_mac"] else row
    keys = sorted(service.recorder.data_keys([f"note:{record_id}" for record_id in states]))
    return sorted(_log(service, base), key=lambda e: (e[0], e[1])), states, keys


def two_stores(
    backend: str, folder: Path, key_file: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, ...]]:
    """Two stores with the same base, the folder, and each one's last log position before the test."""
    with (
        fresh_store_url(backend, folder / "first.db", request) as first_url,
        fresh_store_url(backend, folder / "second.db", request) as second_url,
    ):
        first, _ = LedgerService.create(parse_url(first_url), key_file, None)
        second, _ = LedgerService.create(parse_url(second_url), key_file, None)
        try:
            _write_base(first, folder)
            _write_base(second, folder)
            yield first, second, folder, first.recorder.max_notification_id(), second.recorder.max_notification_id()
        finally:
            first.close()
            second.close()


@pytest.fixture
def pair(backend: str, tmp_path: Path, key_file: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Any, ...]]:
    """Two stores with the same base: one imports in small chunks, the other in one chunk."""
    yield from two_stores(backend, tmp_path, key_file, request)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=rows, chunk=st.integers(min_value=1, max_value=4), skip_invalid=st.booleans())
def test_any_chunk_size_gives_the_result_and_the_store_of_one_chunk(
    pair: tuple[Any, ...], drawn: list[tuple[Any, ...]], chunk: int, skip_invalid: bool
) -> None:
    """The stores accumulate across examples, so later files repeat records of earlier ones (in the
    store) as well as of their own earlier chunks (in memory while their write is on its way)."""
    chunked, whole, folder, chunked_base, whole_base = pair
    path = _sheet(folder / "services.csv", drawn)
    assert _outcome(chunked, path, chunk, skip_invalid) == _outcome(whole, path, 10_000, skip_invalid)
    assert _store(chunked, chunked_base) == _store(whole, whole_base)
    assert chunked.recorder.record_state_problem() is None


def test_a_write_that_fails_fails_the_import_and_writes_nothing(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second chunk's write fails while the third chunk is applied: the import raises that error,
    the transaction is rolled back, and no writer thread is left behind."""
    _write_base(service, tmp_path)
    path = _sheet(tmp_path / "services.csv", [("B000", "", "life_care", "R000", f"2025-03-0{d} 09:00", 30, "送米")
                                              for d in range(1, 8)])  # fmt: skip
    monkeypatch.setattr(importer, "CHUNK", 2)
    real_write = BulkSave.write
    calls = []

    def failing(self: BulkSave, *args: Any, **kwargs: Any) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 2:
            raise OSError("the disk is full")
        real_write(self, *args, **kwargs)

    monkeypatch.setattr(BulkSave, "write", failing)
    before = store_counts(service)
    with pytest.raises(OSError, match="the disk is full"):
        import_file(service, "services", path, "clerk")
    assert store_counts(service) == before
    assert not [t for t in threading.enumerate() if t.name.startswith("taizhang-import-write")]
    on_thread = service.store.backend == "postgres"
    assert all(name.startswith("taizhang-import-write") == on_thread for name in calls)
    monkeypatch.setattr(BulkSave, "write", real_write)
    assert import_file(service, "services", path, "clerk").counts() == {"added": 7, "existing": 0, "skipped": 0}
