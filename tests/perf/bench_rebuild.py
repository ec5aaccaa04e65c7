"""`projections rebuild` beside a raw sqlite3 loop that writes the same rows, on one city year.

    python -m tests.perf.bench_rebuild [--events 1000000] [--small 100000] [--dir DIR]
                                       [--seed 1] [--profile FILE]

The stores are the city year of tests.perf.citygen, made by `bench_ledger.build_sqlite_stores`:
the first `--small` service events of a `--events` year, and the same store extended to the
whole year. They are generated once into `--dir` (default: a temporary folder, removed at the
end) and reused by later runs with the same code and arguments; the generation time is printed.

For each store, in fresh processes (so each peak RSS, VmHWM, is its own):

- **rebuild**: what `taizhang projections rebuild` runs (`Runner.rebuild`: drop, create, replay
  the whole log into every projection in the runner's batches). Events/s, wall and CPU seconds.
- **raw**: the floor a hand-written loop sets on the same file. plain `sqlite3` reads the same
  events (`SELECT rowid, * FROM stored_events ... LIMIT 5000`, the batch size of the rebuild),
  decodes each with `orjson.loads`, and inserts the *same final rows* the rebuild produced (read
  back, in step, from the projection's own tables with plain cursors) with one `executemany` per
  table per batch into twin tables of the same DDL (`raw_*`: same columns, keys and secondary
  indexes, the indexes made after the load as the rebuild does), with a tracking row and one
  transaction per batch, on a connection with the same PRAGMAs. It computes nothing: the ratio
  rebuild / raw is what the projection's logic and the runner cost over moving the bytes.

Printed: events/s of both, the ratio (target >= 0.6), events/s of the rebuild at the full size
(target >= 20,000) and peak RSS full / small (target <= 1.3). `--profile FILE` writes a cProfile of
the small store's rebuild (top lines printed). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from tests.perf import bench_ledger, citygen

BATCH = 5000
ROOT = Path(__file__).resolve().parents[2]


def view_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'ledger\\_%' ESCAPE '\\' "
        "OR name LIKE 'acct\\_%' ESCAPE '\\') AND name != 'ledger_tracking' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def twin(name: str) -> str:
    return "raw_" + name


def _pragmas(conn: sqlite3.Connection) -> None:
    from infra import runner

    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute(f"PRAGMA cache_size = -{runner.REBUILD_CACHE_KIB}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {runner.REBUILD_CHECKPOINT_PAGES}")


def raw_loop(path: Path) -> dict[str, Any]:
    """The raw baseline (module docstring) over the rebuilt store at `path`; drops its twins after."""
    conn = sqlite3.connect(path, isolation_level=None)
    source = sqlite3.connect(path, isolation_level=None)  # reads the final rows, in step
    _pragmas(conn)
    tables = view_tables(conn)
    if "ledger_revisions" not in tables:
        raise RuntimeError("the projection tables do not exist: run the rebuild first")
    table_sql = {
        t: conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (t,)).fetchone()[0]
        for t in tables
    }
    index_sql = [
        r[0]
        for r in conn.execute(
            f"SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({','.join('?' * len(tables))})",
            tables,
        )
    ]
    for t in tables:
        conn.execute(f"DROP TABLE IF EXISTS {twin(t)}")
    conn.execute("DROP TABLE IF EXISTS raw_tracking")
    for t in tables:
        conn.execute(re.sub(r"\b((?:ledger|acct)_\w+)", r"raw_\1", table_sql[t], count=1))
    conn.execute(
        "CREATE TABLE raw_tracking (projection TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO raw_tracking VALUES ('raw', 0, '')")
    head = conn.execute("SELECT max(rowid) FROM stored_events").fetchone()[0] or 0
    totals = {t: source.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    columns = {t: len(source.execute(f"SELECT * FROM {t} LIMIT 0").description) for t in tables}
    inserts = {t: f"INSERT INTO {twin(t)} VALUES ({','.join('?' * columns[t])})" for t in tables}
    source.execute("BEGIN")
    cursors = {t: source.execute(f"SELECT * FROM {t}") for t in tables}
    moved = dict.fromkeys(tables, 0)
    done = 0
    cpu0, t0 = bench_ledger._cpu(), time.perf_counter()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        position = conn.execute("SELECT position FROM raw_tracking").fetchone()[0]
        rows = conn.execute(
            "SELECT rowid, * FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT ?", (position, BATCH)
        ).fetchall()
        if not rows:
            conn.execute("COMMIT")
            break
        commits = conn.execute(
            "SELECT first_position, last_position, recorded_at FROM taizhang_commits "
            "WHERE last_position >= ? AND first_position <= ? ORDER BY first_position",
            (rows[0][0], rows[-1][0]),
        ).fetchall()
        payloads = [orjson.loads(row[4]) for row in rows]  # what every projector has to do
        assert len(payloads) == len(rows) and commits
        done += len(rows)
        last = rows[-1][0]
        for t in tables:  # this batch's share of each table's final rows
            want = totals[t] if last >= head else totals[t] * last // head
            if want > moved[t]:
                chunk = cursors[t].fetchmany(want - moved[t])
                conn.executemany(inserts[t], chunk)
                moved[t] += len(chunk)
        conn.execute("UPDATE raw_tracking SET position = ?, updated_at = ?", (last, ""))
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    for sql in index_sql:
        conn.execute(re.sub(r"\b((?:ledger|acct)_\w+)", r"raw_\1", sql))
    conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - t0, bench_ledger._cpu() - cpu0
    source.execute("COMMIT")
    source.close()
    rows_written = sum(moved.values())
    for t in tables:
        conn.execute(f"DROP TABLE IF EXISTS {twin(t)}")
    conn.execute("DROP TABLE raw_tracking")
    conn.close()
    return {"events": done, "rows": rows_written, "tables": len(tables), "seconds": elapsed, "cpu_s": cpu}


def rebuild(url: str, key_file: Path) -> dict[str, Any]:
    with bench_ledger.opened(url, key_file) as views:
        cpu0, t0 = bench_ledger._cpu(), time.perf_counter()
        done = views.runner.rebuild()
        elapsed, cpu = time.perf_counter() - t0, bench_ledger._cpu() - cpu0
        return {"events": done, "seconds": elapsed, "cpu_s": cpu, "position": views.runner.position()}


def child_main(mode: str, url: str, key_file: Path) -> dict[str, Any]:
    result = rebuild(url, key_file) if mode == "rebuild" else raw_loop(bench_ledger.sqlite_path(url))
    result["peak_kb"] = bench_ledger._proc_status().get("VmHWM", 0)
    return result


def in_child(mode: str, url: str, key_file: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "tests.perf.bench_rebuild",
        "--child",
        mode,
        "--url",
        url,
        "--key-file",
        str(key_file),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile(url: str, key_file: Path, out: Path) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    result = rebuild(url, key_file)
    profiler.disable()
    profiler.dump_stats(str(out))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs()
    text.write(f"rebuild of {result['events']:,} events under cProfile: {result['seconds']:.1f} s\n")
    for order in ("cumulative", "tottime"):
        stats.sort_stats(order).print_stats(18)
    return re.sub(r"\n{3,}", "\n\n", text.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, help="where the stores are made (and kept); default a temporary folder")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the small store's rebuild here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(args.child, args.url, args.key_file)))
        return
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "bench.key"
    try:
        t0 = time.perf_counter()
        manifest = bench_ledger.build_sqlite_stores(
            folder, key_file, events=args.events, small=args.small, seed=args.seed, shape=citygen.CITY
        )
        print(f"stores ready in {time.perf_counter() - t0:,.0f} s (generation is skipped when reused) in {folder}")
        results: dict[int, dict[str, Any]] = {}
        for size in (args.small, args.events):
            url = f"sqlite:///{folder / f'city-{size}.db'}"
            bench_ledger._log(f"bench: rebuild of {size:,} service events …")
            real = in_child("rebuild", url, key_file)
            bench_ledger._log(f"bench: raw loop of {size:,} service events …")
            raw = in_child("raw", url, key_file)
            results[size] = {"rebuild": real, "raw": raw}
            bench_ledger._log(f"bench: {size:,}: {json.dumps(results[size])}")
        print(
            f"code {bench_ledger.code_version()}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} (shared machine)"
        )
        print(f"city: {manifest['communities']} communities, {manifest['residents']:,} residents; seed {args.seed}")
        print()
        print(
            "| service events | log events | rows in views | rebuild events/s (CPU s) | raw events/s (CPU s) | rebuild / raw | rebuild peak RSS MB | raw peak RSS MB |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size, r in results.items():
            real, raw = r["rebuild"], r["raw"]
            real_rate, raw_rate = real["events"] / real["seconds"], raw["events"] / raw["seconds"]
            print(
                f"| {size:,} | {real['events']:,} | {raw['rows']:,} in {raw['tables']} tables | {real_rate:,.0f} ({real['cpu_s']:.1f}) "
                f"| {raw_rate:,.0f} ({raw['cpu_s']:.1f}) | **{real_rate / raw_rate:.2f}** | {real['peak_kb'] / 1024:.0f} | {raw['peak_kb'] / 1024:.0f} |"
            )
        small, full = results[args.small]["rebuild"], results[args.events]["rebuild"]
        print()
        print(f"rebuild at {args.events:,}: {full['events'] / full['seconds']:,.0f} events/s (target >= 20,000)")
        print(f"peak RSS {args.events:,} / {args.small:,}: {full['peak_kb'] / small['peak_kb']:.2f} (target <= 1.3)")
        if args.profile:
            print()
            print(profile(f"sqlite:///{folder / f'city-{args.small}.db'}", key_file, args.profile))
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
