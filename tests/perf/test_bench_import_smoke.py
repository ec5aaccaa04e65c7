"""Smoke test of the import benchmark at a tiny size: it runs, and it compares like with like.

Correctness only (the peer stores every row with its audit row, the sizes cover the tables);
never a timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.perf import bench_import, crud_peer


def test_the_bench_measures_taizhang_raw_and_the_peer_on_the_same_rows(tmp_path: Path) -> None:
    base = bench_import.write_base(tmp_path)
    services = tmp_path / "services.csv"
    bench_import.write_services(services, 300)
    result = bench_import.bench("sqlite", 300, tmp_path, services, base, None)
    assert result["events"] == 300  # one ServiceRecorded per row, and raw inserted exactly those
    assert result["import_s"] > 0 and result["raw_s"] > 0 and result["peer_s"] > 0
    # The two passes split the import's wall time between them (a stage the import stopped naming
    # would leave one out: the split would no longer add up).
    check, apply = result["phases"]["check"], result["phases"]["apply"]
    assert check[0] > 0 and apply[0] > 0
    assert abs(check[0] + apply[0] - result["import_s"]) < 1e-6
    assert {"stored_events", "taizhang_chain", "record_state", "ledger_revisions"} <= result["sizes"].keys()
    assert {"services", "audit_log"} <= result["peer_sizes"].keys()
    engine = crud_peer.engine_for(str(tmp_path / "peer.db"))
    with engine.connect() as conn:
        services_count = conn.exec_driver_sql("SELECT count(*) FROM services").scalar()
        audit_count = conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar()
    engine.dispose()
    assert services_count == audit_count == 300


def test_import_only_prints_both_passes_of_each_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = bench_import.write_base(tmp_path)
    services = tmp_path / "services.csv"
    bench_import.write_services(services, 120)
    bench_import.passes_only(2, 120, tmp_path, services, base, None)
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| sqlite |")]
    assert [row[2].strip() for row in rows] == ["1", "2"]
    for row in rows:  # wall / CPU of the check pass, the apply pass and the import, each measured
        assert all(float(x) >= 0 for cell in row[3:6] for x in cell.split("/"))
        assert float(row[5].split("/")[0]) > 0


def test_the_bench_measures_the_check_process_beside_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check pass in a process of its own is not this process's CPU: the bench reports its CPU
    seconds and peak RSS apart (0 when the check ran in the importing process)."""
    from infra import crypto

    besides = {}
    for setting in ("off", "on"):
        folder = tmp_path / setting
        folder.mkdir()
        base = bench_import.write_base(folder)
        crypto.create_key_file(folder / "bench.key")
        bench_import.write_services(folder / "services-150.csv", 150)
        monkeypatch.setenv("TAIZHANG_CHECK_PROCESS", setting)
        bench_import.passes_only(1, 150, folder, folder / "services-150.csv", base, None)
        row = next(line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| sqlite |"))
        besides[setting] = (float(row[6]), bench_import.run_child(folder, "import", rows=150)[2])
    assert besides["off"] == (0.0, 0.0)
    assert besides["on"][0] > 0 and besides["on"][1] > 0


def test_the_memory_bench_measures_an_import_into_postgresql(tmp_path: Path, pg_admin_url: str) -> None:
    """`--memory` with `--pg-url`: the import runs in a fresh process against a database of its
    own, which it drops when done."""
    import psycopg

    from infra import crypto

    def bench_databases() -> set[str]:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            return {row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench_%'")}

    crypto.create_key_file(tmp_path / "bench.key")
    bench_import.write_services(tmp_path / "services-200.csv", 200)
    before = bench_databases()
    rss, seconds, _beside = bench_import.run_child(tmp_path, "import-pg", rows=200, **{"pg-url": pg_admin_url})
    assert rss > 0 and seconds > 0
    assert bench_databases() <= before  # its own database is gone (others' may have ended meanwhile)


def test_the_memory_bench_measures_the_preview_of_the_file(tmp_path: Path) -> None:
    """The preview job counts every row of the file as added (the child checks it) and writes nothing."""
    from commands.app import LedgerService
    from infra import crypto
    from infra.store import parse_url
    from tests.integration.test_service import store_counts

    crypto.create_key_file(tmp_path / "bench.key")
    bench_import.write_services(tmp_path / "services-120.csv", 120)
    rss, seconds, _beside = bench_import.run_child(tmp_path, "preview", rows=120)
    assert rss > 0 and seconds > 0
    service = LedgerService.open(parse_url(f"sqlite:///{tmp_path / 'preview-120.db'}"), tmp_path / "bench.key")
    try:
        assert store_counts(service)["record_state"] == 0
    finally:
        service.close()
