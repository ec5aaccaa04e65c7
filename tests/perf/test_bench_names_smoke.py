"""bench_names at a tiny size, so the benchmark keeps running (its timings decide nothing)."""

from __future__ import annotations

import pytest

from tests.perf import bench_names


def test_bench_names_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_names.main(["--rows", "300", "--communities", "2", "--residents", "12", "--full"]) == 0
    out = capsys.readouterr().out
    assert "names: full import" in out and "(300 added)" in out
