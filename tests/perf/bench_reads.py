"""Reads while an import runs: how long a reader waits, in batches of the projection runner.

    python -m tests.perf.bench_reads [--rows 100000] [--pg-url URL] [--keep DIR]

One community, a services file of `--rows` rows imported by `taizhang import services` in its own
process while another process polls `taizhang ledger summary --by county` (the command's whole
path, in process: tests/integration/test_reads_without_lock.py) and notes, before and after each
read, whether a writer holds the lock. Printed, per store:

- the import's wall time, how many reads ran, and how many began and ended while the import's
  transaction held the write lock (and answered with the ledger as it was before it);
- median and longest read under that lock, median read with no writer, and the longest read
  of the whole run;
- the time of one projection batch (the median of 5 batches of 1,000 events replayed afterwards
  on the same store), and the longest read under the import's lock in batches (the target is
  at most 1).

Timings are printed, never asserted; the machine may be shared.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.integration.test_reads_without_lock import import_while_polling


def batch_seconds(db_url: str, key: Path, batches: int = 5) -> float:
    """The median time of one runner batch (1,000 events) replayed from the start of the log, on a scratch copy
    of the views (the store's own views are dropped and rebuilt up to that point: run this last)."""
    from commands.context import Env

    env = Env(db=db_url, actor=None, lang="en", key_file=key)
    runner = env.views().runner
    runner.drop_tables()
    runner.ensure_tables()
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        runner.run_batch()
        times.append(time.perf_counter() - start)
    env.close()
    return statistics.median(times)


def report(name: str, db_url: str, work: Path, rows: int) -> None:
    before, reads, elapsed = import_while_polling(db_url, work, rows)
    under = [r["seconds"] for r in reads if r["locked"] == [True, True] and r["records"] == before]
    idle = [r["seconds"] for r in reads if r["locked"] == [False, False] and r["records"] == before]
    batch = batch_seconds(db_url, work / "taizhang.key")

    def ms(values: list[float], how: Any) -> str:
        return f"{how(values) * 1000:8.1f} ms" if values else "       -   "

    print(f"## {name}: import of {rows} rows while a reader polls `ledger summary`")
    print(f"import wall time                      {elapsed:8.1f} s")
    print(f"reads (all / under the import's lock) {len(reads):8d} / {len(under)}")
    print(f"read, median with no writer           {ms(idle, statistics.median)}")
    print(f"read, median under the import's lock  {ms(under, statistics.median)}")
    print(f"read, longest under the import's lock {ms(under, max)}")
    print(f"read, longest of the run              {ms([r['seconds'] for r in reads], max)}")
    print(f"one projection batch (1,000 events)   {batch * 1000:8.1f} ms")
    if under:
        print(f"longest read under the lock / batch   {max(under) / batch:8.2f}  (target <= 1)")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the imported services file")
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL server (a database is created and dropped)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    options = parser.parse_args(argv)
    work = options.keep or Path(tempfile.mkdtemp(prefix="taizhang-reads-"))
    try:
        (work / "sqlite").mkdir(parents=True, exist_ok=True)
        report("SQLite", f"sqlite:///{work / 'sqlite' / 'taizhang.db'}", work / "sqlite", options.rows)
        if options.pg_url:
            from tests.conftest import drop_pg_database, make_pg_database

            url = make_pg_database(options.pg_url)
            try:
                (work / "pg").mkdir(exist_ok=True)
                report("PostgreSQL", url, work / "pg", options.rows)
            finally:
                drop_pg_database(options.pg_url, url)
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
