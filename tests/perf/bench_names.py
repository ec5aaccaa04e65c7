"""What names instead of codes cost a services import (commands/names.py), against a baseline
measured in the same run.

    python -m tests.perf.bench_names --rows 100000 --communities 50 --residents 200 [--full]

One store with COMMUNITIES communities of RESIDENTS residents (unique Chinese names) and
8 providers each. Two services sheets with the same ROWS rows: one with codes, one with
names in the 服务对象/服务人员 cells. Prints, for each sheet: reading it (`read_table`, the
baseline), the name step (`names.resolve_table`: one aggregate load per community for its
codes, and for names the read model's rows and one decryption per resident name), and with
`--full` the whole import into a fresh copy of the store. Not a test: timings never decide
pass or fail.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from commands import names, tabular
from commands.app import LedgerService
from commands.importer import import_file
from commands.views import Views
from infra import crypto
from infra.store import parse_url

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "秀英建国小明志强桂兰玉梅海燕丽华春花国庆红霞德明文军振华美玲宝珍福生金凤永红"
PROVIDERS = 8


def unique_names(count: int, rng: random.Random) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add(rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2)))))
    return sorted(found)


def write_base(folder: Path, communities: int, residents: int) -> tuple[list[Path], dict[str, list[str]]]:
    rng = random.Random(7)
    paths = [folder / "c.csv", folder / "r.csv", folder / "p.csv"]
    people: dict[str, list[str]] = {}
    with paths[0].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "county", "township", "village", "established_on"])
        for c in range(communities):
            w.writerow([f"B{c:03d}", f"社区{c}", "县", f"镇{c % 15}", f"村{c}", "2025-01-01"])
    with paths[1].open("w", newline="") as f, paths[2].open("w", newline="") as g:
        w, v = csv.writer(f), csv.writer(g)
        w.writerow(["community", "code", "name"])
        v.writerow(["community", "code", "name", "role"])
        for c in range(communities):
            code = f"B{c:03d}"
            people[code] = unique_names(residents + PROVIDERS, rng)
            for r in range(residents):
                w.writerow([code, f"R{r:04d}", people[code][r]])
            for p in range(PROVIDERS):
                v.writerow([code, f"P{p:02d}", people[code][residents + p], "volunteer"])
    return paths, people


def write_services(path: Path, rows: int, people: dict[str, list[str]], residents: int, by_name: bool) -> None:
    rng = random.Random(1)
    communities = sorted(people)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["社区", "服务类型", "服务对象", "服务人员", "服务时间", "时长(分钟)"])
        for i in range(rows):
            code = rng.choice(communities)
            chosen = rng.sample(range(residents), rng.randint(1, 2))
            provider = rng.randrange(PROVIDERS)
            cells = (
                ("；".join(people[code][r] for r in chosen), people[code][residents + provider])
                if by_name
                else (";".join(f"R{r:04d}" for r in chosen), f"P{provider:02d}")
            )
            day, minute = divmod(i, 600)
            w.writerow(
                [code, "生活照料", *cells, f"2025-{2 + day % 10:02d}-{1 + day % 28:02d} 08:{minute % 60:02d}", 30]
            )


def new_store(url: str, key: Path, base: list[Path]) -> LedgerService:
    service, _ = LedgerService.create(parse_url(url), key, None)
    for kind, path in zip(("communities", "residents", "providers"), base, strict=True):
        import_file(service, kind, path, "bench")
    return service


def measure(url: str, key: Path, folder: Path, args: argparse.Namespace, fresh: list[str]) -> None:
    base, people = write_base(folder, args.communities, args.residents)
    crypto.create_key_file(key)
    service = new_store(url, key, base)
    views = Views(service)
    t0 = time.perf_counter()
    views.prepare()
    catch_up = time.perf_counter() - t0
    views.close()
    print(f"store: {args.communities} communities x {args.residents} residents; views caught up in {catch_up:.2f}s")
    results = {}
    for label, by_name in (("codes", False), ("names", True)):
        sheet = folder / f"services-{label}.csv"
        write_services(sheet, args.rows, people, args.residents, by_name)
        t0 = time.perf_counter()
        table = tabular.read_table(sheet, "services")
        read = time.perf_counter() - t0
        t0 = time.perf_counter()
        resolved, problems = names.resolve_table(service, "services", table)
        resolve = time.perf_counter() - t0
        assert not problems, problems[:3]
        results[label] = (read, resolve)
        print(f"{label:>5}: read_table {read:7.2f}s   resolve_table {resolve:7.2f}s   ratio {resolve / read:6.3f}")
    extra = results["names"][1] - results["codes"][1]
    per_name = extra / (args.communities * args.residents) * 1e6
    print(
        f"names cost {extra:.2f}s over codes ({per_name:.0f} µs per resident of the store); "
        f"{results['names'][1] / results['names'][0]:.3f} x the time to read the sheet"
    )
    service.close()
    if args.full:  # each sheet into a fresh store of the same people
        for label, other in zip(("codes", "names"), fresh, strict=True):
            store = new_store(other, key, base)
            t0 = time.perf_counter()
            result = import_file(store, "services", folder / f"services-{label}.csv", "bench")
            print(f"{label:>5}: full import {time.perf_counter() - t0:7.2f}s ({result.added} added)")
            store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--communities", type=int, default=50)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--full", action="store_true", help="also time the whole import of each sheet")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-names-"))
    try:
        print("== SQLite")
        fresh = [f"sqlite:///{folder / 'full-codes.db'}", f"sqlite:///{folder / 'full-names.db'}"]
        measure(f"sqlite:///{folder / 'taizhang.db'}", folder / "taizhang.key", folder, args, fresh)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
