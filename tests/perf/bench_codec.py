"""What a compact stored-event encoding would save: service events' payloads, as stored and compressed.

    python -m tests.perf.bench_codec --db STORE.db [--sample 20000] [--dictionary 32768] [--seed 1]

Reads the `ServiceRecorded` payloads of an existing SQLite store (e.g. the city year that
`bench_rebuild` or `bench_web` made) and prints, per event: the stored JSON's bytes, zlib of each
payload alone, and zlib of each payload alone with a preset dictionary (`zdict`) cut from other
events of the same store (the events the dictionary is made from are not measured). Each
payload stays decodable on its own, as a versioned codec in the store would need. Then the
events table's bytes per service event today (`dbstat`, with its index) and what the dictionary
codec would make of it. Sizes only: nothing is timed, nothing in the store is written.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import zlib
from pathlib import Path

TOPIC = "taizhang:Community.ServiceRecorded"


def deflate(payload: bytes, dictionary: bytes | None = None) -> bytes:
    """Raw deflate of one payload at level 9 (with a preset dictionary when given)."""
    options = {"zdict": dictionary} if dictionary else {}
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, **options)
    return packer.compress(payload) + packer.flush()


def inflate(packed: bytes, dictionary: bytes | None = None) -> bytes:
    options = {"zdict": dictionary} if dictionary else {}
    unpacker = zlib.decompressobj(-15, **options)
    return unpacker.decompress(packed) + unpacker.flush()


def measure(db: Path, sample: int, dictionary_size: int, seed: int) -> dict[str, float]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        payloads = [bytes(s) for (s,) in conn.execute("SELECT state FROM stored_events WHERE topic = ?", (TOPIC,))]
        services = len(payloads)
        table = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('stored_events', 'sqlite_autoindex_stored_events_1')"
        ).fetchone()[0]
    finally:
        conn.close()
    if services < 2:
        raise SystemExit(f"--db: {db} holds {services} service event(s); at least 2 are needed")
    rng = random.Random(seed)
    rng.shuffle(payloads)
    half = len(payloads) // 2
    donors, measured = payloads[:half], payloads[half:][:sample]
    dictionary = b"".join(donors)[-dictionary_size:]
    plain = sum(map(len, measured))
    alone = sum(len(deflate(p)) for p in measured)
    packed = [deflate(p, dictionary) for p in measured]
    assert all(inflate(b, dictionary) == p for b, p in zip(packed, measured, strict=True))
    with_dictionary = sum(map(len, packed))
    n = len(measured)
    events_per_service = table / services
    return {
        "services": services,
        "measured": n,
        "json": plain / n,
        "deflate": alone / n,
        "deflate_dictionary": with_dictionary / n,
        "events_table_per_service": events_per_service,
        "events_table_with_codec": events_per_service - (plain - with_dictionary) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a SQLite store (file path)")
    parser.add_argument("--sample", type=int, default=20_000, help="payloads measured (default 20,000)")
    parser.add_argument("--dictionary", type=int, default=32_768, help="preset dictionary bytes (zlib's most: 32,768)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not args.db.is_file():
        raise SystemExit(f"--db: no file {args.db}")
    r = measure(args.db, args.sample, min(args.dictionary, 32_768), args.seed)
    print(f"store: {args.db} ({r['services']:,} service events; {r['measured']:,} measured)")
    print(f"ServiceRecorded payload bytes, per event: JSON {r['json']:.0f}, deflate alone {r['deflate']:.0f}, "
          f"deflate with a {min(args.dictionary, 32_768):,}-byte preset dictionary {r['deflate_dictionary']:.0f}")  # fmt: skip
    print(f"whole events table with its key (all topics), bytes per ServiceRecorded: {r['events_table_per_service']:.0f} now, "
          f"~{r['events_table_with_codec']:.0f} with the dictionary codec")  # fmt: skip


if __name__ == "__main__":
    main()
