"""The cost of access control: the same work with and without actors, in the same run.

    python -m tests.perf.bench_access --rows 50000 [--pg-url postgresql://…] [--repeat 40] [--chunks 6] [--rebuilds 5]

Two stores built alike from bench_import's files (50 communities in 5 counties): one
without actors (access control off), one made with `init --admin` where a county
clerk and a city admin act. Everything runs through the CLI in this process
(click's CliRunner), so the figures include the policy check before the command
and the scope check at every save:

- import: `taizhang import services FILE` of the county's rows, in chunks imported off
  and on in turn (every row's community is located and checked before anything is
  written); the total time of each;
- rebuild: `taizhang projections rebuild` of the whole log, off and on in turn;
- a small read: `taizhang resident list B000`, repeated: the fixed cost per command
  (loading the actors, locating the community, and on PostgreSQL checking the login).

Prints seconds and the ratios on / off. Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from commands.cli import cli
from tests.perf.bench_import import drop_pg_database, new_pg_database, write_base, write_services

COUNTY = "县0"  # bench_import puts community c in county 县{c % 5}


def county_chunks(source: Path, folder: Path, chunks: int) -> list[Path]:
    """The services of the county's communities only (what a county clerk may import), in chunks."""
    with source.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [row for row in reader if int(row[0][1:]) % 5 == 0]
    paths = []
    for i in range(chunks):
        path = folder / f"county-{i}.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows[i::chunks])
        paths.append(path)
    return paths


class Store:
    def __init__(self, url: str, key: Path, admin: str | None) -> None:
        self.url, self.key, self.admin = url, key, admin
        self.runner = CliRunner()

    def run(self, *args: str, actor: str | None = None) -> float:
        argv = ["--db", self.url, "--key-file", str(self.key)]
        if actor is not None:
            argv += ["--actor", actor]
        env = {name: None for name in ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_KEY_FILE", "TAIZHANG_LANG")}
        t0 = time.perf_counter()
        result = self.runner.invoke(cli, [*argv, *args], env=env)
        elapsed = time.perf_counter() - t0
        if result.exit_code != 0:
            raise RuntimeError(f"{args}: exit {result.exit_code}: {result.output}")
        return elapsed


def prepare(url: str, key: Path, base: tuple[Path, Path, Path], on: bool) -> Store:
    admin = "admin01" if on else None
    store = Store(url, key, admin)
    init = ["init", "--admin", admin] if admin else ["init"]
    if not on and url.startswith("postgresql"):
        init.append("--no-access-control")
    store.run(*init)
    store.run("import", "communities", str(base[0]), actor=admin or "bench")
    if on:
        login = ["--login", url.split("://", 1)[1].split(":", 1)[0]] if url.startswith("postgresql") else []
        store.run("actor", "add", "clerk01", "--role", "clerk", "--scope", f"county:{COUNTY}", *login, actor=admin)
        store.run("actor", "add", "clerk-city", "--role", "clerk", "--scope", "city", *login, actor=admin)
    for kind, path in (("residents", base[1]), ("providers", base[2])):
        store.run("import", kind, str(path), actor="clerk-city" if on else "bench")
    return store


def bench(
    backend: str, folder: Path, chunks: list[Path], base: tuple[Path, Path, Path], pg: str | None, repeat: int, rebuild_repeat: int
) -> dict[str, Any]:
    key = folder / f"{backend}.key"
    made: list[str] = []

    def url_for(tag: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{folder / f'{backend}-{tag}.db'}"
        assert pg is not None
        made.append(new_pg_database(pg))
        return made[-1]

    times: dict[str, dict[str, float]] = {"off": {}, "on": {}}
    clerk = {"off": "bench", "on": "clerk01"}
    try:
        stores = {"off": prepare(url_for("off"), key, base, on=False), "on": prepare(url_for("on"), key, base, on=True)}
        # Each step alternates off and on (the machine is shared: drift hits both alike).
        imports: dict[str, float] = {"off": 0.0, "on": 0.0}
        for i, chunk in enumerate(chunks):
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                imports[mode] += stores[mode].run("import", "services", str(chunk), actor=clerk[mode])
        rebuilds: dict[str, list[float]] = {"off": [], "on": []}
        reads: dict[str, list[float]] = {"off": [], "on": []}
        for mode in ("off", "on"):
            stores[mode].run("projections", "run", actor=stores[mode].admin)
        for _ in range(rebuild_repeat):
            for mode in ("off", "on"):
                rebuilds[mode].append(stores[mode].run("projections", "rebuild", actor=stores[mode].admin))
        for i in range(repeat + 1):  # the first round warms up
            for mode in ("off", "on"):
                elapsed = stores[mode].run("resident", "list", "B000", actor=clerk[mode] if mode == "on" else None)
                if i:
                    reads[mode].append(elapsed)
        for mode in ("off", "on"):
            times[mode]["import"] = imports[mode]
            times[mode]["rebuild"] = sorted(rebuilds[mode])[len(rebuilds[mode]) // 2]
            times[mode]["read"] = sorted(reads[mode])[len(reads[mode]) // 2]
    finally:
        for url in made:
            drop_pg_database(pg or "", url)
    return {"backend": backend, **{f"{m}_{k}": v for m, d in times.items() for k, v in d.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the whole services file (the county's fifth is imported)")
    parser.add_argument("--repeat", type=int, default=40, help="how many times the small read runs (the median is shown)")
    parser.add_argument("--chunks", type=int, default=6, help="the import is split in this many files, imported off and on in turn")
    parser.add_argument("--rebuilds", type=int, default=5, help="how many rebuilds per store (the median is shown)")
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL server (databases are created and dropped)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = write_base(folder)
        write_services(folder / "all.csv", args.rows)
        chunks = county_chunks(folder / "all.csv", folder, args.chunks)
        kept = sum(len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in chunks)
        results = [bench("sqlite", folder, chunks, base, None, args.repeat, args.rebuilds)]
        if args.pg_url:
            results.append(bench("postgres", folder, chunks, base, args.pg_url, args.repeat, args.rebuilds))
    print(f"access control off vs on: import of {kept:,} service rows by a county clerk ({args.chunks} files), "
          f"rebuild (median of {args.rebuilds}), one small read (median of {args.repeat})")
    print("| store | import off s | import on s | on / off | rebuild off s | rebuild on s | on / off | read off ms | read on ms | on / off |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['off_import']:.2f} | {r['on_import']:.2f} | **{r['on_import'] / r['off_import']:.2f}** "
            f"| {r['off_rebuild']:.2f} | {r['on_rebuild']:.2f} | **{r['on_rebuild'] / r['off_rebuild']:.2f}** "
            f"| {r['off_read'] * 1000:.1f} | {r['on_read'] * 1000:.1f} | **{r['on_read'] / r['off_read']:.2f}** |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
