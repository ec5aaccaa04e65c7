"""Random command histories through LedgerService on real stores.

For every command the test predicts, from a model kept from the accepted commands only
(DESIGN §3), whether it is malformed (exit 2), refused (exit 1), accepted without change
(the same record again) or accepted. It then checks that

(a) a command that changed nothing left the store exactly as it was (events and record-id
    claims), and an accepted one appended exactly one event of the expected type;
(b) each community loaded cold from the store (a new service, snapshots taken every few
    events) equals the model, and equals the aggregate replayed from its decoded events
    without snapshots.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import app as app_module
from commands import models
from commands.app import LedgerService, TaizhangApplication
from domain import community as community_module
from domain.community import Community
from domain.errors import LedgerError
from domain.ids import community_id
from infra import crypto
from infra.store import parse_url
from tests.conftest import drop_pg_database, make_pg_database

pytestmark = pytest.mark.clock  # service days are laid out from today's date

TZ = ZoneInfo("Asia/Shanghai")  # the default store zone (LedgerService.create with tz=None)
ACTOR = "clerk"
SNAPSHOT_EVERY = 4

# Every day used lies in the past (days 0..89 after DAY0), so none is refused for being in the future.
DAY0 = datetime.now(TZ).date() - timedelta(days=90)
ESTABLISHED = {"A": DAY0 + timedelta(days=9), "B": DAY0 + timedelta(days=4)}
UNKNOWN_COMMUNITY = "Z"
RESIDENTS = ["R1", "R2", "R3", "R4"]
PROVIDERS = ["P1", "P2", "P3"]
RECORD_IDS = [f"{n:08x}-7c4b-4f1e-8b6a-3e9f0a1c2d44" for n in range(0xA1, 0xA6)]

# Input spellings and the slugs they stand for (DESIGN §1).
SLUG = {
    "生活照料": "life_care",
    "family-care": "family_care",
    "幸福院": "happiness_home",
    "留守老人": "left_behind_elderly",
    "left-behind-child": "left_behind_child",
}
KINDS = ["life_care", "counseling", "生活照料", "family-care"]
PLACES = ["home_visit", "幸福院"]
CATEGORIES = ["hardship", "留守老人", "left-behind-child"]
NOTES = ["腿脚不便", "送药上门"]
TIMES = ["09:30", "00:00", "23:59", "16:30Z"]  # 16:30Z is 00:30 of the next local day


def slug(value: str) -> str:
    return SLUG.get(value, value)


def optional_slug(value: str | None) -> str | None:
    return None if value is None else slug(value)


def day(offset: int) -> date:
    return DAY0 + timedelta(days=offset)


def moment_text(offset: int, time: str) -> str:
    if time.endswith("Z"):
        return f"{day(offset).isoformat()}T{time[:-1]}:00Z"
    return f"{day(offset).isoformat()} {time}"


def parse_moment(text: str) -> datetime:
    """A service time as the store reads it: naive in its zone, an offset converted to it."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=TZ) if parsed.tzinfo is None else parsed.astimezone(TZ)


def moment(offset: int, time: str) -> datetime:
    return parse_moment(moment_text(offset, time))


# ---- the model ---------------------------------------------------------------------------------


@dataclass
class Resident:
    enrolled_on: date
    departed_on: date | None
    categories: list[str]
    grid: str | None


@dataclass
class Provider:
    registered_on: date
    retired_on: date | None


@dataclass
class Record:
    kind: str
    residents: list[str]
    providers: list[str]
    at: datetime
    minutes: int
    place: str | None
    note: str | None
    entered_on: date | None
    original: tuple[Any, ...]
    status: str = "active"
    revision: int = 1

    def content(self) -> tuple[Any, ...]:
        return content(
            self.kind, self.residents, self.providers, self.at, self.minutes, self.place, self.note, self.entered_on
        )


def content(
    kind: str,
    residents: list[str],
    providers: list[str],
    at: datetime,
    minutes: int,
    place: str | None,
    note: str | None,
    entered_on: date | None,
) -> tuple[Any, ...]:
    """What makes a recording "the same content": lists as sets, the time as an instant."""
    return (kind, frozenset(residents), frozenset(providers), at.timestamp(), minutes, place, note, entered_on)


@dataclass
class CommunityModel:
    established_on: date
    residents: dict[str, Resident] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)

    def serves(self, residents: list[str], providers: list[str], at: datetime) -> bool:
        """Whether a service by these providers to these residents may have happened at `at`."""
        today = at.astimezone(TZ).date()
        if today < self.established_on:
            return False
        for code in residents:
            r = self.residents.get(code)
            if r is None or today < r.enrolled_on or (r.departed_on is not None and today >= r.departed_on):
                return False
        for code in providers:
            p = self.providers.get(code)
            if p is None or today < p.registered_on or (p.retired_on is not None and today >= p.retired_on):
                return False
        return True

    def serves_from(self, attr: str, code: str, on: date) -> bool:
        """Whether an active record lists `code` (in residents or providers) on or after `on`."""
        return any(
            r.status == "active" and code in getattr(r, attr) and r.at.astimezone(TZ).date() >= on
            for r in self.records.values()
        )


def same_value(value: Any, current: Any) -> bool:
    """Lists of codes are sets: another order is the same value."""
    return set(value) == set(current) if isinstance(value, list) else bool(value == current)


# Outcomes of a command.
MALFORMED, REFUSED, SAME, ACCEPTED = "malformed", "refused", "same", "accepted"


@dataclass
class Model:
    communities: dict[str, CommunityModel]
    owner: dict[str, str] = field(default_factory=dict)  # record id -> community

    def enroll(self, c: dict[str, Any]) -> str:
        com = self.communities.get(c["community"])
        if com is None or c["code"] in com.residents:
            return REFUSED
        enrolled = day(c["enrolled_on"]) if c["enrolled_on"] is not None else com.established_on
        categories = sorted({slug(x) for x in c["categories"]})
        com.residents[c["code"]] = Resident(enrolled, None, categories, None)
        return ACCEPTED

    def update(self, c: dict[str, Any]) -> str:
        com = self.communities.get(c["community"])
        r = com.residents.get(c["code"]) if com else None
        if r is None or r.departed_on is not None:
            return REFUSED
        categories = None if c["categories"] is None else sorted({slug(x) for x in c["categories"]})
        new_categories = categories is not None and categories != r.categories
        new_grid = c["grid"] is not None and c["grid"] != r.grid
        if not (new_categories or new_grid):
            return REFUSED
        if categories is not None:
            r.categories = categories
        if c["grid"] is not None:
            r.grid = c["grid"]
        return ACCEPTED

    def depart(self, c: dict[str, Any]) -> str:
        com = self.communities.get(c["community"])
        r = com.residents.get(c["code"]) if com else None
        if r is None or r.departed_on is not None or day(c["on"]) < r.enrolled_on:
            return REFUSED
        if com.serves_from("residents", c["code"], day(c["on"])):  # type: ignore[union-attr]
            return REFUSED  # a departure may not strand services on or after its day
        r.departed_on = day(c["on"])
        return ACCEPTED

    def register(self, c: dict[str, Any]) -> str:
        com = self.communities.get(c["community"])
        if com is None or c["code"] in com.providers:
            return REFUSED
        registered = day(c["registered_on"]) if c["registered_on"] is not None else com.established_on
        com.providers[c["code"]] = Provider(registered, None)
        return ACCEPTED

    def retire(self, c: dict[str, Any]) -> str:
        com = self.communities.get(c["community"])
        p = com.providers.get(c["code"]) if com else None
        if p is None or p.retired_on is not None or day(c["on"]) < p.registered_on:
            return REFUSED
        if com.serves_from("providers", c["code"], day(c["on"])):  # type: ignore[union-attr]
            return REFUSED  # a retirement may not strand services on or after its day
        p.retired_on = day(c["on"])
        return ACCEPTED

    def record(self, c: dict[str, Any]) -> str:
        at, entered_on = parse_moment(c["at"]), c["entered_on"]
        if not 1 <= c["minutes"] <= 1440:
            return MALFORMED
        if entered_on is not None and entered_on < at.date():
            return MALFORMED  # a paper entry is not written before the service
        com = self.communities.get(c["community"])
        if com is None:
            return REFUSED
        rid = c["record_id"].lower()
        kind, place = slug(c["kind"]), optional_slug(c["place"])
        given = content(kind, c["residents"], c["providers"], at, c["minutes"], place, c["note"], entered_on)
        existing = com.records.get(rid)
        if existing is not None:
            # The first revision, or the latest one of a corrected record, is "the same content".
            same = given == existing.original or (existing.revision > 1 and given == existing.content())
            return SAME if same else REFUSED
        if rid in self.owner or not com.serves(c["residents"], c["providers"], at):
            return REFUSED
        com.records[rid] = Record(
            kind, list(c["residents"]), list(c["providers"]), at, c["minutes"], place, c["note"], entered_on, given
        )
        self.owner[rid] = c["community"]
        return ACCEPTED

    def correct(self, c: dict[str, Any]) -> str:
        if c["minutes"] is not None and not 1 <= c["minutes"] <= 1440:
            return MALFORMED
        com = self.communities.get(c["community"])
        rec = com.records.get(c["record_id"].lower()) if com else None
        if com is None or rec is None or rec.status != "active":
            return REFUSED
        at = moment(*c["when"]) if c["when"] is not None else None
        changed: dict[str, Any] = {
            name: value
            for name, value, current in (
                ("kind", optional_slug(c["kind"]), rec.kind),
                ("minutes", c["minutes"], rec.minutes),
                ("residents", c["residents"], rec.residents),
                ("providers", c["providers"], rec.providers),
                ("place", optional_slug(c["place"]), rec.place),
                ("note", c["note"], rec.note),
            )
            if value is not None and not same_value(value, current)
        }
        if at is not None and at != rec.at:
            changed["at"] = at
        if not changed:
            return REFUSED
        residents = changed.get("residents", rec.residents)
        if not com.serves(residents, changed.get("providers", rec.providers), changed.get("at", rec.at)):
            return REFUSED
        for name, value in changed.items():
            setattr(rec, name, value)
        rec.revision += 1
        return ACCEPTED

    def void(self, c: dict[str, Any]) -> str:
        com = self.communities.get(c["community"])
        rec = com.records.get(c["record_id"].lower()) if com else None
        if rec is None or rec.status != "active":
            return REFUSED
        rec.status = "voided"
        return ACCEPTED


# ---- the commands ----------------------------------------------------------------------------------


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, chosen in proportion to its weight (st.one_of would not weigh)."""
    indexes = [index for index, (weight, _) in enumerate(options) for _ in range(weight)]
    return st.sampled_from(indexes).flatmap(lambda index: options[index][1])


offsets = st.integers(0, 59)
late_offsets = st.integers(20, 59)  # departures and retirements: mostly after some services
# Service days: mostly after both establishments, sometimes around them (A: day 9, B: day 4).
service_offsets = weighted((4, st.integers(10, 59)), (1, st.integers(0, 12)))
communities = st.sampled_from(["A", "A", "A", "A", "B", "B", "B", UNKNOWN_COMMUNITY])  # sampled_from weighs
residents = st.sampled_from(RESIDENTS)
providers = st.sampled_from(PROVIDERS)
record_ids = st.sampled_from(RECORD_IDS)
minutes = weighted(
    (10, st.integers(1, 120)),
    (3, st.integers(1, 1440)),
    (1, st.sampled_from([1, 1440])),
    (1, st.sampled_from([-5, 0, 1441, 1500])),
)
# In any order: a record's residents and providers are sets.
resident_lists = st.lists(residents, min_size=1, max_size=3, unique=True)
provider_lists = st.lists(providers, min_size=1, max_size=2, unique=True)


def op(name: str, **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"op": st.just(name), **fields})


enrolls = op(
    "enroll",
    community=communities,
    code=residents,
    categories=st.lists(st.sampled_from(CATEGORIES), max_size=2),
    enrolled_on=st.none() | offsets,
)
updates = op(
    "update",
    community=communities,
    code=residents,
    categories=st.none() | st.lists(st.sampled_from(CATEGORIES), max_size=2),
    grid=st.sampled_from([None, "G1", "G2"]),
)
departs = op("depart", community=communities, code=residents, on=late_offsets)
registers = op("register", community=communities, code=providers, registered_on=st.none() | offsets)
retires = op("retire", community=communities, code=providers, on=late_offsets)
records = op(
    "record",
    community=communities,
    record_id=weighted((3, st.none()), (2, record_ids), (1, record_ids.map(str.upper))),  # None: a new id
    kind=st.sampled_from(KINDS),
    residents=resident_lists,
    providers=provider_lists,
    day=service_offsets,
    time=st.sampled_from(TIMES),
    minutes=minutes,
    place=st.sampled_from([None, *PLACES]),
    note=st.sampled_from([None, *NOTES]),
    # entered_on, in days after `day`; -1 and, for a time after 16:00Z, 0 are before the local service day
    entered_after=weighted((4, st.none()), (3, st.integers(1, 15)), (1, st.integers(-1, 0))),
)
repeats = op(
    "repeat",
    k=st.integers(0, 1000),
    variation=st.sampled_from(
        ["same", "same", "permuted", "other-minutes", "other-community", "latest", "latest", "latest-other-entry"]
    ),
)
# A correction or void names a record that exists (the k-th, mostly in its own community) or
# one of the pool, which may be unknown there.
targets = weighted((2, st.integers(0, 1000)), (1, record_ids))
OWN = "own"  # the community of the k-th record
REORDER = "reorder"  # the record's own residents, in reverse order
target_communities = weighted((3, st.just(OWN)), (1, communities))
corrections = op(
    "correct",
    community=target_communities,
    record_id=targets,
    kind=st.none() | st.sampled_from(KINDS),
    minutes=st.none() | minutes,
    when=st.none() | st.tuples(service_offsets, st.sampled_from(TIMES)),
    residents=weighted((4, st.none()), (3, resident_lists), (1, st.just(REORDER))),
    providers=st.none() | provider_lists,
    place=st.none() | st.sampled_from(PLACES),
    note=st.none() | st.sampled_from(NOTES),
)
voids = op("void", community=target_communities, record_id=targets)

# Every code of the pools enrolled / registered in both communities first (at random dates,
# mostly the establishment date), so that many services are accepted; then random commands.
population = st.tuples(
    *(
        op(
            "enroll",
            community=st.just(code),
            code=st.just(resident),
            categories=st.lists(st.sampled_from(CATEGORIES), max_size=2),
            enrolled_on=weighted((2, st.none()), (1, st.integers(0, 20))),
        )
        for code in ESTABLISHED
        for resident in RESIDENTS
    ),
    *(
        op(
            "register",
            community=st.just(code),
            code=st.just(provider),
            registered_on=weighted((2, st.none()), (1, st.integers(0, 20))),
        )
        for code in ESTABLISHED
        for provider in PROVIDERS
    ),
).map(list)
command_lists = st.lists(
    weighted(
        (1, enrolls),
        (1, updates),
        (1, departs),
        (1, registers),
        (1, retires),
        (6, records),
        (3, repeats),
        (4, corrections),
        (2, voids),
    ),
    min_size=20,
    max_size=80,
)
histories = st.tuples(population, command_lists).map(lambda parts: parts[0] + parts[1])

EVENT_TOPIC = {
    "enroll": Community.ResidentEnrolled.TOPIC,
    "update": Community.ResidentUpdated.TOPIC,
    "depart": Community.ResidentDeparted.TOPIC,
    "register": Community.ProviderRegistered.TOPIC,
    "retire": Community.ProviderRetired.TOPIC,
    "record": Community.ServiceRecorded.TOPIC,
    "correct": Community.ServiceCorrected.TOPIC,
    "void": Community.ServiceVoided.TOPIC,
}


# ---- running a history ---------------------------------------------------------------------------


def resolve_target(c: dict[str, Any], model: Model) -> dict[str, Any] | None:
    """A correction or void of the k-th record the model holds (voided ones too), or of a pool id."""
    if isinstance(c["record_id"], str):
        c = {**c, "community": "A"} if c["community"] == OWN else c
    else:
        known = [(code, rid) for code, com in sorted(model.communities.items()) for rid in sorted(com.records)]
        if not known:
            return None
        code, record_id = known[c["record_id"] % len(known)]
        c = {**c, "record_id": record_id, "community": code if c["community"] == OWN else c["community"]}
    if c.get("residents") == REORDER:
        owner = model.owner.get(c["record_id"])
        residents = model.communities[owner].records[c["record_id"]].residents[::-1] if owner else None
        c = {**c, "residents": residents}
    return c


def resolve_record(c: dict[str, Any], issued: list[dict[str, Any]]) -> dict[str, Any]:
    """A generated record command with its time as text, its entry date, and a new id if it has none."""
    record_id = c["record_id"] or str(uuid.UUID(int=len(issued) + 1, version=4))
    entered_on = None if c["entered_after"] is None else day(c["day"] + c["entered_after"])
    fields = {k: v for k, v in c.items() if k not in ("day", "time", "entered_after")}
    return {**fields, "record_id": record_id, "at": moment_text(c["day"], c["time"]), "entered_on": entered_on}


def resolve_repeat(c: dict[str, Any], issued: list[dict[str, Any]], model: Model) -> dict[str, Any] | None:
    """A `repeat` becomes an earlier record command again, as it was, varied, or as its latest revision."""
    if not issued:
        return None
    again = dict(issued[c["k"] % len(issued)])
    variation = c["variation"]
    if variation in ("latest", "latest-other-entry"):
        owner = model.owner.get(again["record_id"].lower())
        if owner is None:
            return again
        rec = model.communities[owner].records[again["record_id"].lower()]
        entered_on = rec.entered_on
        if variation == "latest-other-entry":
            entered_on = rec.at.date() + timedelta(days=1) if entered_on is None else None
        return {
            **again,
            "community": owner,
            "kind": rec.kind,
            "residents": list(reversed(rec.residents)),
            "providers": list(rec.providers),
            "at": rec.at.isoformat(),
            "minutes": rec.minutes,
            "place": rec.place,
            "note": rec.note,
            "entered_on": entered_on,
        }
    if variation == "permuted":
        again["residents"] = list(reversed(again["residents"]))
        again["providers"] = list(reversed(again["providers"]))
    elif variation == "other-minutes":
        again["minutes"] = again["minutes"] % 1440 + 1
    elif variation == "other-community":
        again["community"] = "B" if again["community"] == "A" else "A"
    return again


def execute(service: LedgerService, c: dict[str, Any]) -> str:
    """Run one command through the service; its outcome, as the model names them."""
    name = c["op"]
    try:
        if name == "enroll":
            data = {"community": c["community"], "code": c["code"], "name": "张秀英", "categories": c["categories"]}
            if c["enrolled_on"] is not None:
                data["enrolled_on"] = day(c["enrolled_on"])
            service.enroll_resident(service.validate(models.EnrollResident, data), ACTOR)
        elif name == "update":
            data = {"community": c["community"], "code": c["code"], "grid": c["grid"]}
            if c["categories"] is not None:
                data["categories"] = c["categories"]
            service.update_resident(service.validate(models.UpdateResident, data), ACTOR)
        elif name == "depart":
            data = {"community": c["community"], "code": c["code"], "reason": "moved", "on": day(c["on"]).isoformat()}
            service.depart_resident(service.validate(models.DepartResident, data), ACTOR)
        elif name == "register":
            data = {"community": c["community"], "code": c["code"], "name": "李建国", "role": "volunteer"}
            if c["registered_on"] is not None:
                data["registered_on"] = day(c["registered_on"]).isoformat()
            service.register_provider(service.validate(models.RegisterProvider, data), ACTOR)
        elif name == "retire":
            data = {"community": c["community"], "code": c["code"], "on": day(c["on"])}
            service.retire_provider(service.validate(models.RetireProvider, data), ACTOR)
        elif name == "record":
            data = {
                "community": c["community"],
                "record_id": c["record_id"],
                "kind": c["kind"],
                "residents": c["residents"],
                "providers": ";".join(c["providers"]),
                "occurred_at": c["at"],
                "minutes": c["minutes"],
                "place": c["place"],
                "note": c["note"],
                "entered_on": None if c["entered_on"] is None else c["entered_on"].isoformat(),
            }
            cmd = service.validate(models.RecordService, data)
            assert cmd.record_id is not None
            result = service.record_service(cmd, ACTOR, cmd.record_id)
            assert result["record_id"] == c["record_id"].lower()
            return ACCEPTED if result["created"] else SAME
        elif name == "correct":
            data = {"community": c["community"], "record_id": c["record_id"], "reason": "核对纸质台账"}
            for key in ("kind", "minutes", "residents", "providers", "place", "note"):
                if c[key] is not None:
                    data[key] = c[key]
            if c["when"] is not None:
                data["occurred_at"] = moment_text(*c["when"])
            service.correct_service(service.validate(models.CorrectService, data), ACTOR)
        elif name == "void":
            data = {"community": c["community"], "record_id": c["record_id"], "reason": "重复登记"}
            service.void_service(service.validate(models.VoidService, data), ACTOR)
        else:
            raise AssertionError(f"unknown command {name}")
    except models.Malformed:
        return MALFORMED
    except LedgerError:
        return REFUSED
    return ACCEPTED


def store_state(service: LedgerService, record_ids: set[str]) -> tuple[int | None, list[Any], dict[str, str]]:
    """The last log position, every stored event, and the claims of these record ids."""
    recorder = service.recorder
    return recorder.max_notification_id(), recorder.select_notifications(1, 10**6), recorder.claims(sorted(record_ids))


def record_fields(aggregate: Community, record_id: str) -> dict[str, Any]:
    record = aggregate.records[record_id]
    m = community_module
    return {
        "status": record[m._STATUS],
        "revision": record[m._REVISION],
        "kind": record[m._KIND],
        "residents": record[m._RESIDENTS],
        "providers": record[m._PROVIDERS],
        "at": datetime.fromisoformat(record[m._AT]),
        "minutes": record[m._MINUTES],
        "place": record[m._PLACE],
        "has_note": record[m._NOTE_MAC] is not None,
    }


def expected_fields(record: Record) -> dict[str, Any]:
    return {
        "status": record.status,
        "revision": record.revision,
        "kind": record.kind,
        "residents": record.residents,
        "providers": record.providers,
        "at": record.at,
        "minutes": record.minutes,
        "place": record.place,
        "has_note": record.note is not None,
    }


def aggregate_state(aggregate: Community, *, registry: bool = False) -> dict[str, Any]:
    """The aggregate's state; with `registry`, without the records working set."""
    skip = ("_pending_events", "records") if registry else ("_pending_events",)
    return {k: v for k, v in aggregate.__dict__.items() if k not in skip}


def check_store(url: str, key_file: Path, model: Model) -> None:
    """(b): each community loaded cold equals the model and the snapshot-free replay."""
    fresh = LedgerService.open(parse_url(url), key_file)
    try:
        for code, com in model.communities.items():
            aggregate_id = community_id(code)
            loaded: Community = fresh.app.repository.get(aggregate_id)
            assert loaded.established_on == com.established_on.isoformat()
            assert {
                code: (r["enrolled_on"], r["departed_on"], r["categories"], r["grid"])
                for code, r in loaded.residents.items()
            } == {
                code: (r.enrolled_on.isoformat(), r.departed_on and r.departed_on.isoformat(), r.categories, r.grid)
                for code, r in com.residents.items()
            }
            assert {code: (p["registered_on"], p["retired_on"]) for code, p in loaded.providers.items()} == {
                code: (p.registered_on.isoformat(), p.retired_on and p.retired_on.isoformat())
                for code, p in com.providers.items()
            }
            # Records live in the store's record_state; a command loads the ones it names.
            assert set(fresh.recorder.records_of(aggregate_id)) == set(com.records)
            with_records = fresh.get_community(code, com.records)
            for record_id, record in com.records.items():
                assert record_fields(with_records, record_id) == expected_fields(record), record_id

            replayed: Community | None = None
            for event in fresh.app.events.get(aggregate_id):
                replayed = event.mutate(replayed)  # type: ignore[attr-defined]
            assert replayed is not None
            assert aggregate_state(replayed, registry=True) == aggregate_state(loaded, registry=True)
            assert replayed.records == with_records.records  # the old in-aggregate state, record for record

            if loaded.version >= SNAPSHOT_EVERY:
                assert fresh.app.snapshots is not None
                assert list(fresh.app.snapshots.get(aggregate_id)), "no snapshot taken: the test no longer covers them"
        with pytest.raises(AggregateNotFoundError):
            fresh.app.repository.get(community_id(UNKNOWN_COMMUNITY))
    finally:
        fresh.close()


@contextmanager
def frequent_snapshots() -> Iterator[None]:
    """Snapshot every few events, so loading from a snapshot is part of every history."""
    with (
        mock.patch.object(app_module, "SNAPSHOT_INTERVAL", SNAPSHOT_EVERY),
        mock.patch.object(TaizhangApplication, "snapshotting_intervals", {Community: SNAPSHOT_EVERY}),
    ):
        yield


def run_history(url: str, key_file: Path, commands: list[dict[str, Any]]) -> None:
    model = Model({code: CommunityModel(on) for code, on in ESTABLISHED.items()})
    issued: list[dict[str, Any]] = []
    seen = set(RECORD_IDS)
    with frequent_snapshots():
        service, _ = LedgerService.create(parse_url(url), key_file, None)
        try:
            for code, on in ESTABLISHED.items():
                data = {
                    "code": code,
                    "name": f"{code}社区",
                    "county": "八步区",
                    "township": "贺街镇",
                    "village": f"{code}村",
                    "established_on": on,
                }
                service.establish_community(service.validate(models.EstablishCommunity, data), ACTOR)
            for generated in commands:
                if generated["op"] == "repeat":
                    command = resolve_repeat(generated, issued, model)
                elif generated["op"] in ("correct", "void"):
                    command = resolve_target(generated, model)
                elif generated["op"] == "record":
                    command = resolve_record(generated, issued)
                else:
                    command = generated
                if command is None:
                    continue
                if command["op"] == "record":
                    issued.append(command)
                if "record_id" in command:
                    seen.add(command["record_id"].lower())
                position_before, events_before, claims_before = store_state(service, seen)
                expected = getattr(model, command["op"])(command)
                outcome = execute(service, command)
                assert outcome == expected, command
                position_after, events_after, claims_after = store_state(service, seen)
                if outcome == ACCEPTED:
                    assert events_after[:-1] == events_before
                    assert position_after == events_after[-1].id
                    assert events_after[-1].topic == EVENT_TOPIC[command["op"]]
                    assert events_after[-1].originator_id == community_id(command["community"])
                    if command["op"] == "record":
                        claims_before[command["record_id"].lower()] = str(community_id(command["community"]))
                    assert claims_after == claims_before
                else:
                    assert (position_after, events_after) == (position_before, events_before)
                    assert claims_after == claims_before
        finally:
            service.close()
    check_store(url, key_file, model)


# ---- the properties --------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None, report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow])
@given(commands=histories)
def test_history_on_sqlite(commands: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "taizhang.key"
        crypto.create_key_file(key_file)
        run_history(f"sqlite:///{Path(tmp) / 'taizhang.db'}", key_file, commands)


@pytest.mark.postgres
@settings(
    max_examples=10,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(commands=histories)
def test_history_on_postgres(pg_admin_url: str, commands: list[dict[str, Any]]) -> None:
    url = make_pg_database(pg_admin_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key_file = Path(tmp) / "taizhang.key"
            crypto.create_key_file(key_file)
            run_history(url, key_file, commands)
    finally:
        drop_pg_database(pg_admin_url, url)
