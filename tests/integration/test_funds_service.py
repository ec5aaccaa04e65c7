"""The funds application service (commands.funds) on both stores: invariants and races.

- hypothesis: any sequence of allocations, transfers, spends, reversals and returns, each
  accepted or refused by the rules, leaves every unit's balance of the line ≥ 0 on every day,
  and Σ over units (balance + spent − reversed) = allocated − returned;
- two writers spending one voucher number from two lines at the same moment: exactly one spend
  and one voucher claim are stored, the other is refused naming the voucher.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commands import models
from commands.app import LedgerService
from commands.funds import Funds, parse_yuan
from domain.errors import AlreadyExists, LedgerError
from domain.funds import FundingLine, line_id
from domain.units import UnitRef
from infra.store import parse_url

ACTOR = "clerk01"
START = date(2026, 1, 15)
COUNTY = UnitRef("county", county="八步区")
TOWNSHIPS = [UnitRef("township", county="八步区", township=t) for t in ("贺街镇", "莲塘镇")]
COMMUNITIES = {"HZ-001": "贺街镇", "HZ-002": "贺街镇", "HZ-003": "莲塘镇"}
UNITS = [COUNTY, *TOWNSHIPS, *(UnitRef("community", community=c) for c in COMMUNITIES)]


def establish(service: LedgerService) -> None:
    for code, township in COMMUNITIES.items():
        cmd = service.validate(
            models.EstablishCommunity,
            {"code": code, "name": code, "county": "八步区", "township": township, "village": code,
             "established_on": "2026-01-01"},
        )  # fmt: skip
        service.establish_community(cmd, ACTOR)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def funds_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerService]:
    from infra import crypto
    from tests.conftest import drop_pg_database, make_pg_database

    tmp = tmp_path_factory.mktemp(f"funds-service-{request.param}")
    key = tmp / "taizhang.key"
    crypto.create_key_file(key)
    admin_url = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'taizhang.db'}"
    else:
        admin_url = request.getfixturevalue("pg_admin_url")
        url = make_pg_database(admin_url)
    service, _ = LedgerService.create(parse_url(url), key, None)
    try:
        establish(service)
        yield service
    finally:
        service.close()
        if admin_url is not None:
            drop_pg_database(admin_url, url)


# ---- the invariants ----------------------------------------------------------------------------------------
amounts = st.integers(min_value=1, max_value=500_000) | st.integers(min_value=1, max_value=5_000)
days = st.integers(min_value=0, max_value=90)
unit_index = st.integers(min_value=0, max_value=len(UNITS) - 1)
# (source, target) index pairs that pass money down: most generated transfers are of these.
DOWN = [(a, b) for a, src in enumerate(UNITS) for b, dst in enumerate(UNITS)
        if src.level != "community" and (dst.level != "community" or a == 0 or COMMUNITIES[dst.community] ==
                                         src.township) and dst.level != src.level and (src.level, dst.level) !=
        ("community", "township")]  # fmt: skip
pairs = st.one_of(
    st.sampled_from(DOWN), st.sampled_from(DOWN), st.sampled_from(DOWN), st.tuples(unit_index, unit_index)
)
transfers = st.builds(lambda p, amount, day: ("transfer", p[0], p[1], amount, day), pairs, amounts, days)
spends = st.tuples(st.just("spend"), st.sampled_from(sorted(COMMUNITIES)), amounts, days)
ops = st.one_of(
    transfers,
    transfers,
    spends,
    spends,
    spends,
    st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=20), days),
    st.tuples(st.just("return"), unit_index, amounts, days),
)


def check_invariants(line: FundingLine) -> None:
    units = line.units()
    for unit in units:
        for day in sorted({d for d, _k, _a in line.movements[unit]}):
            assert line.balance(unit, day) >= 0, (unit, day)
    totals = [line.totals(unit) for unit in units]
    left = sum(t["balance"] + t["spent"] - t["reversed"] for t in totals)
    assert left == line.amount - sum(t["returned"] for t in totals)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    granted=st.integers(min_value=1, max_value=2_000_000),
    to=st.sampled_from(UNITS),
    steps=st.lists(ops, min_size=2, max_size=20),
)
def test_any_sequence_keeps_balances_and_the_sum(
    funds_store: LedgerService, granted: int, to: UnitRef, steps: list[Any]
) -> None:
    funds = Funds(funds_store)
    document = f"D-{uuid.uuid4().hex[:10]}"
    made = funds.allocate(department="民政局", document=document, purpose="p", amount=granted, unit=to,
                          on=START, actor=ACTOR)  # fmt: skip
    line = uuid.UUID(made["line_id"])
    vouchers: list[tuple[str, int]] = []
    for step in steps:
        try:
            if step[0] == "transfer":
                _, a, b, amount, day = step
                funds.transfer(line=line, from_unit=UNITS[a], to_unit=UNITS[b], amount=amount,
                               on=START + timedelta(days=day), note=None, actor=ACTOR)  # fmt: skip
            elif step[0] == "spend":
                _, community, amount, day = step
                voucher = f"V-{uuid.uuid4().hex[:8]}"
                funds.spend(line=line, community=community, amount=amount, on=START + timedelta(days=day), purpose="p",
                            voucher=voucher, payee=None, actor=ACTOR)  # fmt: skip
                vouchers.append((community, voucher))
            elif step[0] == "reverse":
                _, k, day = step
                if not vouchers:
                    continue
                community, voucher = vouchers[k % len(vouchers)]
                if True:
                    funds.reverse(community=community, voucher=voucher, year=2026, on=START + timedelta(days=day),
                                  reason="r", actor=ACTOR)  # fmt: skip
            else:
                _, a, amount, day = step
                funds.return_unspent(line=line, unit=UNITS[a], amount=amount, on=START + timedelta(days=day),
                                     reason="r", actor=ACTOR)  # fmt: skip
        except LedgerError:
            pass  # refused by a rule: nothing written (the invariants below hold either way)
        else:
            event("accepted " + step[0])
        check_invariants(funds.line(line))
    stored = funds.line(line)  # loaded fresh from the store, not the object the writes used
    check_invariants(stored)


# ---- one voucher number, two lines, two writers ------------------------------------------------------------
class _Racing(Funds):
    """Waits for the other writer after deciding, before saving (first attempt only)."""

    def __init__(self, service: LedgerService, barrier: threading.Barrier) -> None:
        super().__init__(service)
        self.barrier = barrier
        self.waited = False

    def check_records(self, community: str, records: Any) -> None:
        super().check_records(community, records)
        if not self.waited:
            self.waited = True
            self.barrier.wait(timeout=30)


def test_two_concurrent_spends_with_one_voucher_number_store_exactly_one(funds_store: LedgerService) -> None:
    service = funds_store
    funds = Funds(service)
    lines = []
    for n in (1, 2):
        made = funds.allocate(department="妇联", document=f"R-{uuid.uuid4().hex[:8]}-{n}", purpose="p", amount=10_000,
                              unit=UnitRef("community", community="HZ-001"), on=START, actor=ACTOR)  # fmt: skip
        lines.append(uuid.UUID(made["line_id"]))
    voucher = f"DUP-{uuid.uuid4().hex[:6]}"
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def spend(i: int) -> None:
        other = LedgerService.open(service.store, service.key_file)
        try:
            outcomes[i] = _Racing(other, barrier).spend(line=lines[i], community="HZ-001", amount=100,
                                                        on=date(2026, 2, 1), purpose="p", voucher=voucher,
                                                        payee="王小明", actor=ACTOR)  # fmt: skip
        except Exception as e:  # noqa: BLE001 — the outcome is what the test looks at
            outcomes[i] = e
        finally:
            other.close()

    threads = [threading.Thread(target=spend, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, AlreadyExists)]
    assert len(done) == 1 and len(refused) == 1, outcomes
    assert f"voucher {voucher}" in str(refused[0]) and "already used by spend" in str(refused[0])
    spent = [funds.line(line).spends for line in lines]
    assert sum(len(s) for s in spent) == 1
    claim = funds.voucher("HZ-001", 2026, voucher)
    assert claim is not None and claim.spend_id == done[0]["spend_id"]
    assert claim.line == done[0]["line_id"]


def test_the_payee_opens_with_its_community_year_key(funds_store: LedgerService) -> None:
    funds = Funds(funds_store)
    made = funds.allocate(department="残联", document=f"P-{uuid.uuid4().hex[:8]}", purpose="p", amount=10_000,
                          unit=UnitRef("community", community="HZ-002"), on=START, actor=ACTOR)  # fmt: skip
    line = uuid.UUID(made["line_id"])
    spent = funds.spend(line=line, community="HZ-002", amount=1, on=date(2026, 2, 1), purpose="p",
                        voucher=f"P-{uuid.uuid4().hex[:6]}", payee="李秀兰", actor=ACTOR)  # fmt: skip
    stored = funds.line(line)
    events = funds_store.app.events.get(line)
    envelope = next(e.payee for e in events if isinstance(e, FundingLine.Spent))
    assert envelope["key_id"] == "payee:HZ-002/2026"
    assert funds.payee("community:HZ-002", spent["spend_id"], "2026-02-01", envelope) == "李秀兰"
    assert stored.spends[spent["spend_id"]][0] == "community:HZ-002"


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12,000.00", 1_200_000), ("1.2万", 1_200_000), ("12000", 1_200_000), ("0.01", 1), ("￥350.5元", 35_050),
     ("１２３", 12_300), ("1.234567万", 1_234_567), (12000, 1_200_000), (1200.5, 120_050)],
)  # fmt: skip
def test_parse_yuan_is_exact(text: Any, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text", ["1.234", "-1", "0", "0.00", "1e5", "nan", "inf", "12,00", "1,2345", "", " ", "1.2.3", "1.23456789万",
             0.1 + 0.2, True, "0x10", "1_000"],
)  # fmt: skip
def test_parse_yuan_refuses_naming_option_and_value(text: Any) -> None:
    with pytest.raises(models.Malformed) as refused:
        parse_yuan(text, "--amount")
    assert refused.value.field == "--amount"


def test_two_concurrent_imports_with_one_voucher_number_store_exactly_one(
    funds_store: LedgerService, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The import's one transaction loses the race like a single spend: it is judged again and refused."""
    from commands import funds_import
    from commands.importer import ImportRefused
    from tests.e2e.conftest import write_csv

    tmp = tmp_path_factory.mktemp("race-import")
    service = funds_store
    documents = [f"I-{uuid.uuid4().hex[:8]}-{n}" for n in (1, 2)]
    for document in documents:
        Funds(service).allocate(department="团委", document=document, purpose="p", amount=10_000,
                                unit=UnitRef("community", community="HZ-003"), on=START, actor=ACTOR)  # fmt: skip
    voucher = f"IMP-{uuid.uuid4().hex[:6]}"
    files = [
        write_csv(tmp / f"s{n}.csv", [["资金来源", "文号", "社区", "支出日期", "凭证号", "摘要", "金额（元）"],
                                      ["团委", document, "HZ-003", "2026-02-01", voucher, "p", "1"]])
        for n, document in enumerate(documents)
    ]  # fmt: skip
    barrier = threading.Barrier(2)
    waited = threading.local()
    real = funds_import._Attempt.know_claims

    def racing(self: Any, rows: Any) -> None:
        real(self, rows)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait(timeout=30)

    outcomes: list[Any] = [None, None]

    def run(i: int) -> None:
        other = LedgerService.open(service.store, service.key_file)
        try:
            outcomes[i] = funds_import.import_funds(other, "spending", files[i], ACTOR)
        except Exception as e:  # noqa: BLE001 — the outcome is what the test looks at
            outcomes[i] = e
        finally:
            other.close()

    funds_import._Attempt.know_claims = racing  # type: ignore[method-assign]
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        funds_import._Attempt.know_claims = real  # type: ignore[method-assign]
    done = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, ImportRefused)]
    assert len(done) == 1 and done[0].added == 1 and len(refused) == 1, outcomes
    assert "already used by spend" in str(refused[0].result.problems[0])
    claim = Funds(service).voucher("HZ-003", 2026, voucher)
    assert claim is not None
    lines = [Funds(service).line(line_id("团委", d)) for d in documents]
    assert sum(len(line.spends) for line in lines) == 1
