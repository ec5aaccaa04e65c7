"""Reads never take the write lock (issue 12, docs/decisions: reads without the write lock).

Real processes, on both stores. Nothing here measures time: each test asserts what a reader
could not do if it waited for the writer.

- While an import's one transaction holds the write lock, a reader process keeps running
  `ledger summary`: reads that begin and end while the lock is held answer (with the ledger as
  it was before the import: never a part of it), so they did not wait for the import.
- Eight reader processes, while another process holds the writers' lock, are each inside
  their read transaction at the same time: each waits there until all eight have arrived.
  Readers that queued for the lock, or for each other, would never all arrive.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from commands.cli import cli

ROOT = Path(__file__).resolve().parents[2]
TAIZHANG_VARS = ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")
CLI = [sys.executable, "-m", "commands.cli"]
READERS = 8
IMPORT_ROWS = 20_000  # twenty batches of the runner: the bench (tests/perf/bench_reads.py) imports 100,000

pytestmark = pytest.mark.slow

# Is the writers' lock held right now? SQLite: a write transaction cannot begin (busy_timeout 0;
# when it can, it is given back at once). PostgreSQL: another session holds the lock every
# append takes on the events table (infra.pgappend), seen in pg_locks without taking anything.
PROBE = """
def make_probe(url):
    if url.startswith("sqlite:///"):
        import sqlite3
        def probe():
            c = sqlite3.connect(url[len("sqlite:///"):], timeout=0, isolation_level=None)
            try:
                c.execute("BEGIN IMMEDIATE")
                c.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError as e:
                if "locked" not in str(e):
                    raise
                return True
            finally:
                c.close()
        return probe
    import psycopg
    conn = psycopg.connect(url, autocommit=True)
    def probe():
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'taizhang_events'::regclass "
            "AND mode = 'ExclusiveLock' AND granted AND pid <> pg_backend_pid())"
        ).fetchone()[0]
    return probe
"""

# Polls `ledger summary` (the command's whole path, in process) until told to stop; one JSON line per read.
POLLER = (
    PROBE
    + """
import json, sys, time
from pathlib import Path
from click.testing import CliRunner
from commands.cli import cli
url, key, stop, out = sys.argv[1:5]
probe = make_probe(url)
with open(out, "w") as f:
    while not Path(stop).exists():
        before = probe()
        start = time.perf_counter()
        result = CliRunner().invoke(cli, ["--db", url, "--key-file", key, "ledger", "summary", "--by", "county", "--format", "json"])
        seconds = time.perf_counter() - start  # printed by tests/perf/bench_reads.py, never asserted
        after = probe()
        records = sum(r["records"] for r in json.loads(result.stdout)) if result.exit_code == 0 else None
        f.write(json.dumps({"exit": result.exit_code, "records": records, "locked": [before, after], "seconds": seconds}) + "\\n")
        f.flush()
"""
)

# Holds the writers' lock until told to let go: SQLite BEGIN IMMEDIATE; PostgreSQL the events
# table's EXCLUSIVE lock (what every append takes) and the projections' tracking rows FOR UPDATE
# (what a projection worker takes).
HOLDER = """
import sys, time
from pathlib import Path
url, held, release = sys.argv[1:4]
if url.startswith("sqlite:///"):
    import sqlite3
    c = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
else:
    import psycopg
    c = psycopg.connect(url)
    c.execute("LOCK TABLE taizhang_events IN EXCLUSIVE MODE")
    c.execute("SELECT position FROM ledger_tracking FOR UPDATE")
Path(held).touch()
deadline = time.monotonic() + 300
while not Path(release).exists() and time.monotonic() < deadline:
    time.sleep(0.02)
c.rollback() if not url.startswith("sqlite:///") else c.execute("ROLLBACK")
"""

# One reader: the views made ready as a query does (Views.prepare), then, inside its read
# transaction, it marks its arrival and waits until all readers have arrived.
READER = """
import json, sys, time
from pathlib import Path
from commands.context import Env
from projections.filters import Filters, Moment
from projections.queries import summary
url, key, meeting, name, count, out = sys.argv[1:7]
env = Env(db=url, actor=None, lang="en", key_file=Path(key))
views = env.views()
views.prepare()
with views.read() as conn:
    rows = summary(conn, Filters(None, None, None, (), None, Moment()), by="county")
    Path(meeting, name).touch()
    deadline = time.monotonic() + 120
    while len(list(Path(meeting).iterdir())) < int(count) and time.monotonic() < deadline:
        time.sleep(0.01)
    met = len(list(Path(meeting).iterdir()))
Path(out).write_text(json.dumps({"met": met, "records": sum(r["records"] for r in rows)}))
env.close()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TAIZHANG_VARS}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ok(db: str, key: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", db, "--key-file", str(key), "--actor", "clerk01", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def _store(db: str, key: Path) -> None:
    """One community with residents and providers, established in 2025."""
    _ok(db, key, "init", *(() if db.startswith("sqlite") else ("--no-access-control",)))
    _ok(
        db,
        key,
        "community",
        "establish",
        "C1",
        "--name",
        "石门社区",
        "--county",
        "八步区",
        "--township",
        "贺街镇",
        "--village",
        "石门村",
        "--established-on",
        "2025-01-01",
    )
    for code in ("R1", "R2", "R3"):
        _ok(db, key, "resident", "enroll", "C1", code, "--name", f"居民{code}", "--category", "留守老人")
    for code in ("P1", "P2"):
        _ok(db, key, "provider", "register", "C1", code, "--name", f"志愿者{code}", "--role", "volunteer")


def services_csv(path: Path, rows: int) -> Path:
    """`rows` distinct service rows of community C1 in 2025."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["community", "kind", "residents", "providers", "occurred_at", "minutes"])
        for i in range(rows):
            day, minute = divmod(i, 1000)
            writer.writerow(
                [
                    "C1",
                    "life_care",
                    f"R{i % 3 + 1}",
                    f"P{i % 2 + 1}",
                    f"2025-{day % 12 + 1:02d}-{day % 28 + 1:02d} 08:{minute % 60:02d}",
                    1 + minute % 600,
                ]
            )
    return path


def _summary_records(db: str, key: Path) -> int:
    out = _ok(db, key, "ledger", "summary", "--by", "county", "--format", "json")
    return sum(r["records"] for r in json.loads(out))


def import_while_polling(db_url: str, tmp_path: Path, rows: int) -> tuple[int, list[dict[str, Any]], float]:
    """Import `rows` services in one process while another polls `ledger summary`; returns the
    records before the import, every read, and the import's wall time (tests/perf/bench_reads.py)."""
    key = tmp_path / "taizhang.key"
    _store(db_url, key)
    before = _summary_records(db_url, key)  # the views current before the import begins
    data = services_csv(tmp_path / "services.csv", rows)
    stop, polls = tmp_path / "stop", tmp_path / "polls.jsonl"
    poller = _python(POLLER, db_url, str(key), str(stop), str(polls))
    try:
        while not polls.exists() or not polls.read_text():
            assert poller.poll() is None, poller.communicate()
            time.sleep(0.05)  # the reader is reading
        start = time.perf_counter()
        importer = subprocess.run(
            [*CLI, "--db", db_url, "--key-file", str(key), "--actor", "clerk01", "import", "services", str(data)]
            + ["--format", "json"],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        elapsed = time.perf_counter() - start
        assert importer.returncode == 0, importer.stderr
        assert json.loads(importer.stdout)["added"] == rows
        seen = len(polls.read_text().splitlines())
        while len(polls.read_text().splitlines()) < seen + 3:
            time.sleep(0.05)  # a few reads after the import returned
    finally:
        stop.touch()
        _out, err = poller.communicate(timeout=120)
    assert poller.returncode == 0, err
    return before, [json.loads(line) for line in polls.read_text().splitlines()], elapsed


def test_a_reader_answers_while_an_import_holds_the_write_lock(db_url: str, tmp_path: Path) -> None:
    before, reads, _elapsed = import_while_polling(db_url, tmp_path, IMPORT_ROWS)
    assert all(r["exit"] == 0 for r in reads), [r for r in reads if r["exit"]]
    after = before + IMPORT_ROWS
    # Every answer is the ledger before the import or after it: never a part of it.
    assert {r["records"] for r in reads} <= {before, after}
    # Reads that began and ended while the import's transaction held the lock, and answered.
    under_the_import = [r for r in reads if r["locked"] == [True, True] and r["records"] == before]
    assert len(under_the_import) >= 2, reads
    if db_url.startswith("sqlite"):
        # The import caught the views up itself, in batches, before it returned.
        assert reads[-1]["records"] == after


def test_eight_readers_read_at_once_while_a_writer_holds_the_lock(db_url: str, tmp_path: Path) -> None:
    key = tmp_path / "taizhang.key"
    _store(db_url, key)
    _ok(
        db_url,
        key,
        "service",
        "record",
        "C1",
        "--kind",
        "life_care",
        "--resident",
        "R1",
        "--provider",
        "P1",
        "--at",
        "2025-03-05 09:30",
        "--minutes",
        "30",
    )
    if not db_url.startswith("sqlite"):
        _ok(db_url, key, "projections", "run")  # a worker's job on PostgreSQL
    records = _summary_records(db_url, key)
    held, release, meeting = tmp_path / "held", tmp_path / "release", tmp_path / "meeting"
    meeting.mkdir()
    holder = _python(HOLDER, db_url, str(held), str(release))
    readers: list[subprocess.Popen[str]] = []
    try:
        while not held.exists():
            assert holder.poll() is None, holder.communicate()
            time.sleep(0.02)
        outs = [tmp_path / f"reader{i}.json" for i in range(READERS)]
        readers = [
            _python(READER, db_url, str(key), str(meeting), f"r{i}", str(READERS), str(out))
            for i, out in enumerate(outs)
        ]
        for reader in readers:
            _out, err = reader.communicate(timeout=300)
            assert reader.returncode == 0, err
        assert holder.poll() is None  # the writer still holds its lock: nobody waited for it
    finally:
        release.touch()
        for reader in readers:
            if reader.poll() is None:
                reader.kill()
        holder.communicate(timeout=60)
    results = [json.loads(out.read_text()) for out in outs]
    assert [r["met"] for r in results] == [READERS] * READERS  # all inside their read transactions at once
    assert [r["records"] for r in results] == [records] * READERS
