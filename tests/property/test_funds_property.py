"""The funds views against the funding lines they are projected from, on random histories, on both stores.

Random sequences of allocations, transfers, spends, reversals and returns over four communities in
three townships of two counties are saved through the application (what the domain refuses is
skipped), with projection runs of a few events interleaved, so the views are kept incrementally.
Then:

(a) incremental == rebuild: every row of every funds table equals a rebuild from scratch, in the
    default batches and in batches of one event;
(b) the ledger as of log position P equals the ledger of views projected from only the events up
    to P (a separate views database) — by unit, line and department, with and without a period;
(c) the ledger (current, from the monthly totals, and as of each step, from the movements) equals
    the sums computed from the aggregates' own `totals()` at that step, by unit and by line,
    with the execution rate computed from them by its definition; and every line's trace gives each
    unit the aggregate's totals and each spend its voucher, day, amount and reversal.
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from commands.app import LedgerService
from commands.views import Views, make_projections
from domain.errors import LedgerError
from domain.funds import FundingLine
from domain.units import UnitRef, parse_unit
from infra.runner import Runner, engines
from infra.store import parse_url
from projections import funds as f
from projections import funds_queries as q
from tests.conftest import drop_pg_database, make_pg_database
from tests.funds_helpers import CITY, Lines, city

UNITS = [
    "county:八步区",
    "county:钟山县",
    "township:八步区/贺街镇",
    "township:八步区/信都镇",
    "township:钟山县/城关镇",
    *(f"community:{code}" for code in CITY),
]
COMMUNITIES = [f"community:{code}" for code in CITY]
DEPARTMENTS = ["民政局", "妇联", "财政局"]
START = date(2026, 1, 1)

day = st.integers(0, 300).map(lambda n: (START + timedelta(days=n)).isoformat())
later = st.integers(0, 200)  # days after the line was granted
money = st.integers(1, 300_000)
pick = st.integers(0, 50)
grant = st.tuples(st.just("allocate"), st.integers(0, 5), st.sampled_from(UNITS), st.integers(100_000, 2_000_000), day)
operation = st.one_of(
    grant,
    st.tuples(st.just("transfer"), pick, pick, pick, money, later),
    st.tuples(st.just("spend"), pick, pick, money, later),
    st.tuples(st.just("spend"), pick, pick, money, later),
    st.tuples(st.just("reverse"), pick, pick, st.integers(0, 60)),
    st.tuples(st.just("return"), pick, pick, money, later),
    st.tuples(st.just("project"), st.integers(1, 5)),
)


def located(unit: str) -> UnitRef:
    ref = parse_unit(unit)
    if ref.level == "community":
        county, township = CITY[ref.community]
        return UnitRef("community", county=county, township=township, community=ref.community)
    return ref


def dump(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in f.TABLES:
        keys = ", ".join(c.name for c in table.primary_key.columns)
        out[table.name] = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {keys}"))]
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> Any:
    if request.param == "sqlite":
        return lambda: (f"sqlite:///{tempfile.mkdtemp()}/taizhang.db", None)
    admin = request.getfixturevalue("pg_admin_url")
    return lambda: (make_pg_database(admin), admin)


class History:
    """Saved operations, and after each one the log position and every line's totals per unit."""

    def __init__(self, service: LedgerService, runner: Runner) -> None:
        self.service = service
        self.runner = runner
        self.lines = Lines(service)
        self.ids: list[str] = []
        self.spends: list[tuple[str, str]] = []
        self.steps: list[tuple[int, dict[str, FundingLine]]] = []

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "project":
            self.runner.run_batch(limit=op[1])
            return
        try:
            if kind == "allocate":
                _, n, unit, amount, on = op
                self.ids.append(self.lines.allocate(DEPARTMENTS[n % 3], f"文{n}号{len(self.ids)}", amount, unit, on))
            elif not self.ids:
                return
            elif kind == "reverse":
                _, _n, which, days = op
                if not self.spends:
                    return
                line, spend = self.spends[which % len(self.spends)]
                spent_on = self.lines.get(line).spends[spend][2]
                self.lines.reverse(line, spend, (date.fromisoformat(spent_on) + timedelta(days=days)).isoformat())
            else:
                line_id = self.ids[op[1] % len(self.ids)]
                line = self.lines.get(line_id)
                on = (date.fromisoformat(line.on) + timedelta(days=op[-1])).isoformat()
                holders = [u for u in line.units() if line.balance(u) > 0] or line.units()
                holder = holders[op[2] % len(holders)]
                amount = op[-2]
                if kind == "transfer":
                    below = [u for u in UNITS if located(holder).contains(located(u))]
                    if not below:
                        return
                    self.lines.transfer(line_id, holder, below[op[3] % len(below)], amount, on)
                elif kind == "spend":
                    places = [u for u in holders if u.startswith("community:")] or COMMUNITIES
                    community = places[op[2] % len(places)]
                    self.spends.append((line_id, self.lines.spend(line_id, community, amount, on, records=["r-1"])))
                elif kind == "return":
                    self.lines.give_back(line_id, holder, amount, on)
        except (LedgerError, ValueError):
            return
        self.steps.append((self.runner.head(), {line: self.lines.get(line) for line in self.ids}))


def expected(aggregates: dict[str, FundingLine], *, by: str, first: date | None, last: date | None) -> list[Any]:
    """The ledger computed from the aggregates' own totals(), by the definitions."""
    until = last.isoformat() if last else None
    before = (first - timedelta(days=1)).isoformat() if first else None
    per: dict[tuple[str, str], dict[str, int]] = {}
    for line_id, line in aggregates.items():
        for unit in line.units():
            now = line.totals(unit, until)
            then = line.totals(unit, before) if before else dict.fromkeys(now, 0)
            flows = {k: now[k] - then[k] for k in q.KINDS}
            per[(line_id, unit)] = {**flows, "balance": now["balance"], **{f"cum_{k}": now[k] for k in q.KINDS}}

    def summed(items: list[dict[str, int]]) -> dict[str, Any]:
        out = {k: sum(i[k] for i in items) for k in q.AMOUNTS}
        c = {k: sum(i[f"cum_{k}"] for i in items) for k in q.KINDS}
        out["execution_rate"] = q.rate(c["spent"] - c["reversed"], c["allocated"] + c["received"] - c["passed_down"])
        return out

    if by == "unit":
        rows = []
        for unit in sorted({located(u) for u in UNITS}, key=q.unit_order):
            own = summed([v for (_l, u), v in per.items() if located(u) == unit])
            sub = summed([v for (_l, u), v in per.items() if q.inside(unit, located(u))])
            rows.append((str(unit), *(own[k] for k in q.AMOUNTS), sub["execution_rate"]))
        return rows
    rows = []
    for line_id, line in aggregates.items():
        if until is not None and line.on > until:
            continue
        got = summed([v for (l, _u), v in per.items() if l == line_id])
        rows.append((line_id, *(got[k] for k in q.AMOUNTS), got["execution_rate"]))
    return sorted(rows)


def actual(conn: Any, filters: q.FundsFilters, by: str) -> list[Any]:
    rows = q.ledger(conn, filters, by=by)
    if by == "unit":
        return [(r["unit"], *(r[k] for k in q.AMOUNTS), r["execution_rate"]) for r in rows]
    return sorted((r["line_id"], *(r[k] for k in q.AMOUNTS), r["execution_rate"]) for r in rows)


PERIODS = [
    (None, None),
    (date(2026, 1, 1), date(2026, 3, 31)),
    (date(2026, 4, 1), date(2026, 4, 30)),
    (None, date(2026, 6, 30)),
]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=st.tuples(grant, st.lists(operation, min_size=8, max_size=30)).map(lambda t: [t[0], *t[1]]))
def test_funds_views_against_the_lines(store_url: Any, tmp_path: Path, ops: list[tuple[Any, ...]]) -> None:
    url, admin = store_url()
    service, _ = LedgerService.create(parse_url(url), tmp_path / "taizhang.key", None)
    views = Views(service)
    try:
        city(service)
        views.runner.ensure_tables()
        history = History(service, views.runner)
        for op in ops:
            history.run(op)
        views.runner.catch_up()
        event(f"steps saved: {min(len(history.steps), 20) // 5 * 5}+")
        with views.writer.connect() as conn:
            kept = dump(conn)
            # (c) current, from the monthly totals
            if history.steps:
                _head, aggregates = history.steps[-1]
                for first, last in PERIODS:
                    filters = q.FundsFilters(None, first, last, None)
                    for by in ("unit", "line"):
                        assert actual(conn, filters, by) == expected(aggregates, by=by, first=first, last=last)
            # the trace of every line: each unit's sums are the aggregate's, each spend its voucher and reversal
            if history.steps:
                for line_id, line in aggregates.items():
                    document = q.trace(conn, q.find_line(conn, line_id, None), q.FundsFilters())
                    nodes, stack = {}, list(document["units"])
                    while stack:
                        node = stack.pop()
                        stack.extend(node["children"])
                        nodes[node["unit"]] = node
                    assert set(nodes) == set(line.units())
                    for unit, node in nodes.items():
                        assert {k: node[k] for k in q.AMOUNTS} == line.totals(unit)
                        for move in node["movements"]:
                            if move["movement"] == "spent":
                                community, amount, on, voucher, reversed_on = line.spends[move["entry_id"]]
                                assert (unit, move["amount"], move["day"], move["voucher"], move["reversed_on"]) == (
                                    community,
                                    amount,
                                    on,
                                    voucher,
                                    reversed_on,
                                )
            # (c) as of each step, from the movements
            for position, aggregates in history.steps[-6:]:
                for first, last in PERIODS[:2]:
                    filters = q.FundsFilters(None, first, last, position)
                    for by in ("unit", "line"):
                        assert actual(conn, filters, by) == expected(aggregates, by=by, first=first, last=last)
        # (b) as of P == the views of the prefix up to P
        for position, _aggregates in history.steps[:: max(1, len(history.steps) // 3)][:3]:
            prefix = tmp_path / f"prefix-{position}-{len(ops)}.db"
            writer = engines(parse_url(f"sqlite:///{prefix}"))[0]
            runner = Runner(service.recorder, writer, make_projections(), "sqlite")
            runner.ensure_tables()
            runner.catch_up(until=position)
            with writer.connect() as small, views.writer.connect() as whole:
                for first, last in PERIODS[:2]:
                    for by in ("unit", "line", "department"):
                        now = q.ledger(small, q.FundsFilters(None, first, last, None), by=by)
                        then = q.ledger(whole, q.FundsFilters(None, first, last, position), by=by)
                        assert now == then
            writer.dispose()
            prefix.unlink()
        # (a) incremental == rebuild, in default batches and in batches of one event
        for limit in (5000, 1):
            views.runner.rebuild(limit=limit)
            with views.writer.connect() as conn:
                assert dump(conn) == kept
    finally:
        views.close()
        service.close()
        if admin is not None:
            drop_pg_database(admin, url)
