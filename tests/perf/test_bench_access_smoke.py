"""Smoke test of bench_access at a tiny size: it measures what it says (never a timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.perf import bench_access as bench
from tests.perf.bench_import import write_base, write_services


def test_the_on_store_has_access_control_and_the_off_store_has_none(tmp_path: Path) -> None:
    base = write_base(tmp_path)
    write_services(tmp_path / "all.csv", 300)
    chunks = bench.county_chunks(tmp_path / "all.csv", tmp_path, 2)
    assert all(int(line.split(",")[0][1:]) % 5 == 0 for p in chunks for line in p.read_text().splitlines()[1:])
    on = bench.prepare(f"sqlite:///{tmp_path / 'on.db'}", tmp_path / "k.key", base, on=True)
    off = bench.prepare(f"sqlite:///{tmp_path / 'off.db'}", tmp_path / "k.key", base, on=False)
    off.run("resident", "list", "B001")
    with pytest.raises(RuntimeError, match="permission denied"):
        on.run("resident", "list", "B001", actor="clerk01")  # B001 lies in another county
    with pytest.raises(RuntimeError, match="permission denied"):
        on.run("import", "services", str(tmp_path / "all.csv"), actor="clerk01")  # rows of other counties
    result = bench.bench("sqlite", tmp_path, chunks, base, None, repeat=1, rebuild_repeat=1)
    assert {"off_import", "on_import", "off_rebuild", "on_rebuild", "off_read", "on_read"} <= set(result)
