"""Fixtures for the end-to-end tests: the CLI as a user runs it, on both backends.

- `Cli` invokes `commands.cli.cli` in-process through click's CliRunner with
  `--db`, `--key-file` and (for writes) `--actor`, with every TAIZHANG_*
  variable of the caller's environment unset.
- `store_counts` / `store_tables` look at the store directly (sqlite3 or psycopg)
  so a test can prove that a refused or malformed command wrote nothing, and that
  a missing store was not created.
- `ledger` is ONE initialised store per backend per module with a known history
  (departed resident, retired provider, active and voided records, two
  communities). Only commands that must write nothing run against it; each such
  test compares the store's counts before and after, so a command that did write
  fails its own test.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from commands.cli import cli
from tests.conftest import drop_pg_database, make_pg_database

ACTOR = "clerk01"
TAIZHANG_VARS = (
    "TAIZHANG_DB",
    "TAIZHANG_ACTOR",
    "TAIZHANG_LANG",
    "TAIZHANG_KEY_FILE",
    "TAIZHANG_TZ",
    "TAIZHANG_DEPARTMENTS",
)

# The events table: eventsourcing's SQLite module calls it stored_events, its
# PostgreSQL module names it after the application (`taizhang_events`).
EVENTS_TABLE = {"sqlite": "stored_events", "postgres": "taizhang_events"}
SIDE_TABLES = ("record_state", "data_keys", "taizhang_commits")


def backend_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite:///") else "postgres"


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


# ---- looking at the store directly ---------------------------------------------------------
def store_tables(url: str) -> set[str]:
    """The tables in the store; empty when the SQLite file or the schema does not exist."""
    if backend_of(url) == "sqlite":
        path = sqlite_path(url)
        if not path.exists():
            return set()
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def store_counts(url: str) -> dict[str, int]:
    """Rows in the events table and in every table a write touches with its events."""
    tables = (EVENTS_TABLE[backend_of(url)], *SIDE_TABLES)
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


def event_count(url: str) -> int:
    return store_counts(url)[EVENTS_TABLE[backend_of(url)]]


def events_in(counts: dict[str, int], url: str) -> int:
    """The events-table entry of a `store_counts` result."""
    return counts[EVENTS_TABLE[backend_of(url)]]


# ---- running the CLI -----------------------------------------------------------------------
@dataclass
class Cli:
    """`cli("community", "list")` runs `taizhang --db URL --key-file KEY --actor clerk01 community list`."""

    url: str
    key: Path
    runner: CliRunner = field(default_factory=CliRunner)

    def __call__(
        self,
        *args: str,
        actor: str | None = ACTOR,
        lang: str | None = None,
        env: Mapping[str, str | None] | None = None,
        db: str | None = None,
        key: Path | None = None,
    ) -> Result:
        argv = ["--db", db or self.url, "--key-file", str(key or self.key)]
        if actor is not None:
            argv += ["--actor", actor]
        if lang is not None:
            argv += ["--lang", lang]
        if args[:1] == ("init",) and backend_of(db or self.url) == "postgres" and "--admin" not in args:
            args = (*args, "--no-access-control")  # PostgreSQL requires --admin otherwise
        clean: dict[str, str | None] = {name: None for name in TAIZHANG_VARS}
        clean.update(env or {})
        return self.runner.invoke(cli, [*argv, *args], env=clean, catch_exceptions=True)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """Run a command that must succeed."""
        result = self(*args, **kwargs)
        assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        assert result.exception is None, result.exc_info
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run a command that must succeed with `--format json`; the parsed document."""
        return orjson.loads(self.ok(*args, "--format", "json", **kwargs).stdout)

    def communities(self, fmt: str = "json", **kwargs: Any) -> Any:
        """`community list` once the views are current (PostgreSQL views are kept by
        `projections run`; a query there reads them as they stand)."""
        self.ok("projections", "run", **kwargs)
        result = self.ok("community", "list", "--format", fmt, **kwargs)
        assert result.stderr == "", result.stderr  # no note that the views lag behind
        return orjson.loads(result.stdout) if fmt == "json" else result.stdout


def error_line(result: Result, code: int, *needles: str, prefix: str = "Error: ") -> str:
    """Assert the contract for a failed command; returns its one stderr line."""
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}\n{result.stdout}\n{result.stderr}"
    # The exception that ended the run is the SystemExit of the exit code: nothing escaped.
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    assert result.stdout == "", "a failed command prints nothing on stdout"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    line = lines[0]
    assert line.startswith(prefix), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    """Where a test's key file goes; does not exist yet (init creates it)."""
    return tmp_path / "keys" / "taizhang.key"


@pytest.fixture
def run(db_url: str, key_path: Path) -> Cli:
    """The CLI on a store that does not exist yet (`db_url`), both backends."""
    return Cli(db_url, key_path)


@pytest.fixture
def store(run: Cli) -> Cli:
    """The CLI on a freshly initialised, empty store."""
    run.ok("init")
    return run


COMMUNITY = {
    "code": "HZ-001",
    "name": "石门新型农村社区",
    "county": "八步区",
    "township": "贺街镇",
    "village": "石门村",
    "natural_villages": ["大岭", "新塘"],
    "established_on": "2026-01-01",
}
# A second community with ASCII names of other widths, so a table mixes both.
COMMUNITY_2 = {
    "code": "QT-2",
    "name": "Qiaotou Community",
    "county": "Babu District",
    "township": "Hejie",
    "village": "Qiaotou",
    "natural_villages": [],
    "established_on": "2026-01-01",
}


def establish_args(c: Mapping[str, Any]) -> list[str]:
    args = ["community", "establish", c["code"], "--name", c["name"], "--county", c["county"]]
    args += ["--township", c["township"], "--village", c["village"], "--established-on", c["established_on"]]
    for nv in c["natural_villages"]:
        args += ["--natural-village", nv]
    return args


AT = "2026-03-05 09:30"


def record_args(community: str = "HZ-001", *extra: str, resident: str = "R1", provider: str = "P1") -> list[str]:
    return [
        "service", "record", community, "--kind", "life_care", "--resident", resident,
        "--provider", provider, "--at", AT, "--minutes", "45", *extra,
    ]  # fmt: skip


@dataclass
class Ledger:
    """A store with a known history; run only commands that must not write against it."""

    cli: Cli
    active: str  # a record in HZ-001, active: R1, P1, AT, 45 minutes, life_care
    voided: str  # a voided record in HZ-001
    missing: str  # a well-formed record id that is nowhere

    @property
    def url(self) -> str:
        return self.cli.url

    def counts(self) -> dict[str, int]:
        return store_counts(self.url)


def build_ledger(cli: Cli) -> Ledger:
    active, voided = str(uuid.uuid4()), str(uuid.uuid4())
    cli.ok("init")
    cli.ok(*establish_args(COMMUNITY))
    cli.ok(*establish_args(COMMUNITY_2))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英", "--birth-date", "1948-05-02", "--gender", "女",
           "--category", "留守老人")  # fmt: skip
    cli.ok("resident", "enroll", "HZ-001", "R2", "--name", "王小明", "--category", "left_behind_child")
    cli.ok("resident", "enroll", "HZ-001", "R3", "--name", "赵大爷")
    cli.ok("resident", "depart", "HZ-001", "R3", "--reason", "moved", "--on", "2026-02-01")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    cli.ok("provider", "register", "HZ-001", "P2", "--name", "陈志强", "--role", "volunteer")
    cli.ok("provider", "register", "HZ-001", "P3", "--name", "周老师", "--role", "social-worker")
    cli.ok("provider", "retire", "HZ-001", "P3", "--on", "2026-02-01")
    cli.ok("resident", "enroll", "QT-2", "R1", "--name", "Li Hua")
    cli.ok("provider", "register", "QT-2", "P1", "--name", "Wang Wei", "--role", "cadre")
    cli.ok(*record_args("HZ-001", "--record-id", active))
    cli.ok(*record_args("HZ-001", "--record-id", voided, resident="R2", provider="P2"))
    cli.ok("service", "void", "HZ-001", voided, "--reason", "重复登记")
    cli.ok("projections", "run")
    return Ledger(cli, active=active, voided=voided, missing=str(uuid.uuid4()))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    """One store per backend per module, built through the CLI (see the module docstring)."""
    tmp = tmp_path_factory.mktemp(f"ledger-{request.param}")
    if request.param == "sqlite":
        yield build_ledger(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"))
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build_ledger(Cli(url, tmp / "taizhang.key"))
    finally:
        drop_pg_database(admin, url)


def write_csv(path: Path, rows: Sequence[Sequence[str]], *, bom: bool = False) -> Path:
    """A CSV file as a spreadsheet saves it (UTF-8, optional BOM)."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8"))
    return path
