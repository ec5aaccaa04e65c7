"""Funding lines saved straight through the application (the write commands are another module's):
a small city of communities, and lines allocated, transferred, spent, reversed and returned."""

from __future__ import annotations

import uuid
from typing import Any

from commands.app import LedgerService
from domain.funds import FundingLine, Voucher, line_id
from domain.units import UnitRef, parse_unit
from tests.helpers import establish

ACTOR = "clerk"
# code -> (county, township)
CITY = {
    "HZ-A": ("八步区", "贺街镇"),
    "HZ-B": ("八步区", "贺街镇"),
    "HZ-C": ("八步区", "信都镇"),
    "ZS-D": ("钟山县", "城关镇"),
}


def city(service: LedgerService, codes: dict[str, tuple[str, str]] | None = None) -> dict[str, tuple[str, str]]:
    codes = codes or CITY
    for code, (county, township) in codes.items():
        establish(service, code, county=county, township=township, name=f"{code}社区")
    return codes


def located(unit: str, codes: dict[str, tuple[str, str]] | None = None) -> UnitRef:
    ref = parse_unit(unit)
    if ref.level == "community":
        county, township = (codes or CITY)[ref.community]
        return UnitRef("community", county=county, township=township, community=ref.community)
    return ref


class Lines:
    """Funding lines of one store, written through `service.app.save`."""

    def __init__(
        self, service: LedgerService, codes: dict[str, tuple[str, str]] | None = None, actor: str = ACTOR
    ) -> None:
        self.service = service
        self.codes = codes or CITY
        self.actor = actor

    def get(self, line: uuid.UUID | str) -> FundingLine:
        return self.service.app.repository.get(uuid.UUID(str(line)))  # type: ignore[no-any-return]

    def allocate(
        self, department: str, document: str, amount: int, unit: str, on: str, purpose: str = "社区服务"
    ) -> str:
        line = FundingLine.allocate(
            department=department, document=document, purpose=purpose, amount=amount, unit=unit, on=on, actor=self.actor
        )
        self.service.app.save(line)
        return str(line_id(department, document))

    def transfer(self, line: str, source: str, target: str, amount: int, on: str) -> str:
        aggregate = self.get(line)
        entry = str(uuid.uuid4())
        aggregate.transfer(
            transfer_id=entry,
            from_unit=located(source, self.codes),
            to_unit=located(target, self.codes),
            amount=amount,
            on=on,
            note=None,
            actor=self.actor,
        )
        self.service.app.save(aggregate)
        return entry

    def spend(self, line: str, community: str, amount: int, on: str, voucher: str | None = None, **more: Any) -> str:
        aggregate = self.get(line)
        entry = str(uuid.uuid4())
        number = voucher or f"V{entry[:6]}"
        aggregate.spend(
            spend_id=entry,
            community=community,
            amount=amount,
            on=on,
            purpose=more.pop("purpose", "幸福院餐费"),
            voucher=number,
            payee=None,
            actor=self.actor,
            **more,
        )
        claim = Voucher.claim(
            community=community, on=on, voucher=number, line=aggregate.id, spend_id=entry, actor=self.actor
        )
        self.service.app.save(aggregate, claim)
        return entry

    def reverse(self, line: str, spend_id: str, on: str, reason: str = "凭证有误") -> None:
        aggregate = self.get(line)
        aggregate.reverse(spend_id=spend_id, on=on, reason=reason, actor=self.actor)
        self.service.app.save(aggregate)

    def give_back(self, line: str, unit: str, amount: int, on: str) -> str:
        aggregate = self.get(line)
        entry = str(uuid.uuid4())
        aggregate.return_unspent(return_id=entry, unit=unit, amount=amount, on=on, reason="项目结余", actor=self.actor)
        self.service.app.save(aggregate)
        return entry
