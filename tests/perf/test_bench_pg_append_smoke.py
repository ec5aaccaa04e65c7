"""Smoke test of bench_pg_append at a tiny size: it runs on both kinds of store and counts the functions.

Correctness only (the import went through taizhang_append, the counters were on); never a timing.
"""

from __future__ import annotations

import pytest

from tests.perf import bench_pg_append


@pytest.mark.parametrize("actors", [False, True])
def test_the_bench_reports_the_append_functions(
    pg_admin_url: str, actors: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_pg_append.run(pg_admin_url, 40, actors, check=True)
    out = capsys.readouterr().out
    assert "import services, 40 rows" in out and ("access control on" in out) == actors
    calls = {
        line.split()[0]: int(line.split()[1])
        for line in out.splitlines()
        if line.startswith("taizhang_") and "*" not in line
    }
    assert calls["taizhang_append"] >= 1 and calls["taizhang_record_state"] >= 1
