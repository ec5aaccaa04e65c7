"""Smoke test of bench_web at a tiny size: the real server, the real load, its own invariants (never a timing)."""

from __future__ import annotations

from pathlib import Path

from tests.perf import bench_web as bench


def test_the_bench_loses_nothing_doubles_nothing_and_gets_the_statuses_it_expects(tmp_path: Path) -> None:
    args = bench.parser().parse_args(
        ["--events", "600", "--folder", str(tmp_path), "--communities", "1", "--residents", "8",
         "--sessions", "1,3", "--requests", "2", "--in-process-repeat", "1", "--clerks", "3",
         "--supervisors", "2", "--seconds", "2", "--retry", "0.3", "--double", "0.3",
         "--think", "0.05", "--paced-requests", "2"]
    )  # fmt: skip
    result = bench.run(args, say=lambda _m: None)
    writes = result["mixed"]["writes"]
    assert writes.unexpected == []
    assert result["ledger"]["created"] > 0
    assert result["ledger"]["lost"] == 0
    assert result["ledger"]["doubled"] == 0
    assert writes.retries > 0 and writes.doubles > 0  # the deliberate retries and double submits happened
    assert writes.statuses.get("retry:200", 0) == writes.retries
    assert writes.statuses.get("double:201", 0) == writes.statuses.get("double:200", 0) == writes.doubles
    assert set(result["levels"]) == {"dashboard", "ledger", "api_summary"}
    assert all(per[n]["n"] == n * 2 for per in result["levels"].values() for n in (1, 3))
    assert set(result["paced"]) == {"dashboard", "ledger", "api_summary"}  # the paced sessions, as many requests
    assert all(per[n]["n"] == n * 2 for per in result["paced"].values() for n in (1, 3))
    assert result["local"]["ledger+log"]  # the 台账 page's read with its access-log entry, in process
    for times in result["mixed"]["busy"].values():
        assert times  # the supervisors read while the clerks wrote
    text = bench.report(args, result)
    assert "lost 0, doubled 0" in text
    assert "paced (the target load" in text and "(read + access-log entry)" in text
