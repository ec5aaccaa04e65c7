"""Import throughput, memory and store size against a raw baseline and a CRUD peer, in one run.

    python -m tests.perf.bench_import --rows 100000 [--pg-url postgresql://…] [--profile]
        [--memory 100000,1000000] [--encryption-cost]

On the same services file, for each store: `taizhang import services` (the real code
path: read, validate, apply the rules, encrypt notes, save in one transaction); raw
`sqlite3` / psycopg inserting the very event rows the import stored (stored_events);
and the CRUD peer of tests/perf/crud_peer.py (SQLAlchemy ORM, a services table plus an
audit_log row per insert, batches of 1,000). Prints rows/s and the ratios
taizhang/raw and taizhang/peer, then bytes on disk per service for taizhang (views
caught up, WAL checkpointed, per table and index from `dbstat`; pg_total_relation_size
on PostgreSQL) and for the peer. It also splits the import's wall and CPU seconds into
its check pass (read, names, validate, spill) and its apply pass (rules, seal, encode,
write, commit). `--profile` prints the top of a cProfile of the import; `--memory` runs
the import of each size in a fresh process and prints its peak RSS and the ratio of the
largest to the smallest, and the same for `audit seal` of the imported store, for an
import refused at its first row (checked to its last, then rolled back), for the preview of the
file (the web's report before a clerk confirms an upload: nothing written), for `demo`, and,
with `--pg-url`, for the import into PostgreSQL.

With `--encryption-cost`, also as before:

For each store: import the file through `taizhang import services` (the real code
path: read, validate, apply the rules, encrypt notes, save in one transaction),
then import it again into a fresh store with encryption switched off, then insert
the very rows the import stored (stored_events) into an empty copy of the table
with plain sqlite3 / psycopg in the same batch size (one transaction). Prints
rows/s and the ratios. Then rebuilds the ledger projections of both stores (drop,
replay the whole log) to show what encryption costs a rebuild (it decrypts nothing:
the views keep the envelopes). Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from commands import app as app_module
from commands.app import LedgerService
from commands.importer import import_file
from infra import crypto
from infra.store import parse_url
from tests.perf import crud_peer

COMMUNITIES = 50
RESIDENTS = 60
PROVIDERS = 8
KINDS = ["life_care", "family_care", "counseling", "emergency_aid", "rights_protection", "production_development"]
PLACES = ["home_visit", "happiness_home", "service_center", "other"]


def write_base(folder: Path) -> tuple[Path, Path, Path]:
    communities, residents, providers = folder / "c.csv", folder / "r.csv", folder / "p.csv"
    with communities.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "name", "county", "township", "village", "established_on"])
        for c in range(COMMUNITIES):
            w.writerow([f"B{c:03d}", f"社区{c}", f"县{c % 5}", f"镇{c % 15}", f"村{c}", "2025-01-01"])
    with residents.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["community", "code", "name", "birth_date", "categories"])
        for c in range(COMMUNITIES):
            for r in range(RESIDENTS):
                w.writerow([f"B{c:03d}", f"R{r:03d}", f"居民{c}-{r}", "1950-01-01", "left_behind_elderly"])
    with providers.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["community", "code", "name", "role"])
        for c in range(COMMUNITIES):
            for p in range(PROVIDERS):
                w.writerow([f"B{c:03d}", f"P{p:02d}", f"服务者{c}-{p}", "volunteer"])
    return communities, residents, providers


def write_services(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    start = datetime(2025, 2, 1, 8, 0)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["community", "kind", "residents", "providers", "occurred_at", "minutes", "place", "note"])
        for i in range(rows):
            at = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 360))
            residents = ";".join(f"R{r:03d}" for r in rng.sample(range(RESIDENTS), rng.randint(1, 3)))
            w.writerow(
                [
                    f"B{rng.randrange(COMMUNITIES):03d}",
                    rng.choice(KINDS),
                    residents,
                    f"P{rng.randrange(PROVIDERS):02d}",
                    at.strftime("%Y-%m-%d %H:%M"),
                    rng.randint(10, 240),
                    rng.choice(PLACES),
                    f"第{i}次服务，送米送油" if rng.random() < 0.3 else "",
                ]
            )


@contextmanager
def encryption_off() -> Iterator[None]:
    """Same envelopes and MACs in shape, no AES: isolates the cost of encryption."""
    seal, mac, get_or_create = crypto.seal, crypto.mac, app_module.KeySession.get_or_create
    crypto.seal = lambda key_id, _key, text: {"alg": "none", "key_id": key_id, "nonce": "", "ct": text}  # type: ignore[assignment]
    crypto.mac = lambda _key, text: str(hash(text))  # type: ignore[assignment]
    app_module.KeySession.get_or_create = lambda self, key_id: b"\0" * 32  # type: ignore[assignment]
    try:
        yield
    finally:
        crypto.seal, crypto.mac, app_module.KeySession.get_or_create = seal, mac, get_or_create  # type: ignore[method-assign]


def fresh_store(url: str, key: Path, base: tuple[Path, Path, Path]) -> LedgerService:
    service, _ = LedgerService.create(parse_url(url), key, None)
    for kind, path in zip(("communities", "residents", "providers"), base, strict=True):
        import_file(service, kind, path, "bench")
    return service


def timed_import(
    service: LedgerService, services_csv: Path, phases: dict[str, tuple[float, float]] | None = None
) -> tuple[float, int]:
    """Seconds of the import and the log's last position before it; `phases` receives the wall and
    CPU seconds of the check pass and of the apply pass (from the moments the import starts each
    stage's progress) and, as "beside", the CPU seconds of the check pass's own process when it had
    one (a large file: its check pass runs beside the apply pass, which then starts at once)."""
    import resource

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    before = service.recorder.max_notification_id() or 0
    marks: list[tuple[str, float, float]] = []
    children = children_cpu()

    def stage(label: str) -> Any:
        marks.append((label, time.perf_counter(), time.process_time()))
        return lambda _done, _total: None

    marks.append(("start", time.perf_counter(), time.process_time()))
    result = import_file(service, "services", services_csv, "bench", progress=stage)
    marks.append(("end", time.perf_counter(), time.process_time()))
    elapsed = marks[-1][1] - marks[0][1]
    assert result.added > 0 and not result.problems
    if phases is not None:
        at = {label: (wall, cpu) for label, wall, cpu in marks}
        start, apply, end = at["start"], at["applying rules"], at["end"]
        phases["check"] = (apply[0] - start[0], apply[1] - start[1])
        phases["apply"] = (end[0] - apply[0], end[1] - apply[1])
        phases["beside"] = (0.0, children_cpu() - children)
    return elapsed, before


def timed_rebuild(service: LedgerService) -> tuple[float, int]:
    """Seconds to drop the ledger views and replay the whole log into them, and the events replayed."""
    from commands.views import Views

    views = Views(service)
    try:
        views.runner.ensure_tables()
        views.runner.catch_up()
        t0 = time.perf_counter()
        views.runner.drop_tables()
        views.runner.ensure_tables()
        views.runner.catch_up()
        elapsed = time.perf_counter() - t0
        return elapsed, views.runner.head()
    finally:
        views.close()


def stored_rows(service: LedgerService, after: int) -> list[tuple[Any, ...]]:
    return [
        (n.originator_id, n.originator_version, n.topic, n.state)
        for n in service.recorder.select_notifications(after + 1, 10**9)
    ]


def raw_sqlite(rows: list[tuple[Any, ...]], folder: Path) -> float:
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "PRIMARY KEY (originator_id, originator_version))"
    )
    params = [(r[0].hex, r[1], r[2], r[3]) for r in rows]
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", params)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def raw_postgres(rows: list[tuple[Any, ...]], url: str) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_events")
        conn.execute(
            "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
            "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        conn.execute("CREATE UNIQUE INDEX ON raw_events (notification_id)")
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw_events (originator_id, originator_version, topic, state) VALUES (%s,%s,%s,%s)", rows
            )
        elapsed = time.perf_counter() - t0
        conn.execute("DROP TABLE raw_events")
    return elapsed


def new_pg_database(admin_url: str) -> str:
    import uuid

    import psycopg

    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# What the import writes besides its events, each table's rows inserted as the raw baseline inserts
# the events: the product's own DDL, one executemany, one transaction (the floor of issue 12 point 3).
FLOOR_TABLES = {
    "stored_events": "rowid > ?",
    "taizhang_chain": "position > ?",
    "record_state": "1 = 1 OR ? IS NULL",
    "record_people": "1 = 1 OR ? IS NULL",
    "data_keys": "key_id LIKE 'note:%' OR ? IS NULL",
}


def floor_sqlite(store: Path, after: int, folder: Path) -> dict[str, tuple[int, float]]:
    """Rows and seconds of inserting, per table, the rows the import wrote, into an empty copy of
    the table (same DDL and indexes) with one executemany in one transaction."""
    source = sqlite3.connect(store)
    found: dict[str, tuple[int, float]] = {}
    for table, where in FLOOR_TABLES.items():
        ddl = [
            sql
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC", (table,)
            )
        ]
        rows = source.execute(f"SELECT * FROM {table} WHERE {where}", (after,)).fetchall()  # noqa: S608
        target = folder / f"floor-{table}.db"
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        for sql in ddl:
            conn.execute(sql)
        marks = ",".join("?" * len(rows[0])) if rows else "?"
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
        conn.execute("COMMIT")
        found[table] = (len(rows), time.perf_counter() - t0)
        conn.close()
        target.unlink()
    source.close()
    return found


def peer_run(backend: str, services_csv: Path, folder: Path, pg_url: str | None) -> tuple[float, dict[str, int]]:
    """Seconds the CRUD peer takes to import the file, and its bytes on disk per table."""
    target = str(folder / "peer.db") if backend == "sqlite" else pg_url
    assert target is not None
    engine = crud_peer.create(target)
    try:
        t0 = time.perf_counter()
        crud_peer.import_services(engine, services_csv)
        elapsed = time.perf_counter() - t0
    finally:
        engine.dispose()
    if backend == "sqlite":
        sizes = sqlite_sizes(folder / "peer.db")
    else:
        sizes = pg_sizes(target, ["services", "audit_log"])
    return elapsed, sizes


def sqlite_sizes(path: Path) -> dict[str, int]:
    """Bytes per table and index after a checkpoint (the whole file, WAL folded in)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes = {name: int(size) for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")}
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        sizes["(free pages)"] = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
    finally:
        conn.close()
    sizes["(file)"] = path.stat().st_size
    return sizes


def pg_sizes(url: str, tables: list[str] | None = None) -> dict[str, int]:
    """pg_total_relation_size (table, its indexes and TOAST) of every table of the public schema."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname = current_schema()"
        ).fetchall()
    sizes = {name: int(size) for name, size in rows if tables is None or name in tables}
    sizes["(file)"] = sum(sizes.values())
    return sizes


def catch_up_views(service: LedgerService) -> None:
    from commands.views import Views

    views = Views(service)
    try:
        views.runner.ensure_tables()
        views.runner.catch_up()
    finally:
        views.close()


def bench(
    backend: str,
    rows: int,
    folder: Path,
    services_csv: Path,
    base: tuple[Path, Path, Path],
    pg: str | None,
    *,
    encryption_cost: bool = False,
    floor: bool = False,
) -> dict[str, Any]:
    key = folder / "bench.key"
    if not key.exists():
        crypto.create_key_file(key)
    urls: list[str] = []

    def url_for(tag: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{folder / f'{backend}-{tag}.db'}"
        assert pg is not None
        urls.append(new_pg_database(pg))
        return urls[-1]

    out: dict[str, Any] = {"backend": backend, "rows": rows}
    try:
        store_url = url_for("enc")
        service = fresh_store(store_url, key, base)
        services_before = service.recorder.event_count()
        cpu0 = time.process_time()
        out["phases"] = {}
        encrypted, before = timed_import(service, services_csv, out["phases"])
        out["import_cpu"] = time.process_time() - cpu0
        stored = stored_rows(service, before)
        raw = raw_sqlite(stored, folder) if backend == "sqlite" else raw_postgres(stored, urls[-1])
        del stored
        out.update(events=service.recorder.event_count() - services_before, import_s=encrypted, raw_s=raw)
        if floor and backend == "sqlite":
            out["floor"] = floor_sqlite(folder / f"{backend}-enc.db", before, folder)
        catch_up_views(service)
        if encryption_cost:
            out["rebuild_s"], out["replayed"] = timed_rebuild(service)
        service.close()
        out["sizes"] = sqlite_sizes(folder / f"{backend}-enc.db") if backend == "sqlite" else pg_sizes(store_url)
        peer_url = None if backend == "sqlite" else url_for("peer")
        cpu0 = time.process_time()
        out["peer_s"], out["peer_sizes"] = peer_run(backend, services_csv, folder, peer_url)
        out["peer_cpu"] = time.process_time() - cpu0
        if encryption_cost:
            service = fresh_store(url_for("plain"), key, base)
            with encryption_off():
                out["plain_s"], _ = timed_import(service, services_csv)
                out["rebuild_plain_s"], _ = timed_rebuild(service)
            service.close()
    finally:
        for url in urls:
            drop_pg_database(pg or "", url)
    return out


def passes_only(
    runs: int, rows: int, folder: Path, services_csv: Path, base: tuple[Path, Path, Path], pg: str | None
) -> None:
    """The import alone, `runs` times per store into fresh stores: the two passes' wall and CPU seconds."""
    key = folder / "bench.key"
    if not key.exists():
        crypto.create_key_file(key)
    print(f"import of {rows:,} rows, the import alone; seconds wall / CPU")
    print("| store | run | check pass | apply pass | import | check pass beside (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for backend in ("sqlite", "postgres") if pg else ("sqlite",):
        for run in range(1, runs + 1):
            url = f"sqlite:///{folder / f'only-{run}.db'}" if backend == "sqlite" else new_pg_database(pg or "")
            try:
                service = fresh_store(url, key, base)
                phases: dict[str, tuple[float, float]] = {}
                elapsed, _ = timed_import(service, services_csv, phases)
                service.close()
            finally:
                if backend == "postgres":
                    drop_pg_database(pg or "", url)
            check, apply = phases["check"], phases["apply"]
            print(
                f"| {backend} | {run} | {check[0]:.2f} / {check[1]:.2f} | {apply[0]:.2f} / {apply[1]:.2f} "
                f"| {elapsed:.2f} / {check[1] + apply[1]:.2f} | {phases['beside'][1]:.2f} |",
                flush=True,
            )


def profile_import(rows: int, folder: Path, services_csv: Path, base: tuple[Path, Path, Path], top: int) -> None:
    """cProfile of the import alone (SQLite), the top functions by own CPU time."""
    import cProfile
    import io
    import pstats

    key = folder / "bench.key"
    if not key.exists():
        crypto.create_key_file(key)
    service = fresh_store(f"sqlite:///{folder / 'profile.db'}", key, base)
    profiler = cProfile.Profile(time.process_time)  # CPU seconds: the machine is shared, wall time is noise
    profiler.enable()
    import_file(service, "services", services_csv, "bench")
    profiler.disable()
    service.close()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    print(f"cProfile of the import of {rows:,} rows (SQLite), top {top} by own time:")
    print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:20000])


# ---- memory: each size in a fresh process ---------------------------------------------------------
def peak_rss_mb(children: bool = False) -> float:
    """Peak RSS of this process, or of the largest child it has waited for (the check process)."""
    import resource

    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def child(args: argparse.Namespace) -> int:
    """Run one measured job in this (fresh) process and print `peak_rss_mb seconds`."""
    folder = Path(args.folder)
    key = folder / "bench.key"
    pg_database = None
    if args.child == "import":
        service = fresh_store(f"sqlite:///{folder / f'mem-{args.rows}.db'}", key, write_base(folder))
        services_csv = folder / f"services-{args.rows}.csv"
        t0 = time.perf_counter()
        import_file(service, "services", services_csv, "bench")
    elif args.child == "import-pg":
        pg_database = new_pg_database(args.pg_url)
        try:
            service = fresh_store(pg_database, key, write_base(folder))
            t0 = time.perf_counter()
            import_file(service, "services", folder / f"services-{args.rows}.csv", "bench")
        except BaseException:
            drop_pg_database(args.pg_url, pg_database)  # a failed run leaves no database behind
            raise
    elif args.child == "preview":  # the web's report before a clerk confirms an upload
        from commands.importer import preview_file

        service = fresh_store(f"sqlite:///{folder / f'preview-{args.rows}.db'}", key, write_base(folder))
        t0 = time.perf_counter()
        previewed = preview_file(service, "services", folder / f"services-{args.rows}.csv", "bench")
        assert previewed.added == args.rows and not previewed.problems, previewed.counts()
    elif args.child == "refused":
        from commands.importer import ImportRefused

        service = fresh_store(f"sqlite:///{folder / f'refused-{args.rows}.db'}", key, write_base(folder))
        refused = refused_copy(folder / f"services-{args.rows}.csv")
        t0 = time.perf_counter()
        try:
            import_file(service, "services", refused, "bench")
        except ImportRefused as e:
            assert len(e.result.problems) == 2, e.result.problems
        else:
            raise AssertionError("the import with two bad rows was not refused")
    elif args.child == "seal":
        from commands.audit_chain import seal
        from infra.checkpoint import create_signing_key, load_signing_key

        service = LedgerService.open(parse_url(f"sqlite:///{folder / f'mem-{args.rows}.db'}"), key)
        signing = folder / "seal.key"
        if not signing.exists():
            create_signing_key(signing)
        t0 = time.perf_counter()
        seal(service, load_signing_key(signing))
    else:  # demo
        from commands.demo import run_demo

        service, _ = LedgerService.create(parse_url(f"sqlite:///{folder / f'demo-{args.seed}.db'}"), key, None)
        t0 = time.perf_counter()
        run_demo(service, seed=args.seed, actor="demo")
    elapsed = time.perf_counter() - t0
    service.close()
    if pg_database is not None:
        drop_pg_database(args.pg_url, pg_database)
    print(f"{peak_rss_mb():.1f} {elapsed:.2f} {peak_rss_mb(children=True):.1f}")
    return 0


def refused_copy(services_csv: Path) -> Path:
    """The services file with a row the rules refuse (an unknown resident) right after its header
    and a malformed row (minutes `abc`) at its end: refused from the start, checked to the end."""
    refused = services_csv.with_name(services_csv.stem + "-refused.csv")
    with services_csv.open(newline="") as source, refused.open("w", newline="") as f:
        w = csv.writer(f)
        rows = csv.reader(source)
        w.writerow(next(rows))
        w.writerow(["B000", "life_care", "NOBODY", "P00", "2025-03-01 09:00", 30, "other", ""])
        w.writerows(rows)
        w.writerow(["B000", "life_care", "R001", "P00", "2025-03-01 09:00", "abc", "other", ""])
    return refused


def run_child(folder: Path, job: str, **options: Any) -> tuple[float, float, float]:
    import subprocess

    command = [sys.executable, "-m", "tests.perf.bench_import", "--child", job, "--folder", str(folder)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[2:])} failed: {done.stderr.strip().splitlines()[-1:]}")
    rss, seconds, beside = done.stdout.split()[-3:]
    return float(rss), float(seconds), float(beside)


def memory(sizes: list[int], folder: Path, pg_url: str | None = None) -> None:
    """Peak RSS of each job in a fresh process (building the store's base included, as a county's
    migration would); with `pg_url`, also the import into a fresh PostgreSQL database."""
    key = folder / "bench.key"
    if not key.exists():
        crypto.create_key_file(key)
    print("peak RSS of a whole job in a fresh process (SQLite; import-pg: the import on PostgreSQL), and of")
    print("the import's check pass in its own process when it has one (a file of 1 MiB or more)")
    print("| job | rows | peak RSS MB | check process peak RSS MB | seconds |")
    print("|---|---:|---:|---:|---:|")
    jobs = ("import", "seal", "refused", "preview", "import-pg") if pg_url else ("import", "seal", "refused", "preview")
    found: dict[str, dict[int, float]] = {job: {} for job in jobs}
    for rows in sizes:
        write_services(folder / f"services-{rows}.csv", rows)
        for job in jobs:
            options: dict[str, Any] = {"rows": rows, "pg-url": pg_url} if job == "import-pg" else {"rows": rows}
            rss, seconds, beside = run_child(folder, job, **options)
            found[job][rows] = rss
            if beside:
                found.setdefault(f"{job} (check process)", {})[rows] = beside
            print(f"| {job} | {rows:,} | {rss:,.0f} | {beside:,.0f} | {seconds:,.1f} |", flush=True)
        (folder / f"services-{rows}.csv").unlink()
    for seed in (1,):
        rss, seconds, _beside = run_child(folder, "demo", seed=seed)
        print(f"| demo --seed {seed} | (fixed size) | {rss:,.0f} | | {seconds:,.1f} |")
    small, large = min(sizes), max(sizes)
    if small != large:
        for job, by in found.items():
            if len(by) < 2:
                continue
            print(f"{job}: peak RSS at {large:,} rows / at {small:,} rows = {by[large] / by[small]:.2f}")


def print_sizes(label: str, sizes: dict[str, int], per: int) -> None:
    total = sizes["(file)"]
    print(f"{label}: {total:,} bytes, {total / per:,.0f} bytes per service")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        if name != "(file)" and size:
            print(f"    {name}: {size / per:,.1f} B/service ({size / total:.0%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL server (a database is created and dropped)")
    parser.add_argument(
        "--profile", type=int, nargs="?", const=30, metavar="TOP", help="print a cProfile of the import"
    )
    parser.add_argument("--memory", help="comma-separated row counts whose import/seal peak RSS to measure")
    parser.add_argument("--encryption-cost", action="store_true", help="also an unencrypted import and two rebuilds")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput and size comparison")
    parser.add_argument(
        "--floor", action="store_true", help="also insert each table's imported rows raw (SQLite): the floor"
    )
    parser.add_argument(
        "--import-only",
        type=int,
        metavar="RUNS",
        help="only import the file RUNS times into fresh stores and print the two passes' seconds (A/B of a change)",
    )
    parser.add_argument(
        "--check",
        choices=["auto", "here", "beside"],
        default="auto",
        help="where the import's check pass runs: by the file's size (auto), in the importing process, or in a "
        "process of its own beside the apply pass (TAIZHANG_CHECK_PROCESS=off / on)",
    )
    parser.add_argument("--child", choices=["import", "import-pg", "preview", "seal", "refused", "demo"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check != "auto":
        os.environ["TAIZHANG_CHECK_PROCESS"] = "on" if args.check == "beside" else "off"  # children inherit it
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = write_base(folder)
        services_csv = folder / "services.csv"
        if args.profile or not args.no_throughput:
            write_services(services_csv, args.rows)
        if args.profile:
            profile_import(args.rows, folder, services_csv, base, args.profile)
        if args.import_only:
            passes_only(args.import_only, args.rows, folder, services_csv, base, args.pg_url)
        elif not args.no_throughput:
            for backend in ("sqlite", "postgres") if args.pg_url else ("sqlite",):
                pg = args.pg_url if backend == "postgres" else None
                result = bench(
                    backend,
                    args.rows,
                    folder,
                    services_csv,
                    base,
                    pg,
                    encryption_cost=args.encryption_cost,
                    floor=args.floor,
                )
                report(args.rows, [result], args.encryption_cost)  # each store as soon as it is measured
                print(flush=True)
        if args.memory:
            memory([int(n) for n in args.memory.split(",")], folder, args.pg_url)
    return 0


def report(rows: int, results: list[dict[str, Any]], encryption_cost: bool) -> None:
    print(f"import of a {rows:,}-row services file (30% with notes), one run, same file")
    print(
        "| store | taizhang rows/s | raw insert rows/s | CRUD peer rows/s | taizhang / raw | taizhang / peer | peer / raw |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ours, raw, peer = rows / r["import_s"], r["events"] / r["raw_s"], rows / r["peer_s"]
        print(
            f"| {r['backend']} | {ours:,.0f} | {raw:,.0f} | {peer:,.0f} | {ours / raw:.2f} | {ours / peer:.2f} "
            f"| {peer / raw:.2f} |"
        )
    print("(raw: the import's own event rows inserted with executemany in one transaction, rows/s = events/s)")
    for r in results:
        print(
            f"CPU seconds of this process, {r['backend']}: taizhang {r['import_cpu']:.2f} (wall {r['import_s']:.2f}), "
            f"CRUD peer {r['peer_cpu']:.2f} (wall {r['peer_s']:.2f}, incl. its size query); "
            f"CPU taizhang / peer {r['import_cpu'] / r['peer_cpu']:.2f}"
        )
        check, apply = r["phases"]["check"], r["phases"]["apply"]
        print(
            f"  of which the check pass (read, names, validate, spill) {check[0]:.2f} s wall / {check[1]:.2f} s CPU "
            f"({check[1] / r['rows'] * 1e6:.0f} µs a row), the apply pass (rules, seal, encode, write, commit) "
            f"{apply[0]:.2f} s wall / {apply[1]:.2f} s CPU ({apply[1] / r['rows'] * 1e6:.0f} µs a row)"
        )
        if r["phases"]["beside"][1]:
            print(
                f"  the check pass ran in a process of its own beside the apply pass: {r['phases']['beside'][1]:.2f} s CPU "
                "there (reading, names, validation, record ids), not counted above"
            )
        if "floor" in r:
            print("floor: each table's imported rows inserted raw (product DDL, one executemany, one transaction)")
            print("| table | rows | seconds | rows/s |")
            print("|---|---:|---:|---:|")
            total = 0.0
            for table, (n, seconds) in r["floor"].items():
                total += seconds
                print(f"| {table} | {n:,} | {seconds:.3f} | {n / seconds:,.0f} |")
            print(
                f"| all tables | | {total:.3f} | taizhang / raw could be at most {r['raw_s'] / total:.2f} "
                f"with no Python at all (import {r['import_s']:.2f} s) |"
            )
    print()
    for r in results:
        ours, peer = r["sizes"]["(file)"] / rows, r["peer_sizes"]["(file)"] / rows
        print(
            f"bytes on disk per service, {r['backend']}: taizhang {ours:,.0f}, CRUD peer {peer:,.0f}, ratio {ours / peer:.2f}"
        )
        print_sizes("  taizhang (events, chain, record state, keys, snapshots, views)", r["sizes"], rows)
        print_sizes("  CRUD peer (services, audit_log)", r["peer_sizes"], rows)
    if encryption_cost:
        print()
        print("| store | import rows/s | without encryption rows/s | encrypted / unencrypted |")
        print("|---|---:|---:|---:|")
        for r in results:
            print(
                f"| {r['backend']} | {rows / r['import_s']:,.0f} | {rows / r['plain_s']:,.0f} | {r['plain_s'] / r['import_s']:.2f} |"
            )
        print()
        print("ledger rebuild (drop the views, replay the whole log), the same stores")
        print("| store | events | encrypted events/s | unencrypted events/s | encrypted / unencrypted |")
        print("|---|---:|---:|---:|---:|")
        for r in results:
            print(
                f"| {r['backend']} | {r['replayed']:,} | {r['replayed'] / r['rebuild_s']:,.0f} "
                f"| {r['replayed'] / r['rebuild_plain_s']:,.0f} | {r['rebuild_plain_s'] / r['rebuild_s']:.2f} |"
            )


if __name__ == "__main__":
    sys.exit(main())
