"""Single writes against a community's history: 1,000 records in one community, 50,000 in another.

    python -m tests.perf.bench_writes [--small 1000] [--large 50000] [--writes 60] [--pg-url postgresql://…]

Builds, in one store, a community with `--small` records and one with `--large` records
(through the bulk path: the domain in memory, then `save_many` in chunks, as an import
saves), with 20 residents and 5 providers each. Then, alternating between the two
communities so both see the same machine, runs `--writes` single commands of each kind in
process through `LedgerService`, as the CLI's `service record`, `service correct` and
`service void` do: a new record; a correction of the minutes of an existing record; a void
of an existing record. Prints the median per command and size, the large/small ratio
(issue 12's target: at most 1.3), and the bytes of state each write loaded: the snapshot,
the events replayed after it and the record_state rows read.

With `--pg-url` (an admin URL; a database is created and dropped; default
$TAIZHANG_TEST_PG_URL) the same runs on PostgreSQL too. Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from commands import models
from commands.app import LedgerService
from domain.ids import community_id
from infra import crypto
from infra.store import parse_url
from tests import helpers

RESIDENTS = [f"R{i:02d}" for i in range(20)]
PROVIDERS = [f"P{i}" for i in range(5)]
CHUNK = 5000


def build(service: LedgerService, code: str, records: int) -> list[str]:
    """A community with `records` services; returns their record ids."""
    helpers.establish(service, code)
    for resident in RESIDENTS:
        helpers.enroll(service, code, resident)
    for provider in PROVIDERS:
        helpers.register(service, code, provider)
    rng = random.Random(records)
    ids: list[str] = []
    keys = service.key_session()
    done = 0
    while done < records:
        community = service.get_community(code)
        added = 0
        for i in range(done, min(records, done + CHUNK)):
            record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            cmd = service.validate(models.RecordService, {
                "community": code, "kind": "life_care", "residents": [RESIDENTS[i % 20]],
                "providers": [PROVIDERS[i % 5]], "occurred_at": f"2026-0{1 + i % 6}-{1 + i % 28:02d} {8 + i % 10}:{i % 60:02d}",
                "minutes": 10 + i % 50,
            })  # fmt: skip
            LedgerService.apply_record(community, cmd, record_id, keys, "clerk")
            ids.append(record_id)
            added += 1
        service.save_many([community], keys)
        done += added
    return ids


@contextmanager
def loaded_bytes(service: LedgerService) -> Iterator[list[int]]:
    """Count the bytes of state the application reads while loading: snapshot, events, record rows."""
    counter = [0]
    recorders = [service.app.events.recorder, service.app.snapshots.recorder]
    saved = [(r, r.select_events) for r in recorders]
    read_states = service.recorder.record_states

    def counting(original: Callable[..., Any]) -> Callable[..., Any]:
        def select(*args: Any, **kwargs: Any) -> Any:
            events = original(*args, **kwargs)
            counter[0] += sum(len(e.state) for e in events)
            return events

        return select

    def states(*args: Any) -> Any:
        rows = read_states(*args)
        counter[0] += len(orjson.dumps(list(rows.values())))
        return rows

    for recorder, original in saved:
        recorder.select_events = counting(original)
    service.recorder.record_states = states
    try:
        yield counter
    finally:
        for recorder, original in saved:
            recorder.select_events = original
        service.recorder.record_states = read_states


def run(url: str, key: Path, small: int, large: int, writes: int) -> None:
    service, _ = LedgerService.create(parse_url(url), key, None)
    try:
        sizes = {small: "S", large: "L"}
        t0 = time.perf_counter()
        ids = {size: build(service, code, size) for size, code in sizes.items()}
        print(f"built {small:,} + {large:,} records in {time.perf_counter() - t0:.1f} s")
        snapshot_table = service.app.snapshots.recorder
        for size, code in sizes.items():
            latest = list(snapshot_table.select_events(community_id(code), desc=True, limit=1))
            print(f"  {size:>7,} records: snapshot {len(latest[0].state) if latest else 0:,} bytes")
        times: dict[tuple[str, int], list[float]] = {}
        loaded: dict[tuple[str, int], list[int]] = {}
        rng = random.Random(7)
        pools = {size: rng.sample(ids[size], 2 * writes) for size in sizes}

        def record(code: str, size: int, i: int) -> None:
            cmd = service.validate(models.RecordService, {
                "community": code, "kind": "counseling", "residents": [RESIDENTS[i % 20]], "providers": [PROVIDERS[i % 5]],
                "occurred_at": f"2026-07-{1 + i % 28:02d} 10:00", "minutes": 25,
            })  # fmt: skip
            service.record_service(cmd, "clerk", str(uuid.uuid4()))

        def correct(code: str, size: int, i: int) -> None:
            cmd = service.validate(models.CorrectService, {
                "community": code, "record_id": pools[size][i], "reason": "更正", "minutes": 61 + i % 50,
            })  # fmt: skip
            service.correct_service(cmd, "clerk")

        def void(code: str, size: int, i: int) -> None:
            cmd = service.validate(
                models.VoidService, {"community": code, "record_id": pools[size][writes + i], "reason": "作废"}
            )
            service.void_service(cmd, "clerk")

        commands = {"service record": record, "service correct": correct, "service void": void}
        for name, command in commands.items():
            for i in range(writes):
                for size, code in sizes.items():  # alternate: both sizes see the same machine
                    with loaded_bytes(service) as counter:
                        t = time.perf_counter()
                        command(code, size, i)
                        times.setdefault((name, size), []).append(time.perf_counter() - t)
                    loaded.setdefault((name, size), []).append(counter[0])
        print(f"{'command':<16}{'records':>9}{'median ms':>11}{'state loaded (bytes, mean)':>28}")
        for name in commands:
            for size in sizes:
                median = statistics.median(times[(name, size)]) * 1000
                print(f"{name:<16}{size:>9,}{median:>11.2f}{statistics.mean(loaded[(name, size)]):>28,.0f}")
            ratio = statistics.median(times[(name, large)]) / statistics.median(times[(name, small)])
            print(f"{name:<16}{'ratio':>9}{ratio:>11.2f}   ({large:,}/{small:,}; target <= 1.3)")
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000, help="records in the small community")
    parser.add_argument("--large", type=int, default=50_000, help="records in the large community")
    parser.add_argument("--writes", type=int, default=60, help="commands of each kind per size (the median is shown)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TAIZHANG_TEST_PG_URL"),
        help="admin URL of a PostgreSQL server (a database is created and dropped); default $TAIZHANG_TEST_PG_URL",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "taizhang.key"
        crypto.create_key_file(key)
        print("== SQLite")
        run(f"sqlite:///{Path(tmp) / 'bench.db'}", key, args.small, args.large, args.writes)
        if args.pg_url:
            from tests.conftest import drop_pg_database, make_pg_database

            url = make_pg_database(args.pg_url)
            try:
                print("== PostgreSQL")
                run(url, key, args.small, args.large, args.writes)
            finally:
                drop_pg_database(args.pg_url, url)


if __name__ == "__main__":
    main()
