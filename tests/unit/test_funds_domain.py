"""The funding line's rules, on the aggregate alone (no store): money never goes negative,
passes only down, and every fen is accounted for."""

from __future__ import annotations

from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.funds import FundingLine, Voucher, line_id, voucher_id, yuan
from domain.units import UnitRef

COUNTY = UnitRef("county", county="八步区")
TOWN = UnitRef("township", county="八步区", township="贺街镇")
OTHER_TOWN = UnitRef("township", county="八步区", township="莲塘镇")
VILLAGE = UnitRef("community", county="八步区", township="贺街镇", community="HJ-001")
FAR_VILLAGE = UnitRef("community", county="八步区", township="莲塘镇", community="LT-001")


def grant(amount: int = 1_000_000, unit: UnitRef = COUNTY, on: str = "2026-01-10") -> FundingLine:
    return FundingLine.allocate(
        department="民政局",
        document="贺民发〔2026〕3号",
        purpose="幸福院运营",
        amount=amount,
        unit=unit,
        on=on,
        actor="admin",
    )


def test_the_same_department_and_document_is_the_same_line() -> None:
    assert grant().id == line_id(" 民政局", "贺民发〔2026〕3号 ")
    assert line_id("民政局", "A") != line_id("妇联", "A")


def test_money_passes_down_and_is_spent_to_the_fen() -> None:
    line = grant()
    line.transfer(
        transfer_id="t1", from_unit=COUNTY, to_unit=TOWN, amount=600_000, on="2026-02-01", note=None, actor="s"
    )
    line.transfer(
        transfer_id="t2", from_unit=TOWN, to_unit=VILLAGE, amount=250_050, on="2026-02-03", note="首批", actor="s"
    )
    line.spend(spend_id="p1", community="HJ-001", amount=120_000, on="2026-02-10", purpose="慰问", voucher="记-001",
               payee=None, records=["r2", "r1", "r1"], actor="c")  # fmt: skip
    assert line.balance(str(COUNTY)) == 400_000
    assert line.balance(str(TOWN)) == 349_950
    assert line.balance(str(VILLAGE)) == 130_050
    assert line.balance(str(VILLAGE), "2026-02-09") == 250_050
    assert line.totals(str(VILLAGE))["spent"] == 120_000
    assert line.pending_events[-1].records == ["r1", "r2"]
    line.reverse(spend_id="p1", on="2026-03-01", reason="重复报销", actor="c")
    assert line.balance(str(VILLAGE)) == 250_050
    with pytest.raises(NotActive, match="already reversed"):
        line.reverse(spend_id="p1", on="2026-03-02", reason="again", actor="c")


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [(TOWN, COUNTY, "never up"), (TOWN, FAR_VILLAGE, "never sideways"), (TOWN, OTHER_TOWN, "never sideways")],
)
def test_money_never_goes_up_or_sideways(source: UnitRef, target: UnitRef, message: str) -> None:
    line = grant()
    line.transfer(transfer_id="t1", from_unit=COUNTY, to_unit=TOWN, amount=500, on="2026-02-01", note=None, actor="s")
    with pytest.raises(RuleViolation, match=message):
        line.transfer(
            transfer_id="t2", from_unit=source, to_unit=target, amount=100, on="2026-02-02", note=None, actor="s"
        )


def test_a_unit_cannot_pass_down_what_it_does_not_hold_on_that_date() -> None:
    line = grant(amount=1000)
    with pytest.raises(RuleViolation, match="holds 10.00 yuan .* less than 10.01"):
        line.transfer(
            transfer_id="t1", from_unit=COUNTY, to_unit=TOWN, amount=1001, on="2026-02-01", note=None, actor="s"
        )
    with pytest.raises(NotFound, match="received no money"):
        line.transfer(
            transfer_id="t1", from_unit=TOWN, to_unit=VILLAGE, amount=1, on="2026-02-01", note=None, actor="s"
        )
    with pytest.raises(RuleViolation, match="allocated on 2026-01-10"):
        line.transfer(transfer_id="t1", from_unit=COUNTY, to_unit=TOWN, amount=1, on="2026-01-09", note=None, actor="s")


def test_a_backdated_spend_cannot_take_money_a_later_spend_already_used() -> None:
    line = grant(amount=1000, unit=VILLAGE)
    line.spend(
        spend_id="p1", community="HJ-001", amount=800, on="2026-03-01", purpose="x", voucher="1", payee=None, actor="c"
    )
    with pytest.raises(RuleViolation, match="short of line .* on 2026-03-01"):
        line.spend(
            spend_id="p2",
            community="HJ-001",
            amount=300,
            on="2026-02-01",
            purpose="x",
            voucher="2",
            payee=None,
            actor="c",
        )
    line.spend(
        spend_id="p2", community="HJ-001", amount=200, on="2026-02-01", purpose="x", voucher="2", payee=None, actor="c"
    )
    assert line.balance(str(VILLAGE)) == 0


def test_amounts_are_whole_fen_above_zero() -> None:
    for bad in (0, -5, 1.5, True, "100"):
        with pytest.raises(RuleViolation, match="amount"):
            grant(amount=bad)  # type: ignore[arg-type]


def test_entry_ids_are_unique_on_a_line_and_only_spends_reverse() -> None:
    line = grant()
    line.transfer(transfer_id="t1", from_unit=COUNTY, to_unit=TOWN, amount=5, on="2026-02-01", note=None, actor="s")
    with pytest.raises(AlreadyExists):
        line.transfer(transfer_id="t1", from_unit=COUNTY, to_unit=TOWN, amount=5, on="2026-02-01", note=None, actor="s")
    with pytest.raises(NotFound, match="no spend t1"):
        line.reverse(spend_id="t1", on="2026-02-02", reason="x", actor="s")


def test_a_voucher_claim_is_keyed_by_community_year_and_number() -> None:
    claim = Voucher.claim(
        community="HJ-001", on="2026-05-01", voucher=" 记-7 ", line=grant().id, spend_id="p", actor="c"
    )
    assert claim.id == voucher_id("community:HJ-001", 2026, "记-7")
    assert claim.id != voucher_id("community:HJ-001", 2027, "记-7")


def test_yuan_formats_fen() -> None:
    assert [yuan(0), yuan(5), yuan(123_456_789), yuan(-1050)] == ["0.00", "0.05", "1,234,567.89", "-10.50"]


# ---- any sequence of entries -------------------------------------------------------------------
UNITS = [COUNTY, TOWN, OTHER_TOWN, VILLAGE, FAR_VILLAGE]
DAYS = [f"2026-0{m}-{d:02d}" for m in (1, 2, 3) for d in (5, 15, 25)]
step = st.tuples(
    st.sampled_from(["transfer", "spend", "reverse", "return"]),
    st.sampled_from(UNITS),
    st.sampled_from(UNITS),
    st.integers(min_value=1, max_value=400_000),
    st.sampled_from(DAYS),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40))
def test_any_sequence_keeps_every_balance_non_negative_and_every_fen_accounted(steps: list) -> None:
    line = grant(amount=1_000_000, on="2026-01-05")
    ids = count()
    for kind, a, b, amount, day in steps:
        try:
            if kind == "transfer":
                line.transfer(
                    transfer_id=f"t{next(ids)}", from_unit=a, to_unit=b, amount=amount, on=day, note=None, actor="s"
                )
            elif kind == "spend" and a.level == "community":
                line.spend(spend_id=f"p{next(ids)}", community=a.community, amount=amount, on=day, purpose="x",
                           voucher=str(amount), payee=None, actor="c")  # fmt: skip
            elif kind == "reverse" and line.spends:
                line.reverse(spend_id=sorted(line.spends)[amount % len(line.spends)], on=day, reason="x", actor="c")
            elif kind == "return":
                line.return_unspent(return_id=f"r{next(ids)}", unit=a, amount=amount, on=day, reason="x", actor="s")
        except (RuleViolation, NotFound, NotActive):
            pass
    for unit in line.units():
        for day in DAYS:
            assert line.balance(unit, day) >= 0, (unit, day)
    sums = {u: line.totals(u) for u in line.units()}
    spent = sum(s["spent"] - s["reversed"] for s in sums.values())
    returned = sum(s["returned"] for s in sums.values())
    held = sum(s["balance"] for s in sums.values())
    assert held + spent == line.amount - returned
    assert sum(s["received"] for s in sums.values()) == sum(s["passed_down"] for s in sums.values())
    # Replaying the stored events gives the same books.
    replayed = None
    for event in line.collect_events():
        replayed = event.mutate(replayed)
    assert replayed is not None and {u: replayed.totals(u) for u in replayed.units()} == sums
