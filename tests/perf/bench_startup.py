"""Start-up of the command line: what a user waits for before a command does anything.

    python -m tests.perf.bench_startup [--runs 15] [--keep DIR]

Each figure is the median wall time of `--runs` new processes (the same interpreter,
`python -m commands.cli …`, as the console script runs it), measured in this run beside the
baseline `python -c "import click"` (the least any click program pays):

- `taizhang --help`, and `taizhang --lang zh --help` (which reads the catalogue's help texts);
- `taizhang community list` on a small store (`taizhang demo`: 60 communities; its views
  caught up once before timing, as any earlier query leaves them);
- `taizhang ledger summary --by township` on the same store;
- `taizhang community list` on the same store with access control on (an admin actor: the
  actors are loaded through the application before the read).

Targets (issue 12): `--help` and `community list` each at most 3× the baseline. Then, for
each command, the ten modules with the largest cumulative import time (`python -X importtime`).
Timings are printed, never asserted; on a shared machine run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TAIZHANG_VARS = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TAIZHANG_VARS}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return elapsed


def median_of(args: list[str], cwd: Path, runs: int) -> float:
    run(args, cwd)  # warm the page cache and the .pyc files
    return statistics.median(run(args, cwd) for _ in range(runs))


def top_imports(args: list[str], cwd: Path, count: int = 10) -> list[tuple[int, str]]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    found: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if not name.startswith(" "):
            found.append((int(cumulative), name.strip()))
    return sorted(found, reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="processes per command (the median is shown; at least 10)")
    parser.add_argument("--keep", type=Path, help="make the stores in this directory and keep them")
    options = parser.parse_args(argv)
    runs = max(options.runs, 10)
    work = options.keep or Path(tempfile.mkdtemp(prefix="taizhang-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    cli = [py, "-m", "commands.cli"]
    try:
        small = ["--db", f"sqlite:///{work / 'small.db'}", "--key-file", str(work / "small.key")]
        guarded = ["--db", f"sqlite:///{work / 'guarded.db'}", "--key-file", str(work / "guarded.key")]
        if not (work / "small.db").exists():
            run([*cli, *small, "demo", "--seed", "1"], work)
            run([*cli, *guarded, "init", "--admin", "admin01"], work)
        run([*cli, *small, "community", "list"], work)  # the views caught up once
        run([*cli, *guarded, "--actor", "admin01", "community", "list"], work)
        cases = {
            'python -c "import click"': [py, "-c", "import click"],
            "taizhang --help": [*cli, "--help"],
            "taizhang --lang zh --help": [*cli, "--lang", "zh", "--help"],
            "taizhang community list (small store)": [*cli, *small, "community", "list"],
            "taizhang ledger summary --by township": [*cli, *small, "ledger", "summary", "--by", "township"],
            "taizhang community list (store with actors)": [*cli, *guarded, "--actor", "admin01", "community", "list"],
        }
        print(f"# start-up: median wall time of {runs} processes each, Python {sys.version.split()[0]}")
        times = {name: median_of(args, work, runs) for name, args in cases.items()}
        base = times['python -c "import click"']
        width = max(len(n) for n in times)
        for name, seconds in times.items():
            print(f"{name:<{width}}  {seconds * 1000:7.1f} ms  {seconds / base:5.2f}x import click")
        for name, args in list(cases.items())[1:]:
            print(f"\n# largest imports of `{name}` (cumulative µs, top-level modules)")
            for micros, module in top_imports(args, work):
                print(f"  {micros:>8}  {module}")
    finally:
        if options.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
