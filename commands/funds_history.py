"""A funding line's history for auditors (`audit history --line`): every event of the line, in log order.

Rows have the shape of a community's history (commands.history): position, recorded time,
version, actor, event, fields, changes, chain hash. Each event shows what it changed, old → new:

- allocated (下达): the granted unit's balance of the line, 0 → the amount;
- transferred (拨付): the balances of the unit passing the money down and of the unit receiving it;
- spent (支出): the community's balance of the line;
- reversed (红字冲销): the spend's status active → reversed (with the reason), and the balance;
- returned (退回): the unit's balance.

Balances are the line's books (every entry, whatever its date), each computed from the events
before it only, so the history as of a moment is a prefix of the full history. Amounts are fen
(integers) in the rows; the table shows yuan.

The payee of a spend is personal data (an envelope sealed for the spend, like a resident's
name): it is shown as a name only when the key file is at hand, and then the command logs the
access as it logs residents' names; otherwise it is withheld ("(encrypted)").

`within` narrows the rows to the events touching a unit inside it (or equal to it): an
auditor of a county sees the line's movements in that county, the balances still the line's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from commands.app import KeySession, LedgerService
from commands.history import ENCRYPTED, ERASED, UNOPENED, Bound, history_row, with_hashes
from domain.errors import NotFound
from domain.funds import line_id
from domain.units import UnitRef, parse_unit
from infra import crypto
from infra.codec import decode_payload
from infra.crypto import KeyFileError

LINE_PREFIX = "taizhang:FundingLine."
EVENTS = {
    "Allocated": "funds_allocated",
    "Transferred": "funds_transferred",
    "Spent": "funds_spent",
    "Reversed": "funds_reversed",
    "Returned": "funds_returned",
}
HIDDEN = {"actor", "timestamp", "originator_id", "originator_version", "originator_topic", "class_version"}
PAYEE = crypto.PAYEE
ACTIVE, REVERSED = "active", "reversed"


class MalformedLine(ValueError):
    """`--line` is neither a line id nor DEPARTMENT/DOCUMENT (exit 2)."""


def payee_binding(community_unit: str, spend_id: str, on: str) -> crypto.Binding:
    """Where a spend's payee envelope belongs: the spend, under its community's payee key of the
    spend's year (crypto.payee_of, as commands.funds seals it)."""
    return crypto.payee_of(community_code(community_unit), spend_id, int(str(on)[:4]))


def community_code(unit: str) -> str:
    return unit.split(":", 1)[1] if unit.startswith("community:") else unit


def parse_line(text: str) -> UUID:
    """A line id (UUID) or `DEPARTMENT/文号` -> the line's id (MalformedLine when it is neither)."""
    value = text.strip()
    try:
        return UUID(value)
    except ValueError:
        pass
    department, sep, document = value.partition("/")
    if not sep or not department.strip() or not document.strip():
        raise MalformedLine(f"expected a line id or DEPARTMENT/DOCUMENT, got {text!r}")
    return line_id(department, document)


@dataclass(frozen=True)
class Line:
    id: UUID
    department: str
    document: str

    @property
    def name(self) -> str:
        return f"{self.department}/{self.document}"


def find_line(service: LedgerService, text: str) -> tuple[Line, list[tuple[int, int, str, bytes, str | None]]]:
    """The funding line `text` names and its stored events (NotFound when there is no such line)."""
    uid = parse_line(text)
    stream = service.recorder.stream(uid)
    if not stream or not stream[0][2].startswith(LINE_PREFIX):
        raise NotFound(f"no funding line {text.strip()}")
    first = decode_payload(stream[0][3])
    return Line(uid, str(first.get("department")), str(first.get("document"))), stream


class _Walker:
    """What a row needs from earlier events: each unit's balance of the line, each spend's state."""

    def __init__(self, service: LedgerService) -> None:
        self.service = service
        self.keys: KeySession | None = service.key_session() if service.master is not None else None
        self.balances: dict[str, int] = {}
        self.spends: dict[str, dict[str, Any]] = {}
        self.payees: set[tuple[str, str]] = set()  # (community, spend id) of every payee shown in clear

    def prefetch(self, payloads: Iterable[dict[str, Any]]) -> None:
        if self.keys is None:
            return
        wanted = {p[PAYEE]["key_id"] for p in payloads if isinstance(p.get(PAYEE), dict) and "key_id" in p[PAYEE]}
        try:
            self.keys.prefetch(wanted)
        except KeyFileError:
            pass  # each envelope is then tried on its own and shown as unopened

    def payee(self, payload: dict[str, Any]) -> Any:
        envelope = payload.get(PAYEE)
        if envelope is None:
            return None
        if self.keys is None:
            return ENCRYPTED
        where = payee_binding(str(payload["community"]), str(payload["spend_id"]), str(payload["on"]))
        try:
            text = self.service.open_envelope(envelope, self.keys, where=where)
        except KeyFileError:  # sealed for another spend, wrapped by another master key, or altered
            return UNOPENED
        if text is None:
            return ERASED
        self.payees.add((where.community, str(payload["spend_id"])))
        return text

    def _balance(self, changes: dict[str, dict[str, Any]], unit: str, delta: int) -> None:
        old = self.balances.get(unit, 0)
        self.balances[unit] = old + delta
        changes[f"balance:{unit}"] = {"old": old, "new": old + delta}

    def row(
        self, name: str, payload: dict[str, Any], open_payee: bool = True
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(fields, changes); a payee is opened only for a row that is shown."""
        fields = {k: v for k, v in payload.items() if k not in HIDDEN}
        changes: dict[str, dict[str, Any]] = {}
        amount = int(payload.get("amount") or 0)
        if name == "funds_allocated":
            self._balance(changes, payload["unit"], amount)
        elif name == "funds_transferred":
            self._balance(changes, payload["from_unit"], -amount)
            self._balance(changes, payload["to_unit"], amount)
        elif name == "funds_spent":
            fields[PAYEE] = self.payee(payload) if open_payee else ENCRYPTED
            self.spends[payload["spend_id"]] = {"voucher": payload.get("voucher"), "status": ACTIVE}
            self._balance(changes, payload["community"], -amount)
        elif name == "funds_reversed":
            spend = self.spends.setdefault(payload["spend_id"], {"voucher": None, "status": ACTIVE})
            fields = {"spend_id": payload["spend_id"], "voucher": spend["voucher"], **fields}
            changes["status"] = {"old": spend["status"], "new": REVERSED}
            spend["status"] = REVERSED
            self._balance(changes, payload["community"], amount)
        elif name == "funds_returned":
            self._balance(changes, payload["unit"], -amount)
        return fields, changes


def _units(name: str, payload: dict[str, Any]) -> list[str]:
    """The units an event of the line touches."""
    if name == "funds_transferred":
        return [payload["from_unit"], payload["to_unit"]]
    if name in ("funds_spent", "funds_reversed"):
        return [payload["community"]]
    return [payload["unit"]] if "unit" in payload else []


def _located(service: LedgerService) -> dict[str, UnitRef]:
    return {
        f"community:{code}": UnitRef("community", county=county, township=township, community=code)
        for code, county, township in service.recorder.units()
    }


def _inside(within: UnitRef, units: list[str], located: dict[str, UnitRef]) -> bool:
    for text in units:
        unit = located.get(text) or parse_unit(text)
        if unit == within or str(unit) == str(within) or within.contains(unit):
            return True
    return False


def line_history(
    service: LedgerService, text: str, bound: Bound | None = None, within: UnitRef | None = None
) -> tuple[Line, list[dict[str, Any]], list[tuple[str, str]]]:
    """(the line, every event of it up to `bound` touching `within`, the payees shown in clear as
    (community, "payee:<spend id>") pairs for the access log)."""
    line, stream = find_line(service, text)
    limit = bound or Bound()
    events = []
    for position, version, topic, state, recorded_at in stream:
        if not limit.admits(position, recorded_at):
            break  # positions and recorded times only grow along a stream
        events.append((position, version, topic, decode_payload(state), recorded_at))
    located = _located(service) if within is not None else {}
    walker = _Walker(service)
    walker.prefetch(payload for *_, payload, _at in events)
    rows: list[dict[str, Any]] = []
    for position, version, topic, payload, recorded_at in events:
        name = EVENTS.get(topic[len(LINE_PREFIX) :], topic.rsplit(".", 1)[-1].lower())
        shown = within is None or _inside(within, _units(name, payload), located)
        fields, changes = walker.row(name, payload, open_payee=shown)
        if not shown:
            continue
        rows.append(history_row(position, version, payload, recorded_at, name, fields, changes))
    with_hashes(service, rows)
    payees = sorted((community, f"payee:{spend}") for community, spend in walker.payees)
    return line, rows, payees
