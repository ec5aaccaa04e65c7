"""Spending import throughput against raw inserts, beside the services import's, in one run.

    python -m tests.perf.bench_funds_import --rows 100000 [--pg-url postgresql://…] [--profile]

For each store: a base of 50 communities (tests/perf/bench_import.py), a funding line per
community and department (allocations imported, not timed), then

- `import services` of ROWS services rows, and raw sqlite3 / psycopg inserts of the very event
  rows it stored: the services ratio;
- `import spending` of ROWS spending rows (资金来源, 文号, 社区, 支出日期, 凭证号, 收款人 for
  a third of the rows, 摘要, 金额（元）) through commands.funds_import — the real path: read,
  judge, apply the line's rules, seal payees, claim every voucher, save in one transaction —
  and raw inserts of the very rows it stored (two events a row: the spend and its voucher claim).

Prints seconds, rows/s, and each import's ratio to raw. Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from commands.app import LedgerService
from commands.funds_import import import_funds
from domain.funds import DEFAULT_DEPARTMENTS
from infra import crypto
from tests.perf import bench_import

LINES_PER_COMMUNITY = 4
START = date(2025, 1, 10)


def write_allocations(path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["资金来源", "文号", "用途", "金额（元）", "下达日期", "拨付单位"])
        for c in range(bench_import.COMMUNITIES):
            for n in range(LINES_PER_COMMUNITY):
                w.writerow([DEFAULT_DEPARTMENTS[n], f"B{c:03d}-{n}", "幸福院运营", "1000万", START.isoformat(),
                            f"community:B{c:03d}"])  # fmt: skip


def write_spending(path: Path, rows: int, seed: int = 2, shuffled: bool = False) -> None:
    """ROWS spends over every community's lines through 2025, in date order as a 台账 is kept
    (`shuffled`: in random order, so each back-dated spend rechecks the later days)."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        c, n = rng.randrange(bench_import.COMMUNITIES), rng.randrange(LINES_PER_COMMUNITY)
        day = START + timedelta(days=rng.randrange(1, 350))
        payee = f"收款人{rng.randrange(1000)}" if rng.random() < 0.33 else ""
        amount = f"{rng.randrange(1, 500_00) / 100:,.2f}"
        lines.append([DEFAULT_DEPARTMENTS[n], f"B{c:03d}-{n}", f"B{c:03d}", day.isoformat(), f"记-{i:06d}", payee,
                      "送餐服务", amount])  # fmt: skip
    if not shuffled:
        lines.sort(key=lambda line: line[3])
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["资金来源", "文号", "社区", "支出日期", "凭证号", "收款人", "摘要", "金额（元）"])
        w.writerows(lines)


def raw(backend: str, rows: list[tuple[Any, ...]], folder: Path, pg_url: str | None) -> float:
    if backend == "sqlite":
        target = folder / f"raw-{time.monotonic_ns()}"
        target.mkdir()
        return bench_import.raw_sqlite(rows, target)
    assert pg_url is not None
    return bench_import.raw_postgres(rows, pg_url)


def bench(
    backend: str, rows: int, folder: Path, pg_url: str | None, profile: bool = False, shuffled: bool = False
) -> dict[str, Any]:
    base = bench_import.write_base(folder)
    services_csv, allocations_csv, spending_csv = folder / "s.csv", folder / "a.csv", folder / "sp.csv"
    bench_import.write_services(services_csv, rows)
    write_allocations(allocations_csv)
    write_spending(spending_csv, rows, shuffled=shuffled)
    url = f"sqlite:///{folder / 'taizhang.db'}"
    created = None
    if backend == "postgres":
        assert pg_url is not None
        url = created = bench_import.new_pg_database(pg_url)
    key = folder / "taizhang.key"
    crypto.create_key_file(key)
    service: LedgerService = bench_import.fresh_store(url, key, base)
    try:
        services_s, before = bench_import.timed_import(service, services_csv)
        services_rows = bench_import.stored_rows(service, before)
        services_raw = raw(backend, services_rows, folder, created)
        result = import_funds(service, "allocations", allocations_csv, "bench")
        assert result.added == bench_import.COMMUNITIES * LINES_PER_COMMUNITY and not result.problems
        before = service.recorder.max_notification_id() or 0
        t0 = time.perf_counter()
        if profile:
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                result = import_funds(service, "spending", spending_csv, "bench")
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        else:
            result = import_funds(service, "spending", spending_csv, "bench")
        spending_s = time.perf_counter() - t0
        assert result.added == rows and not result.problems, result.problems[:3]
        spending_rows = bench_import.stored_rows(service, before)
        spending_raw = raw(backend, spending_rows, folder, created)
    finally:
        service.close()
        if created is not None and pg_url is not None:
            bench_import.drop_pg_database(pg_url, created)
    return {
        "backend": backend,
        "rows": rows,
        "services_s": services_s,
        "services_raw_s": services_raw,
        "services_events": len(services_rows),
        "spending_s": spending_s,
        "spending_raw_s": spending_raw,
        "spending_events": len(spending_rows),
    }


def report(r: dict[str, Any]) -> str:
    return (
        f"{r['backend']}: {r['rows']:,} rows\n"
        f"  import services  {r['services_s']:8.2f} s  {r['rows'] / r['services_s']:9,.0f} rows/s  "
        f"raw {r['services_raw_s']:.2f} s ({r['services_events']:,} events)  ratio {r['services_s'] / r['services_raw_s']:.1f}x\n"
        f"  import spending  {r['spending_s']:8.2f} s  {r['rows'] / r['spending_s']:9,.0f} rows/s  "
        f"raw {r['spending_raw_s']:.2f} s ({r['spending_events']:,} events)  ratio {r['spending_s'] / r['spending_raw_s']:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg-url", help="a PostgreSQL server URL to create a bench database on")
    parser.add_argument("--profile", action="store_true", help="cProfile the spending import")
    parser.add_argument("--shuffled", action="store_true", help="spending rows in random date order")
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.pg_url else ("sqlite",):
        with tempfile.TemporaryDirectory() as tmp:
            print(report(bench(backend, args.rows, Path(tmp), args.pg_url, args.profile, args.shuffled)), flush=True)


if __name__ == "__main__":
    main()
