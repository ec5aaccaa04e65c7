"""The funding ledger (资金台账): every yuan from the granting department to the voucher that spent it.

One `FundingLine` aggregate per line of money: a department's grant under one document
number (文号), id = uuid5 of department + document number, so the same grant typed twice is
the same line. Its events:

- `Allocated` (下达): the department grants `amount` to a unit (county, township or community).
- `Transferred` (拨付): a unit passes money of the line down to a unit strictly inside it
  (county → township or community, township → community); never up, never sideways.
- `Spent` (支出): a community pays from the line: amount, date, purpose, voucher number (凭证号),
  payee (a person's name is personal data: an encrypted envelope, like residents' names),
  and what it paid for (service record ids, a project, a happiness home).
- `Reversed` (红字冲销): a spend is cancelled in full by a red-letter entry with a reason, dated on
  or after the spend; the spend itself is never edited. Its voucher number stays used.
- `Returned` (退回): a unit returns unspent money of the line to the department.

Rules (checked here, on the line's own history):
- amounts are whole fen (int > 0), never floats;
- no unit spends, passes down or returns more than it holds of the line *on that date*: for
  every day on or after the entry's day, the unit's balance at the end of the day stays ≥ 0
  (so a back-dated spend cannot take money a later spend already used);
- a transfer goes from a unit that has received money of the line to a unit inside it;
- only communities spend; a reversal reverses a spend of this line once.

Rules that need other aggregates are the application's (commands.funds): closed periods (结账)
of the communities involved, linked service records existing in the spending community, the
department list, and voucher numbers unique per community and year — a `Voucher` aggregate
(id = uuid5 of community + year + voucher number) is created in the same save as the spend, so
two spends with one voucher number cannot both be stored, even from two lines at once.

Stored-format rules as in domain.community: explicit stable topics, flat primitive payloads,
amounts in fen as integers, dates as ISO `YYYY-MM-DD` text. Amounts here are the line's own
units: the sum over units of their balances always equals allocated − returned − spent + reversed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.units import UnitRef, parse_unit

FUNDING_LINE_NAMESPACE = UUID("5e1f0b7a-3c4d-4e2f-9a8b-7c6d5e4f3a21")
VOUCHER_NAMESPACE = UUID("6a2b1c8d-4e5f-4a3b-8c9d-0e1f2a3b4c52")

# The departments a county usually pools money from. The list a store accepts is configurable
# (commands.funds); these slugs are only the default and, once stored, are text forever.
DEFAULT_DEPARTMENTS = (
    "民政局",
    "农业农村局",
    "乡村振兴局",
    "财政局",
    "组织部",
    "妇联",
    "残联",
    "卫健局",
    "人社局",
    "教育局",
    "团委",
    "老龄办",
)

MAX_AMOUNT = 10**13  # fen: 100 billion yuan, far above any grant; refuses typing slips of many zeros

Envelope = dict[str, Any]
"""An encrypted field (see domain.community.Envelope). The domain never opens one."""

# The kinds of movement kept per unit, in the order `movements` stores them.
ALLOCATED, RECEIVED, PASSED_DOWN, SPENT, REVERSED, RETURNED = (
    "allocated",
    "received",
    "passed_down",
    "spent",
    "reversed",
    "returned",
)


def line_id(department: str, document: str) -> UUID:
    """The funding line of a department's document number (文号): the same grant is one line."""
    return uuid5(FUNDING_LINE_NAMESPACE, f"{department.strip()}\x1f{document.strip()}")


def voucher_id(community: str, year: int, voucher: str) -> UUID:
    """The claim on a voucher number (凭证号) in a community's year."""
    return uuid5(VOUCHER_NAMESPACE, f"{community}\x1f{year:04d}\x1f{voucher.strip()}")


def _day(value: date | str) -> str:
    text = value if isinstance(value, str) else value.isoformat()
    try:
        date.fromisoformat(text)
    except ValueError:
        raise RuleViolation(f"not a date (YYYY-MM-DD): {text!r}") from None
    return text


def _amount(value: int, field: str = "amount") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleViolation(f"{field} must be a whole number of fen, got {value!r}")
    if value <= 0:
        raise RuleViolation(f"{field} must be more than 0, got {value}")
    if value > MAX_AMOUNT:
        raise RuleViolation(f"{field} is implausibly large: {value} fen")
    return value


def _text(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleViolation(f"{field} must not be empty")
    return value.strip()


def yuan(fen: int) -> str:
    """`1234567` -> `12,345.67` (for messages; output formatting lives in commands)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


class FundingLine(Aggregate):
    """One department's grant under one document number, followed to every voucher."""

    TOPIC = "taizhang:FundingLine"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:FundingLine.Created"

    class Allocated(Created):
        TOPIC = "taizhang:FundingLine.Allocated"
        department: str
        document: str
        purpose: str
        amount: int
        unit: str
        on: str

    class Transferred(Event):
        TOPIC = "taizhang:FundingLine.Transferred"
        transfer_id: str
        from_unit: str
        to_unit: str
        amount: int
        on: str
        note: str | None

        def apply(self, line: FundingLine) -> None:
            line._move(self.from_unit, self.on, PASSED_DOWN, self.amount)
            line._move(self.to_unit, self.on, RECEIVED, self.amount)
            line.parents[self.to_unit] = self.from_unit
            line.entries[self.transfer_id] = TRANSFER

    class Spent(Event):
        TOPIC = "taizhang:FundingLine.Spent"
        spend_id: str
        community: str
        amount: int
        on: str
        purpose: str
        voucher: str
        payee: Envelope | None
        records: list[str]
        project: str | None
        home: str | None

        def apply(self, line: FundingLine) -> None:
            line._move(self.community, self.on, SPENT, self.amount)
            line.spends[self.spend_id] = [self.community, self.amount, self.on, self.voucher, None]
            line.entries[self.spend_id] = SPEND

    class Reversed(Event):
        TOPIC = "taizhang:FundingLine.Reversed"
        spend_id: str
        community: str
        amount: int
        on: str
        reason: str

        def apply(self, line: FundingLine) -> None:
            line._move(self.community, self.on, REVERSED, self.amount)
            line.spends[self.spend_id][4] = self.on

    class Returned(Event):
        TOPIC = "taizhang:FundingLine.Returned"
        return_id: str
        unit: str
        amount: int
        on: str
        reason: str

        def apply(self, line: FundingLine) -> None:
            line._move(self.unit, self.on, RETURNED, self.amount)
            line.entries[self.return_id] = RETURN

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:FundingLine.Snapshot"

    # ---- construction ---------------------------------------------------------------
    def __init__(self, department: str, document: str, purpose: str, amount: int, unit: str, on: str) -> None:
        self.department = department
        self.document = document
        self.purpose = purpose
        self.amount = amount
        self.unit = unit
        self.on = on
        # unit -> [[day, kind, amount], …] in log order: every movement of the line's money.
        self.movements: dict[str, list[list[Any]]] = {}
        self.parents: dict[str, str] = {}  # unit -> the unit it received the line's money from
        # spend id -> [community, amount, day, voucher, reversed on | None]
        self.spends: dict[str, list[Any]] = {}
        self.entries: dict[str, str] = {}  # every transfer/spend/return id of the line -> its kind
        # unit -> [its latest day, its balance]: derived from movements, so a debit dated on or after
        # every other movement of the unit (a ledger kept in date order) is judged without a scan.
        self.tails: dict[str, list[Any]] = {}
        self._move(unit, on, ALLOCATED, amount)

    @classmethod
    def allocate(
        cls,
        *,
        department: str,
        document: str,
        purpose: str,
        amount: int,
        unit: UnitRef | str,
        on: date | str,
        actor: str,
    ) -> FundingLine:
        """下达: a department grants `amount` fen to a unit under a document number."""
        department = _text(department, "department")
        document = _text(document, "document")
        unit_text = str(unit if isinstance(unit, UnitRef) else parse_unit(unit))
        return cls._create(
            cls.Allocated,
            id=line_id(department, document),
            department=department,
            document=document,
            purpose=_text(purpose, "purpose"),
            amount=_amount(amount),
            unit=unit_text,
            on=_day(on),
            actor=actor,
        )

    # ---- balances -------------------------------------------------------------------
    def _move(self, unit: str, day: str, kind: str, amount: int) -> None:
        self.movements.setdefault(unit, []).append([day, kind, amount])
        tail = self.tails.setdefault(unit, ["", 0])
        tail[0] = max(tail[0], day)
        tail[1] += self._signed(kind, amount)

    @staticmethod
    def _signed(kind: str, amount: int) -> int:
        return amount if kind in (ALLOCATED, RECEIVED, REVERSED) else -amount

    def balance(self, unit: str, on: date | str | None = None) -> int:
        """What `unit` holds of this line at the end of `on` (today's books when None)."""
        day = None if on is None else _day(on)
        return sum(
            self._signed(kind, amount) for d, kind, amount in self.movements.get(unit, []) if day is None or d <= day
        )

    def totals(self, unit: str, on: date | str | None = None) -> dict[str, int]:
        """The unit's allocated, received, passed-down, spent, reversed and returned sums, and balance."""
        day = None if on is None else _day(on)
        sums = dict.fromkeys((ALLOCATED, RECEIVED, PASSED_DOWN, SPENT, REVERSED, RETURNED), 0)
        for d, kind, amount in self.movements.get(unit, []):
            if day is None or d <= day:
                sums[kind] += amount
        sums["balance"] = (
            sums[ALLOCATED] + sums[RECEIVED] + sums[REVERSED] - sums[PASSED_DOWN] - sums[SPENT] - sums[RETURNED]
        )
        return sums

    def units(self) -> list[str]:
        """Every unit the line's money reached, the granted unit first, then in order of arrival."""
        return list(self.movements)

    def _check_holds(self, unit: str, day: str, kind: str, amount: int) -> None:
        """Refuse a debit of `amount` on `day` that would leave `unit` short on that day or any later one."""
        last, held = self.tails.get(unit, ["", 0])
        if day >= last and held >= amount:
            return  # nothing of the unit is dated later: its balance after the debit is held - amount ≥ 0
        by_day: dict[str, int] = {}
        for d, k, a in [*self.movements.get(unit, []), [day, kind, amount]]:
            by_day[d] = by_day.get(d, 0) + self._signed(k, a)
        running = 0
        for d in sorted(by_day):
            running += by_day[d]
            if d >= day and running < 0:
                held = self.balance(unit, day)
                if d == day:
                    raise RuleViolation(
                        f"{unit} holds {yuan(held)} yuan of line {self.department} {self.document} on {day}, "
                        f"less than {yuan(amount)}"
                    )
                raise RuleViolation(
                    f"{unit} would be short of line {self.department} {self.document} on {d} "
                    f"by {yuan(-running)} yuan after paying out {yuan(amount)} on {day}"
                )

    def _check_after_grant(self, day: str) -> None:
        if day < self.on:
            raise RuleViolation(
                f"line {self.department} {self.document} was allocated on {self.on}; nothing on it can be dated {day}"
            )

    def _new_entry(self, entry_id: str) -> str:
        entry_id = _text(entry_id, "entry id")
        if entry_id in self.entries:
            raise AlreadyExists(f"entry {entry_id} is already on line {self.department} {self.document}")
        return entry_id

    # ---- commands -------------------------------------------------------------------
    def transfer(
        self,
        *,
        transfer_id: str,
        from_unit: UnitRef,
        to_unit: UnitRef,
        amount: int,
        on: date | str,
        note: str | None,
        actor: str,
    ) -> None:
        """拨付: pass money down from a unit to a unit inside it. Both refs located (community with
        its county and township filled in) so containment can be judged."""
        day, amount = _day(on), _amount(amount)
        source, target = str(from_unit), str(to_unit)
        self._check_after_grant(day)
        if source not in self.movements:
            raise NotFound(f"{source} has received no money of line {self.department} {self.document}")
        if not from_unit.contains(to_unit):
            if to_unit.contains(from_unit):
                raise RuleViolation(f"money passes down, never up: {target} is above {source}; return it instead")
            raise RuleViolation(f"{target} is not inside {source}: money passes down the hierarchy, never sideways")
        self._check_holds(source, day, PASSED_DOWN, amount)
        self.trigger_event(
            self.Transferred,
            transfer_id=self._new_entry(transfer_id),
            from_unit=source,
            to_unit=target,
            amount=amount,
            on=day,
            note=(note or "").strip() or None,
            actor=actor,
        )

    def spend(
        self,
        *,
        spend_id: str,
        community: str,
        amount: int,
        on: date | str,
        purpose: str,
        voucher: str,
        payee: Envelope | None,
        records: Iterable[str] = (),
        project: str | None = None,
        home: str | None = None,
        actor: str,
    ) -> None:
        """支出: a community pays from the line (the application claims the voucher number)."""
        day, amount = _day(on), _amount(amount)
        unit = str(parse_unit(community if community.startswith("community:") else f"community:{community}"))
        self._check_after_grant(day)
        if unit not in self.movements:
            raise NotFound(f"{unit} has received no money of line {self.department} {self.document}")
        linked = sorted({_text(r, "record") for r in records})
        self._check_holds(unit, day, SPENT, amount)
        self.trigger_event(
            self.Spent,
            spend_id=self._new_entry(spend_id),
            community=unit,
            amount=amount,
            on=day,
            purpose=_text(purpose, "purpose"),
            voucher=_text(voucher, "voucher"),
            payee=payee,
            records=linked,
            project=(project or "").strip() or None,
            home=(home or "").strip() or None,
            actor=actor,
        )

    def reverse(self, *, spend_id: str, on: date | str, reason: str, actor: str) -> None:
        """红字冲销: cancel a spend in full, dated on or after it; the money is the community's again."""
        day = _day(on)
        spend = self.spends.get(spend_id)
        if spend is None:
            raise NotFound(f"no spend {spend_id} on line {self.department} {self.document}")
        community, amount, spent_on, voucher, reversed_on = spend
        if reversed_on is not None:
            raise NotActive(f"spend {spend_id} (voucher {voucher}) was already reversed on {reversed_on}")
        if day < spent_on:
            raise RuleViolation(f"spend {spend_id} was made on {spent_on}; a reversal cannot be dated {day}")
        self.trigger_event(
            self.Reversed,
            spend_id=spend_id,
            community=community,
            amount=amount,
            on=day,
            reason=_text(reason, "reason"),
            actor=actor,
        )

    def return_unspent(
        self, *, return_id: str, unit: UnitRef | str, amount: int, on: date | str, reason: str, actor: str
    ) -> None:
        """退回: a unit returns unspent money of the line to the department."""
        day, amount = _day(on), _amount(amount)
        unit_text = str(unit if isinstance(unit, UnitRef) else parse_unit(unit))
        self._check_after_grant(day)
        if unit_text not in self.movements:
            raise NotFound(f"{unit_text} has received no money of line {self.department} {self.document}")
        self._check_holds(unit_text, day, RETURNED, amount)
        self.trigger_event(
            self.Returned,
            return_id=self._new_entry(return_id),
            unit=unit_text,
            amount=amount,
            on=day,
            reason=_text(reason, "reason"),
            actor=actor,
        )


TRANSFER, SPEND, RETURN = "transfer", "spend", "return"


class Voucher(Aggregate):
    """The claim on a voucher number (凭证号) in a community's year: stored with the spend that uses it."""

    TOPIC = "taizhang:Voucher"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:Voucher.Created"

    class Claimed(Created):
        TOPIC = "taizhang:Voucher.Claimed"
        community: str
        year: int
        voucher: str
        line: str
        spend_id: str

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:Voucher.Snapshot"

    def __init__(self, community: str, year: int, voucher: str, line: str, spend_id: str) -> None:
        self.community = community
        self.year = year
        self.voucher = voucher
        self.line = line
        self.spend_id = spend_id

    @classmethod
    def claim(cls, *, community: str, on: date | str, voucher: str, line: UUID, spend_id: str, actor: str) -> Voucher:
        unit = str(parse_unit(community if community.startswith("community:") else f"community:{community}"))
        year = int(_day(on)[:4])
        number = _text(voucher, "voucher")
        return cls._create(
            cls.Claimed,
            id=voucher_id(unit, year, number),
            community=unit,
            year=year,
            voucher=number,
            line=str(line),
            spend_id=spend_id,
            actor=actor,
        )


for _cls in (FundingLine, Voucher):
    register_topic(_cls.Snapshot.TOPIC, _cls.Snapshot)
