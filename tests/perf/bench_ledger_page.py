"""The unfiltered city 台账 page (what the web shows a city-wide asker), with and without the index in its order.

    python -m tests.perf.bench_ledger_page --db STORE.db [--pages 1,1000] [--repeat 5]

On a copy of a SQLite store whose views are current (the original is not touched), times
`projections.queries.entries_page` with no filter — the current entries in `(occurred_utc,
record_id)` order, 50 a page — for each page asked, with ledger views v7's partial index
`ledger_revisions_current_time` and then with it dropped (the v6 layout). Medians of `--repeat`
runs in one process; also the page's `count(*)` alone, which both layouts pay.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from projections import queries
from projections.filters import Filters

INDEX = "ledger_revisions_current_time"
PAGE = 50
COUNT = "SELECT count(*) FROM ledger_revisions r WHERE r.recorded_to IS NULL AND r.status = 'active'"


def median_ms(run: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(db: Path, pages: list[int], repeat: int) -> dict[str, dict[str, float]]:
    engine = create_engine(f"sqlite:///{db}")
    out: dict[str, dict[str, float]] = {}
    try:
        for layout in ("with index", "without"):
            with engine.connect() as conn:
                if layout == "without":
                    conn.execute(text(f"DROP INDEX IF EXISTS {INDEX}"))
                    conn.commit()
                elif conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": INDEX}).first() is None:
                    raise SystemExit(
                        f"--db: {db} has no index {INDEX} (views older than ledger v7: run projections rebuild)"
                    )
                row: dict[str, float] = {}
                for page in pages:

                    def read(page: int = page) -> None:
                        queries.entries_page(conn, Filters(), limit=PAGE, offset=(page - 1) * PAGE)

                    row[f"page {page}"] = median_ms(read, repeat)
                row["count(*)"] = median_ms(lambda: conn.execute(text(COUNT)).scalar(), repeat)
                out[layout] = row
    finally:
        engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a SQLite store whose views are current")
    parser.add_argument("--pages", default="1,1000", help="page numbers, comma-separated (default 1,1000)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not args.db.is_file():
        raise SystemExit(f"--db: no file {args.db}")
    try:
        pages = [int(p) for p in args.pages.split(",")]
    except ValueError:
        raise SystemExit(f"--pages: not page numbers: {args.pages}") from None
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.db"
        shutil.copyfile(args.db, copy)
        result = measure(copy, pages, args.repeat)
    print(f"store: {args.db}; unfiltered 台账, {PAGE} entries a page; medians of {args.repeat}, ms")
    for layout, row in result.items():
        print(f"  {layout:<11} " + "  ".join(f"{name} {ms:8.1f}" for name, ms in row.items()))


if __name__ == "__main__":
    main()
