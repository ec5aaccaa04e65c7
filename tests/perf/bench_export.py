"""The printed 台账 (xlsx) at growing sizes: the cost of a row must not grow with the sheet.

    python -m tests.perf.bench_export --rows 2000,20000

Writes the entries sheet of `commands.export.write_xlsx` (as `ledger entries --format xlsx` and
the web's export do) for synthetic entries of each size, in this process, and prints seconds,
microseconds a row and the ratio of the largest size's cost a row to the smallest's (1 when the
sheet is written in time linear in its rows). Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from typing import Any
from zoneinfo import ZoneInfo

from commands import clock
from commands.export import Heading, write_xlsx

FIELDS = [
    "community",
    "kind",
    "occurred_at",
    "minutes",
    "place",
    "residents",
    "resident_names",
    "providers",
    "note",
    "status",
    "revision",
    "late",
    "recorded_at",
    "record_id",
]
KINDS = ["life_care", "family_care", "counseling", "emergency_aid"]


def entries(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "community": f"B{rng.randrange(50):03d}",
                "kind": rng.choice(KINDS),
                "occurred_at": f"2026-11-{1 + i % 28:02d}T{8 + i % 10:02d}:{i % 60:02d}:00+08:00",
                "minutes": rng.randint(10, 240),
                "place": "home_visit",
                "residents": "R001;R002",
                "resident_names": "张三\n李四",
                "providers": "P01",
                "note": "送米送油，陪同就医" if i % 3 == 0 else None,
                "status": "active",
                "revision": 1,
                "late": False,
                "recorded_at": f"2026-11-{1 + i % 28:02d}T20:00:00.000Z",
                "record_id": f"{i:08d}-5b74-5d62-a598-b53274deca9f",
            }
        )
    return rows


def timed(n: int) -> float:
    rows = entries(n)
    clock.localise(rows, ZoneInfo("Asia/Shanghai"))
    heading = Heading("贺街镇 2026年11月 服务信息台账", "打印日期 2026-12-01")
    t0 = time.perf_counter()
    write_xlsx(io.BytesIO(), rows, FIELDS, "zh", heading=heading, kind="entries", zone="Asia/Shanghai")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="2000,20000", help="sizes, comma-separated")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.rows.split(","))
    print("| rows | seconds | µs a row |")
    print("|---:|---:|---:|")
    per_row = {}
    for n in sizes:
        seconds = timed(n)
        per_row[n] = seconds / n
        print(f"| {n:,} | {seconds:.2f} | {per_row[n] * 1e6:,.0f} |", flush=True)
    if len(sizes) > 1:
        print(f"cost a row at {sizes[-1]:,} rows / at {sizes[0]:,} rows = {per_row[sizes[-1]] / per_row[sizes[0]]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
