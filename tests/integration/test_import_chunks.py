"""An import written into its one transaction in chunks stays all or nothing (issue 12 point 7)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from commands import importer
from commands.app import LedgerService
from commands.importer import ImportRefused, import_file
from tests.integration.test_service import sql


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


@pytest.mark.parametrize("malformed", [False, True], ids=["rule-refused", "malformed-too"])
def test_a_refused_file_is_checked_to_its_end_in_bounded_memory(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, malformed: bool
) -> None:
    """Once a file is refused (a row the rules refuse, a malformed row), its later rows are still
    checked, so the clerk sees every problem at once; they are written chunk by chunk into the
    transaction that is then rolled back, so memory holds a chunk, not the file (a county's
    million-row migration with one bad cell must not need gigabytes)."""
    monkeypatch.setattr(importer, "CHUNK", 100)
    _base(service, tmp_path)
    before = service.recorder.max_notification_id()
    path = _with_refused_last_row(tmp_path, 1000)
    with path.open("a", newline="") as f:
        if malformed:
            csv.writer(f).writerow(["B000", "life_care", "R001", "P00", "2025-03-01 09:00", "abc", "other", ""])
        csv.writer(f).writerow(["B001", "life_care", "NOBODY2", "P00", "2025-03-01 09:00", 30, "other", ""])
    held: list[int] = []
    let_go = importer._Attempt._let_go

    def measured(self: importer._Attempt) -> None:
        held.append(sum(len(c.records) for c in self.aggregates.values() if c is not None))
        let_go(self)

    monkeypatch.setattr(importer._Attempt, "_let_go", measured)
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    problems = refused.value.result.problems
    assert [p.row for p in problems] == ([1002, 1003, 1004] if malformed else [1002, 1003])
    assert "NOBODY" in str(problems[0]) and "NOBODY2" in str(problems[-1])
    assert len(held) >= 10 and max(held) <= 100  # every chunk let go after it was written
    assert service.recorder.max_notification_id() == before
    assert int(sql(service.store.url, "SELECT count(*) FROM record_state")[0][0]) == 0


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


def _repeats(folder: Path) -> Path:
    """Rows whose twins lie in other chunks: identical rows (no id), one id given twice with the
    same content and a note, and one id given again with other content."""
    path = folder / "repeats.csv"
    given = "0b7c2f9e-6a51-4c1e-9a38-2d5f3c8e1a01"
    same = ["B001", "life_care", "R001", "P01", "2025-03-01 09:00", 30, "other"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["community", "record_id", "kind", "residents", "providers", "occurred_at", "minutes", "place", "note"]
        )
        for i in range(12):
            w.writerow(["B000", "", "life_care", "R001", "P01", "2025-03-02 09:00", 30, "other", ""])  # identical
            if i == 1:
                w.writerow([same[0], given, *same[1:], "送米"])
            if i == 9:
                w.writerow([same[0], given, *same[1:], "送米"])  # the same record again: existing
    return path


def test_repeats_across_chunks_are_found_in_the_transaction(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK", 4)  # every twin lies in another chunk than its first
    _base(service, tmp_path)
    path = _repeats(tmp_path)
    result = import_file(service, "services", path, "clerk")
    assert result.counts() == {"added": 13, "existing": 1, "skipped": 0}
    again = import_file(service, "services", path, "clerk")  # the same ids: identical rows keep their index
    assert again.counts() == {"added": 0, "existing": 14, "skipped": 0}
    with path.open("a", newline="") as f:  # the given id once more, with other content
        csv.writer(f).writerow(["B001", "0b7c2f9e-6a51-4c1e-9a38-2d5f3c8e1a01", "life_care", "R001", "P01",
                                "2025-03-01 09:00", 45, "other", ""])  # fmt: skip
    before = service.recorder.max_notification_id()
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    assert refused.value.exit_code == 1 and [p.row for p in refused.value.result.problems] == [16]
    assert service.recorder.max_notification_id() == before


def test_an_id_repeated_in_another_community_across_chunks_is_refused(
    service: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK", 2)
    _base(service, tmp_path)
    path = tmp_path / "elsewhere.csv"
    given = "5d1e0c3a-1f2b-4c3d-8e4f-5a6b7c8d9e0f"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["community", "record_id", "kind", "residents", "providers", "occurred_at", "minutes"])
        w.writerow(["B000", given, "life_care", "R001", "P01", "2025-03-01 09:00", 30])
        for minute in range(5):
            w.writerow(["B000", "", "life_care", "R001", "P01", f"2025-03-03 09:0{minute}", 30])
        w.writerow(["B002", given, "life_care", "R001", "P01", "2025-03-01 09:00", 30])
    with pytest.raises(ImportRefused) as refused:
        import_file(service, "services", path, "clerk")
    assert [p.row for p in refused.value.result.problems] == [8]
    assert "another community" in str(refused.value.result.problems[0])
    result = import_file(service, "services", path, "clerk", skip_invalid=True)
    assert result.counts() == {"added": 6, "existing": 0, "skipped": 1}
