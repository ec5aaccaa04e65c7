"""The report a clerk reads before confirming an upload (`preview_file`: the web's check, the API's
dry run) is what the import would do with the file at that moment — the same counts, the same
problems word for word, the same names revealed and logged — and it writes nothing to the store.
It runs the import's own path, chunk by chunk in one transaction that is then rolled back, so a
large upload is checked in the memory an import takes, with its check pass beside when large."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.app import LedgerService
from commands.importer import ImportResult, import_file, preview_file
from infra.store import parse_url
from tests.conftest import fresh_store_url
from tests.integration.test_import_check_beside import _sheet, import_settings, rows
from tests.integration.test_import_overlap import _write_base
from tests.integration.test_service import payloads, sql, store_counts


@pytest.fixture
def based(backend: str, tmp_path: Path, key_file: Path, request: pytest.FixtureRequest) -> Iterator[LedgerService]:
    """A store with two communities, their residents and providers (kept across hypothesis examples,
    so that later files meet the records of earlier ones)."""
    with fresh_store_url(backend, tmp_path / "preview.db", request) as url:
        service, _ = LedgerService.create(parse_url(url), key_file, None)
        try:
            _write_base(service, tmp_path)
            yield service
        finally:
            service.close()


def _seen(result: ImportResult, logged: list[Any]) -> tuple[Any, ...]:
    return result.counts(), [str(p) for p in result.problems], result.ignored_columns, logged


def _trace(service: LedgerService) -> tuple[Any, ...]:
    """Everything a write leaves: row counts of the written tables, the log's last position and
    every stored event's payload, the record state and the chain's last link."""
    chain = sql(service.store.url, "SELECT max(position) FROM taizhang_chain")
    states = sql(service.store.url, "SELECT record_id, status, revision, version FROM record_state ORDER BY record_id")
    return store_counts(service), service.recorder.max_notification_id(), payloads(service), states, chain


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=rows, chunk=st.integers(min_value=1, max_value=5), beside=st.booleans())
def test_the_preview_is_what_the_import_then_does_and_writes_nothing(
    based: LedgerService, tmp_path: Path, drawn: list[tuple[Any, ...]], chunk: int, beside: bool
) -> None:
    path = _sheet(tmp_path / "services.csv", drawn)
    with import_settings(chunk, beside):
        before = _trace(based)
        previewed: list[Any] = []
        preview = _seen(preview_file(based, "services", path, "clerk", log_names=previewed.append), previewed)
        assert _trace(based) == before
        imported: list[Any] = []
        result = import_file(based, "services", path, "clerk", skip_invalid=True, log_names=imported.append)
        assert preview == _seen(result, imported)


def test_a_preview_of_registry_sheets_writes_nothing_either(based: LedgerService, tmp_path: Path) -> None:
    """Residents (names sealed with the master key), providers: counted as the import counts them."""
    residents = tmp_path / "more_residents.csv"
    residents.write_text(
        "community,code,name,birth_date,categories\nB000,R007,王芳,1950-02-03,left_behind_elderly\n"
        "B000,R000,居民B000R000,1950-01-01,left_behind_elderly\nB009,R001,李四,1950-01-01,left_behind_elderly\n"
    )
    before = _trace(based)
    preview = preview_file(based, "residents", residents, "clerk")
    assert _trace(based) == before
    assert (preview.added, len(preview.problems)) == (1, 1)
    assert "B009" in str(preview.problems[0])
    result = import_file(based, "residents", residents, "clerk", skip_invalid=True)
    assert (result.counts(), [str(p) for p in result.problems]) == (
        preview.counts(),
        [str(p) for p in preview.problems],
    )
