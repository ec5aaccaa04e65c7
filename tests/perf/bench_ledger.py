"""The ledger projection at city scale: rebuild throughput, query latency and rebuild memory.

    python -m tests.perf.bench_ledger [--events 1000000] [--small N] [--pg-url URL] [--pg-events N]
                                      [--keep DIR] [--runs 30] [--seed 1] [--profile]

One city-scale year (tests.perf.citygen: 300 communities, ~30k residents, `--events`
service events over 2025) is generated into a SQLite store through the application's
bulk path. The store is measured twice: when it holds the first `--small` service
events of the year (default events/10: about the first five weeks), and again once
the same store has been extended to the whole year. Same city, same density, same
seed: the bigger store has more history, not more per month.

At each size:
- full rebuild of the projections (`Views(service).runner`: drop_tables, ensure_tables,
  catch_up) in a fresh process: events/s, CPU seconds, and the process's peak RSS
  (VmHWM). The drop is timed separately, on the full projection, after the queries.
- a raw baseline in another fresh process: plain sqlite3 reading the same stored rows
  (`SELECT rowid, * FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT 1000`),
  decoding them with orjson.loads and writing the same projection rows into tables of
  the same shape (the real tables' DDL, indexes included, renamed raw_*), 1,000 events
  and a tracking row per transaction: for each ServiceRecorded one revision row, its
  resident and category rows; for a correction or void one UPDATE that closes the old
  revision (read back from the table when it is not in the batch) and one INSERT; the
  directory rows; the four monthly upserts. Like any single-process projector it keeps
  the directory (community and resident categories: bounded by residents, not events)
  in memory between batches. The smoke test checks that it writes exactly the real
  projection's rows.
- query latency, median and p95 over `--runs` runs, on a reader connection
  (`projections.queries`): `ledger entries` of one community for January (the same
  rows at both sizes), `ledger summary --by township` for the first quarter (which
  holds ~5 weeks of data at the small size, 3 months at the full size) and for January
  (the same data at both sizes); and once end to end through click's CliRunner.

With `--pg-url` (an admin URL; a database is created and dropped) the first `--pg-events`
(default `--small`) service events of the same year (same seed, same density) are
generated into PostgreSQL and rebuilt there too; its queries are timed as the store
stands after the rebuild (no VACUUM ANALYZE).

`--profile` adds a cProfile of a rebuild of the small store (top 15 by cumulative
and by internal time). Timings are printed, never asserted; on a shared machine the
wall times are noisy, so CPU seconds are shown beside them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from tests.perf import citygen

ROOT = Path(__file__).resolve().parents[2]
BATCH = 1000
TOPIC = "taizhang:Community."
LEDGER_TABLES = (
    "ledger_communities",
    "ledger_residents",
    "ledger_providers",
    "ledger_revisions",
    "ledger_revision_residents",
    "ledger_revision_categories",
    "ledger_month_kind",
    "ledger_month_resident",
    "ledger_month_category_kind",
    "ledger_month_category_resident",
    "ledger_month_quality",
)
# The accountability projection (when the runner has it) writes, for this city (no officials,
# targets, visit plans or pairings), one bitemporal row per resident state: the raw baseline
# writes those too.
STATE_TABLE = "acct_resident_states"
STATE_COLUMNS = (
    "community", "code", "enrolled_on", "departed_on", "categories",
    "seq", "recorded_from", "recorded_to", "position_from", "position_to",
)
JANUARY = (date(2025, 1, 1), date(2025, 1, 31))
QUARTER = (date(2025, 1, 1), date(2025, 3, 31))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in kB."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


# ---- the real rebuild -------------------------------------------------------------------------
@contextmanager
def opened(url: str, key_file: Path) -> Iterator[Any]:
    from commands.app import LedgerService
    from commands.views import Views
    from infra.store import parse_url

    service = LedgerService.open(parse_url(url), key_file)
    views = Views(service)
    try:
        yield views
    finally:
        views.close()
        service.close()


def rebuild(url: str, key_file: Path, *, drop_only: bool = False) -> dict[str, Any]:
    """drop + ensure + catch_up through the application's runner; timings and positions."""
    with opened(url, key_file) as views:
        runner = views.runner
        # drop_tables fails on a store whose projection tables were never created (no ledger_tracking)
        runner.ensure_tables()
        cpu0, t0 = _cpu(), time.perf_counter()
        runner.drop_tables()
        t1 = time.perf_counter()
        if drop_only:
            return {"drop_s": t1 - t0, "drop_cpu_s": _cpu() - cpu0}
        runner.ensure_tables()
        cpu1 = _cpu()
        done = runner.catch_up()
        t2 = time.perf_counter()
        return {
            "projections": [p.name for p in runner.projections],
            "events": done,
            "head": runner.head(),
            "position": min(runner.positions().values()),
            "drop_s": t1 - t0,
            "catchup_s": t2 - t1,
            "catchup_cpu_s": _cpu() - cpu1,
        }


def raw_name(table: str) -> str:
    return "raw_" + table.split("_", 1)[1]


def projected_tables(conn: Any) -> tuple[str, ...]:
    """The tables the raw baseline reproduces: the ledger's, and the resident states if present."""
    if isinstance(conn, sqlite3.Connection):
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STATE_TABLE,)).fetchone()
    else:
        found = conn.execute("SELECT to_regclass(%s)", (STATE_TABLE,)).fetchone()[0]
    return (*LEDGER_TABLES, STATE_TABLE) if found else LEDGER_TABLES


def table_counts(url: str, prefix: str = "") -> dict[str, int]:
    """Rows per projected table (`prefix="raw_"`: of the raw baseline's twins)."""
    def name(table: str) -> str:
        return raw_name(table) if prefix == "raw_" else table

    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(sqlite_path(url))
        try:
            return {t: conn.execute(f"SELECT count(*) FROM {name(t)}").fetchone()[0] for t in projected_tables(conn)}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as pg_conn:
        return {t: pg_conn.execute(f"SELECT count(*) FROM {name(t)}").fetchone()[0] for t in projected_tables(pg_conn)}  # type: ignore[index]


# ---- the raw baseline: plain sqlite3 + orjson, the same rows -----------------------------------
REVISION_COLUMNS = (
    "record_id", "seq", "community", "county", "township", "kind", "occurred_at", "occurred_utc", "occurred_on",
    "month", "minutes", "place", "note", "residents", "providers", "entered_on", "status", "revision", "late",
    "recorded_at", "recorded_by", "revised_at", "revised_by", "recorded_from", "recorded_to", "position_from",
    "position_to",
)
_R = {name: i for i, name in enumerate(REVISION_COLUMNS)}
_SEQ, _KIND, _AT, _UTC, _ON, _MONTH, _MIN = _R["seq"], _R["kind"], _R["occurred_at"], _R["occurred_utc"], _R["occurred_on"], _R["month"], _R["minutes"]
_STATUS, _REV, _LATE, _RAT, _ENTERED = _R["status"], _R["revision"], _R["late"], _R["recorded_at"], _R["entered_on"]
_TO, _PTO, _PFROM = _R["recorded_to"], _R["position_to"], _R["position_from"]
_INSERT_REVISION = f"INSERT INTO raw_revisions ({', '.join(REVISION_COLUMNS)}) VALUES ({', '.join('?' * len(REVISION_COLUMNS))})"
WEEK = timedelta(days=7)


def _utc_ms(moment: datetime) -> str:
    u = moment.astimezone(UTC)
    return f"{u:%Y-%m-%dT%H:%M:%S}.{u.microsecond // 1000:03d}Z"


def _late(occurred_at: str, recorded_at: str, entered_on: str | None) -> int:
    at = datetime.fromisoformat(occurred_at)
    if entered_on:
        return int(date.fromisoformat(entered_on) - at.date() > WEEK)
    return int(datetime.fromisoformat(recorded_at.replace("Z", "+00:00")) - at > WEEK)


def create_raw_tables(conn: sqlite3.Connection) -> tuple[str, ...]:
    """raw_* tables (and indexes) with the DDL of the real projection tables, which must exist."""
    drop_raw_tables(conn)
    tables = projected_tables(conn)
    ddl = conn.execute(
        f"SELECT sql FROM sqlite_master WHERE tbl_name IN ({','.join('?' * len(tables))}) "
        "AND sql IS NOT NULL ORDER BY type DESC",
        tables,
    ).fetchall()
    if len([1 for (sql,) in ddl if sql.startswith("CREATE TABLE")]) != len(tables):
        raise RuntimeError("the ledger tables do not exist: run the real rebuild first")
    for (sql,) in ddl:
        conn.execute(re.sub(r"\b(ledger|acct)_", "raw_", sql))
    conn.execute("CREATE TABLE raw_tracking (projection TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT NOT NULL)")
    conn.execute("INSERT INTO raw_tracking VALUES ('raw', 0, '')")
    return tables


def drop_raw_tables(conn: sqlite3.Connection) -> None:
    for name in (*LEDGER_TABLES, STATE_TABLE, "ledger_tracking"):
        conn.execute(f"DROP TABLE IF EXISTS {raw_name(name)}")


class _RawBatch:
    """One batch's row changes, as in projections.ledger but by hand: lists, tuples, plain SQL."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        communities: dict[str, tuple[str, str, str]],
        categories: dict[tuple[str, str], list[str]],
        states: dict[tuple[str, str], list[Any]] | None,
    ) -> None:
        self.conn = conn
        self.communities = communities
        self.categories = categories
        self.states = states  # current resident state rows (None: no accountability projection)
        self.new_states: dict[tuple[tuple[str, str], Any], list[Any]] = {}
        self.closed_states: list[tuple[Any, ...]] = []
        self.new_communities: list[tuple[Any, ...]] = []
        self.new_residents: dict[tuple[str, str], list[Any]] = {}
        self.resident_updates: list[tuple[Any, ...]] = []
        self.new_providers: dict[tuple[str, str], list[Any]] = {}
        self.provider_updates: list[tuple[Any, ...]] = []
        self.current: dict[str, tuple[list[Any], list[tuple[str, list[str]]]]] = {}
        self.inserted: dict[int, tuple[list[Any], list[tuple[str, list[str]]]]] = {}
        self.closed: list[tuple[Any, ...]] = []
        self.kind: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.resident: dict[tuple[str, str, str], int] = defaultdict(int)
        self.category_kind: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.category_resident: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.quality: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def count(self, row: list[Any], people: list[tuple[str, list[str]]], sign: int) -> None:
        q = self.quality[(row[2], row[_MONTH])]  # every record of the month, voided included; late or voided
        q[0] += sign
        q[1] += sign if (row[_LATE] or row[_STATUS] != "active") else 0
        if row[_STATUS] != "active":
            return
        c, m, k, n = row[2], row[_MONTH], row[_KIND], row[_MIN]
        t = self.kind[(c, m, k)]
        t[0] += sign
        t[1] += sign * n
        seen: set[str] = set()
        for resident, cats in people:
            self.resident[(c, m, resident)] += sign
            for g in cats:
                self.category_resident[(c, m, g, resident)] += sign
            seen.update(cats)
        for g in seen:
            t = self.category_kind[(c, m, g, k)]
            t[0] += sign
            t[1] += sign * n

    def insert(self, row: list[Any], people: list[tuple[str, list[str]]]) -> None:
        self.inserted[row[_PFROM]] = (row, people)
        self.current[row[0]] = (row, people)
        self.count(row, people, +1)

    def close(self, old: list[Any], people: list[tuple[str, list[str]]], at: str, position: int) -> None:
        self.count(old, people, -1)
        old[_TO], old[_PTO] = at, position
        if old[_PFROM] not in self.inserted:
            self.closed.append((at, position, old[_PFROM]))

    def revision(self, record_id: str) -> tuple[list[Any], list[tuple[str, list[str]]]]:
        found = self.current.get(record_id)
        if found is None:
            row = list(self.conn.execute(f"SELECT {', '.join(REVISION_COLUMNS)} FROM raw_revisions WHERE record_id = ? AND recorded_to IS NULL", (record_id,)).fetchone())
            people = [
                (r, [x for x in c.split(";") if x])
                for r, c in self.conn.execute("SELECT resident, categories FROM raw_revision_residents WHERE position_from = ?", (row[_PFROM],))
            ]
            found = self.current[record_id] = (row, people)
        return found

    def successor(self, record_id: str, at: str, actor: str, position: int) -> tuple[list[Any], list[Any], list[tuple[str, list[str]]]]:
        old, people = self.revision(record_id)
        row = list(old)
        row[_SEQ] = old[_SEQ] + 1
        row[_R["revised_at"]], row[_R["revised_by"]], row[_R["recorded_from"]] = at, actor, at
        row[_TO], row[_R["position_from"]], row[_PTO] = None, position, None
        return old, row, people

    def state(self, key: tuple[str, str], values: dict[int, Any], at: str, position: int) -> None:
        """A resident's new state row (`values` by column index), closing the current one if any."""
        if self.states is None:
            return
        old = self.states.get(key)
        if old is None:
            row = [*key, None, None, None, 1, at, None, position, None]
        else:
            old[7], old[9] = at, position
            if (key, old[5]) not in self.new_states:
                self.closed_states.append((at, position, *key, old[5]))
            row = [*old[:5], old[5] + 1, at, None, position, None]
        for i, value in values.items():
            row[i] = value
        self.states[key] = self.new_states[(key, row[5])] = row

    def apply(self, position: int, oid: str, topic: str, p: dict[str, Any], at: str) -> None:
        name = topic[len(TOPIC) :]
        if name == "ServiceRecorded":
            code, county, township = self.communities[oid]
            local = p["occurred_at"]
            occurred = datetime.fromisoformat(local)
            row = [
                p["record_id"], 1, code, county, township, p["kind"], local, _utc_ms(occurred), occurred.date().isoformat(),
                local[:7], p["minutes"], p["place"], None if p["note"] is None else orjson.dumps(p["note"]).decode(),
                ";".join(p["residents"]), ";".join(p["providers"]), p["entered_on"], "active", 1,
                _late(local, at, p["entered_on"]), at, p["actor"], at, p["actor"], at, None, position, None,
            ]
            self.insert(row, [(r, self.categories.get((code, r), [])) for r in p["residents"]])
        elif name == "ServiceCorrected":
            old, row, old_people = self.successor(p["record_id"], at, p["actor"], position)
            changes = p["changes"]
            for field in ("kind", "minutes", "place"):
                if field in changes:
                    row[_R[field]] = changes[field]
            if "note" in changes:
                row[_R["note"]] = None if changes["note"] is None else orjson.dumps(changes["note"]).decode()
            if "occurred_at" in changes:
                local = changes["occurred_at"]
                moment = datetime.fromisoformat(local)
                row[_AT], row[_UTC], row[_ON], row[_MONTH] = local, _utc_ms(moment), moment.date().isoformat(), local[:7]
            if "residents" in changes:
                row[_R["residents"]] = ";".join(changes["residents"])
            # the residents under their categories as known when the correction is recorded
            people = [(r, self.categories.get((row[2], r), [])) for r in row[_R["residents"]].split(";") if r]
            if "providers" in changes:
                row[_R["providers"]] = ";".join(changes["providers"])
            row[_REV] = old[_REV] + 1
            row[_LATE] = _late(row[_AT], row[_RAT], row[_ENTERED])
            self.close(old, old_people, at, position)
            self.insert(row, people)
        elif name == "ServiceVoided":
            old, row, people = self.successor(p["record_id"], at, p["actor"], position)
            row[_STATUS] = "voided"
            self.close(old, people, at, position)
            self.insert(row, people)
        elif name == "Established":
            self.communities[oid] = (p["code"], p["county"], p["township"])
            self.new_communities.append(
                (p["code"], str(UUID(oid)), p["name"], p["county"], p["township"], p["village"], ";".join(p["natural_villages"]), p["established_on"], position, at)
            )
        elif name == "ResidentEnrolled":
            code = self.communities[oid][0]
            self.categories[(code, p["code"])] = list(p["categories"])
            self.new_residents[(code, p["code"])] = [
                code, p["code"], orjson.dumps(p["name"]).decode(),
                None if p["birth_date"] is None else orjson.dumps(p["birth_date"]).decode(), p["gender"],
                ";".join(p["categories"]), p["grid"], p["household"], p["enrolled_on"], None, None,
            ]
            self.state((code, p["code"]), {2: p["enrolled_on"], 4: ";".join(p["categories"])}, at, position)
        elif name == "ResidentUpdated":
            code = self.communities[oid][0]
            categories = None if p["categories"] is None else ";".join(p["categories"])
            if p["categories"] is not None:
                self.categories[(code, p["code"])] = list(p["categories"])
                self.state((code, p["code"]), {4: categories}, at, position)
            new = self.new_residents.get((code, p["code"]))
            if new is not None:
                for i, value in ((5, categories), (6, p["grid"]), (7, p["household"])):
                    if value is not None:
                        new[i] = value
            else:
                self.resident_updates.append(("u", categories, p["grid"], p["household"], code, p["code"]))
        elif name == "ResidentDeparted":
            code = self.communities[oid][0]
            self.state((code, p["code"]), {3: p["on"]}, at, position)
            new = self.new_residents.get((code, p["code"]))
            if new is not None:
                new[9], new[10] = p["on"], p["reason"]
            else:
                self.resident_updates.append(("d", p["on"], p["reason"], code, p["code"]))
        elif name == "ProviderRegistered":
            code = self.communities[oid][0]
            self.new_providers[(code, p["code"])] = [code, p["code"], p["name"], p["role"], p["team"], p["registered_on"], None]
        elif name == "ProviderRetired":
            code = self.communities[oid][0]
            new = self.new_providers.get((code, p["code"]))
            if new is not None:
                new[6] = p["on"]
            else:
                self.provider_updates.append((p["on"], code, p["code"]))

    def write(self) -> None:
        x = self.conn.executemany
        if self.new_communities:
            x("INSERT INTO raw_communities (code, community_id, name, county, township, village, natural_villages, established_on, established_position, established_at) VALUES (?,?,?,?,?,?,?,?,?,?)", self.new_communities)
        if self.new_residents:
            x("INSERT INTO raw_residents (community, code, name, birth_date, gender, categories, grid, household, enrolled_on, departed_on, departure_reason) VALUES (?,?,?,?,?,?,?,?,?,?,?)", list(self.new_residents.values()))
        for u in self.resident_updates:
            if u[0] == "u":
                self.conn.execute("UPDATE raw_residents SET categories = coalesce(?, categories), grid = coalesce(?, grid), household = coalesce(?, household) WHERE community = ? AND code = ?", u[1:])
            else:
                self.conn.execute("UPDATE raw_residents SET departed_on = ?, departure_reason = ? WHERE community = ? AND code = ?", u[1:])
        if self.new_providers:
            x("INSERT INTO raw_providers (community, code, name, role, team, registered_on, retired_on) VALUES (?,?,?,?,?,?,?)", list(self.new_providers.values()))
        for u in self.provider_updates:
            self.conn.execute("UPDATE raw_providers SET retired_on = ? WHERE community = ? AND code = ?", u)
        if self.closed:
            x("UPDATE raw_revisions SET recorded_to = ?, position_to = ? WHERE position_from = ?", self.closed)
        if self.inserted:
            x(_INSERT_REVISION, [row for row, _ in self.inserted.values()])
            people_rows, category_rows = [], []
            for position, (_row, people) in self.inserted.items():
                seen: set[str] = set()
                for resident, cats in people:
                    people_rows.append((position, resident, ";".join(cats)))
                    seen.update(cats)
                category_rows += [(position, g) for g in sorted(seen)]
            x("INSERT INTO raw_revision_residents (position_from, resident, categories) VALUES (?,?,?)", people_rows)
            if category_rows:
                x("INSERT INTO raw_revision_categories (position_from, category) VALUES (?,?)", category_rows)
        if self.closed_states:
            x("UPDATE raw_resident_states SET recorded_to = ?, position_to = ? WHERE community = ? AND code = ? AND seq = ?", self.closed_states)
        if self.new_states:
            x(f"INSERT INTO raw_resident_states ({', '.join(STATE_COLUMNS)}) VALUES ({', '.join('?' * len(STATE_COLUMNS))})", list(self.new_states.values()))
        rows: list[tuple[Any, ...]] = [(*key, r, n) for key, (r, n) in self.kind.items() if r or n]
        if rows:
            x("INSERT INTO raw_month_kind (community, month, kind, records, minutes) VALUES (?,?,?,?,?) ON CONFLICT (community, month, kind) DO UPDATE SET records = records + excluded.records, minutes = minutes + excluded.minutes", rows)
        rows = [(*key, r) for key, r in self.resident.items() if r]
        if rows:
            x("INSERT INTO raw_month_resident (community, month, resident, records) VALUES (?,?,?,?) ON CONFLICT (community, month, resident) DO UPDATE SET records = records + excluded.records", rows)
        rows = [(*key, r, n) for key, (r, n) in self.category_kind.items() if r or n]
        if rows:
            x("INSERT INTO raw_month_category_kind (community, month, category, kind, records, minutes) VALUES (?,?,?,?,?,?) ON CONFLICT (community, month, category, kind) DO UPDATE SET records = records + excluded.records, minutes = minutes + excluded.minutes", rows)
        rows = [(*key, r) for key, r in self.category_resident.items() if r]
        if rows:
            x("INSERT INTO raw_month_category_resident (community, month, category, resident, records) VALUES (?,?,?,?,?) ON CONFLICT (community, month, category, resident) DO UPDATE SET records = records + excluded.records", rows)
        rows = [(*key, r, f) for key, (r, f) in self.quality.items() if r or f]
        if rows:
            x("INSERT INTO raw_month_quality (community, month, records, flawed) VALUES (?,?,?,?) ON CONFLICT (community, month) DO UPDATE SET records = records + excluded.records, flawed = flawed + excluded.flawed", rows)
        # totals brought down to zero are deleted
        for table, columns, deltas in (
            ("raw_month_quality", ("community", "month"), {k: v[0] for k, v in self.quality.items()}),
            ("raw_month_kind", ("community", "month", "kind"), {k: v[0] for k, v in self.kind.items()}),
            ("raw_month_resident", ("community", "month", "resident"), self.resident),
            ("raw_month_category_kind", ("community", "month", "category", "kind"), {k: v[0] for k, v in self.category_kind.items()}),
            ("raw_month_category_resident", ("community", "month", "category", "resident"), self.category_resident),
        ):
            gone = [key for key, r in deltas.items() if r < 0]
            if gone:
                x(f"DELETE FROM {table} WHERE {' AND '.join(c + ' = ?' for c in columns)} AND records = 0", gone)


def raw_rebuild(path: Path, *, keep: bool = False) -> dict[str, Any]:
    """The raw baseline over the SQLite store at `path`; drops its tables afterwards unless `keep`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 30000")
    tables = create_raw_tables(conn)
    communities: dict[str, tuple[str, str, str]] = {}
    categories: dict[tuple[str, str], list[str]] = {}
    states: dict[tuple[str, str], list[Any]] | None = {} if STATE_TABLE in tables else None
    done = 0
    cpu0, t0 = _cpu(), time.perf_counter()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        position = conn.execute("SELECT position FROM raw_tracking").fetchone()[0]
        rows = conn.execute("SELECT rowid, * FROM stored_events WHERE rowid > ? ORDER BY rowid LIMIT ?", (position, BATCH)).fetchall()
        if not rows:
            conn.execute("COMMIT")
            break
        commits = conn.execute(
            "SELECT first_position, last_position, recorded_at FROM taizhang_commits "
            "WHERE last_position >= ? AND first_position <= ? ORDER BY first_position",
            (rows[0][0], rows[-1][0]),
        ).fetchall()
        batch = _RawBatch(conn, communities, categories, states)
        index = 0
        for rowid, originator_id, _version, topic, state in rows:
            while commits[index][1] < rowid:
                index += 1
            batch.apply(rowid, originator_id, topic, orjson.loads(state), commits[index][2])
        batch.write()
        conn.execute("UPDATE raw_tracking SET position = ?, updated_at = ?", (rows[-1][0], _utc_ms(datetime.now(UTC))))
        conn.execute("COMMIT")
        done += len(rows)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - cpu0
    counts = {t: conn.execute(f"SELECT count(*) FROM {raw_name(t)}").fetchone()[0] for t in tables}
    if not keep:
        drop_raw_tables(conn)
    conn.close()
    return {"events": done, "seconds": elapsed, "cpu_s": cpu, "counts": counts}


# ---- queries ------------------------------------------------------------------------------------
def _stats(samples: list[float], cpu: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"median_ms": statistics.median(ordered), "p95_ms": p95, "cpu_median_ms": statistics.median(cpu)}


def query_latency(url: str, key_file: Path, *, community: str, runs: int = 30, cli: bool = True) -> dict[str, Any]:
    """Median/p95 of the ledger queries on one reader connection, and each once through the CLI."""
    from projections import queries

    with opened(url, key_file) as views:
        views.prepare()
        views.runner.catch_up()  # on PostgreSQL prepare() does not (workers do): the views must be current
        cases: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
            "entries": lambda conn: queries.entries(
                conn, queries.Filters(unit=queries.Unit("community", community=community), date_from=JANUARY[0], date_to=JANUARY[1])
            ),
            "summary_quarter": lambda conn: queries.summary(conn, queries.Filters(date_from=QUARTER[0], date_to=QUARTER[1]), by="township"),
            "summary_month": lambda conn: queries.summary(conn, queries.Filters(date_from=JANUARY[0], date_to=JANUARY[1]), by="township"),
        }
        out: dict[str, Any] = {}
        with views.read() as conn:
            for name, run in cases.items():
                rows = run(conn)  # warm-up
                samples, cpu = [], []
                for _ in range(runs):
                    c0, t0 = time.process_time(), time.perf_counter()
                    run(conn)
                    samples.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                out[name] = {
                    "rows": len(rows),
                    "records": sum(r.get("records", 1) for r in rows),
                    **_stats(samples, cpu),
                }
    if cli:
        args = {
            "entries": ["ledger", "entries", "--community", community, "--from", str(JANUARY[0]), "--to", str(JANUARY[1])],
            "summary_quarter": ["ledger", "summary", "--by", "township", "--from", str(QUARTER[0]), "--to", str(QUARTER[1])],
            "summary_month": ["ledger", "summary", "--by", "township", "--from", str(JANUARY[0]), "--to", str(JANUARY[1])],
        }
        for name, command in args.items():
            ms, printed = cli_once(url, key_file, [*command, "--format", "json"])
            out[name]["cli_ms"] = ms
            out[name]["cli_rows"] = printed
    return out


def cli_once(url: str, key_file: Path, args: list[str]) -> tuple[float, int]:
    from click.testing import CliRunner

    from commands.cli import cli

    unset = {name: None for name in ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ")}
    t0 = time.perf_counter()
    result = CliRunner().invoke(cli, ["--db", url, "--key-file", str(key_file), *args], env=unset)
    ms = (time.perf_counter() - t0) * 1000
    if result.exit_code != 0:
        raise RuntimeError(f"taizhang {' '.join(args)} exited {result.exit_code}: {result.output[-500:]}")
    return ms, len(json.loads(result.stdout))


# ---- fresh processes ----------------------------------------------------------------------------
def child_main(mode: str, url: str, key_file: Path) -> dict[str, Any]:
    before = _proc_status()
    if mode == "rebuild":
        result = rebuild(url, key_file)
    elif mode == "drop":
        result = rebuild(url, key_file, drop_only=True)
    elif mode == "raw":
        result = raw_rebuild(sqlite_path(url))
    else:
        raise SystemExit(f"unknown child mode {mode}")
    after = _proc_status()
    result.update(
        rss_before_kb=before.get("VmRSS", 0),
        peak_kb=after.get("VmHWM", 0),
        maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )
    return result


def in_child(mode: str, url: str, key_file: Path) -> dict[str, Any]:
    """Run `mode` in a fresh interpreter (so its peak RSS is its own); returns its JSON result."""
    command = [sys.executable, "-m", "tests.perf.bench_ledger", "--child", mode, "--url", url, "--key-file", str(key_file)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} child failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def profile_rebuild(url: str, key_file: Path, out: Path | None = None) -> str:
    """cProfile of one rebuild: top 15 functions by cumulative and by internal time."""
    profiler = cProfile.Profile()
    profiler.enable()
    result = rebuild(url, key_file)
    profiler.disable()
    if out is not None:
        profiler.dump_stats(str(out))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs()
    text.write(f"rebuild of {result['events']:,} events under cProfile: {result['drop_s'] + result['catchup_s']:.1f} s\n")
    for order in ("cumulative", "tottime"):
        text.write(f"\n-- top 15 by {order} --\n")
        stats.sort_stats(order).print_stats(15)
    return re.sub(r"\n{3,}", "\n\n", text.getvalue())


# ---- stores ------------------------------------------------------------------------------------
WRITE_PATH = ("domain", "commands/app.py", "commands/models.py", "infra/codec.py", "infra/crypto.py", "infra/store.py",
              "infra/sqlitestore.py", "infra/pgstore.py", "tests/perf/citygen.py", "commands/demo.py")


def write_path_digest() -> str:
    """A digest of the code that decides what a generated store holds (kept stores are reused only if equal)."""
    import hashlib

    digest = hashlib.sha256()
    for name in WRITE_PATH:
        path = ROOT / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if file.exists():
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def code_version() -> str:
    """The commit the benchmark ran on, and the tracked files changed since (other engineers edit concurrently)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    return head + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")

def reference_community(seed: int, shape: citygen.Shape) -> str:
    """A community of the plan established before the year, with an average level of activity."""
    sites = citygen.plan_city(random.Random(seed), shape)
    return min((s for s in sites if s.established_day < 0), key=lambda s: (abs(s.weight - 1.0), s.code)).code


def sqlite_backup(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def store_info(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        events = conn.execute("SELECT count(*) FROM stored_events").fetchone()[0]
        snapshots, snapshot_bytes = conn.execute("SELECT count(*), coalesce(sum(length(state)), 0) FROM stored_snapshots").fetchone()
    finally:
        conn.close()
    return {"events": events, "snapshots": snapshots, "snapshot_mb": snapshot_bytes / 1e6, "file_mb": path.stat().st_size / 1e6}


def build_sqlite_stores(folder: Path, key_file: Path, *, events: int, small: int, seed: int, shape: citygen.Shape) -> dict[str, Any]:
    """city-<small>.db (a copy taken at `small`) and city-<events>.db (the same store, extended)."""
    manifest_path = folder / "citygen.json"
    wanted = {"events": events, "small": small, "seed": seed, "shape": asdict(shape), "write_path": write_path_digest()}
    small_db, full_db = folder / f"city-{small}.db", folder / f"city-{events}.db"
    if manifest_path.exists() and small_db.exists() and full_db.exists() and key_file.exists():
        manifest = json.loads(manifest_path.read_text())
        if all(manifest.get(k) == v for k, v in wanted.items()):
            _log(f"bench: reusing the stores in {folder}")
            return manifest
    for path in (small_db, full_db, manifest_path):
        path.unlink(missing_ok=True)
    service = citygen.open_store(f"sqlite:///{full_db}", key_file)
    try:
        generator = citygen.CityGenerator(service, events=events, seed=seed, shape=shape, progress=_log)
        first = generator.run(small).as_dict()
        sqlite_backup(full_db, small_db)
        second = generator.run(events).as_dict()
    finally:
        service.close()
    manifest = {
        **wanted,
        "small_stats": first,
        "full_stats": second,
        "residents": sum(len(s.residents) for s in generator.sites),
        "providers": sum(len(s.providers) for s in generator.sites),
        "communities": len(generator.sites),
        "townships": len({(s.county, s.township) for s in generator.sites}),
        "counties": len({s.county for s in generator.sites}),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def new_pg_database(admin_url: str) -> str:
    import uuid

    import psycopg

    name = "bench_ledger_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# ---- the report ---------------------------------------------------------------------------------
def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def measure_sqlite(path: Path, key_file: Path, community: str, runs: int) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    _log(f"bench: rebuild of {path.name} in a fresh process …")
    real = in_child("rebuild", url, key_file)
    _log(f"bench:   {real['events']:,} events in {real['catchup_s']:.1f} s; queries …")
    latency = query_latency(url, key_file, community=community, runs=runs)
    _log("bench:   raw baseline in a fresh process …")
    raw = in_child("raw", url, key_file)
    _log(f"bench:   raw {raw['events']:,} events in {raw['seconds']:.1f} s; drop of the full projection …")
    drop = in_child("drop", url, key_file)
    return {"real": real, "raw": raw, "drop": drop, "queries": latency, "store": store_info(path)}


def report(args: argparse.Namespace, manifest: dict[str, Any], results: dict[str, dict[str, Any]], pg: dict[str, Any] | None, community: str, command: str, generation: dict[str, float]) -> str:
    small, full = args.small, args.events
    lines: list[str] = []
    w = lines.append
    w(f"### Ledger projection at city scale ({date.today().isoformat()})")
    w("")
    w(f"Command: `{command}`")
    w("")
    w(f"Code: {results['code']}")
    w("")
    w(
        f"City: {manifest['communities']} communities ({manifest['counties']} counties x {manifest['townships'] // max(manifest['counties'], 1)} townships "
        f"x {manifest['communities'] // max(manifest['townships'], 1)}), {manifest['residents']:,} residents, {manifest['providers']:,} providers; "
        f"a year (2025) planned at {full:,} service events, seed {args.seed}. "
        f"Small store = the first {small:,} service events ({manifest['small_stats']['recorded']:,} recorded, "
        f"{manifest['small_stats']['corrected']:,} corrected, {manifest['small_stats']['voided']:,} voided; up to {manifest['small_stats']['last_day']}); "
        f"full store = the same store extended to {manifest['full_stats']['service_events']:,} ({manifest['full_stats']['recorded']:,} recorded, "
        f"{manifest['full_stats']['corrected']:,} corrected, {manifest['full_stats']['voided']:,} voided; up to {manifest['full_stats']['last_day']}). "
        "Log events include the directory events (communities, enrolments, registrations, departures …)."
    )
    if generation:
        w("")
        w(
            "Generation through the bulk path (save_many, ~20k events per transaction): "
            + "; ".join(f"{k} {v:,.0f} s" for k, v in generation.items())
        )
    w("")
    w(f"Machine: {os.cpu_count()} CPUs, load average at the end {os.getloadavg()[0]:.1f} (shared: wall times are noisy; CPU seconds beside them).")
    w("")
    sizes = [(f"{small:,}", results["small"]), (f"{full:,}", results["full"])]

    projections = ", ".join(results["small"]["real"]["projections"])
    raw_tables = len(results["small"]["raw"]["counts"])
    w(
        f"**Full rebuild, SQLite** (drop + catch-up of all projections via `Views(service).runner`: {projections}; fresh process; "
        f"raw = plain sqlite3 + orjson writing the same rows into {raw_tables} tables of the same shape)"
    )
    w("")
    w("| service events | log events | store MB (snapshots MB) | drop s | catch-up s (CPU s) | rebuild events/s | raw s (CPU s) | raw events/s | rebuild / raw | catch-up / raw | CPU raw / catch-up | target ≥ 0.5 |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, r in sizes:
        real, raw, drop, store = r["real"], r["raw"], r["drop"], r["store"]
        total = drop["drop_s"] + real["catchup_s"]
        rebuild_rate = real["events"] / total
        raw_rate = raw["events"] / raw["seconds"]
        ratio = rebuild_rate / raw_rate
        w(
            f"| {label} | {real['events']:,} | {store['file_mb']:,.0f} ({store['snapshot_mb']:,.0f}) | {drop['drop_s']:.1f} | {real['catchup_s']:.1f} ({real['catchup_cpu_s']:.1f}) "
            f"| {rebuild_rate:,.0f} | {raw['seconds']:.1f} ({raw['cpu_s']:.1f}) | {raw_rate:,.0f} | {ratio:.2f} "
            f"| {real['events'] / real['catchup_s'] / raw_rate:.2f} | {raw['cpu_s'] / real['catchup_cpu_s']:.2f} | {_met(ratio >= 0.5)} |"
        )
    w("")
    w("**Peak memory of a full rebuild** (fresh process, VmHWM; RSS before = after imports and opening the store)")
    w("")
    w("| service events | log events | RSS before MB | rebuild peak MB | raw baseline peak MB |")
    w("|---:|---:|---:|---:|---:|")
    for label, r in sizes:
        w(f"| {label} | {r['real']['events']:,} | {r['real']['rss_before_kb'] / 1024:,.0f} | {r['real']['peak_kb'] / 1024:,.0f} | {r['raw']['peak_kb'] / 1024:,.0f} |")
    mem_ratio = results["full"]["real"]["peak_kb"] / results["small"]["real"]["peak_kb"]
    w(f"| ratio full / small | | | **{mem_ratio:.2f}** (target ≤ 1.3: {_met(mem_ratio <= 1.3)}) | {results['full']['raw']['peak_kb'] / results['small']['raw']['peak_kb']:.2f} |")
    w("")
    w(f"**Query latency, SQLite** (ms over {args.runs} runs on one reader connection, `projections.queries`; CLI = one `taizhang … --format json` through CliRunner, store already projected)")
    w("")
    w("| query | rows small / full | records small / full | median small | p95 small | median full | p95 full | full / small (median) | CPU median small / full | full / small (CPU) | target ≤ 1.5 | CLI small | CLI full |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    names = {
        "entries": f"`ledger entries --community {community}` January",
        "summary_quarter": "`ledger summary --by township` Q1",
        "summary_month": "`ledger summary --by township` January",
    }
    for key, title in names.items():
        a, b = results["small"]["queries"][key], results["full"]["queries"][key]
        ratio = b["median_ms"] / a["median_ms"]
        cpu_ratio = b["cpu_median_ms"] / a["cpu_median_ms"]
        note = "" if key != "summary_quarter" else " (Q1 holds ~2.4x more records in the full store)"
        w(
            f"| {title} | {a['rows']:,} / {b['rows']:,} | {a['records']:,} / {b['records']:,} | {a['median_ms']:.2f} | {a['p95_ms']:.2f} "
            f"| {b['median_ms']:.2f} | {b['p95_ms']:.2f} | {ratio:.2f} | {a['cpu_median_ms']:.2f} / {b['cpu_median_ms']:.2f} | {cpu_ratio:.2f} "
            f"| {_met(ratio <= 1.5)}{note} | {a['cli_ms']:.0f} | {b['cli_ms']:.0f} |"
        )
    if pg is not None and "error" in pg:
        w("")
        w(f"**PostgreSQL**: the measurement failed: {pg['error']}")
    elif pg is not None:
        w("")
        w(
            f"**PostgreSQL** ({pg['server']}): the first {pg['service_events']:,} service events of the same year (same seed and density) "
            f"generated into a new database in {pg['generation_s']:,.0f} s (transactions of {citygen.PG_TRANSACTION_EVENTS:,} events: larger ones hang in psycopg's pipeline), "
            "then rebuilt in a fresh process. CPU = the Python process only (not the server)."
        )
        w("")
        w("| store | service events | log events | catch-up s (CPU s) | drop s | rebuild events/s |")
        w("|---|---:|---:|---:|---:|---:|")
        real = pg["real"]
        w(
            f"| PostgreSQL | {pg['service_events']:,} | {real['events']:,} | {real['catchup_s']:.1f} ({real['catchup_cpu_s']:.1f}) | {pg['drop']['drop_s']:.1f} "
            f"| {real['events'] / (real['catchup_s'] + pg['drop']['drop_s']):,.0f} |"
        )
        s = results["small"]
        if pg["service_events"] == small:
            w(
                f"| SQLite (small store above) | {small:,} | {s['real']['events']:,} | {s['real']['catchup_s']:.1f} ({s['real']['catchup_cpu_s']:.1f}) | {s['drop']['drop_s']:.1f} "
                f"| {s['real']['events'] / (s['real']['catchup_s'] + s['drop']['drop_s']):,.0f} |"
            )
        w("")
        w("| PostgreSQL query (as left by the rebuild, no VACUUM ANALYZE) | rows | median ms | p95 ms | CLI ms |")
        w("|---|---:|---:|---:|---:|")
        for key, title in names.items():
            q = pg["queries"][key]
            w(f"| {title} | {q['rows']:,} | {q['median_ms']:.2f} | {q['p95_ms']:.2f} | {q['cli_ms']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="service events in the year (the full store)")
    parser.add_argument("--small", type=int, help="service events in the small store (default events/10)")
    parser.add_argument("--pg-url", help="admin URL of a PostgreSQL server (a database is created and dropped)")
    parser.add_argument("--pg-events", type=int, help="service events generated into PostgreSQL (default --small)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the generated SQLite stores in this folder")
    parser.add_argument("--runs", type=int, default=30, help="runs per query")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of a rebuild of the small store")
    parser.add_argument("--child", choices=["rebuild", "drop", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(args.child, args.url, args.key_file)))
        return 0
    args.small = args.small or max(1, args.events // 10)
    if args.small >= args.events:
        parser.error("--small must be less than --events")
    shape = citygen.CITY
    command = "python -m tests.perf.bench_ledger " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    code_at_start = code_version()
    tmp = None
    if args.keep:
        folder = args.keep
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="bench_ledger_")
        folder = Path(tmp)
    try:
        key_file = folder / "city.key"
        t0 = time.perf_counter()
        manifest = build_sqlite_stores(folder, key_file, events=args.events, small=args.small, seed=args.seed, shape=shape)
        reused = "" if time.perf_counter() - t0 > 1 else " (kept stores reused: when they were generated)"
        generation = {
            f"first {args.small:,}{reused}": manifest["small_stats"]["seconds"],
            f"extension to {args.events:,}": manifest["full_stats"]["seconds"] - manifest["small_stats"]["seconds"],
        }
        community = reference_community(args.seed, shape)
        results: dict[str, Any] = {
            "small": measure_sqlite(folder / f"city-{args.small}.db", key_file, community, args.runs),
            "full": measure_sqlite(folder / f"city-{args.events}.db", key_file, community, args.runs),
        }
        pg = None
        if args.pg_url:
            try:
                pg = measure_postgres(args, key_file, shape, community)
            except Exception as e:  # keep the SQLite results
                _log(f"bench: the PostgreSQL measurement failed: {type(e).__name__}: {e}")
                pg = {"error": f"{type(e).__name__}: {e}"}
        profile = None
        if args.profile:
            _log("bench: profiling a rebuild of the small store …")
            profile = profile_rebuild(f"sqlite:///{folder / f'city-{args.small}.db'}", key_file, folder / "rebuild.prof")
        code_at_end = code_version()
        results["code"] = code_at_start if code_at_start == code_at_end else f"{code_at_start} at the start, {code_at_end} at the end (it changed during the run)"
        print(report(args, manifest, results, pg, community, command, generation))
        if profile:
            print("\n```text\n" + profile.strip() + "\n```")
        print(f"\n(total run time {time.perf_counter() - started:,.0f} s)")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def measure_postgres(args: argparse.Namespace, key_file: Path, shape: citygen.Shape, community: str) -> dict[str, Any]:
    import psycopg

    count = args.pg_events or args.small
    url = new_pg_database(args.pg_url)
    try:
        _log(f"bench: generating {count:,} service events into PostgreSQL …")
        service = citygen.open_store(url, key_file)
        try:
            stats = citygen.CityGenerator(service, events=args.events, seed=args.seed, shape=shape, progress=_log).run(count)
        finally:
            service.close()
        _log("bench: PostgreSQL rebuild in a fresh process …")
        real = in_child("rebuild", url, key_file)
        latency = query_latency(url, key_file, community=community, runs=args.runs)
        drop = in_child("drop", url, key_file)
        with psycopg.connect(args.pg_url) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        return {
            "service_events": stats.service_events,
            "generation_s": stats.seconds,
            "real": real,
            "drop": drop,
            "queries": latency,
            "server": f"PostgreSQL {server}",
        }
    finally:
        drop_pg_database(args.pg_url, url)


if __name__ == "__main__":
    sys.exit(main())
