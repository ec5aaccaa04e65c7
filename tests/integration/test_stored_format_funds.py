"""The funding ledger's events are forever too: a store written by its first version must still load.

tests/fixtures/store_funds_v1 was written by tests/fixtures/make_store_funds_v1.py with the first
version of the funding ledger (issue 15). Never regenerate it: when a funds event changes shape,
add an upcaster and a store beside this one, and keep this test passing.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from eventsourcing.utils import resolve_topic

from commands.app import LedgerService
from commands.funds import Funds
from domain.funds import FundingLine, Voucher, line_id, voucher_id
from infra.codec import OrjsonMapper
from infra.store import parse_url
from tests.e2e.conftest import Cli

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "store_funds_v1"
LINE = ("民政局", "贺民发〔2026〕12号")
# What the fixture's history leaves each unit holding, worked out by hand from make_store_funds_v1.py.
BALANCES = {"county:八步区": 500_000, "township:八步区/贺街镇": 100_000, "community:HZ-001": 464_950}


@pytest.fixture
def copy(tmp_path: Path) -> Cli:
    """A copy of the fixture store (opening a store may write to it)."""
    shutil.copy(FIXTURE / "taizhang.db", tmp_path / "taizhang.db")
    shutil.copy(FIXTURE / "taizhang.key", tmp_path / "taizhang.key")
    return Cli(f"sqlite:///{tmp_path / 'taizhang.db'}", tmp_path / "taizhang.key")


@pytest.fixture
def service(copy: Cli) -> LedgerService:
    opened = LedgerService.open(parse_url(copy.url), copy.key)
    yield opened
    opened.close()


def test_every_funds_event_decodes_with_its_registered_topic(service: LedgerService) -> None:
    mapper = OrjsonMapper()
    notifications = service.recorder.select_notifications(1, 10_000)
    funds = Counter(n.topic for n in notifications if n.topic.startswith(("taizhang:FundingLine", "taizhang:Voucher")))
    assert funds == {
        "taizhang:FundingLine.Allocated": 1,
        "taizhang:FundingLine.Transferred": 2,
        "taizhang:FundingLine.Spent": 2,
        "taizhang:Voucher.Claimed": 2,
        "taizhang:FundingLine.Reversed": 1,
        "taizhang:FundingLine.Returned": 1,
    }
    for notification in notifications:
        event = mapper.to_domain_event(notification)
        assert type(event) is resolve_topic(notification.topic)


def test_the_line_replays_to_the_balances_it_had(service: LedgerService) -> None:
    line = service.app.repository.get(line_id(*LINE))
    assert isinstance(line, FundingLine)
    assert {unit: line.balance(unit) for unit in line.units()} == BALANCES
    assert line.balance("community:HZ-001", "2026-03-05") == 500_000 - 35_050
    claim = service.app.repository.get(voucher_id("community:HZ-001", 2026, "记-001"))
    assert isinstance(claim, Voucher) and claim.line == str(line.id)


def test_the_payee_opens_with_the_fixture_key(service: LedgerService) -> None:
    line = service.app.repository.get(line_id(*LINE))
    spend_id = next(s for s, (_c, amount, *_rest) in line.spends.items() if amount == 35_050)
    stored = [n for n in service.recorder.select_notifications(1, 10_000) if n.topic == "taizhang:FundingLine.Spent"]
    spent = OrjsonMapper().to_domain_event(stored[0])
    assert Funds(service).payee("community:HZ-001", spend_id, spent.on, spent.payee) == "张秀英"


def test_the_chain_verifies_and_rebuilt_views_give_the_same_ledger(copy: Cli) -> None:
    copy.ok("audit", "verify", "--views")
    copy.ok("projections", "rebuild")
    rows = copy.json("funds", "ledger", "--by", "unit")
    assert {r["unit"]: r["balance"] for r in rows if r["balance"] or r["unit"] in BALANCES} == BALANCES


def test_the_old_store_takes_new_entries_and_keeps_its_vouchers(copy: Cli) -> None:
    spend = ("funds", "spend", "HZ-001", "--department", LINE[0], "--document", LINE[1], "--amount", "1",
             "--purpose", "p", "--on", "2026-07-01")  # fmt: skip
    copy.ok(*spend, "--voucher", "记-003")
    taken = copy(*spend, "--voucher", "记-001")
    assert taken.exit_code == 1 and "记-001" in taken.stderr
