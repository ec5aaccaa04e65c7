"""Smoke test of bench_writes at a tiny size: it measures what it says (never a timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.app import LedgerService
from domain.ids import community_id
from infra import crypto
from infra.store import parse_url
from tests.perf import bench_writes as bench


def test_the_bench_builds_its_communities_and_loads_the_same_bytes_at_both_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k.key"
    crypto.create_key_file(key)
    service, _ = LedgerService.create(parse_url(f"sqlite:///{tmp_path / 'b.db'}"), key, None)
    try:
        ids = bench.build(service, "SMALL", 30)
        assert len(set(ids)) == 30
        assert set(service.recorder.records_of(community_id("SMALL"))) == set(ids)
    finally:
        service.close()
    # 26 registry events + 74 or 474 records: both communities stand on a snapshot, so their commands
    # replay the same number of events after it.
    bench.run(f"sqlite:///{tmp_path / 'c.db'}", key, 74, 474, 3)
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith("service ") and "ratio" not in line]
    assert len(rows) == 6  # three commands at two sizes
    loaded = {(row[1], row[2]): int(row[-1].replace(",", "")) for row in rows}  # (command, size) -> bytes
    for command in ("record", "correct", "void"):
        small, large = loaded[(command, "74")], loaded[(command, "474")]
        assert abs(large - small) <= 0.01 * small  # bounded by the registry, not by the records
    assert sum("ratio" in line for line in lines) == 3
