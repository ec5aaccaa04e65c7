"""Server time of the append functions (infra.pgappend) during one `import services`, in one run.

    python -m tests.perf.bench_pg_append --pg-url postgresql://…/postgres [--rows 100000] [--actors]

On a throwaway database of the given server (created and dropped; the URL is an admin's):
the base data of tests/perf/bench_import, then `taizhang import services` of `--rows` rows
with `track_functions = 'all'` set for that database only (ALTER DATABASE, so every
connection of the store's pool counts). With `--actors` the store has an actor (an admin
bound to the URL's login) before the import, so taizhang_append checks every event's actor
(access control on, as in a shared store); without, only the owner appends and that check
is skipped. Prints the client's wall and CPU seconds for the
import, and per function of pg_stat_user_functions (reset just before the import): calls,
total and self milliseconds on the server. To compare two versions of the functions, run
it once on each checkout; timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from commands.importer import import_file
from infra import crypto
from tests.perf.bench_import import drop_pg_database, fresh_store, new_pg_database, write_base, write_services


def function_times(url: str) -> list[tuple[str, int, float, float]]:
    """(function, calls, total ms, self ms) of this database, largest total first."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions ORDER BY total_time DESC"
        ).fetchall()
    return [(str(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]


def run(admin_url: str, rows: int, actors: bool, *, check: bool = False) -> None:
    """The benchmark; with `check`, also that the derived record state agrees with the log (tests)."""
    folder = Path(tempfile.mkdtemp(prefix="bench_pg_append_"))
    base = write_base(folder)
    services = folder / "services.csv"
    write_services(services, rows)
    key = folder / "bench.key"
    crypto.create_key_file(key)
    url = new_pg_database(admin_url)
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{url.rsplit('/', 1)[1]}\" SET track_functions = 'all'")
        service = fresh_store(url, key, base)
        if actors:
            with psycopg.connect(url) as conn:
                login = str(conn.execute("SELECT session_user").fetchone()[0])  # type: ignore[index]
            service.grant_actor("bench", "admin", "city", login, "bench")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_reset()")
        cpu, wall = time.process_time(), time.perf_counter()
        result = import_file(service, "services", services, "bench")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert result.added == rows and not result.problems, (result.added, result.problems)
        if check:
            assert service.recorder.record_state_problem() is None  # type: ignore[attr-defined]
        service.close()
        # A backend flushes its function counters when idle (at most a second later) or when it ends.
        time.sleep(1.5)
        times = function_times(url)
    finally:
        drop_pg_database(admin_url, url)
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"import services, {rows} rows{' (access control on)' if actors else ''}: client wall {wall:.2f} s, client CPU {cpu:.2f} s"
    )
    print(f"{'function':<28}{'calls':>8}{'total ms':>11}{'self ms':>10}")
    for name, calls, total, own in times:
        print(f"{name:<28}{calls:>8}{total:>11.0f}{own:>10.0f}")
    appended = sum(total for name, _, total, _ in times if name.startswith("taizhang_append"))
    print(f"{'taizhang_append* total':<28}{'':>8}{appended:>11.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TAIZHANG_TEST_PG_URL"),
        help="admin URL of a PostgreSQL server (default: $TAIZHANG_TEST_PG_URL)",
    )
    parser.add_argument("--actors", action="store_true", help="an actor bound to the login: the actor check runs")
    args = parser.parse_args(argv)
    if not args.pg_url:
        parser.error("--pg-url: no PostgreSQL admin URL (nor TAIZHANG_TEST_PG_URL)")
    run(args.pg_url, args.rows, args.actors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
