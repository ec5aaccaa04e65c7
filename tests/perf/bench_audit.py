"""Benchmark of the hash chain: `audit verify` against a raw baseline, and the write path with and without chaining.

    python -m tests.perf.citygen --db sqlite:///c100k.db --key-file k.key --events 100000
    python -m tests.perf.bench_audit --db sqlite:///c100k.db --key-file k.key [--pg-url URL]

1. **Verify.** `audit verify`'s work (commands.audit_chain.walk_log: read every event
   with its chain entry and commit time in one snapshot, recompute every link) on an
   existing store, against the raw baseline: plain `sqlite3` (or psycopg) reading the
   same stored rows (`rowid, originator_id, originator_version, topic, state`) in one
   pass and hashing each with `hashlib.sha256`. Ratio = baseline time / verify time
   (target ≥ 0.5). Best of `--repeat` runs each, alternating. Also the time of one
   `audit seal` (verify plus both Merkle trees and the signature).
2. **Write path.** The same application path with the chain switched on and off
   (`recorder.chain_enabled`, a switch only this benchmark uses), on fresh stores:
   services recorded one command at a time (a clerk), and one bulk save of many
   records (an import). Ratio = with / without.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commands import models
from commands.app import LedgerService
from commands.audit_chain import walk_log
from infra import crypto
from infra.store import parse_url


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- 1. verify --------------------------------------------------------------------------------
def raw_baseline(url: str) -> tuple[float, int]:
    """Seconds to read every stored event once and SHA-256 each row, with the plain driver."""
    store = parse_url(url)
    started = time.perf_counter()
    count = 0
    sha = hashlib.sha256
    if store.backend == "sqlite":
        conn = sqlite3.connect(str(store.path))
        try:
            cursor = conn.execute("SELECT rowid, originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
            while batch := cursor.fetchmany(2000):
                for position, oid, version, topic, state in batch:
                    sha(b"%d%s%d%s%s" % (position, oid.encode(), version, topic.encode(), state)).digest()
                    count += 1
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as pg, pg.cursor(name="raw") as named:
            named.itersize = 5000
            named.execute(
                "SELECT notification_id, uuid_send(originator_id), originator_version, topic, state "
                "FROM taizhang_events ORDER BY notification_id"
            )
            for position, oid, version, topic, state in named:
                sha(b"%d%s%d%s%s" % (position, oid, version, topic.encode(), state)).digest()
                count += 1
    return time.perf_counter() - started, count


def verify_once(url: str, key_file: Path) -> tuple[float, int]:
    service = LedgerService.open(parse_url(url), key_file)
    try:
        started = time.perf_counter()
        result = walk_log(service)
        elapsed = time.perf_counter() - started
    finally:
        service.close()
    if result.problem is not None:
        raise SystemExit(f"the store does not verify: {result.problem}")
    return elapsed, result.events


def bench_verify(url: str, key_file: Path, repeat: int) -> dict[str, Any]:
    raw: list[float] = []
    verify: list[float] = []
    events = 0
    for _ in range(repeat):
        seconds, events = raw_baseline(url)
        raw.append(seconds)
        seconds, verified = verify_once(url, key_file)
        verify.append(seconds)
        if verified != events:
            raise SystemExit(f"verify saw {verified} events, the baseline {events}")
    best_raw, best_verify = min(raw), min(verify)
    seal_s = seal_once(url, key_file)
    return {
        "store": url.split("://", 1)[0].split("+")[0],
        "events": events,
        "raw_events_per_s": round(events / best_raw),
        "verify_events_per_s": round(events / best_verify),
        "verify_s": round(best_verify, 3),
        "raw_s": round(best_raw, 3),
        "verify_over_raw": round(best_raw / best_verify, 3),
        "seal_s": round(seal_s, 3),
    }


def seal_once(url: str, key_file: Path) -> float:
    """Seconds for `audit seal`'s work: verify, both Merkle trees, the signature."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from commands.audit_chain import seal

    service = LedgerService.open(parse_url(url), key_file)
    try:
        started = time.perf_counter()
        seal(service, Ed25519PrivateKey.generate())
        return time.perf_counter() - started
    finally:
        service.close()


# ---- 2. the write path ------------------------------------------------------------------------
def _fresh(backend: str, folder: Path, pg_url: str | None, key_file: Path) -> tuple[LedgerService, str]:
    if backend == "sqlite":
        url = f"sqlite:///{folder / (uuid.uuid4().hex + '.db')}"
    else:
        from tests.conftest import make_pg_database

        assert pg_url is not None
        url = make_pg_database(pg_url)
    service, _ = LedgerService.create(parse_url(url), key_file, None)
    return service, url


def _drop(backend: str, url: str, pg_url: str | None) -> None:
    if backend == "postgres":
        from tests.conftest import drop_pg_database

        assert pg_url is not None
        drop_pg_database(pg_url, url)


def _community(service: LedgerService) -> str:
    from tests import helpers

    return helpers.small_community(service)


def _record_cmd(service: LedgerService, code: str, i: int) -> Any:
    return service.validate(
        models.RecordService,
        {
            "community": code,
            "kind": "life_care",
            "residents": ["R1"],
            "providers": ["P1"],
            "occurred_at": f"2026-03-{1 + i % 28:02d} 09:{i % 60:02d}",
            "minutes": 10 + i % 100,
        },
    )


def write_round(backend: str, folder: Path, pg_url: str | None, key_file: Path, chained: bool, singles: int, bulk: int) -> dict[str, float]:
    service, url = _fresh(backend, folder, pg_url, key_file)
    try:
        service.recorder.chain_enabled = chained
        code = _community(service)
        started = time.perf_counter()
        for i in range(singles):
            service.record_service(_record_cmd(service, code, i), "clerk", str(uuid.uuid4()))
        single_s = time.perf_counter() - started

        community = service.get_community(code)
        keys = service.key_session()
        for i in range(bulk):
            record_id = str(uuid.uuid4())
            service.apply_record(community, _record_cmd(service, code, i), record_id, keys, "clerk")
        started = time.perf_counter()
        service.save_many([community], keys)
        bulk_s = time.perf_counter() - started
        if chained:
            problem = walk_log(service).problem
            if problem is not None:
                raise SystemExit(f"the chain written by the benchmark does not verify: {problem}")
    finally:
        service.close()
        _drop(backend, url, pg_url)
    return {"single": singles / single_s, "bulk": bulk / bulk_s}


def bench_write(backend: str, pg_url: str | None, key_file: Path, repeat: int, singles: int, bulk: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="tz-bench-audit-"))
    best: dict[bool, dict[str, float]] = {True: {"single": 0.0, "bulk": 0.0}, False: {"single": 0.0, "bulk": 0.0}}
    try:
        for _ in range(repeat):
            for chained in (False, True):
                rates = write_round(backend, folder, pg_url, key_file, chained, singles, bulk)
                for k, v in rates.items():
                    best[chained][k] = max(best[chained][k], v)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "store": backend,
        "one_per_save_without": round(best[False]["single"]),
        "one_per_save_with": round(best[True]["single"]),
        "one_per_save_ratio": round(best[True]["single"] / best[False]["single"], 3),
        "bulk_without": round(best[False]["bulk"]),
        "bulk_with": round(best[True]["bulk"]),
        "bulk_ratio": round(best[True]["bulk"] / best[False]["bulk"], 3),
        "singles": singles,
        "bulk_events": bulk,
    }


def whole_verify(url: str, key_file: Path) -> dict[str, Any]:
    """`taizhang audit verify` as an auditor runs it (the chain, the access log's chain and the
    record state against the log), in a fresh process: its seconds and peak RSS."""
    import resource
    import subprocess

    command = [sys.executable, "-m", "commands.cli", "--db", url, "--key-file", str(key_file), "audit", "verify"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"audit verify failed: {done.stderr.strip()}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_mb, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="an existing store to verify (sqlite:///PATH or postgresql://…)")
    parser.add_argument("--key-file", type=Path, help="its master key file")
    parser.add_argument("--pg-url", help="a PostgreSQL server URL for the write-path rounds (fresh databases)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--singles", type=int, default=300, help="services recorded one command at a time per round")
    parser.add_argument("--bulk", type=int, default=20000, help="services saved in one bulk save per round")
    parser.add_argument("--skip-write", action="store_true")
    parser.add_argument(
        "--whole-verify",
        action="store_true",
        help="also time `taizhang audit verify` on --db in a fresh process and print its peak RSS",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if args.db and args.whole_verify:
        key_file = args.key_file or parse_url(args.db).default_key_file()
        results["whole_verify"] = whole_verify(args.db, key_file)
        _log(json.dumps(results["whole_verify"]))
    if args.db:
        key_file = args.key_file or parse_url(args.db).default_key_file()
        _log(f"verify: {args.db}")
        results["verify"] = bench_verify(args.db, key_file, args.repeat)
        _log(json.dumps(results["verify"]))
    if not args.skip_write:
        key_file = Path(tempfile.mkdtemp(prefix="tz-bench-key-")) / "k.key"
        crypto.create_key_file(key_file)
        results["write"] = [bench_write("sqlite", None, key_file, args.repeat, args.singles, args.bulk)]
        _log(json.dumps(results["write"][-1]))
        if args.pg_url:
            results["write"].append(bench_write("postgres", args.pg_url, key_file, args.repeat, args.singles, args.bulk))
            _log(json.dumps(results["write"][-1]))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
