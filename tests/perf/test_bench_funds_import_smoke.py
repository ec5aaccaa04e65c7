"""Smoke test of the spending-import benchmark at a tiny size: it runs and compares like with like.

Correctness only (raw inserts the very rows each import stored: one event per service row, two per
spending row — the spend and its voucher claim); never a timing.
"""

from __future__ import annotations

from pathlib import Path

from tests.perf import bench_funds_import


def test_the_bench_imports_spending_and_inserts_the_same_rows_raw(tmp_path: Path) -> None:
    result = bench_funds_import.bench("sqlite", 200, tmp_path, None)
    assert result["services_events"] == 200
    assert result["spending_events"] == 400
    assert result["spending_s"] > 0 and result["spending_raw_s"] > 0
    assert "ratio" in bench_funds_import.report(result)
