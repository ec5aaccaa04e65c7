"""Per-record state, derived from the service events by the store (docs/decisions: record state).

`record_state` holds the current revision of every service record (one row per record)
and `record_people` every (community, role, person, record) pair any revision of a record
listed, with `current` = 1 while the record's current revision lists the person. The
store writes both in the transaction that stores the events they come from (SQLite: the
write-time hook; PostgreSQL: inside `taizhang_append`, from the stored JSON), so they
cannot disagree with the log and no caller supplies them. The Community aggregate keeps
only its registry; the application reads the rows a rule needs and hands them to it.

This module is the one Python definition of the derivation: the SQLite hook, the backfill
of an upgraded store and `audit verify`'s recomputation all use `RecordStates`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

RECORDED = "taizhang:Community.ServiceRecorded"
CORRECTED = "taizhang:Community.ServiceCorrected"
VOIDED = "taizhang:Community.ServiceVoided"
TOPICS = (RECORDED, CORRECTED, VOIDED)

# The columns of record_state, in this order everywhere (SQL and tuples).
COLUMNS = (
    "record_id",
    "community_id",
    "status",
    "revision",
    "digest",
    "occurred_at",
    "day",
    "kind",
    "minutes",
    "place",
    "note_mac",
    "entered_on",
    "residents",
    "providers",
    "first_version",
    "version",
)
# A record's fields in the order of the domain's compact state (domain.community _STATUS … _ENTERED).
COMPACT = ("status", "digest", "occurred_at", "residents", "providers", "kind", "minutes", "place", "note_mac",
           "revision", "entered_on")  # fmt: skip
ROLES = {"residents": "r", "providers": "p"}
_CHANGED = {"kind", "occurred_at", "minutes", "residents", "providers", "place", "note_mac"}


def compact(row: dict[str, Any]) -> list[Any]:
    """A record_state row (dict, people as lists) as the domain's compact record state."""
    return [row[name] for name in COMPACT]


class RecordStates:
    """Applies service events in log order to an in-memory set of record rows.

    `touched` names the records changed since construction (what a hook writes back);
    `people` the (community, role, code, record) pairs ever listed, with their current flag.
    """

    def __init__(self, known: dict[str, dict[str, Any]] | None = None) -> None:
        self.rows: dict[str, dict[str, Any]] = known if known is not None else {}
        self.people: dict[tuple[str, str, str, str], int] = {}
        self.touched: set[str] = set()
        self.new: set[str] = set()

    def apply(self, community: str, version: int, topic: str, state: bytes | dict[str, Any]) -> None:
        if topic not in TOPICS:
            return
        payload = orjson.loads(state) if isinstance(state, bytes | bytearray | memoryview) else state
        record_id = payload["record_id"]
        if topic == RECORDED:
            row = {
                "record_id": record_id,
                "community_id": community,
                "status": "active",
                "revision": 1,
                "digest": payload["digest"],
                "occurred_at": payload["occurred_at"],
                "day": payload["occurred_at"][:10],
                "kind": payload["kind"],
                "minutes": payload["minutes"],
                "place": payload.get("place"),
                "note_mac": payload.get("note_mac"),
                "entered_on": payload.get("entered_on"),
                "residents": list(payload["residents"]),
                "providers": list(payload["providers"]),
                "first_version": version,
                "version": version,
            }
            self.rows[record_id] = row
            self.new.add(record_id)
            for field, role in ROLES.items():
                for code in row[field]:
                    self.people[(community, role, code, record_id)] = 1
        else:
            row = self.rows[record_id]  # KeyError: a change to a record the log never recorded
            if row["community_id"] != community:
                raise ValueError(f"record {record_id} is changed by another community's event")
            if topic == VOIDED:
                row["status"] = "voided"
            else:
                for field, value in payload["changes"].items():
                    if field not in _CHANGED:
                        continue
                    if field in ROLES:
                        role = ROLES[field]
                        for code in row[field]:
                            self.people[(community, role, code, record_id)] = 0
                        for code in value:
                            self.people[(community, role, code, record_id)] = 1
                        row[field] = list(value)
                    else:
                        row[field] = value
                        if field == "occurred_at":
                            row["day"] = value[:10]
                row["revision"] += 1
            row["version"] = version
        self.touched.add(record_id)

    def state_tuple(self, record_id: str) -> tuple[Any, ...]:
        row = self.rows[record_id]
        return tuple(orjson.dumps(row[c]).decode() if c in ("residents", "providers") else row[c] for c in COLUMNS)

    def people_tuples(self) -> list[tuple[str, str, str, str, int]]:
        return [(*key, current) for key, current in self.people.items()]


def recorded_tuple(community: str, version: int, _topic: str, p: dict[str, Any]) -> tuple[Any, ...]:
    """The record_state row (COLUMNS order) of a record's ServiceRecorded payload: the fast path of
    a batch of new records only, equal to `RecordStates.apply` + `state_tuple` (tested)."""
    at = p["occurred_at"]
    return (
        p["record_id"], community, "active", 1, p["digest"], at, at[:10], p["kind"], p["minutes"], p.get("place"),
        p.get("note_mac"), p.get("entered_on"), orjson.dumps(p["residents"]).decode(),
        orjson.dumps(p["providers"]).decode(), version, version,
    )  # fmt: skip


def recorded_people(community: str, p: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    record_id = p["record_id"]
    return [(community, role, code, record_id) for field, role in ROLES.items() for code in p[field]]


def from_events(events: Iterable[tuple[str, int, str, bytes]]) -> RecordStates:
    """The record state of a whole log: (community id, version, topic, state) in log order."""
    states = RecordStates()
    for community, version, topic, state in events:
        states.apply(community, version, topic, state)
    return states


def row_from_db(values: dict[str, Any]) -> dict[str, Any]:
    """A record_state row read back (people as JSON text) as the derivation keeps it."""
    row = dict(values)
    for field in ("residents", "providers"):
        if isinstance(row[field], str | bytes):
            row[field] = orjson.loads(row[field])
    return row


def disagreement(
    states: RecordStates, stored: dict[str, dict[str, Any]], people: dict[tuple[str, str, str, str], int]
) -> str | None:
    """What first differs between the state derived from the log and the stored rows (None: nothing)."""
    for record_id in sorted(set(states.rows) | set(stored)):
        if record_id not in stored:
            return f"record {record_id} has no record_state row"
        if record_id not in states.rows:
            return f"record_state holds record {record_id}, which no service event records"
        want, have = states.rows[record_id], stored[record_id]
        for column in COLUMNS:
            if have[column] != want[column]:
                return f"record_state of record {record_id} disagrees with the log in {column}"
    want_people = states.people
    for key in sorted(set(want_people) | set(people)):
        if want_people.get(key) != people.get(key):
            community, role, code, record_id = key
            who = "resident" if role == "r" else "provider"
            return f"record_people of record {record_id} disagrees with the log for {who} {code}"
    return None


Events = Iterable[tuple[str, int, str, bytes]]


def first_problem(
    communities: Iterable[str],
    events_of: Callable[[str], Events],
    stored_of: Callable[[list[str]], dict[str, dict[str, Any]]],
    people_of: Callable[[str], dict[tuple[str, str, str, str], int]],
    stored_count: int,
    stored_ids: Callable[[], Iterable[str]],
) -> str | None:
    """What first differs between the stored record_state / record_people and the log, one
    community at a time, so that `audit verify` holds one community's records, not the store's.

    `communities`: every community (id, in the store's form) with a service event, and every one
    record_people names; `events_of(c)`: c's service events in version order; `stored_of(ids)`:
    the record_state rows of those record ids (as `row_from_db` gives them, community as hex); `people_of(c)`:
    c's record_people rows; `stored_count`: record_state's rows; `stored_ids()`: its record ids in
    order, read only when its rows outnumber the log's records (a row for a record the log never
    recorded). The same snapshot of the store must answer all of them."""
    derived = 0
    order = sorted(communities)
    for community in order:
        try:
            states = from_events(events_of(community))
        except (KeyError, ValueError) as e:
            return f"the log's service events do not replay ({type(e).__name__}: {e})"
        problem = disagreement(states, stored_of(list(states.rows)), people_of(community))
        if problem is not None:
            return problem
        derived += len(states.rows)
    if stored_count == derived:  # every record of the log has its own row (above): there is no other
        return None
    known = {record_id for community in order for record_id in from_events(events_of(community)).rows}
    for record_id in stored_ids():
        if record_id not in known:
            return f"record_state holds record {record_id}, which no service event records"
    # Every record of the log has its row and every row its record: the counts cannot differ (a
    # record id in two communities' events fails the community_id comparison above first).
    raise RuntimeError(f"record_state holds {stored_count} rows for the log's {derived} records")  # a programming error
