"""Smoke test of the import benchmark at a tiny size: it runs, and it compares like with like.

Correctness only (the peer stores every row with its audit row, the sizes cover the tables);
never a timing.
"""

from __future__ import annotations

from pathlib import Path

from tests.perf import bench_import, crud_peer


def test_the_bench_measures_taizhang_raw_and_the_peer_on_the_same_rows(tmp_path: Path) -> None:
    base = bench_import.write_base(tmp_path)
    services = tmp_path / "services.csv"
    bench_import.write_services(services, 300)
    result = bench_import.bench("sqlite", 300, tmp_path, services, base, None)
    assert result["events"] == 300  # one ServiceRecorded per row, and raw inserted exactly those
    assert result["import_s"] > 0 and result["raw_s"] > 0 and result["peer_s"] > 0
    assert {"stored_events", "taizhang_chain", "record_state", "ledger_revisions"} <= result["sizes"].keys()
    assert {"services", "audit_log"} <= result["peer_sizes"].keys()
    engine = crud_peer.engine_for(str(tmp_path / "peer.db"))
    with engine.connect() as conn:
        services_count = conn.exec_driver_sql("SELECT count(*) FROM services").scalar()
        audit_count = conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar()
    engine.dispose()
    assert services_count == audit_count == 300
