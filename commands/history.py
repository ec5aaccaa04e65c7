"""A community's history for auditors: every event of its stream, in log order.

Each row: the log position, the recorded time (database clock, from
`taizhang_commits`), the actor, what happened, its fields, and its chain hash.
Corrections (and resident updates) show old and new values: the previous
revision's values are reconstructed while walking the stream, so a row never
depends on what came after it — the history as of a moment is exactly a prefix
of the full history.

Personal data (names, birth dates, notes) is shown decrypted only when the key
file is at hand, otherwise as "(encrypted)" ("(erased)" once its data key was
destroyed); an envelope is never printed as stored. An envelope is opened only as the
field of the event's own resident or record: one copied from elsewhere, or altered,
shows "(cannot be opened)".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from commands.app import KeySession, LedgerService
from domain.errors import NotFound
from domain.ids import community_id
from infra.codec import decode_payload
from infra.crypto import Binding, KeyFileError

PREFIX = "taizhang:Community."
ENCRYPTED = "(encrypted)"
ERASED = "(erased)"
UNOPENED = "(cannot be opened)"
HIDDEN = {
    "actor",
    "timestamp",
    "originator_id",
    "originator_version",
    "originator_topic",
    "class_version",
    "digest",
    "note_mac",
}
# Fields a service correction may change, in the order a row shows them.
SERVICE_FIELDS = ("kind", "occurred_at", "minutes", "residents", "providers", "place", "note")
RESIDENT_FIELDS = ("categories", "grid", "household")


@dataclass(frozen=True)
class Bound:
    """Where the history stops: at a recorded time (fixed-width UTC text) or a log position."""

    as_of: str | None = None
    position: int | None = None

    def admits(self, position: int, recorded_at: str | None) -> bool:
        if self.position is not None and position > self.position:
            return False
        if self.as_of is not None and (recorded_at is None or recorded_at > self.as_of):
            return False
        return True


def chain_hashes(service: LedgerService, positions: list[int]) -> dict[int, str | None]:
    """The chain hash (hex) of each log position (None where the chain has no entry)."""
    found = service.recorder.chain_hashes(positions)
    return {p: found[p].hex() if p in found else None for p in positions}


def _is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and "ct" in value and "key_id" in value


def event_name(topic: str) -> str:
    """`taizhang:Community.ServiceCorrected` -> `service_corrected`."""
    name = topic[len(PREFIX) :] if topic.startswith(PREFIX) else topic.rsplit(":", 1)[-1]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Walker:
    """Keeps what a row needs from earlier events: each record's and resident's current values."""

    def __init__(self, service: LedgerService, community: str) -> None:
        self.service = service
        self.community = community
        self.keys: KeySession | None = service.key_session() if service.master is not None else None
        self.records: dict[str, dict[str, Any]] = {}
        self.residents: dict[str, dict[str, Any]] = {}

    def prefetch(self, payloads: Iterable[dict[str, Any]]) -> None:
        """Fetch every data key the envelopes need in one go rather than one query each."""
        if self.keys is None:
            return
        wanted = set()
        for payload in payloads:
            for value in (*payload.values(), *(payload.get("changes") or {}).values()):
                if _is_envelope(value):
                    wanted.add(value["key_id"])
        try:
            self.keys.prefetch(wanted)
        except KeyFileError:
            pass  # each envelope is then tried on its own and shown as unopened

    def clear(self, value: Any, field: str, payload: dict[str, Any]) -> Any:
        """An envelope's clear text, or a marker; other values unchanged.

        The envelope is opened as `field` of the payload's record (a note) or resident.
        """
        if not _is_envelope(value):
            return value
        if self.keys is None:
            return ENCRYPTED
        subject = payload.get("record_id") if field == "note" else payload.get("code")
        where = Binding(self.community, str(subject), field)
        try:
            text = self.service.open_envelope(value, self.keys, where=where)
        except KeyFileError:  # sealed for another place, wrapped by another master key, or altered
            return UNOPENED
        return ERASED if text is None else text

    def row(self, name: str, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        shown = (k for k in payload if k not in HIDDEN and k not in ("changes", "previous"))
        fields = {k: self.clear(payload[k], k, payload) for k in shown}
        changes: dict[str, dict[str, Any]] = {}
        if name == "service_recorded":
            self.records[payload["record_id"]] = {f: payload.get(f) for f in SERVICE_FIELDS}
        elif name == "service_corrected":
            current = self.records.setdefault(payload["record_id"], {})
            for field in SERVICE_FIELDS:
                if field in payload["changes"]:
                    new = payload["changes"][field]
                    old = current.get(field, payload["previous"].get(field))
                    changes[field] = {"old": self.clear(old, field, payload), "new": self.clear(new, field, payload)}
                    current[field] = new
        elif name == "resident_enrolled":
            self.residents[payload["code"]] = {f: payload.get(f) for f in RESIDENT_FIELDS}
        elif name == "resident_updated":
            current = self.residents.setdefault(payload["code"], {})
            for field in RESIDENT_FIELDS:
                new = payload.get(field)
                if new is not None and new != current.get(field):
                    changes[field] = {"old": current.get(field), "new": new}
                    current[field] = new
            fields = {k: v for k, v in fields.items() if k not in RESIDENT_FIELDS}
        return fields, changes


def history(service: LedgerService, code: str, bound: Bound | None = None) -> list[dict[str, Any]]:
    """Every event of community `code` up to `bound`, oldest first (NotFound when it was never established)."""
    stream = service.recorder.stream(community_id(code))
    if not stream:
        raise NotFound(f"community {code} is not established")
    limit = bound or Bound()
    events = []
    for position, version, topic, state, recorded_at in stream:
        if not limit.admits(position, recorded_at):
            break  # positions and recorded times only grow along a stream
        events.append((position, version, topic, decode_payload(state), recorded_at))
    walker = _Walker(service, code)
    walker.prefetch(payload for *_, payload, _at in events)
    rows: list[dict[str, Any]] = []
    for position, version, topic, payload, recorded_at in events:
        name = event_name(topic)
        fields, changes = walker.row(name, payload)
        rows.append(history_row(position, version, payload, recorded_at, name, fields, changes))
    return with_hashes(service, rows)


def history_row(
    position: int, version: int, payload: dict[str, Any], recorded_at: Any, name: str, fields: Any, changes: Any
) -> dict[str, Any]:
    """One row of `audit history` (its hash is filled in by `with_hashes`)."""
    return {
        "position": position,
        "recorded_at": recorded_at,
        "version": version,
        "actor": payload.get("actor"),
        "event": name,
        "fields": fields,
        "changes": changes,
        "hash": None,
    }


def with_hashes(service: LedgerService, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the chain hash of each one's position (one query for all)."""
    hashes = chain_hashes(service, [row["position"] for row in rows])
    for row in rows:
        row["hash"] = hashes.get(row["position"])
    return rows
