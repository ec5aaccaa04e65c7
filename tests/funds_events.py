"""Funding-line events for tests, saved straight through the application (no `funds` write command needed).

`Funds(url, key)` opens the store as a later CLI call would and writes FundingLine / Voucher
aggregates the way the write side does: payee names sealed like residents' names, the voucher
claim saved with its spend.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from commands.app import Change, KeySession, LedgerService
from commands.funds_history import payee_binding
from domain.funds import FundingLine, Voucher, line_id
from domain.units import UnitRef
from infra import crypto
from infra.store import parse_url


class Funds:
    def __init__(self, service: LedgerService, actor: str = "sup01") -> None:
        self.service = service
        self.actor = actor
        self.units = {code: (county, township) for code, county, township in service.recorder.units()}

    def unit(self, text: str) -> UnitRef:
        level, _, rest = text.partition(":")
        if level == "county":
            return UnitRef("county", county=rest)
        if level == "township":
            county, _, township = rest.partition("/")
            return UnitRef("township", county=county, township=township)
        county, township = self.units[rest]
        return UnitRef("community", county=county, township=township, community=rest)

    def _save(self, decide: Any) -> Any:
        return self.service._write(decide)

    def get(self, line: UUID) -> FundingLine:
        return self.service.app.repository.get(line)  # type: ignore[no-any-return]

    def allocate(
        self, department: str, document: str, amount: int, unit: str, on: str, purpose: str = "服务经费"
    ) -> UUID:
        def decide(_keys: KeySession) -> Change:
            line = FundingLine.allocate(
                department=department,
                document=document,
                purpose=purpose,
                amount=amount,
                unit=unit,
                on=on,
                actor=self.actor,
            )
            return Change(line.id, [line])

        return self._save(decide)  # type: ignore[no-any-return]

    def transfer(self, line: UUID, source: str, target: str, amount: int, on: str) -> str:
        entry = str(uuid.uuid4())

        def decide(_keys: KeySession) -> Change:
            aggregate = self.get(line)
            aggregate.transfer(
                transfer_id=entry,
                from_unit=self.unit(source),
                to_unit=self.unit(target),
                amount=amount,
                on=on,
                note=None,
                actor=self.actor,
            )
            return Change(entry, [aggregate])

        return self._save(decide)  # type: ignore[no-any-return]

    def spend(
        self,
        line: UUID,
        community: str,
        amount: int,
        on: str,
        voucher: str,
        payee: str | None = None,
        records: tuple[str, ...] = (),
        purpose: str = "服务支出",
        actor: str = "clerk01",
    ) -> str:
        entry = str(uuid.uuid4())

        def decide(keys: KeySession) -> Change:
            aggregate = self.get(line)
            envelope = None
            if payee is not None:
                where = payee_binding(f"community:{community}", entry, on)
                envelope = crypto.seal(where, keys.get_or_create(where.key_id), payee)
            aggregate.spend(
                spend_id=entry,
                community=community,
                amount=amount,
                on=on,
                purpose=purpose,
                voucher=voucher,
                payee=envelope,
                records=records,
                actor=actor,
            )
            claim = Voucher.claim(community=community, on=on, voucher=voucher, line=line, spend_id=entry, actor=actor)
            return Change(entry, [aggregate, claim])

        return self._save(decide)  # type: ignore[no-any-return]

    def reverse(self, line: UUID, spend_id: str, on: str, reason: str, actor: str = "clerk01") -> None:
        def decide(_keys: KeySession) -> Change:
            aggregate = self.get(line)
            aggregate.reverse(spend_id=spend_id, on=on, reason=reason, actor=actor)
            return Change(spend_id, [aggregate])

        self._save(decide)

    def give_back(self, line: UUID, unit: str, amount: int, on: str, reason: str = "项目结余") -> str:
        entry = str(uuid.uuid4())

        def decide(_keys: KeySession) -> Change:
            aggregate = self.get(line)
            aggregate.return_unspent(return_id=entry, unit=unit, amount=amount, on=on, reason=reason, actor=self.actor)
            return Change(entry, [aggregate])

        return self._save(decide)  # type: ignore[no-any-return]


@contextmanager
def funds(url: str, key: Path, actor: str = "sup01") -> Iterator[Funds]:
    service = LedgerService.open(parse_url(url), key)
    try:
        yield Funds(service, actor)
    finally:
        service.close()


__all__ = ["Funds", "funds", "line_id"]
