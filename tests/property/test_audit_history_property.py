"""`audit history` as of any moment is exactly a prefix of the full history (real stores).

For random histories — records, corrections, voids, closes and reopens, some of them
refused — the history stopped at any log position, or at any recorded time, equals
the full history cut there; every row's old values are the previous revision's new
ones; and a refused command (a closed period) left no trace in the history.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commands import models
from commands.app import LedgerService
from commands.closing import close_period, reopen_period
from commands.history import Bound, history
from domain.errors import LedgerError
from domain.units import parse_period, parse_unit
from infra import crypto
from infra.store import parse_url
from tests import helpers
from tests.conftest import drop_pg_database, make_pg_database

DAYS = [f"2026-{m:02d}-{d:02d}" for m in (2, 3, 4) for d in (1, 15, 28)]
PERIODS = ["2026-02", "2026-03", "2026-04", "2026-Q1"]
UNITS = ["township:八步区/贺街镇", "community:H1"]

OPS = st.one_of(
    st.tuples(st.just("record"), st.sampled_from(DAYS), st.integers(1, 300)),
    st.tuples(st.just("correct"), st.integers(0, 20), st.sampled_from(DAYS), st.integers(1, 300)),
    st.tuples(st.just("void"), st.integers(0, 20)),
    st.tuples(st.just("close"), st.sampled_from(UNITS), st.sampled_from(PERIODS)),
    st.tuples(st.just("reopen"), st.sampled_from(UNITS), st.sampled_from(PERIODS)),
)


def apply(service: LedgerService, op: tuple, records: list[str]) -> None:
    v = service.validate
    try:
        if op[0] == "record":
            rid = str(uuid.uuid4())
            helpers.record(service, "H1", rid, occurred_at=f"{op[1]} 09:00", minutes=op[2], note=f"note {op[2]}")
            records.append(rid)
        elif op[0] == "correct" and records:
            rid = records[op[1] % len(records)]
            service.correct_service(v(models.CorrectService, {"community": "H1", "record_id": rid, "reason": "r",
                                                              "occurred_at": f"{op[2]} 10:00", "minutes": op[3]}), "c2")  # fmt: skip
        elif op[0] == "void" and records:
            service.void_service(v(models.VoidService, {"community": "H1", "record_id": records[op[1] % len(records)], "reason": "r"}), "c2")
        elif op[0] == "close":
            close_period(service, parse_unit(op[1]), parse_period(op[2]), "结账", "sup")
        elif op[0] == "reopen":
            reopen_period(service, parse_unit(op[1]), parse_period(op[2]), "补录", "sup")
    except (LedgerError, models.Malformed):
        event(f"refused {op[0]}")  # refused: the history must not show it


def check(service: LedgerService, ops: list[tuple]) -> None:
    helpers.small_community(service, "H1")
    helpers.small_community(service, "H2")  # same township: a township close covers both
    records: list[str] = []
    for op in ops:
        apply(service, op, records)
    full = history(service, "H1")
    assert [r["version"] for r in full] == list(range(1, len(full) + 1))
    for i, row in enumerate(full):
        assert history(service, "H1", Bound(position=row["position"])) == full[: i + 1]
        assert history(service, "H1", Bound(as_of=row["recorded_at"])) == [r for r in full if r["recorded_at"] <= row["recorded_at"]]
    # Every correction's old values are what the record said just before it, and nothing dated
    # inside a closure in force at the time got through (neither into nor out of it).
    current: dict[str, dict] = {}
    closed: set[tuple[str, str]] = set()
    for row in full:
        f, days = row["fields"], []
        if row["event"] == "period_closed":
            closed.add((f["unit"], f["period"]))
        elif row["event"] == "period_reopened":
            closed.remove((f["unit"], f["period"]))
        elif row["event"] == "service_recorded":
            current[f["record_id"]] = dict(f)
            days = [f["occurred_at"][:10]]
        elif row["event"] in ("service_corrected", "service_voided"):
            before = current[f["record_id"]]
            days = [before["occurred_at"][:10]]
            for field, change in row["changes"].items():
                assert before[field] == change["old"]
                before[field] = change["new"]
            days.append(before["occurred_at"][:10])
        for _unit, period in closed:
            assert not any(parse_period(period).contains(date.fromisoformat(day)) for day in days), (row, closed)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=1, max_size=14))
def test_history_as_of_any_moment_is_a_prefix(backend: str, ops: list[tuple], request: pytest.FixtureRequest) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "taizhang.key"
        crypto.create_key_file(key)
        admin = url = None
        if backend == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'taizhang.db'}"
        else:
            admin = request.getfixturevalue("pg_admin_url")
            url = make_pg_database(admin)
        service, _ = LedgerService.create(parse_url(url), key, None)
        try:
            check(service, ops)
        finally:
            service.close()
            if admin is not None:
                drop_pg_database(admin, url)
