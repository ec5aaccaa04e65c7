"""Query latency on one store: entries of a community-month, township summaries, the assessment.

The township assessment of a quarter is compared with `ledger summary --by township`
of the same quarter; run it on a 100k-event and a 1M-event year (both from
`tests.perf.citygen`, the same city at ten times the density) to see how each cost grows.

    python -m tests.perf.bench_assess --db sqlite:///PATH --key-file KEY [--period 2025-Q1] [--runs 15]

Both are timed in-process on one store whose views are caught up first (generate one
with `python -m tests.perf.citygen`): the summary through `projections.queries.summary`,
the assessment through `commands.cli.assess.assessment_document` (the six metrics,
scoring, ranks and responsible officials — everything `assess run --format json`
prints). Prints medians, p95 and the ratio. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

from commands.assess import load_rubric
from commands.cli.assess import assessment_document
from commands.context import Env
from domain.units import parse_period
from projections import queries
from projections.filters import Filters, Moment, Unit

CPU: dict[str, list[float]] = {}
"""CPU milliseconds of each timed call, by query (on a shared machine steadier than the wall clock)."""


def _timed(runs: int, call: object) -> list[float]:
    out, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        call()  # type: ignore[operator]
        out.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    CPU[call.__name__] = cpu  # type: ignore[attr-defined]
    return out


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--period", default="2025-Q1")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the assessment runs here (top lines printed)")
    args = parser.parse_args(argv)
    env = Env(db=args.db, actor=None, lang="en", key_file=args.key_file)
    views = env.views()
    views.runner.ensure_tables()
    views.runner.catch_up()
    span = parse_period(args.period)
    rubric = load_rubric(None)
    events = views.runner.head()

    def summary() -> None:
        with views.read() as conn:
            queries.summary(conn, Filters(date_from=span.first, date_to=span.last), by="township")

    def assessment() -> None:
        assessment_document(env, span, "township", Moment(), rubric, None)

    with views.read() as conn:
        community = conn.execute(text("SELECT min(code) FROM ledger_communities")).scalar()
    first_month = parse_period(span.first.isoformat()[:7])

    def entries() -> None:
        with views.read() as conn:
            queries.entries(
                conn,
                Filters(
                    unit=Unit("community", community=community), date_from=first_month.first, date_to=first_month.last
                ),
            )

    def month_summary() -> None:
        with views.read() as conn:
            queries.summary(conn, Filters(date_from=first_month.first, date_to=first_month.last), by="township")

    for call in (summary, assessment, entries, month_summary):
        call()
    e = _timed(args.runs, entries)
    m = _timed(args.runs, month_summary)
    s = _timed(args.runs, summary)
    a = _timed(args.runs, assessment)
    ratio = statistics.median(a) / statistics.median(s)
    cpu_ratio = statistics.median(CPU["assessment"]) / statistics.median(CPU["summary"])
    print(f"store: {args.db} ({events:,} events), period {span.text}, {args.runs} runs each")

    def cpu(name: str) -> float:
        return statistics.median(CPU[name])

    print("| query | median ms | p95 ms | CPU median ms |")
    print("|---|---:|---:|---:|")
    print(
        f"| `ledger entries --community {community}` {first_month.text} | {statistics.median(e):.1f} | {_p95(e):.1f} | {cpu('entries'):.1f} |"
    )
    print(
        f"| `ledger summary --by township` {first_month.text} | {statistics.median(m):.1f} | {_p95(m):.1f} | {cpu('month_summary'):.1f} |"
    )
    print(
        f"| `ledger summary --by township` {span.text} | {statistics.median(s):.1f} | {_p95(s):.1f} | {cpu('summary'):.1f} |"
    )
    print(
        f"| `assess run --level township` {span.text} | {statistics.median(a):.1f} | {_p95(a):.1f} | {cpu('assessment'):.1f} |"
    )
    print(f"| ratio assessment / summary {span.text} (median) | {ratio:.2f} | | {cpu_ratio:.2f} (CPU); target ≤ 3 |")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.runs):
            assessment()
        profiler.disable()
        profiler.dump_stats(str(args.profile))
        stats = pstats.Stats(profiler)
        stats.strip_dirs().sort_stats("cumulative").print_stats(20)
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
