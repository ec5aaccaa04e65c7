"""What you see is what you can ask: every time the CLI prints, pasted into --as-of, selects
exactly the history up to that event — on random histories, on both stores, in two zones.

The recorded times come from the database clock as the commands run; the test never reads
the wall clock itself, so it holds at any hour, in any zone the machine is set to.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, establish_args

pytestmark = pytest.mark.clock  # recorded times from the database clock, read back

ZONES = ["Asia/Shanghai", "America/Los_Angeles"]
TABLE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.integers(1, 28), st.integers(1, 600)),
        st.tuples(st.just("correct"), st.integers(0, 9), st.integers(1, 600)),
        st.tuples(st.just("void"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("enroll"), st.integers(0, 99), st.just(0)),
    ),
    min_size=1,
    max_size=8,
)


@contextmanager
def fresh_store(backend: str, admin: str | None) -> Iterator[Cli]:
    with tempfile.TemporaryDirectory() as folder:
        if backend == "sqlite":
            yield Cli(f"sqlite:///{Path(folder) / 'taizhang.db'}", Path(folder) / "taizhang.key")
            return
        assert admin is not None
        url = make_pg_database(admin)
        try:
            yield Cli(url, Path(folder) / "taizhang.key")
        finally:
            drop_pg_database(admin, url)


def play(cli: Cli, zone: str, history: list[tuple[str, int, int]]) -> None:
    cli.ok("init", "--tz", zone)
    cli.ok(*establish_args(COMMUNITY))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    records: list[str] = []
    for what, a, b in history:
        if what == "record":
            rid = str(uuid.uuid4())
            cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
                   "--at", f"2026-03-{a:02d} 09:30", "--minutes", str(b), "--record-id", rid)  # fmt: skip
            records.append(rid)
        elif what == "correct" and records:
            rid = records[a % len(records)]
            cli("service", "correct", "HZ-001", rid, "--minutes", str(b), "--reason", "时长有误")  # may be refused
        elif what == "void" and records:
            cli("service", "void", "HZ-001", records[a % len(records)], "--reason", "重复登记")  # may be refused
        elif what == "enroll":
            cli("resident", "enroll", "HZ-001", f"R{a + 2}", "--name", "王小明")  # may be refused (same code)
    cli.ok("projections", "run")


def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, f"{text!r} has no offset"
    return moment


def check_history(cli: Cli) -> None:
    rows = cli.json("audit", "history", "HZ-001")
    times = [instant(r["recorded_at"]) for r in rows]
    assert times == sorted(times)
    table = cli.ok("audit", "history", "HZ-001").stdout.splitlines()[2:]
    shown = [TABLE_TIME.search(line).group(0) for line in table]  # type: ignore[union-attr]
    assert len(shown) == len(rows)
    for i, row in enumerate(rows):
        # JSON: to the millisecond — exactly the events recorded up to and including this one's moment.
        expected = [r for r, t in zip(rows, times, strict=True) if t <= times[i]]
        assert cli.json("audit", "history", "HZ-001", "--as-of", row["recorded_at"]) == expected
        assert row in expected and expected == rows[: len(expected)]
        # A table: to the second — everything recorded up to the end of the second it shows.
        second = datetime.fromisoformat(shown[i]).replace(tzinfo=times[i].tzinfo)
        assert second == times[i].replace(microsecond=0), (shown[i], row["recorded_at"])  # in the store's zone
        expected = [r for r, t in zip(rows, times, strict=True) if t < second + timedelta(seconds=1)]
        assert cli.json("audit", "history", "HZ-001", "--as-of", shown[i]) == expected
        assert row in expected


def check_ledger(cli: Cli) -> None:
    entries = cli.json("ledger", "entries", "--include-voided")
    for entry in entries:
        for field in ("recorded_at", "revised_at"):
            as_of = cli.json("ledger", "entries", "--include-voided", "--as-of", entry[field])
            then = {e["record_id"]: e for e in as_of}
            assert entry["record_id"] in then, (field, entry[field])
            assert all(instant(e["revised_at"]) <= instant(entry[field]) for e in as_of)
        latest = {e["record_id"]: e for e in cli.json("ledger", "entries", "--include-voided", "--as-of", entry["revised_at"])}
        assert latest[entry["record_id"]] == entry  # the revision that was current once it was recorded


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(zone=st.sampled_from(ZONES), history=steps)
def test_every_printed_time_reads_back_as_the_state_that_included_it(
    backend: str, request: pytest.FixtureRequest, zone: str, history: list[tuple[str, int, int]]
) -> None:
    admin = request.getfixturevalue("pg_admin_url") if backend == "postgres" else None
    with fresh_store(backend, admin) as cli:
        play(cli, zone, history)
        check_history(cli)
        check_ledger(cli)
