"""The Community aggregate: one per community, every service an immutable event on it.

Stored format rules (DESIGN §2, §6): every class has an explicit, stable TOPIC;
payloads are flat primitives (str, int, bool, None, lists of str, and the
encrypted-envelope dicts); dates are ISO text; `class_version` is bumped with an
`upcast_vN_vN+1` static method whenever a payload changes shape.

The aggregate keeps only what its rules need, so snapshots stay small: its registry
(residents, providers, visit plans, pairings, closures). Per-record state lives in the
store's `record_state` table, derived from these events in their transaction
(infra.recordstate, docs/decisions: record state); the application reads the rows a
rule needs and hands them in (`know_records`), so `records` is a working set, never the
community's whole history, and snapshots never carry it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.errors import PeriodClosed as ClosedPeriodError  # not Community.PeriodClosed, the event
from domain.ids import community_id, utc_text
from domain.units import parse_period, parse_unit

MIN_MINUTES = 1
MAX_MINUTES = 24 * 60

Envelope = dict[str, Any]
"""An encrypted field: {"v", "alg", "key_id", "nonce", "ct"} (no "v" in version 1). The domain never opens one."""

# Positions in a record's compact state (a list keeps snapshots small).
_STATUS, _DIGEST, _AT, _RESIDENTS, _PROVIDERS, _KIND, _MINUTES, _PLACE, _NOTE_MAC, _REVISION, _ENTERED = range(11)

CORRECTABLE = ("kind", "occurred_at", "minutes", "residents", "providers", "place", "note")


def content_digest(
    *,
    kind: str,
    residents: list[str],
    providers: list[str],
    occurred_at: datetime,
    minutes: int,
    place: str | None,
    entered_on: str | None,
    note_mac: str | None,
) -> str:
    """What makes two recordings of one record id "the same content" (the digest's text is forever)."""
    at = utc_text(occurred_at)
    content = [kind, sorted(residents), sorted(providers), at, minutes, place, entered_on, note_mac]
    canonical = _plain_json(content, [kind, *residents, *providers, at, place or "", entered_on or "", note_mac or ""])
    if canonical is None:
        canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]


def _plain_json(content: list[Any], texts: list[Any]) -> bytes | None:
    """orjson's bytes of `content` where they are provably those of
    json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode(): `texts` are all of
    its strings, every one printable (no control character, no lone surrogate, no separator
    such as U+2028) and free of `"` and `\\`, so that neither encoder escapes anything and both
    write the characters as UTF-8; its other items are None, a plain int or a list of those
    strings. None for anything else (the caller then uses json.dumps)."""
    try:
        joined = "".join(texts)
    except TypeError:
        return None
    if not joined.isprintable() or '"' in joined or "\\" in joined:
        return None
    for item in content:
        if not (item is None or type(item) is int or type(item) is str or type(item) is list):
            return None
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:  # an int beyond 64 bits
        return None


def _day(value: date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def closure_key(unit: str, period: str) -> str:
    return f"{unit}|{period}"


def _check_moment(occurred_at: datetime) -> None:
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must carry its UTC offset")


class Community(Aggregate):
    TOPIC = "taizhang:Community"
    # Version of the aggregate's own state, as kept in snapshots: v2 added visit plans and pairings,
    # v3 the closed periods (结账); v4 no longer keeps the records (the store's record_state does).
    class_version = 4

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state.setdefault("visit_plans", {})
        state.setdefault("pairings", {})

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state.setdefault("closures", {})

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        state["records"] = {}  # a snapshot's records: the store's record_state holds them now

    # ---- events -------------------------------------------------------------------
    # Never put TOPIC on this base class: subclasses would inherit it silently.
    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:Community.Created"

    class Established(Created):
        TOPIC = "taizhang:Community.Established"
        code: str
        name: str
        county: str
        township: str
        village: str
        natural_villages: list[str]
        established_on: str

    class ResidentEnrolled(Event):
        TOPIC = "taizhang:Community.ResidentEnrolled"
        code: str
        name: Envelope
        birth_date: Envelope | None
        gender: str | None
        categories: list[str]
        grid: str | None
        household: str | None
        enrolled_on: str

        def apply(self, community: Community) -> None:
            community.residents[self.code] = {
                "enrolled_on": self.enrolled_on,
                "departed_on": None,
                "categories": list(self.categories),
                "grid": self.grid,
                "household": self.household,
            }

    class ResidentUpdated(Event):
        TOPIC = "taizhang:Community.ResidentUpdated"
        code: str
        categories: list[str] | None
        grid: str | None
        household: str | None

        def apply(self, community: Community) -> None:
            resident = community.residents[self.code]
            if self.categories is not None:
                resident["categories"] = list(self.categories)
            if self.grid is not None:
                resident["grid"] = self.grid
            if self.household is not None:
                resident["household"] = self.household

    class ResidentDeparted(Event):
        TOPIC = "taizhang:Community.ResidentDeparted"
        code: str
        reason: str
        on: str

        def apply(self, community: Community) -> None:
            community.residents[self.code]["departed_on"] = self.on

    class ResidentErased(Event):
        """The resident's personal data was destroyed (PIPL erasure): their data key and the note
        keys of `records`, every record that lists them. History keeps its codes and numbers.

        It changes no state: the application knows an erasure from the destroyed keys, so the
        snapshot's shape stays as it is.
        """

        TOPIC = "taizhang:Community.ResidentErased"
        code: str
        reason: str
        records: list[str]

    class ProviderRegistered(Event):
        TOPIC = "taizhang:Community.ProviderRegistered"
        code: str
        name: str
        role: str
        team: str | None
        registered_on: str

        def apply(self, community: Community) -> None:
            community.providers[self.code] = {
                "registered_on": self.registered_on,
                "retired_on": None,
                "role": self.role,
            }

    class ProviderRetired(Event):
        TOPIC = "taizhang:Community.ProviderRetired"
        code: str
        on: str

        def apply(self, community: Community) -> None:
            community.providers[self.code]["retired_on"] = self.on

    class ServiceRecorded(Event):
        TOPIC = "taizhang:Community.ServiceRecorded"
        record_id: str
        kind: str
        residents: list[str]
        providers: list[str]
        occurred_at: str
        minutes: int
        place: str | None
        note: Envelope | None
        note_mac: str | None
        entered_on: str | None
        digest: str

        def apply(self, community: Community) -> None:
            community.records[self.record_id] = [  # into the working set (the record is new)
                "active",
                self.digest,
                self.occurred_at,
                list(self.residents),
                list(self.providers),
                self.kind,
                self.minutes,
                self.place,
                self.note_mac,
                1,
                self.entered_on,
            ]

    class ServiceCorrected(Event):
        TOPIC = "taizhang:Community.ServiceCorrected"
        record_id: str
        reason: str
        changes: dict[str, Any]
        previous: dict[str, Any]

        def apply(self, community: Community) -> None:
            record = community.records.get(self.record_id)
            if record is None:
                return  # not in the working set: record_state has it
            for field, value in self.changes.items():
                if field == "occurred_at":
                    record[_AT] = value
                elif field == "residents":
                    record[_RESIDENTS] = list(value)
                elif field == "providers":
                    record[_PROVIDERS] = list(value)
                elif field == "kind":
                    record[_KIND] = value
                elif field == "minutes":
                    record[_MINUTES] = value
                elif field == "place":
                    record[_PLACE] = value
                elif field == "note_mac":
                    record[_NOTE_MAC] = value
            record[_REVISION] += 1

    class ServiceVoided(Event):
        TOPIC = "taizhang:Community.ServiceVoided"
        record_id: str
        reason: str

        def apply(self, community: Community) -> None:
            record = community.records.get(self.record_id)
            if record is not None:  # else not in the working set: record_state has it
                record[_STATUS] = "voided"

    class VisitPlanSet(Event):
        TOPIC = "taizhang:Community.VisitPlanSet"
        resident: str
        every: int
        provider: str
        starts_on: str

        def apply(self, community: Community) -> None:
            community.visit_plans[self.resident] = [self.every, self.provider, self.starts_on]

    class VisitPlanEnded(Event):
        TOPIC = "taizhang:Community.VisitPlanEnded"
        resident: str
        on: str

        def apply(self, community: Community) -> None:
            plan = community.visit_plans[self.resident]
            community.visit_plans[self.resident] = [*plan[:3], self.on]

    class PairingAdded(Event):
        TOPIC = "taizhang:Community.PairingAdded"
        provider: str
        resident: str
        on: str

        def apply(self, community: Community) -> None:
            community.pairings[f"{self.provider}|{self.resident}"] = self.on

    class PairingEnded(Event):
        TOPIC = "taizhang:Community.PairingEnded"
        provider: str
        resident: str
        on: str

        def apply(self, community: Community) -> None:
            community.pairings.pop(f"{self.provider}|{self.resident}", None)

    class PeriodClosed(Event):
        """A period of a unit (this community, or its township or county) was closed (结账)."""

        TOPIC = "taizhang:Community.PeriodClosed"
        unit: str
        period: str
        reason: str
        closed_at: str  # when the supervisor closed it, as their clock said (the log's recorded time is the proof)

        def apply(self, community: Community) -> None:
            span = parse_period(self.period)
            community.closures[closure_key(self.unit, self.period)] = [
                self.unit,
                self.period,
                span.first.isoformat(),
                span.last.isoformat(),
                self.actor,
                self.closed_at,
            ]

    class PeriodReopened(Event):
        TOPIC = "taizhang:Community.PeriodReopened"
        unit: str
        period: str
        reason: str

        def apply(self, community: Community) -> None:
            community.closures.pop(closure_key(self.unit, self.period), None)

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:Community.Snapshot"

        @classmethod
        def take(cls, aggregate: Any) -> Any:
            """A snapshot of the registry: the records working set is never kept (record_state is)."""
            snapshot = super().take(aggregate)
            snapshot.state["records"] = {}
            return snapshot

    # ---- construction ---------------------------------------------------------------
    def __init__(
        self,
        code: str,
        name: str,
        county: str,
        township: str,
        village: str,
        natural_villages: list[str],
        established_on: str,
    ) -> None:
        self.code = code
        self.name = name
        self.county = county
        self.township = township
        self.village = village
        self.natural_villages = list(natural_villages)
        self.established_on = established_on
        self.residents: dict[str, dict[str, Any]] = {}
        self.providers: dict[str, dict[str, Any]] = {}
        # Working set of record states (record_id -> compact list, see _STATUS …): the records this
        # command's rules need, handed in by the application from record_state, plus those recorded
        # here. Never in a snapshot.
        self.records: dict[str, list[Any]] = {}
        self.visit_plans: dict[str, list[Any]] = {}  # resident -> [every, provider, starts_on(, ended_on)]
        self.pairings: dict[str, str] = {}  # "provider|resident" -> since
        # "unit|period" -> [unit, period, first day, last day, closed by, closed at]
        self.closures: dict[str, list[str]] = {}

    @classmethod
    def establish(
        cls,
        *,
        code: str,
        name: str,
        county: str,
        township: str,
        village: str,
        natural_villages: list[str],
        established_on: date | str,
        actor: str,
    ) -> Community:
        for field, value in (("code", code), ("name", name), ("county", county), ("township", township), ("village", village)):
            if not value or not value.strip():
                raise RuleViolation(f"{field} must not be empty")
        return cls._create(
            cls.Established,
            id=community_id(code),
            code=code,
            name=name,
            county=county,
            township=township,
            village=village,
            natural_villages=list(natural_villages),
            established_on=_day(established_on),
            actor=actor,
        )

    @staticmethod
    def id_for(code: str) -> UUID:
        return community_id(code)

    # ---- residents ---------------------------------------------------------------------
    def enroll_resident(
        self,
        *,
        code: str,
        name: Envelope,
        birth_date: Envelope | None,
        gender: str | None,
        categories: list[str],
        grid: str | None,
        household: str | None,
        enrolled_on: date | str | None,
        actor: str,
    ) -> None:
        if code in self.residents:
            raise AlreadyExists(f"resident {code} is already enrolled in community {self.code}")
        self.trigger_event(
            self.ResidentEnrolled,
            code=code,
            name=name,
            birth_date=birth_date,
            gender=gender,
            categories=sorted(set(categories)),
            grid=grid,
            household=household,
            enrolled_on=_day(enrolled_on) if enrolled_on else self.established_on,
            actor=actor,
        )

    def update_resident(
        self,
        *,
        code: str,
        categories: list[str] | None,
        grid: str | None,
        household: str | None,
        actor: str,
    ) -> None:
        resident = self._resident(code)
        if resident["departed_on"] is not None:
            raise NotActive(f"resident {code} departed on {resident['departed_on']} and cannot be updated")
        new_categories = sorted(set(categories)) if categories is not None else None
        if (
            (new_categories is None or new_categories == resident["categories"])
            and (grid is None or grid == resident["grid"])
            and (household is None or household == resident["household"])
        ):
            raise RuleViolation(f"the update changes nothing for resident {code}")
        self.trigger_event(
            self.ResidentUpdated,
            code=code,
            categories=new_categories,
            grid=grid,
            household=household,
            actor=actor,
        )

    def depart_resident(self, *, code: str, reason: str, on: date | str, actor: str) -> None:
        resident = self._resident(code)
        day = _day(on)
        if resident["departed_on"] is not None:
            raise NotActive(f"resident {code} already departed on {resident['departed_on']}")
        if day < resident["enrolled_on"]:
            raise RuleViolation(f"resident {code} was enrolled on {resident['enrolled_on']}, after {day}")
        self._check_open(day, f"cannot record the departure of resident {code} on {day}")
        self._check_no_service_from(day, _RESIDENTS, code, "resident")
        self.trigger_event(self.ResidentDeparted, code=code, reason=reason, on=day, actor=actor)

    def erase_resident(self, *, code: str, reason: str, records: list[str], actor: str) -> None:
        """Record an erasure. Refusing a second one is the application's job: the keys are its state."""
        self._resident(code)
        if not reason.strip():
            raise RuleViolation("reason must not be empty")
        self.trigger_event(self.ResidentErased, code=code, reason=reason, records=sorted(records), actor=actor)

    def records_of_resident(self, code: str) -> list[str]:
        """Record ids whose current revision lists the resident."""
        return [record_id for record_id, record in self.records.items() if code in record[_RESIDENTS]]

    # ---- providers ----------------------------------------------------------------------
    def register_provider(
        self,
        *,
        code: str,
        name: str,
        role: str,
        team: str | None,
        registered_on: date | str | None,
        actor: str,
    ) -> None:
        if code in self.providers:
            raise AlreadyExists(f"provider {code} is already registered in community {self.code}")
        self.trigger_event(
            self.ProviderRegistered,
            code=code,
            name=name,
            role=role,
            team=team,
            registered_on=_day(registered_on) if registered_on else self.established_on,
            actor=actor,
        )

    def retire_provider(self, *, code: str, on: date | str, actor: str) -> None:
        provider = self._provider(code)
        day = _day(on)
        if provider["retired_on"] is not None:
            raise NotActive(f"provider {code} already retired on {provider['retired_on']}")
        if day < provider["registered_on"]:
            raise RuleViolation(f"provider {code} was registered on {provider['registered_on']}, after {day}")
        self._check_open(day, f"cannot record the retirement of provider {code} on {day}")
        self._check_no_service_from(day, _PROVIDERS, code, "provider")
        self.trigger_event(self.ProviderRetired, code=code, on=day, actor=actor)

    # ---- services -----------------------------------------------------------------------
    def record_service(self, **fields: Any) -> bool:
        """Record a service (the keyword arguments of `service_to_record`); False when the same record
        with the same content exists."""
        payload = self.service_to_record(**fields)
        if payload is None:
            return False
        self.trigger_event(self.ServiceRecorded, **payload)
        return True

    def service_to_record(
        self,
        *,
        record_id: str,
        kind: str,
        residents: list[str],
        providers: list[str],
        occurred_at: datetime,
        minutes: int,
        place: str | None,
        note: Envelope | None,
        note_mac: str | None,
        entered_on: date | str | None,
        actor: str,
        digest: str | None = None,
    ) -> dict[str, Any] | None:
        """The rules of recording a service: the ServiceRecorded event's fields (in its field
        order), None when the same record with the same content exists; raises what the rules
        refuse. Changes nothing: `record_service` triggers the event, a bulk import stores it
        itself and hands it back with `recorded`. `digest` is the `content_digest` of these very
        fields when the caller has it already (an import's check pass makes it)."""
        _check_moment(occurred_at)
        entered = _day(entered_on) if entered_on else None
        if digest is None:
            digest = content_digest(
                kind=kind,
                residents=residents,
                providers=providers,
                occurred_at=occurred_at,
                minutes=minutes,
                place=place,
                entered_on=entered,
                note_mac=note_mac,
            )
        existing = self.records.get(record_id)
        if existing is not None:
            if existing[_DIGEST] == digest or self._matches_current(
                existing, kind, residents, providers, occurred_at, minutes, place, note_mac, entered
            ):
                return None
            raise AlreadyExists(f"record {record_id} is already recorded with other content; use service correct")
        day = occurred_at.date().isoformat()
        if self.closures:
            self._check_open(day, f"cannot record a service on {day}")
        self._check_service(residents, providers, occurred_at, minutes, day)
        return {
            "actor": actor,
            "record_id": record_id,
            "kind": kind,
            "residents": list(residents),
            "providers": list(providers),
            "occurred_at": occurred_at.isoformat(),
            "minutes": minutes,
            "place": place,
            "note": note,
            "note_mac": note_mac,
            "entered_on": entered,
            "digest": digest,
        }

    def recorded(self, payload: dict[str, Any], timestamp: datetime) -> int:
        """Take in a ServiceRecorded event that the caller stores itself (a bulk import, which
        encodes it without an event object: infra.codec.stored_event): what `trigger_event`
        does to the aggregate, with `payload` from `service_to_record`. Returns its version."""
        if self._pending_events:
            raise RuntimeError("a stored-by-the-caller event may not follow pending events")  # a caller's mistake
        version = self._version + 1
        self.records[payload["record_id"]] = [
            "active",
            payload["digest"],
            payload["occurred_at"],
            list(payload["residents"]),
            list(payload["providers"]),
            payload["kind"],
            payload["minutes"],
            payload["place"],
            payload["note_mac"],
            1,
            payload["entered_on"],
        ]
        self._version = version
        self._modified_on = timestamp
        return version

    def correct_service(
        self,
        *,
        record_id: str,
        reason: str,
        actor: str,
        kind: str | None = None,
        occurred_at: datetime | None = None,
        minutes: int | None = None,
        residents: list[str] | None = None,
        providers: list[str] | None = None,
        place: str | None = None,
        note: Envelope | None = None,
        note_mac: str | None = None,
    ) -> None:
        record = self._active_record(record_id)
        from_day = record[_AT][:10]
        self._check_open(from_day, f"cannot correct record {record_id}, a service of {from_day}")
        if not reason.strip():
            raise RuleViolation("reason must not be empty")
        changes: dict[str, Any] = {}
        previous: dict[str, Any] = {}
        at_text = occurred_at.isoformat() if occurred_at is not None else None
        if occurred_at is not None:
            _check_moment(occurred_at)
        for field, value, index in (
            ("kind", kind, _KIND),
            ("occurred_at", at_text, _AT),
            ("minutes", minutes, _MINUTES),
            ("residents", residents, _RESIDENTS),
            ("providers", providers, _PROVIDERS),
            ("place", place, _PLACE),
        ):
            if value is None:
                continue
            current = record[index]
            if field == "occurred_at":
                same = datetime.fromisoformat(current) == occurred_at
            elif field in ("residents", "providers"):
                same = sorted(value) == sorted(current)  # a record's people are a set
            else:
                same = value == current
            if not same:
                changes[field] = list(value) if isinstance(value, list) else value
                previous[field] = current
        if note is not None and note_mac != record[_NOTE_MAC]:
            changes["note"] = note
            changes["note_mac"] = note_mac
            previous["note_mac"] = record[_NOTE_MAC]
        if not changes:
            raise RuleViolation(f"the correction changes nothing in record {record_id}")
        if occurred_at is not None and "occurred_at" in changes:
            to_day = occurred_at.date().isoformat()
            self._check_open(to_day, f"cannot move record {record_id} to {to_day}")
        new_at = occurred_at if "occurred_at" in changes else datetime.fromisoformat(record[_AT])
        self._check_service(
            changes.get("residents", record[_RESIDENTS]),
            changes.get("providers", record[_PROVIDERS]),
            new_at,
            changes.get("minutes", record[_MINUTES]),
        )
        self.trigger_event(
            self.ServiceCorrected,
            record_id=record_id,
            reason=reason,
            changes=changes,
            previous=previous,
            actor=actor,
        )

    def void_service(self, *, record_id: str, reason: str, actor: str) -> None:
        record = self._active_record(record_id)
        day = record[_AT][:10]
        self._check_open(day, f"cannot void record {record_id}, a service of {day}")
        if not reason.strip():
            raise RuleViolation("reason must not be empty")
        self.trigger_event(self.ServiceVoided, record_id=record_id, reason=reason, actor=actor)

    # ---- key visits and pairings -------------------------------------------------------
    def _resident_active_on(self, code: str, day: str) -> None:
        resident = self._resident(code)
        if day < resident["enrolled_on"] or (resident["departed_on"] is not None and day >= resident["departed_on"]):
            raise NotActive(f"resident {code} is not enrolled in community {self.code} on {day}")

    def _provider_active_on(self, code: str, day: str) -> None:
        provider = self._provider(code)
        if day < provider["registered_on"] or (provider["retired_on"] is not None and day >= provider["retired_on"]):
            raise NotActive(f"provider {code} is not active in community {self.code} on {day}")

    def set_visit_plan(self, *, resident: str, every: int, provider: str, starts_on: date | str, actor: str) -> None:
        """Key visits (重点巡访): a new plan for the same resident replaces the old one from its first day."""
        day = _day(starts_on)
        if not 1 <= every <= 366:
            raise RuleViolation(f"every {every} is outside 1-366 days")
        self._check_open(day, f"cannot start a visit plan for resident {resident} on {day}")
        self._resident_active_on(resident, day)
        self._provider_active_on(provider, day)
        current = self.visit_plans.get(resident)
        if current is not None and len(current) > 3 and day < current[3]:
            raise RuleViolation(f"resident {resident}'s last visit plan ran until {current[3]}, after {day}")
        if current is not None and day < current[2]:
            raise RuleViolation(f"resident {resident}'s current visit plan starts on {current[2]}, after {day}")
        self.trigger_event(self.VisitPlanSet, resident=resident, every=every, provider=provider, starts_on=day, actor=actor)

    def end_visit_plan(self, *, resident: str, on: date | str, actor: str) -> None:
        current = self.visit_plans.get(resident)
        if current is None or len(current) > 3:
            raise NotActive(f"resident {resident} has no visit plan in force in community {self.code}")
        day = _day(on)
        if day < current[2]:
            raise RuleViolation(f"resident {resident}'s visit plan starts on {current[2]}, after {day}")
        self._check_open(day, f"cannot end the visit plan of resident {resident} on {day}")
        self.trigger_event(self.VisitPlanEnded, resident=resident, on=day, actor=actor)

    def add_pairing(self, *, provider: str, resident: str, on: date | str, actor: str) -> None:
        """Pairing assistance (结对帮扶): a provider answers for a resident."""
        day = _day(on)
        self._check_open(day, f"cannot pair provider {provider} with resident {resident} on {day}")
        self._resident_active_on(resident, day)
        self._provider_active_on(provider, day)
        if f"{provider}|{resident}" in self.pairings:
            raise AlreadyExists(f"provider {provider} is already paired with resident {resident}")
        self.trigger_event(self.PairingAdded, provider=provider, resident=resident, on=day, actor=actor)

    def end_pairing(self, *, provider: str, resident: str, on: date | str, actor: str) -> None:
        since = self.pairings.get(f"{provider}|{resident}")
        if since is None:
            raise NotActive(f"provider {provider} is not paired with resident {resident}")
        day = _day(on)
        if day < since:
            raise RuleViolation(f"the pairing started on {since}, after {day}")
        self._check_open(day, f"cannot end the pairing of provider {provider} with resident {resident} on {day}")
        self.trigger_event(self.PairingEnded, provider=provider, resident=resident, on=day, actor=actor)

    # ---- closed periods (结账) -------------------------------------------------------------
    def covers(self, unit: str) -> bool:
        """Whether `unit` is this community, its township or its county."""
        ref = parse_unit(unit)
        if ref.level == "community":
            return ref.community == self.code
        if ref.level == "township":
            return (ref.county, ref.township) == (self.county, self.township)
        return ref.county == self.county

    def closure(self, unit: str, period: str) -> list[str] | None:
        """[unit, period, first day, last day, closed by, closed at] of that closure, if in force."""
        return self.closures.get(closure_key(str(parse_unit(unit)), parse_period(period).text))

    def close_period(self, *, unit: str, period: str, reason: str, closed_at: str, actor: str) -> None:
        """Close a period of a unit this community belongs to: nothing dated inside it may change."""
        unit_text, span = str(parse_unit(unit)), parse_period(period)
        if not self.covers(unit_text):
            raise RuleViolation(f"community {self.code} is not in {unit_text}")
        if not reason.strip():
            raise RuleViolation("reason must not be empty")
        existing = self.closures.get(closure_key(unit_text, span.text))
        if existing is not None:
            raise AlreadyExists(f"{unit_text} {span.text} is already closed (closed by {existing[4]} on {existing[5]})")
        self.trigger_event(
            self.PeriodClosed, unit=unit_text, period=span.text, reason=reason, closed_at=closed_at, actor=actor
        )

    def reopen_period(self, *, unit: str, period: str, reason: str, actor: str) -> None:
        unit_text, span = str(parse_unit(unit)), parse_period(period)
        if closure_key(unit_text, span.text) not in self.closures:
            raise NotActive(f"{unit_text} {span.text} is not closed in community {self.code}")
        if not reason.strip():
            raise RuleViolation("reason must not be empty")
        self.trigger_event(self.PeriodReopened, unit=unit_text, period=span.text, reason=reason, actor=actor)

    def closures_on(self, day: str) -> list[list[str]]:
        """The closures in force that cover a local day (YYYY-MM-DD), in a stable order."""
        return [c for _key, c in sorted(self.closures.items()) if c[2] <= day <= c[3]]

    def check_open(self, day: str, action: str) -> None:
        """Refuse `action` dated `day` when a closure covers it (for rules outside this aggregate: funds)."""
        self._check_open(day, action)

    def _check_open(self, day: str, action: str) -> None:
        """Refuse `action` ("cannot … on DAY") when a closure covers the day, naming the closure(s)."""
        covering = self.closures_on(day)
        if covering:
            unit, period, _first, _last, by, at = covering[0]
            others = " + ".join(f"{c[0]} {c[1]}" for c in covering[1:])
            raise ClosedPeriodError(
                f"closed: {unit} {period} (closed by {by} on {at}){f' + {others}' if others else ''}: {action}; "
                f"reopen it with taizhang ledger reopen --unit {unit} --period {period}"
            )

    # ---- the records working set -------------------------------------------------------
    def know_records(self, states: dict[str, list[Any]]) -> None:
        """Hand in the current state of records (from record_state) that this command's rules need.

        Every record a rule may look at must be known: recording (whether the id exists),
        correcting and voiding (the record), a departure or retirement (the earliest active
        service of the person on or after its day, if any)."""
        for record_id, state in states.items():
            self.records[record_id] = list(state)

    def forget_records(self) -> None:
        """Empty the working set (before handing in a consistent set of states)."""
        self.records = {}

    # ---- queries the rules and the application need ------------------------------------
    def record_status(self, record_id: str) -> str | None:
        record = self.records.get(record_id)
        return None if record is None else record[_STATUS]

    def record_note_mac(self, record_id: str) -> str | None:
        return self.records[record_id][_NOTE_MAC]

    def record_residents(self, record_id: str) -> list[str]:
        return list(self.records[record_id][_RESIDENTS])

    def record_revision(self, record_id: str) -> int:
        return self.records[record_id][_REVISION]

    @staticmethod
    def _matches_current(
        record: list[Any],
        kind: str,
        residents: list[str],
        providers: list[str],
        occurred_at: datetime,
        minutes: int,
        place: str | None,
        note_mac: str | None,
        entered_on: str | None,
    ) -> bool:
        """A corrected record is also "the same" as its latest revision (an exported ledger re-imported)."""
        return (
            record[_REVISION] > 1
            and record[_ENTERED] == entered_on
            and record[_KIND] == kind
            and sorted(record[_RESIDENTS]) == sorted(residents)
            and sorted(record[_PROVIDERS]) == sorted(providers)
            and datetime.fromisoformat(record[_AT]) == occurred_at
            and record[_MINUTES] == minutes
            and record[_PLACE] == place
            and record[_NOTE_MAC] == note_mac
        )

    # ---- rules --------------------------------------------------------------------------
    def _check_no_service_from(self, day: str, index: int, code: str, who: str) -> None:
        """A departure or retirement may not leave active services on or after its day."""
        for record_id, record in self.records.items():
            if record[_STATUS] == "active" and code in record[index] and record[_AT][:10] >= day:
                raise RuleViolation(
                    f"{who} {code} has an active service on {record[_AT][:10]} (record {record_id}); "
                    f"correct or void it before recording {'a departure' if who == 'resident' else 'a retirement'} "
                    f"on {day}"
                )

    def _resident(self, code: str) -> dict[str, Any]:
        try:
            return self.residents[code]
        except KeyError:
            raise NotFound(f"resident {code} is not enrolled in community {self.code}") from None

    def _provider(self, code: str) -> dict[str, Any]:
        try:
            return self.providers[code]
        except KeyError:
            raise NotFound(f"provider {code} is not registered in community {self.code}") from None

    def _active_record(self, record_id: str) -> list[Any]:
        record = self.records.get(record_id)
        if record is None:
            raise NotFound(f"record {record_id} is not in community {self.code}")
        if record[_STATUS] != "active":
            raise NotActive(f"record {record_id} is {record[_STATUS]} and cannot be changed")
        return record

    def _check_service(
        self, residents: list[str], providers: list[str], occurred_at: datetime, minutes: int, day: str | None = None
    ) -> None:
        if not residents:
            raise RuleViolation("a service needs at least one resident")
        if not providers:
            raise RuleViolation("a service needs at least one provider")
        if len(set(residents)) != len(residents):
            raise RuleViolation("a resident is listed twice")
        if len(set(providers)) != len(providers):
            raise RuleViolation("a provider is listed twice")
        if not MIN_MINUTES <= minutes <= MAX_MINUTES:
            raise RuleViolation(f"minutes {minutes} is outside {MIN_MINUTES}-{MAX_MINUTES}")
        if day is None:
            day = occurred_at.date().isoformat()
        if day < self.established_on:
            raise RuleViolation(
                f"the service on {day} is before community {self.code} was established on {self.established_on}"
            )
        for code in residents:
            resident = self._resident(code)
            if day < resident["enrolled_on"]:
                raise NotActive(f"resident {code} was not yet enrolled on {day} (enrolled on {resident['enrolled_on']})")
            if resident["departed_on"] is not None and day >= resident["departed_on"]:
                raise NotActive(f"resident {code} had departed on {resident['departed_on']}, before the service on {day}")
        for code in providers:
            provider = self._provider(code)
            if day < provider["registered_on"]:
                raise NotActive(
                    f"provider {code} was not yet registered on {day} (registered on {provider['registered_on']})"
                )
            if provider["retired_on"] is not None and day >= provider["retired_on"]:
                raise NotActive(f"provider {code} had retired on {provider['retired_on']}, before the service on {day}")


register_topic(Community.Snapshot.TOPIC, Community.Snapshot)
