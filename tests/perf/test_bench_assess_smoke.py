"""Smoke test of bench_assess at a tiny size: it runs on a generated city and times every query.

BENCHMARKS.md §3 gives its command for issue 12 point 8; the bench had stopped running when the
read connection on SQLite became infra.litesql's (no `scalar_one`), and nothing noticed. Correctness
only: never a timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.perf import bench_assess, citygen

SHAPE = citygen.Shape(counties=1, townships=2, communities=2, residents=10, providers=3)


def test_the_bench_times_entries_summaries_and_the_assessment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key, url = tmp_path / "city.key", f"sqlite:///{tmp_path / 'city.db'}"
    service = citygen.open_store(url, key)
    try:
        citygen.CityGenerator(service, events=300, seed=3, shape=SHAPE, transaction_events=300).run(300)
    finally:
        service.close()
    assert bench_assess.main(["--db", url, "--key-file", str(key), "--runs", "2", "--period", "2025-Q1"]) == 0
    out = capsys.readouterr().out
    timed = [line for line in out.splitlines() if line.startswith("| `")]
    assert [line.split("`")[1].split()[0:2] for line in timed] == [
        ["ledger", "entries"],
        ["ledger", "summary"],
        ["ledger", "summary"],
        ["assess", "run"],
    ]
    assert "ratio assessment / summary 2025-Q1" in out
