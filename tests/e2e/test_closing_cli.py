"""`ledger close|reopen` (结账 / 反结账) through the CLI, on SQLite and PostgreSQL.

A closed period refuses, with exit 1 and the closure named, every change dated inside
it — record, correct (from or into the period), void, depart, retire, visit plan,
pairing, an imported row — and writes nothing; `ledger reopen` lets the same change
through; both appear in `audit history`. A close is one save across every community
of the unit.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import (
    COMMUNITY,
    Cli,
    backend_of,
    error_line,
    establish_args,
    events_in,
    record_args,
    sqlite_path,
    store_counts,
    write_csv,
)

TOWNSHIP = "township:八步区/贺街镇"
SUP = "sup01"
MARCH = "2026-03-05 09:30"  # record_args' AT
APRIL = "2026-04-02 10:00"
SIBLING = {**COMMUNITY, "code": "HZ-002", "name": "桥头社区", "village": "桥头村", "natural_villages": []}
ELSEWHERE = {**COMMUNITY, "code": "XD-1", "name": "信都社区", "township": "信都镇", "village": "信都村", "natural_villages": []}


def build(cli: Cli) -> dict[str, str]:
    """Three communities (two in 贺街镇), people in HZ-001, a record in March and one in April."""
    march, april = str(uuid.uuid4()), str(uuid.uuid4())
    cli.ok("init")
    for community in (COMMUNITY, SIBLING, ELSEWHERE):
        cli.ok(*establish_args(community))
    for code in ("R1", "R2", "R3"):
        cli.ok("resident", "enroll", "HZ-001", code, "--name", f"居民{code}")
    for code in ("P1", "P2"):
        cli.ok("provider", "register", "HZ-001", code, "--name", f"人员{code}", "--role", "volunteer")
    # HZ-002 has its own R1 and P1, so that an imported row of it is judged by the closure, not by its names.
    cli.ok("resident", "enroll", "HZ-002", "R1", "--name", "居民甲")
    cli.ok("provider", "register", "HZ-002", "P1", "--name", "人员甲", "--role", "volunteer")
    cli.ok(*record_args("HZ-001", "--record-id", march, "--note", "送米送油"))
    cli.ok("service", "record", "HZ-001", "--kind", "family_care", "--resident", "R1", "--provider", "P1",
           "--at", APRIL, "--minutes", "30", "--record-id", april)  # fmt: skip
    cli.ok("visit-plan", "set", "HZ-001", "R2", "--every", "14", "--provider", "P1", "--from", "2026-02-01")
    cli.ok("pairing", "add", "HZ-001", "--provider", "P2", "--resident", "R2", "--on", "2026-02-01")
    return {"march": march, "april": april}


@pytest.fixture
def closed(run: Cli) -> tuple[Cli, dict[str, str]]:
    """A fresh store (both backends) whose township 贺街镇 has March 2026 closed."""
    ids = build(run)
    run.ok("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "三月结账", actor=SUP)
    return run, ids


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shut(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, dict[str, str]]]:
    """ONE store per backend for this module with March closed; only commands that must write nothing run on it."""
    tmp = tmp_path_factory.mktemp(f"closed-{request.param}")

    def make(cli: Cli) -> tuple[Cli, dict[str, str]]:
        ids = build(cli)
        cli.ok("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "三月结账", actor=SUP)
        return cli, ids

    if request.param == "sqlite":
        yield make(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"))
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield make(Cli(url, tmp / "taizhang.key"))
    finally:
        drop_pg_database(admin, url)


def refused_writes(ids: dict[str, str], tmp: Path) -> dict[str, list[str]]:
    services = write_csv(
        tmp / "services.csv",
        [
            ["community", "kind", "residents", "providers", "occurred_at", "minutes"],
            ["HZ-001", "life_care", "R1", "P1", "2026-04-03 09:00", "20"],
            ["HZ-002", "life_care", "R1", "P1", "2026-03-31 23:59", "20"],
            ["HZ-001", "life_care", "R1", "P1", "2026-03-20 09:00", "20"],
        ],
    )
    return {
        "record": record_args("HZ-001", "--record-id", str(uuid.uuid4())),
        "record-last-minute": ["service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1",
                               "--provider", "P1", "--at", "2026-03-31 23:59", "--minutes", "10"],  # fmt: skip
        "correct": ["service", "correct", "HZ-001", ids["march"], "--minutes", "50", "--reason", "时长有误"],
        "correct-out-of": ["service", "correct", "HZ-001", ids["march"], "--at", APRIL, "--reason", "日期有误"],
        "correct-into": ["service", "correct", "HZ-001", ids["april"], "--at", "2026-03-30 10:00", "--reason", "日期有误"],
        "void": ["service", "void", "HZ-001", ids["march"], "--reason", "重复登记"],
        "depart": ["resident", "depart", "HZ-001", "R3", "--reason", "moved", "--on", "2026-03-15"],
        "retire": ["provider", "retire", "HZ-001", "P2", "--on", "2026-03-15"],
        "visit-plan-set": ["visit-plan", "set", "HZ-001", "R1", "--every", "7", "--provider", "P1", "--from", "2026-03-02"],
        "visit-plan-end": ["visit-plan", "end", "HZ-001", "R2", "--on", "2026-03-20"],
        "pairing-add": ["pairing", "add", "HZ-001", "--provider", "P1", "--resident", "R1", "--on", "2026-03-02"],
        "pairing-end": ["pairing", "end", "HZ-001", "--provider", "P2", "--resident", "R2", "--on", "2026-03-20"],
        "import": ["import", "services", str(services)],
    }


WRITES = [
    "record", "record-last-minute", "correct", "correct-out-of", "correct-into", "void", "depart", "retire",
    "visit-plan-set", "visit-plan-end", "pairing-add", "pairing-end", "import",
]  # fmt: skip


@pytest.mark.parametrize("write", WRITES)
def test_a_closed_period_refuses_every_change_dated_inside_it_and_writes_nothing(
    shut: tuple[Cli, dict[str, str]], tmp_path: Path, write: str
) -> None:
    cli, ids = shut
    writes = refused_writes(ids, tmp_path)
    assert list(writes) == WRITES
    args = writes[write]
    before = store_counts(cli.url)
    result = cli(*args)
    if write == "import":
        assert result.exit_code == 1, result.stderr
        lines = result.stderr.splitlines()
        closure = "occurred_at: closed: township:八步区/贺街镇 2026-03 (closed by sup01 on "
        assert lines[0].startswith("row 3: " + closure) and "2026-03-31" in lines[0]  # HZ-002 is in the township too
        assert lines[1].startswith("row 4: " + closure) and "2026-03-20" in lines[1]
        assert len(lines) == 3 and "nothing imported" in lines[2]  # row 2, in April, was fine
    else:
        line = error_line(result, 1, "closed: township:八步区/贺街镇 2026-03 (closed by sup01 on ", "taizhang ledger reopen")
        assert "2026-03" in line
    assert store_counts(cli.url) == before


@pytest.mark.parametrize("write", [w for w in WRITES if w != "import"])
def test_after_reopening_the_same_change_goes_through(closed: tuple[Cli, dict[str, str]], tmp_path: Path, write: str) -> None:
    cli, ids = closed
    reopened = cli.json("ledger", "reopen", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "补录", actor=SUP)
    assert reopened == {"unit": TOWNSHIP, "period": "2026-03", "reopened": True, "communities": ["HZ-001", "HZ-002"], "still_closed": []}
    before = store_counts(cli.url)
    cli.ok(*refused_writes(ids, tmp_path)[write])
    assert events_in(store_counts(cli.url), cli.url) == events_in(before, cli.url) + 1


def test_an_import_goes_through_once_reopened(closed: tuple[Cli, dict[str, str]], tmp_path: Path) -> None:
    cli, _ids = closed
    file = write_csv(tmp_path / "s.csv", [["community", "kind", "residents", "providers", "occurred_at", "minutes"],
                                          ["HZ-001", "life_care", "R1", "P1", "2026-03-20 09:00", "20"]])  # fmt: skip
    assert cli("import", "services", str(file)).exit_code == 1
    cli.ok("ledger", "reopen", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "补录", actor=SUP)
    assert cli.json("import", "services", str(file)) == {"added": 1, "existing": 0, "skipped": 0}


def _commits(url: str) -> list[tuple[int, int]]:
    if backend_of(url) == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            return [(int(a), int(b)) for a, b in conn.execute("SELECT first_position, last_position FROM taizhang_commits ORDER BY first_position")]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT first_position, last_position FROM taizhang_commits ORDER BY first_position").fetchall()
    return [(int(a), int(b)) for a, b in rows]


def test_a_close_is_one_short_save_per_community_of_the_township(run: Cli) -> None:
    store = run
    build(store)
    before = store_counts(store.url)
    out = store.json("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-Q1", "--reason", "一季度结账", actor=SUP)
    assert out["communities"] == ["HZ-001", "HZ-002"]
    assert (out["closed_now"], out["closed_before"]) == (["HZ-001", "HZ-002"], [])
    after = store_counts(store.url)
    assert events_in(after, store.url) == events_in(before, store.url) + 2
    assert after["taizhang_commits"] == before["taizhang_commits"] + 2  # one short transaction per community
    commits = _commits(store.url)[-2:]
    assert all(first == last for first, last in commits)
    closes = {}
    for code in ("HZ-001", "HZ-002"):
        rows = store.json("audit", "history", code)
        closes[code] = rows[-1]
        assert rows[-1]["event"] == "period_closed" and rows[-1]["actor"] == SUP
        assert rows[-1]["fields"]["unit"] == TOWNSHIP and rows[-1]["fields"]["reason"] == "一季度结账"
    assert {c["position"] for c in closes.values()} == {first for first, _last in commits}
    # One close, one closed-at time in every community (the supervisor's clock, in the payload).
    assert closes["HZ-001"]["fields"]["closed_at"] == closes["HZ-002"]["fields"]["closed_at"]
    # The other township is untouched and still open.
    assert all(row["event"] != "period_closed" for row in store.json("audit", "history", "XD-1"))
    store.ok("resident", "enroll", "XD-1", "R1", "--name", "李", "--enrolled-on", "2026-01-01")
    store.ok("provider", "register", "XD-1", "P1", "--name", "王", "--role", "cadre")
    store.ok(*record_args("XD-1"))


def test_closing_twice_reopening_what_is_open_and_unknown_units_are_refused(closed: tuple[Cli, dict[str, str]]) -> None:
    cli, _ = closed
    before = store_counts(cli.url)
    again = cli("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "x", actor=SUP)
    error_line(again, 1, "township:八步区/贺街镇 2026-03", "already closed", "sup01")
    error_line(cli("ledger", "reopen", "--unit", TOWNSHIP, "--period", "2026-04", "--reason", "x", actor=SUP), 1, "2026-04", "not closed")
    error_line(cli("ledger", "reopen", "--unit", "community:HZ-001", "--period", "2026-03", "--reason", "x", actor=SUP), 1, "not closed")
    error_line(cli("ledger", "close", "--unit", "township:八步区/无此镇", "--period", "2026-03", "--reason", "x", actor=SUP), 1, "无此镇")
    error_line(cli("ledger", "close", "--unit", "community:NOPE", "--period", "2026-03", "--reason", "x", actor=SUP), 1, "NOPE")
    assert store_counts(cli.url) == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        pytest.param(["--unit", "town:贺街镇", "--period", "2026-03", "--reason", "x"], ["--unit", "town:贺街镇"], id="unit"),
        pytest.param(["--unit", "township:贺街镇", "--period", "2026-03", "--reason", "x"], ["--unit"], id="township-without-county"),
        pytest.param(["--unit", TOWNSHIP, "--period", "2026-13", "--reason", "x"], ["--period", "2026-13"], id="month"),
        pytest.param(["--unit", TOWNSHIP, "--period", "2026-Q5", "--reason", "x"], ["--period", "2026-Q5"], id="quarter"),
        pytest.param(["--unit", TOWNSHIP, "--period", "2999", "--reason", "x"], ["--period", "2999", "has not begun"], id="future"),
        pytest.param(["--unit", TOWNSHIP, "--period", "2026-03", "--reason", "  "], ["--reason"], id="empty-reason"),
        pytest.param(["--unit", TOWNSHIP, "--period", "2026-03"], ["--reason"], id="no-reason"),
    ],
)
def test_malformed_close_exits_2_and_writes_nothing(shut: tuple[Cli, dict[str, str]], args: list[str], needles: list[str]) -> None:
    cli, _ = shut
    before = store_counts(cli.url)
    error_line(cli("ledger", "close", *args, actor=SUP), 2, *needles)
    error_line(cli("ledger", "reopen", *[a if a != "2999" else "2026-13" for a in args], actor=SUP), 2)
    assert store_counts(cli.url) == before


def test_closing_needs_an_actor(shut: tuple[Cli, dict[str, str]]) -> None:
    cli, _ = shut
    error_line(cli("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-02", "--reason", "x", actor=None), 2, "--actor")


def test_a_community_established_after_the_close_is_not_covered(closed: tuple[Cli, dict[str, str]]) -> None:
    cli, _ = closed
    late = {**COMMUNITY, "code": "HZ-003", "name": "新社区", "village": "新村", "natural_villages": []}
    cli.ok(*establish_args(late))
    cli.ok("resident", "enroll", "HZ-003", "R1", "--name", "甲")
    cli.ok("provider", "register", "HZ-003", "P1", "--name", "乙", "--role", "cadre")
    cli.ok(*record_args("HZ-003"))  # March, yet the township's closure predates this community
    # Closing the same township period again is refused (it is closed); the new community is closed on its own.
    assert cli("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "x", actor=SUP).exit_code == 1
    cli.ok("ledger", "close", "--unit", "community:HZ-003", "--period", "2026-03", "--reason", "补结账", actor=SUP)
    error_line(cli(*record_args("HZ-003")), 1, "community:HZ-003 2026-03")


def test_a_month_inside_a_closed_quarter_stays_closed_when_the_month_reopens(closed: tuple[Cli, dict[str, str]]) -> None:
    cli, ids = closed
    cli.ok("ledger", "close", "--unit", "county:八步区", "--period", "2026-Q1", "--reason", "一季度结账", actor=SUP)
    reopened = cli("ledger", "reopen", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "补录", actor=SUP)
    assert reopened.exit_code == 0, reopened.stderr
    assert "county:八步区 2026-Q1" in reopened.stderr  # the note: still closed by the quarter
    line = error_line(cli("service", "void", "HZ-001", ids["march"], "--reason", "x"), 1, "county:八步区 2026-Q1")
    assert "township:八步区/贺街镇 2026-03" not in line
    cli.ok("ledger", "reopen", "--unit", "county:八步区", "--period", "2026-Q1", "--reason", "补录", actor=SUP)
    cli.ok("service", "void", "HZ-001", ids["march"], "--reason", "x")


def test_history_shows_the_close_and_the_reopen(closed: tuple[Cli, dict[str, str]]) -> None:
    cli, _ = closed
    cli.ok("ledger", "reopen", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "补录漏登记录", actor=SUP)
    rows = cli.json("audit", "history", "HZ-002")
    assert [r["event"] for r in rows] == ["established", "resident_enrolled", "provider_registered", "period_closed", "period_reopened"]
    closing, reopening = rows[-2:]
    assert closing["fields"] == {"unit": TOWNSHIP, "period": "2026-03", "reason": "三月结账", "closed_at": closing["fields"]["closed_at"]}
    assert reopening["fields"] == {"unit": TOWNSHIP, "period": "2026-03", "reason": "补录漏登记录"}
    assert closing["actor"] == reopening["actor"] == SUP
    table = cli("audit", "history", "HZ-002", lang="zh").stdout
    assert "结账" in table and "反结账" in table
    as_json = orjson.loads(cli("ledger", "close", "--unit", TOWNSHIP, "--period", "2026-03", "--reason", "再结账",
                               "--format", "json", actor=SUP).stdout)  # fmt: skip
    assert as_json["closed"] is True
