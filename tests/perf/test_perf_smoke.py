"""Smoke test of the city generator and the ledger benchmark at a tiny size.

Correctness only (what the benchmark measures is the right work); never a timing.
A small city (12 communities, ~20 residents each) and a year of 2,000 service
events keep it to a few seconds in the normal suite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.perf import bench_ledger as bench
from tests.perf import citygen

SHAPE = citygen.Shape(counties=2, townships=2, communities=3, residents=20, providers=4)
EVENTS = 2_000
SEED = 7


def _generate(url: str, key: Path, *stops: int) -> citygen.Stats:
    service = citygen.open_store(url, key)
    try:
        generator = citygen.CityGenerator(service, events=EVENTS, seed=SEED, shape=SHAPE, transaction_events=500)
        for stop in stops:
            stats = generator.run(stop)
            assert stats.service_events == stop
        return stats
    finally:
        service.close()


def _log_identity(path: Path) -> tuple[set[tuple[str, int, str]], set[str]]:
    conn = sqlite3.connect(path)
    try:
        events = {
            (r[0], r[1], r[2])
            for r in conn.execute("SELECT originator_id, originator_version, topic FROM stored_events")
        }
        claims = {r[0] for r in conn.execute("SELECT record_id FROM record_state")}
        return events, claims
    finally:
        conn.close()


def test_city_year_rebuild_raw_baseline_and_queries(tmp_path: Path) -> None:
    key = tmp_path / "city.key"
    path = tmp_path / "city.db"
    url = f"sqlite:///{path}"

    # generated in two steps (extend the same store) …
    stats = _generate(url, key, 200, EVENTS)
    assert stats.recorded + stats.corrected + stats.voided == EVENTS
    assert stats.corrected > 0 and stats.voided > 0 and stats.departed > 0 and stats.enrolled > 0
    assert stats.established == SHAPE.total

    # … it is the same year as generated in one go (deterministic for the seed)
    other = tmp_path / "other.db"
    _generate(f"sqlite:///{other}", tmp_path / "other.key", EVENTS)
    assert _log_identity(path) == _log_identity(other)

    # the real rebuild projects every event
    real = bench.rebuild(url, key)
    assert real["events"] == real["head"] == real["position"] == stats.stored
    counts = bench.table_counts(url)
    assert counts["ledger_revisions"] == EVENTS
    assert counts["ledger_communities"] == SHAPE.total
    assert counts["ledger_residents"] == stats.enrolled

    # the raw baseline reads the same events and writes exactly the same rows
    raw = bench.raw_rebuild(path, keep=True)
    assert raw["events"] == stats.stored
    assert raw["counts"] == counts == bench.table_counts(url, "raw_")
    conn = sqlite3.connect(path)
    try:
        # every projection table this history fills is one the baseline reproduces (else it drifted)
        filled = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'ledger\\_%' ESCAPE '\\' "
                "OR name LIKE 'acct\\_%' ESCAPE '\\') AND name <> 'ledger_tracking'"
            )
            if conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        }
        assert filled <= set(counts), f"the raw baseline does not write {sorted(filled - set(counts))}"
        for table in counts:
            twin = bench.raw_name(table)
            for a, b in ((table, twin), (twin, table)):
                assert (
                    conn.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b})").fetchone()[0]
                    == 0
                ), a
        community = bench.reference_community(SEED, SHAPE)
        january = conn.execute(
            "SELECT count(*) FROM raw_revisions WHERE community = ? AND occurred_on BETWEEN ? AND ? "
            "AND recorded_to IS NULL AND status = 'active'",
            (community, *map(str, bench.JANUARY)),
        ).fetchone()[0]
        quarter = conn.execute(
            "SELECT count(*) FROM raw_revisions WHERE occurred_on BETWEEN ? AND ? AND recorded_to IS NULL AND status = 'active'",
            tuple(map(str, bench.QUARTER)),
        ).fetchone()[0]
        bench.drop_raw_tables(conn)
    finally:
        conn.close()
    assert january > 0

    # the queries the benchmark times return the expected rows, in process and through the CLI
    q = bench.query_latency(url, key, community=community, runs=2)
    assert q["entries"]["rows"] == q["entries"]["cli_rows"] == january
    townships = SHAPE.counties * SHAPE.townships
    assert q["summary_quarter"]["rows"] == q["summary_quarter"]["cli_rows"] == townships
    assert q["summary_quarter"]["records"] == quarter
    assert q["summary_month"]["rows"] == townships

    # a rebuild in a fresh process reports its events and its peak memory
    child = bench.in_child("rebuild", url, key)
    assert child["events"] == stats.stored and child["peak_kb"] > 0


def test_rebuild_bench_raw_loop_writes_the_rebuilt_rows(tmp_path: Path) -> None:
    from tests.perf import bench_rebuild

    key = tmp_path / "city.key"
    path = tmp_path / "city.db"
    url = f"sqlite:///{path}"
    stats = _generate(url, key, EVENTS)
    real = bench_rebuild.rebuild(url, key)
    assert real["events"] == real["position"] == stats.stored
    conn = sqlite3.connect(path)
    try:
        tables = bench_rebuild.view_tables(conn)
        rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
        # the rebuild dropped the secondary indexes while loading and made them again at the end
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
        assert {"ledger_revisions_current_community", "ledger_month_kind_by_month", "acct_items_unit_due"} <= indexes
    finally:
        conn.close()
    raw = bench_rebuild.raw_loop(path)
    assert raw["events"] == stats.stored
    assert raw["rows"] == rows > stats.stored and raw["tables"] == len(tables)
    conn = sqlite3.connect(path)
    try:  # and left nothing behind
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'raw\\_%' ESCAPE '\\'").fetchall()
    finally:
        conn.close()
