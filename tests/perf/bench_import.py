"""Import throughput of a services file against a raw-insert baseline measured in the same run.

    python -m tests.perf.bench_import --rows 100000 [--pg-url postgresql://…]

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


def timed_import(service: LedgerService, services_csv: Path) -> tuple[float, int]:
    before = service.recorder.max_notification_id() or 0
    t0 = time.perf_counter()
    result = import_file(service, "services", services_csv, "bench")
    elapsed = time.perf_counter() - t0
    assert result.added > 0 and not result.problems
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


def bench(backend: str, rows: int, folder: Path, services_csv: Path, base: tuple[Path, Path, Path], pg: str | None) -> dict[str, Any]:
    key = folder / "bench.key"
    if not key.exists():
        crypto.create_key_file(key)
    urls: list[str] = []

    def url_for(tag: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{folder / f'{tag}.db'}"
        assert pg is not None
        urls.append(new_pg_database(pg))
        return urls[-1]

    try:
        service = fresh_store(url_for("enc"), key, base)
        encrypted, before = timed_import(service, services_csv)
        stored = stored_rows(service, before)
        raw = raw_sqlite(stored, folder) if backend == "sqlite" else raw_postgres(stored, urls[-1])
        rebuild_enc, replayed = timed_rebuild(service)
        service.close()
        service = fresh_store(url_for("plain"), key, base)
        with encryption_off():
            plain, _ = timed_import(service, services_csv)
            rebuild_plain, _ = timed_rebuild(service)
        service.close()
    finally:
        for url in urls:
            drop_pg_database(pg or "", url)
    return {
        "backend": backend,
        "rows": rows,
        "events": len(stored),
        "import_s": encrypted,
        "import_rows_s": rows / encrypted,
        "plain_rows_s": rows / plain,
        "raw_rows_s": len(stored) / raw,
        "ratio": (rows / encrypted) / (len(stored) / raw),
        "plain_ratio": (rows / plain) / (len(stored) / raw),
        "encryption_cost": (rows / encrypted) / (rows / plain),
        "replayed": replayed,
        "rebuild_s": rebuild_enc,
        "rebuild_plain_s": rebuild_plain,
        "rebuild_cost": rebuild_plain / rebuild_enc,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL server (a database is created and dropped)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = write_base(folder)
        services_csv = folder / "services.csv"
        write_services(services_csv, args.rows)
        results = [bench("sqlite", args.rows, folder, services_csv, base, None)]
        if args.pg_url:
            results.append(bench("postgres", args.rows, folder, services_csv, base, args.pg_url))
    print(f"import of a {args.rows:,}-row services file (30% with notes), one transaction")
    print("| store | import rows/s | without encryption rows/s | raw insert rows/s | import / raw | unencrypted / raw | encrypted / unencrypted |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['import_rows_s']:,.0f} | {r['plain_rows_s']:,.0f} | {r['raw_rows_s']:,.0f} "
            f"| {r['ratio']:.2f} | {r['plain_ratio']:.2f} | {r['encryption_cost']:.2f} |"
        )
    print()
    print("ledger rebuild (drop the views, replay the whole log), the same stores")
    print("| store | events | encrypted events/s | unencrypted events/s | encrypted / unencrypted |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['replayed']:,} | {r['replayed'] / r['rebuild_s']:,.0f} "
            f"| {r['replayed'] / r['rebuild_plain_s']:,.0f} | {r['rebuild_cost']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
