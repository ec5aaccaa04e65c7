"""An import written into its one transaction in chunks stays all or nothing (issue 12 point 7)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from commands import importer
from commands.app import LedgerService
from commands.importer import ImportRefused, import_file


def _base(service: LedgerService, folder: Path) -> None:
    from tests.perf.bench_import import write_base

    for kind, path in zip(("communities", "residents", "providers"), write_base(folder), strict=True):
        import_file(service, kind, path, "clerk")


def _with_refused_last_row(folder: Path, good: int) -> Path:
    from tests.perf.bench_import import write_services

    path = folder / "services.csv"
    write_services(path, good)
    with path.open("a", newline="") as f:
        csv.writer(f).writerow(["B000", "life_care", "NOBODY", "P00", "2025-03-01 09:00", 30, "other", ""])
    return path


def test_a_row_refused_after_chunks_were_written_rolls_every_chunk_back(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK", 300)  # several chunks reach the store before the bad row
    _base(service, tmp_path)
    before = service.recorder.max_notification_id()
    path = _with_refused_last_row(tmp_path, 1000)
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    assert refused.value.exit_code == 1
    assert [p.row for p in refused.value.result.problems] == [1002]
    assert "NOBODY" in str(refused.value.result.problems[0])
    assert service.recorder.max_notification_id() == before  # no event, so no claim, key or commit row either
    assert service.recorder.claims(["anything"]) == {}


def test_skip_invalid_commits_the_chunks_as_one_commit_row(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK", 300)
    _base(service, tmp_path)
    before = service.recorder.max_notification_id() or 0
    path = _with_refused_last_row(tmp_path, 1000)
    result = import_file(service, "services", path, "clerk", skip_invalid=True)
    assert result.counts() == {"added": 1000, "existing": 0, "skipped": 1}
    after = service.recorder.max_notification_id()
    assert after - before == 1000
    commits = service.recorder.recorded_times(before + 1, after)
    assert len(commits) == 1 and (commits[0][0], commits[0][1]) == (before + 1, after)
    again = import_file(service, "services", path, "clerk", skip_invalid=True)
    assert again.counts() == {"added": 0, "existing": 1000, "skipped": 1}
    from commands.audit_chain import verify_log

    assert verify_log(service)["intact"] is True  # every chunk chained with the one commit's time
