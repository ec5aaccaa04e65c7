"""The write side of the funding ledger (资金台账): allocate, transfer, spend, reverse, return.

Input is judged first (`models.Malformed`, exit 2: amounts, dates, departments, units as
written); then the store's rules (exit 1) inside the same get -> domain call -> save loop,
with retries, as every other write (`LedgerService._write`). The line's own rules (balances
by date, money moving down, only communities spend) are domain.funds'; the rules that need
other aggregates are checked here:

- the department is one of the configured list (commands/departments.toml, a file a county
  edits beside headers.toml; judged without the store, so exit 2 like an unknown kind);
- the units exist in the store (the write-time `community_units` index) and are located, so
  a transfer can be judged down / up / sideways;
- closed periods (结账): a dated entry is refused inside a closure carried by the communities
  involved — a community's own closures, or, for a township or county unit, a closure of that
  unit or one above it (each closure of a township or county is recorded on its communities);
- service records a spend names must be current (not voided) records of the spending
  community (the store's record_state index);
- the payee's name is sealed like a resident's name, under a data key per community and year
  (`payee:CODE/YYYY`, infra.crypto.payee_of): destroying that key erases the year's payee names
  without touching the log, and the next year's spends get a key of their own;
- the voucher number is claimed by a `Voucher` aggregate in the same save as the spend, so two
  spends with one number in a community's year cannot both be stored.

A spend's id is the id of its voucher claim (uuid5 of community + year + voucher number): a
voucher names exactly one spend, and a reversal finds its spend by the voucher number.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from commands import models
from commands.accountability import text_arg, unit_arg  # noqa: F401  (the CLI imports them from here)
from commands.app import Change, KeySession, LedgerService
from domain.errors import AlreadyExists, NotActive, NotFound
from domain.errors import PeriodClosed as ClosedPeriodError
from domain.funds import DEFAULT_DEPARTMENTS, MAX_AMOUNT, FundingLine, Voucher, line_id, voucher_id, yuan
from domain.ids import community_id
from domain.units import UnitRef, parse_unit
from infra import crypto

# ---- amounts -------------------------------------------------------------------------------------------
_YUAN = re.compile(r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<wan>万)?")


def parse_yuan(value: object, option: str = "--amount") -> int:
    """Yuan as people write them -> int fen, exactly: `12,000.00`, `12000`, `1.2万`, `￥350.5元`.

    Refused (Malformed, naming the option and the value): more than two decimals (more than
    six with 万: anything finer than a fen), zero, negative amounts, exponents, NaN, and
    anything else that is not plainly a number of yuan. A spreadsheet's number cell is read
    by its shortest decimal form, so 0.1 + 0.2 (0.30000000000000004) is refused, never rounded.
    """
    if isinstance(value, bool):
        raise models.Malformed(option, f"not an amount in yuan: {value!r} (write 12000, 12,000.00 or 1.2万)")
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, (int, str)):
        text = str(value)
    else:
        raise models.Malformed(option, f"not an amount in yuan: {value!r} (write 12000, 12,000.00 or 1.2万)")
    shown = text.strip()
    normal = unicodedata.normalize("NFKC", shown).strip()  # full-width digits, commas and points
    normal = normal.removeprefix("¥").removesuffix("元").strip()
    if normal.startswith("-"):
        raise models.Malformed(option, f"must be more than 0, got {shown!r}")
    match = _YUAN.fullmatch(normal)
    if match is None:
        raise models.Malformed(option, f"not an amount in yuan: {shown!r} (write 12000, 12,000.00 or 1.2万)")
    frac, wan = match["frac"] or "", bool(match["wan"])
    if not wan and len(frac) > 2:
        raise models.Malformed(option, f"{shown!r} has more than two decimals: amounts are kept to the fen")
    try:
        fen = Decimal(f"{match['whole'].replace(',', '')}.{frac or '0'}") * (1_000_000 if wan else 100)
    except InvalidOperation:
        raise models.Malformed(option, f"not an amount in yuan: {shown!r} (write 12000, 12,000.00 or 1.2万)") from None
    if fen != fen.to_integral_value():
        raise models.Malformed(option, f"{shown!r} is finer than a fen: amounts are kept to the fen")
    if fen == 0:
        raise models.Malformed(option, f"must be more than 0, got {shown!r}")
    if fen > MAX_AMOUNT:
        raise models.Malformed(option, f"implausibly large: {shown!r} (at most {yuan(MAX_AMOUNT)} yuan)")
    return int(fen)


# ---- departments ---------------------------------------------------------------------------------------
DEPARTMENTS_ENV = "TAIZHANG_DEPARTMENTS"


def departments() -> tuple[str, ...]:
    """The departments a funding line may come from: the TOML file named by $TAIZHANG_DEPARTMENTS
    (a county's own list, kept outside the installed package), else commands/departments.toml,
    else domain.funds.DEFAULT_DEPARTMENTS."""
    return _departments(os.environ.get(DEPARTMENTS_ENV) or None)


@cache
def _departments(own: str | None) -> tuple[str, ...]:
    if own:
        try:
            raw = Path(own).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise models.Malformed(DEPARTMENTS_ENV, f"cannot read {own!r}: {e}") from None
        source = own
    else:
        try:
            raw = resources.files("commands").joinpath("departments.toml").read_text(encoding="utf-8")
        except FileNotFoundError:
            return DEFAULT_DEPARTMENTS
        source = "commands/departments.toml"
    try:
        listed = tomllib.loads(raw).get("departments")
    except tomllib.TOMLDecodeError as e:
        raise models.Malformed(DEPARTMENTS_ENV, f"{source} is not TOML: {e}") from None
    if not isinstance(listed, list) or not listed or not all(isinstance(d, str) and d.strip() for d in listed):
        raise models.Malformed(DEPARTMENTS_ENV, f"{source}: `departments` must be a list of names")
    return tuple(d.strip() for d in listed)


def department_arg(value: str, option: str = "--department") -> str:
    name = value.strip()
    if name not in departments():
        raise models.Malformed(
            option, f"unknown department {value!r} (one of: {', '.join(departments())}; see commands/departments.toml)"
        )
    return name


def community_arg(value: str, option: str = "COMMUNITY") -> str:
    try:
        return models.clean_code(value)
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def day_arg(value: str | date, option: str) -> date:
    try:
        return models.day(value)
    except ValueError as e:
        raise models.Malformed(option, str(e)) from None


def record_arg(value: str, option: str = "--record") -> str:
    try:
        return str(UUID(value.strip()))
    except ValueError:
        raise models.Malformed(option, f"not a record id (a UUID): {value!r}") from None


@dataclass(frozen=True)
class LineRef:
    """A funding line as a command names it: its id, or its department and document number (文号)."""

    id: UUID

    @classmethod
    def of(cls, line: str | None, department: str | None, document: str | None) -> LineRef:
        if line is not None:
            if department is not None or document is not None:
                raise models.Malformed("--line", "give the line's id or --department with --document, not both")
            try:
                return cls(UUID(line.strip()))
            except ValueError:
                raise models.Malformed("--line", f"not a funding line id (a UUID): {line!r}") from None
        if department is None or document is None:
            missing = "--department" if department is None else "--document"
            raise models.Malformed(missing, "name the line by --line ID, or by --department and --document")
        return cls(line_id(department_arg(department), text_arg(document, "--document")))


# ---- the service ---------------------------------------------------------------------------------------
class Funds:
    """Funding-line writes on an open store."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self._units: dict[str, tuple[str, str]] | None = None

    @property
    def repository(self) -> Any:
        return self.service.app.repository

    # ---- lookups ------------------------------------------------------------------------------------
    def _index(self) -> dict[str, tuple[str, str]]:
        if self._units is None:
            self._units = {code: (county, township) for code, county, township in self.service.recorder.units()}
        return self._units

    def locate(self, unit: UnitRef) -> UnitRef:
        """The unit as the store knows it (a community with its county and township); NotFound if unknown."""
        index = self._index()
        if unit.level == "community":
            if unit.community not in index:
                raise NotFound(f"community {unit.community} is not established")
            county, township = index[unit.community]
            return UnitRef("community", county=county, township=township, community=unit.community)
        found = any(
            (c, t) == (unit.county, unit.township) if unit.level == "township" else c == unit.county
            for c, t in index.values()
        )
        if not found:
            raise NotFound(f"no {unit.level} {str(unit).split(':', 1)[1]} in the store")
        return unit

    def communities_of(self, unit: UnitRef) -> list[str]:
        return sorted(
            code
            for code, (county, township) in self._index().items()
            if (unit.level == "community" and code == unit.community)
            or (unit.level == "township" and (county, township) == (unit.county, unit.township))
            or (unit.level == "county" and county == unit.county)
        )

    def line(self, ref: LineRef | UUID) -> FundingLine:
        wanted = ref.id if isinstance(ref, LineRef) else ref
        try:
            found = self.repository.get(wanted)
        except AggregateNotFoundError:
            raise NotFound(f"no funding line {wanted}; allocate it first (taizhang funds allocate)") from None
        if not isinstance(found, FundingLine):
            raise NotFound(f"no funding line {wanted}")
        return found

    def voucher(self, community: str, year: int, number: str) -> Voucher | None:
        try:
            found = self.repository.get(voucher_id(f"community:{community}", year, number))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Voucher) else None

    def check_open(self, unit: UnitRef, day: str, action: str) -> None:
        """Refuse an entry dated `day` for `unit` inside a closed period (结账).

        A community: its own closures (Community.check_open). A township or county: the
        closures of that unit or of one above it, found on its communities (each community
        of a unit carries the unit's closure)."""
        if unit.level == "community":
            self.service.get_community(unit.community).check_open(day, action)
            return
        for code in self.communities_of(unit):
            community = self.service.get_community(code)
            for closure in community.closures_on(day):
                closed = parse_unit(closure[0])
                if closed == unit or closed.contains(unit):
                    closed_unit, period, _first, _last, by, at = closure
                    raise ClosedPeriodError(
                        f"closed: {closed_unit} {period} (closed by {by} on {at}): {action}; "
                        f"reopen it with taizhang ledger reopen --unit {closed_unit} --period {period}"
                    )

    def check_records(self, community: str, records: Sequence[str]) -> None:
        """Every record must be a current (not voided) record of the spending community."""
        if not records:
            return
        states = self.service.recorder.record_states(community_id(community), records)
        for record in sorted(records):
            row = states.get(record)
            if row is None:
                raise NotFound(f"record {record} is not a service record of community {community}")
            if row["status"] != "active":
                raise NotActive(f"record {record} of community {community} was voided; a spend cannot pay for it")

    # ---- the writes ---------------------------------------------------------------------------------
    def allocate(
        self, *, department: str, document: str, purpose: str, amount: int, unit: UnitRef, on: date, actor: str
    ) -> dict[str, Any]:
        """下达: a department grants money to a unit under a document number."""
        located = self.locate(unit)
        day = on.isoformat()
        new_id = line_id(department, document)

        def decide(_keys: KeySession) -> Change:
            try:
                existing = self.repository.get(new_id)
            except AggregateNotFoundError:
                pass
            else:
                raise AlreadyExists(
                    f"line {department} {document} is already allocated "
                    f"({yuan(existing.amount)} yuan to {existing.unit} on {existing.on})"
                )
            self.check_open(located, day, f"cannot allocate line {department} {document} on {day}")
            line = FundingLine.allocate(
                department=department, document=document, purpose=purpose, amount=amount, unit=located, on=day,
                actor=actor,
            )  # fmt: skip
            result = {"line_id": str(new_id), "department": department, "document": document, "unit": str(located),
                      "amount": amount, "on": day}  # fmt: skip
            return Change(result, [line])

        return self.service._write(decide)  # type: ignore[no-any-return]

    def transfer(
        self,
        *,
        line: LineRef | UUID,
        from_unit: UnitRef,
        to_unit: UnitRef,
        amount: int,
        on: date,
        note: str | None,
        actor: str,
        transfer_id: str | None = None,
    ) -> dict[str, Any]:
        """拨付: pass money of a line down from a unit to a unit inside it."""
        source, target = self.locate(from_unit), self.locate(to_unit)
        day, entry = on.isoformat(), transfer_id or str(uuid4())

        def decide(_keys: KeySession) -> Change:
            found = self.line(line)
            what = f"line {found.department} {found.document}"
            self.check_open(source, day, f"cannot pass {what} down from {source} on {day}")
            self.check_open(target, day, f"cannot pass {what} down to {target} on {day}")
            found.transfer(
                transfer_id=entry, from_unit=source, to_unit=target, amount=amount, on=day, note=note, actor=actor
            )
            result = {"line_id": str(found.id), "transfer_id": entry, "from": str(source), "to": str(target),
                      "amount": amount, "on": day}  # fmt: skip
            return Change(result, [found])

        return self.service._write(decide)  # type: ignore[no-any-return]

    def spend(
        self,
        *,
        line: LineRef | UUID,
        community: str,
        amount: int,
        on: date,
        purpose: str,
        voucher: str,
        payee: str | None,
        records: Iterable[str] = (),
        project: str | None = None,
        home: str | None = None,
        actor: str,
    ) -> dict[str, Any]:
        """支出: a community pays from a line, under a voucher number unique in its year."""
        located = self.locate(UnitRef("community", community=community))
        linked = sorted(set(records))
        day, year = on.isoformat(), on.year
        unit = str(located)
        spend_id = str(voucher_id(unit, year, voucher))
        if payee is not None:
            self.service.require_master()

        def decide(keys: KeySession) -> Change:
            found = self.line(line)
            claimed = self.voucher(community, year, voucher)
            if claimed is not None:
                raise AlreadyExists(self._used(claimed))
            self.service.get_community(community).check_open(
                day, f"cannot record a spend of voucher {voucher} on {day}"
            )
            self.check_records(community, linked)
            sealed = None
            if payee is not None:
                where = crypto.payee_of(community, spend_id, year)
                sealed = crypto.seal(where, keys.get_or_create(where.key_id), payee)
            found.spend(
                spend_id=spend_id, community=unit, amount=amount, on=day, purpose=purpose, voucher=voucher,
                payee=sealed, records=linked, project=project, home=home, actor=actor,
            )  # fmt: skip
            claim = Voucher.claim(
                community=unit, on=day, voucher=voucher, line=found.id, spend_id=spend_id, actor=actor
            )
            result = {"line_id": str(found.id), "spend_id": spend_id, "community": community, "voucher": voucher,
                      "year": year, "amount": amount, "on": day, "records": linked}  # fmt: skip
            return Change(result, [found, claim])

        return self.service._write(decide)  # type: ignore[no-any-return]

    def _used(self, claimed: Voucher) -> str:
        """Which line and spend already use a voucher number (for the refusal)."""
        try:
            used = self.line(UUID(claimed.line))
            where = f"{used.department} {used.document}"
        except NotFound:
            where = claimed.line
        return (
            f"voucher {claimed.voucher} of {claimed.community} in {claimed.year} is already used "
            f"by spend {claimed.spend_id} on line {where}"
        )

    def reverse(self, *, community: str, voucher: str, year: int, on: date, reason: str, actor: str) -> dict[str, Any]:
        """红字冲销: cancel the spend of a voucher in full; the voucher number stays used."""
        self.locate(UnitRef("community", community=community))
        day = on.isoformat()

        def decide(_keys: KeySession) -> Change:
            claimed = self.voucher(community, year, voucher)
            if claimed is None:
                raise NotFound(f"no spend with voucher {voucher} in community {community} in {year}")
            found = self.line(UUID(claimed.line))
            self.service.get_community(community).check_open(
                day, f"cannot reverse the spend of voucher {voucher} on {day}"
            )
            found.reverse(spend_id=claimed.spend_id, on=day, reason=reason, actor=actor)
            result = {"line_id": str(found.id), "spend_id": claimed.spend_id, "community": community,
                      "voucher": voucher, "year": year, "amount": found.spends[claimed.spend_id][1], "on": day}  # fmt: skip
            return Change(result, [found])

        return self.service._write(decide)  # type: ignore[no-any-return]

    def return_unspent(
        self,
        *,
        line: LineRef | UUID,
        unit: UnitRef,
        amount: int,
        on: date,
        reason: str,
        actor: str,
        return_id: str | None = None,
    ) -> dict[str, Any]:
        """退回: a unit returns unspent money of a line to its department."""
        located = self.locate(unit)
        day, entry = on.isoformat(), return_id or str(uuid4())

        def decide(_keys: KeySession) -> Change:
            found = self.line(line)
            self.check_open(located, day, f"cannot return money of line {found.department} {found.document} on {day}")
            found.return_unspent(return_id=entry, unit=located, amount=amount, on=day, reason=reason, actor=actor)
            result = {"line_id": str(found.id), "department": found.department, "document": found.document,
                      "return_id": entry, "unit": str(located), "amount": amount, "on": day}  # fmt: skip
            return Change(result, [found])

        return self.service._write(decide)  # type: ignore[no-any-return]

    # ---- reading a payee back (for the read side) --------------------------------------------------------
    def payee(self, community: str, spend_id: str, on: str, envelope: dict[str, Any] | None) -> str | None:
        """The clear payee name of a spend, or None (no key file, or the year's payee key was erased)."""
        where = crypto.payee_of(community.removeprefix("community:"), spend_id, int(on[:4]))
        return self.service.open_envelope(envelope, where=where)
