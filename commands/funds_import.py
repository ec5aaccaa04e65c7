"""`taizhang import allocations|spending FILE`: the funding ledger from the spreadsheets a county keeps.

The file is read like every import (commands.tabular: CSV or XLSX, the header row found by its
names in commands/headers.toml — 资金来源, 文号, 用途, 金额（元）, 下达日期, 拨付单位 for
allocations; 资金来源, 文号, 社区, 支出日期, 凭证号, 收款人, 摘要, 金额（元） for spending —
title rows, a 合计 row and signature lines skipped and counted, ignored columns reported).
Each row is judged on its face first (`row N: field: problem`, exit 2), then against the store
and the rows above it (exit 1); all-or-nothing unless --skip-invalid, in one transaction.

A spending row names its line by 资金来源 + 文号. Importing the same file again adds nothing:
an allocation whose line exists with the same content, and a spend whose voucher is already
claimed by the same line for the same amount and date, count as existing; with other content
they are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands import models, tabular
from commands.app import Busy, KeySession, LedgerService
from commands.funds import Funds, department_arg, parse_yuan, record_arg, text_arg
from commands.importer import ImportRefused, ImportResult, Problem, load_table
from domain.errors import AlreadyExists, LedgerError, NotFound
from domain.funds import FundingLine, Voucher, line_id, voucher_id, yuan
from domain.units import UnitRef, parse_unit
from infra import crypto

KINDS = ("allocations", "spending")
MAX_ATTEMPTS = 5


@dataclass(slots=True)
class _Row:
    number: int
    values: dict[str, Any]


# ---- judging a row on its face -----------------------------------------------------------------------
def _date(value: object, today: dt.date) -> dt.date:
    try:
        day = tabular.parse_date(value)
    except (tabular.CellError, ValueError) as e:
        raise models.Malformed("", str(e)) from None
    if day > today:
        raise models.Malformed("", f"{day.isoformat()} is in the future")
    return day


def _required_text(value: object, limit: int = models.MAX_TEXT) -> str:
    raw = tabular.text(value)
    if raw is None:
        raise models.Malformed("", "is required")
    return text_arg(raw, "", limit)


def _optional_text(value: object, limit: int = models.MAX_TEXT) -> str | None:
    raw = tabular.text(value)
    return None if raw is None else text_arg(raw, "", limit)


def _cell(name: str, parse: Callable[..., Any], *args: Any) -> Any:
    """Run a cell's parser; a problem is reported under the cell's field."""
    try:
        return parse(*args)
    except models.Malformed as e:
        raise models.Malformed(name, e.message) from None


def _allocation(values: dict[str, object], today: dt.date) -> dict[str, Any]:
    unit_text = _cell("unit", _required_text, values.get("unit"))
    try:
        unit = parse_unit(unit_text)
    except ValueError as e:
        raise models.Malformed("unit", str(e)) from None
    return {
        "department": _cell("department", lambda v: department_arg(_required_text(v), ""), values.get("department")),
        "document": _cell("document", _required_text, values.get("document"), models.MAX_CODE),
        "purpose": _cell("purpose", _required_text, values.get("purpose")),
        "amount": _cell("amount", _amount, values.get("amount")),
        "on": _cell("granted_on", _date, values.get("granted_on"), today),
        "unit": unit,
    }


def _spend(values: dict[str, object], today: dt.date, community: str | None) -> dict[str, Any]:
    code = tabular.text(values.get("community")) or community
    if code is None:
        raise models.Malformed("community", "is required")
    try:
        code = models.clean_code(code)
    except ValueError as e:
        raise models.Malformed("community", str(e)) from None
    return {
        "department": _cell("department", lambda v: department_arg(_required_text(v), ""), values.get("department")),
        "document": _cell("document", _required_text, values.get("document"), models.MAX_CODE),
        "community": code,
        "on": _cell("spent_on", _date, values.get("spent_on"), today),
        "voucher": _cell("voucher", _required_text, values.get("voucher"), models.MAX_CODE),
        "payee": _cell("payee", _optional_text, values.get("payee"), models.MAX_CODE),
        "purpose": _cell("purpose", _required_text, values.get("purpose")),
        "amount": _cell("amount", _amount, values.get("amount")),
        "records": sorted({_cell("records", record_arg, r, "") for r in tabular.split_list(values.get("records"))}),
        "project": _cell("project", _optional_text, values.get("project")),
        "home": _cell("home", _optional_text, values.get("home")),
    }


def _amount(value: object) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise models.Malformed("", "is required")
    return parse_yuan(value, "")


# ---- applying the rows -------------------------------------------------------------------------------
class _Attempt:
    """One attempt at the whole file: aggregates loaded once, rows applied in file order."""

    def __init__(self, service: LedgerService, actor: str, skip_invalid: bool) -> None:
        self.service = service
        self.funds = Funds(service)
        self.actor = actor
        self.skip_invalid = skip_invalid
        self.keys: KeySession = service.key_session()
        self.lines: dict[UUID, FundingLine | None] = {}
        self.vouchers: dict[UUID, Voucher | None] = {}
        self.changed: dict[UUID, Any] = {}
        self.located: dict[UnitRef, UnitRef] = {}
        self.communities: dict[str, Any] = {}  # code -> Community (its closures), loaded once
        self.result = ImportResult()

    def community(self, code: str) -> Any:
        if code not in self.communities:
            self.communities[code] = self.service.get_community(code)
        return self.communities[code]

    def line(self, key: UUID) -> FundingLine | None:
        if key not in self.lines:
            try:
                self.lines[key] = self.funds.line(key)
            except LedgerError:
                self.lines[key] = None
        return self.lines[key]

    def know_claims(self, rows: list[_Row]) -> None:
        """Look up every row's voucher claim at once: those not stored are known absent without a read."""
        ids = {voucher_id(f"community:{r.values['community']}", r.values["on"].year, r.values["voucher"]) for r in rows}
        stored = self.service.recorder.existing(ids)
        self.vouchers.update({i: None for i in ids - stored})

    def voucher(self, key: UUID) -> Voucher | None:
        if key not in self.vouchers:
            try:
                found = self.service.app.repository.get(key)
            except Exception:  # AggregateNotFoundError: not claimed yet
                found = None
            self.vouchers[key] = found if isinstance(found, Voucher) else None
        return self.vouchers[key]

    def locate(self, unit: UnitRef) -> UnitRef:
        if unit not in self.located:
            self.located[unit] = self.funds.locate(unit)
        return self.located[unit]

    def allocate(self, row: dict[str, Any]) -> bool:
        key = line_id(row["department"], row["document"])
        unit = self.locate(row["unit"])
        day = row["on"].isoformat()
        existing = self.line(key)
        if existing is not None:
            same = (existing.purpose, existing.amount, existing.unit, existing.on) == (
                row["purpose"], row["amount"], str(unit), day,
            )  # fmt: skip
            if same:
                return False
            raise AlreadyExists(
                f"line {existing.department} {existing.document} is already allocated "
                f"({yuan(existing.amount)} yuan to {existing.unit} on {existing.on})"
            )
        self.funds.check_open(unit, day, f"cannot allocate line {row['department']} {row['document']} on {day}")
        line = FundingLine.allocate(
            department=row["department"], document=row["document"], purpose=row["purpose"], amount=row["amount"],
            unit=unit, on=day, actor=self.actor,
        )  # fmt: skip
        self.lines[key] = self.changed[key] = line
        return True

    def spend(self, row: dict[str, Any]) -> bool:
        code, day, number = row["community"], row["on"].isoformat(), row["voucher"]
        unit = str(self.locate(UnitRef("community", community=code)))
        claim_id = voucher_id(unit, row["on"].year, number)
        spend_id = str(claim_id)
        key = line_id(row["department"], row["document"])
        line = self.line(key)
        if line is None:
            raise NotFound(
                f"no funding line {row['department']} {row['document']}; allocate it first (taizhang funds allocate)"
            )
        claimed = self.voucher(claim_id)
        if claimed is not None:
            held = line.spends.get(claimed.spend_id)
            if claimed.line == str(key) and held is not None and (held[1], held[2]) == (row["amount"], day):
                return False
            raise AlreadyExists(self.funds._used(claimed))
        self.community(code).check_open(day, f"cannot record a spend of voucher {number} on {day}")
        self.funds.check_records(code, row["records"])
        sealed = None
        if row["payee"] is not None:
            where = crypto.payee_of(code, spend_id, row["on"].year)
            sealed = crypto.seal(where, self.keys.get_or_create(where.key_id), row["payee"])
        line.spend(
            spend_id=spend_id, community=unit, amount=row["amount"], on=day, purpose=row["purpose"], voucher=number,
            payee=sealed, records=row["records"], project=row["project"], home=row["home"], actor=self.actor,
        )  # fmt: skip
        claim = Voucher.claim(community=unit, on=day, voucher=number, line=key, spend_id=spend_id, actor=self.actor)
        self.vouchers[claim_id] = self.changed[claim_id] = claim
        self.changed[key] = line
        return True


def import_funds(
    service: LedgerService,
    kind: str,
    path: Path,
    actor: str,
    *,
    skip_invalid: bool = False,
    community: str | None = None,
) -> ImportResult:
    """Import allocations or spending; raises ImportRefused (writing nothing) when rows have problems."""
    supplied = frozenset({"community"}) if community else frozenset()
    table = load_table(path, kind, supplied)
    today = service.now().date()
    rows: list[_Row] = []
    problems: list[Problem] = []
    for raw in table.rows:
        try:
            values = _allocation(raw.values, today) if kind == "allocations" else _spend(raw.values, today, community)
        except models.Malformed as e:
            problems.append(Problem(raw.number, e.field, e.message, malformed=True))
            continue
        rows.append(_Row(raw.number, values))
    if problems and not skip_invalid:
        raise ImportRefused(_result(table, problems))
    if any(r.values.get("payee") for r in rows):
        service.require_master()  # payees are sealed: refused before anything is judged without the key file
    for attempt in range(1, MAX_ATTEMPTS + 1):
        run = _Attempt(service, actor, skip_invalid)
        run.result = _result(table, list(problems))
        run.result.skipped = len(problems)
        if kind == "spending":
            run.know_claims(rows)
        for row in rows:
            try:
                added = run.allocate(row.values) if kind == "allocations" else run.spend(row.values)
            except LedgerError as e:
                run.result.problems.append(Problem(row.number, _field_of(kind, e), str(e), malformed=False))
                run.result.skipped += 1
                continue
            if added:
                run.result.added += 1
            else:
                run.result.existing += 1
        run.result.problems.sort(key=lambda p: p.row)
        if run.result.problems and not skip_invalid:
            run.result.skipped = 0
            raise ImportRefused(run.result)
        if not run.changed:
            return run.result
        try:
            with service.bulk_save() as saver:
                saver.write(run.changed.values(), data_keys=run.keys.pending)
        except IntegrityError:
            if attempt == MAX_ATTEMPTS:
                break
            continue  # another writer changed a line or claimed a voucher since: judge the file again
        return run.result
    raise Busy("the store is busy with other writers to the same funding lines; try again")


def _result(table: tabular.Table, problems: list[Problem]) -> ImportResult:
    return ImportResult(
        problems=problems,
        ignored_columns=list(table.ignored),
        footer_rows=table.footer_rows,
        blank_rows=table.blank_rows,
    )


def _field_of(kind: str, error: LedgerError) -> str:
    """The field a refusal of the store is about, named as the sheet's column."""
    message = str(error)
    if "closed:" in message or "cannot be dated" in message:
        return "granted_on" if kind == "allocations" else "spent_on"
    if "voucher" in message:
        return "voucher"
    if "record" in message:
        return "records"
    if "line" in message and ("holds" in message or "short" in message or "received no money" in message):
        return "amount"
    if "community" in message:
        return "community"
    if "county" in message or "township" in message:
        return "unit"
    return "document"
