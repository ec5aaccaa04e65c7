"""The Community aggregate's rules (DESIGN §3), in memory: no store, no I/O."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain import community as community_module
from domain.community import Community
from domain.errors import AlreadyExists, LedgerError, NotActive, NotFound, RuleViolation
from domain.ids import community_id, imported_record_id
from infra.codec import OrjsonMapper

CST = timezone(timedelta(hours=8))
ESTABLISHED_ON = "2026-01-10"
RID = "0b6f3c4e-2f7a-4c55-9a43-0d1c9f2b7e10"
OTHER_RID = "5d2e8a31-7c4b-4f1e-8b6a-3e9f0a1c2d44"
ACTOR = "clerk-1"


def envelope(tag: str = "1") -> dict[str, str]:
    return {"alg": "AES-256-GCM", "key_id": f"key-{tag}", "nonce": f"nonce-{tag}", "ct": f"ct-{tag}"}


def at(day: str, hm: str = "09:30", tz: timezone = CST) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=tz)


def establish(**overrides: Any) -> Community:
    data: dict[str, Any] = {
        "code": "HZ-P01",
        "name": "石门新型农村社区",
        "county": "八步区",
        "township": "贺街镇",
        "village": "石门村",
        "natural_villages": ["大岭", "新塘"],
        "established_on": ESTABLISHED_ON,
        "actor": ACTOR,
        **overrides,
    }
    return Community.establish(**data)


def enroll(agg: Community, code: str, **overrides: Any) -> None:
    data: dict[str, Any] = {
        "code": code,
        "name": envelope(code),
        "birth_date": None,
        "gender": "female",
        "categories": ["left_behind_elderly"],
        "grid": "G1",
        "household": "H1",
        "enrolled_on": None,
        "actor": ACTOR,
        **overrides,
    }
    agg.enroll_resident(**data)


def register(agg: Community, code: str, **overrides: Any) -> None:
    data: dict[str, Any] = {
        "code": code,
        "name": "李建国",
        "role": "party_member",
        "team": None,
        "registered_on": None,
        "actor": ACTOR,
        **overrides,
    }
    agg.register_provider(**data)


def service(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a valid record_service call on the `agg` fixture."""
    return {
        "record_id": RID,
        "kind": "life_care",
        "residents": ["R1"],
        "providers": ["P1"],
        "occurred_at": at("2026-03-05"),
        "minutes": 30,
        "place": "happiness_home",
        "note": envelope("note"),
        "note_mac": "mac-1",
        "entered_on": None,
        "actor": ACTOR,
        **overrides,
    }


def correction(**overrides: Any) -> dict[str, Any]:
    return {"record_id": RID, "reason": "typo in the paper ledger", "actor": ACTOR, **overrides}


def state(agg: Community) -> dict[str, Any]:
    """Everything the aggregate holds, apart from its pending events."""
    return copy.deepcopy({k: v for k, v in agg.__dict__.items() if k != "_pending_events"})


def assert_refused(agg: Community, error: type[LedgerError], call: Callable[[], object]) -> pytest.ExceptionInfo[Any]:
    """`call` raises `error` and leaves the aggregate exactly as it was, with no pending event."""
    before = state(agg)
    assert agg.pending_events == []
    with pytest.raises(error) as info:
        call()
    assert agg.pending_events == []
    assert state(agg) == before
    return info


def record_fields(agg: Community, record_id: str) -> dict[str, Any]:
    """A record's compact state, by field name (the positions are the aggregate's own constants)."""
    record = agg.records[record_id]
    m = community_module
    return {
        "status": record[m._STATUS],
        "occurred_at": datetime.fromisoformat(record[m._AT]),
        "residents": record[m._RESIDENTS],
        "providers": record[m._PROVIDERS],
        "kind": record[m._KIND],
        "minutes": record[m._MINUTES],
        "place": record[m._PLACE],
        "note_mac": record[m._NOTE_MAC],
        "revision": record[m._REVISION],
    }


def one_event(agg: Community) -> Any:
    events = agg.collect_events()
    assert len(events) == 1
    return events[0]


@pytest.fixture
def agg() -> Community:
    """A community established 2026-01-10 with residents R1, R2 and providers P1, P2, nothing pending."""
    community = establish()
    enroll(community, "R1")
    enroll(community, "R2", categories=["left_behind_child"])
    register(community, "P1")
    register(community, "P2", role="volunteer")
    community.collect_events()
    return community


@pytest.fixture
def recorded(agg: Community) -> Community:
    """`agg` with record RID (R1 by P1 on 2026-03-05 09:30, 30 minutes) saved."""
    assert agg.record_service(**service()) is True
    agg.collect_events()
    return agg


# ---- establishing -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["code", "name", "county", "township", "village"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_establish_refuses_an_empty_field(field: str, blank: str) -> None:
    with pytest.raises(RuleViolation, match=field):
        establish(**{field: blank})


def test_establish_creates_the_aggregate_under_the_uuid5_of_its_code() -> None:
    created = establish(code="HZ-P07", established_on=date(2026, 2, 1))
    event = one_event(created)
    assert isinstance(event, Community.Established)
    assert created.id == community_id("HZ-P07") == Community.id_for("HZ-P07")
    assert (event.code, event.established_on, event.actor) == ("HZ-P07", "2026-02-01", ACTOR)
    assert created.established_on == "2026-02-01"
    assert created.residents == created.providers == created.records == {}


# ---- residents --------------------------------------------------------------------------


def test_enrolment_defaults_to_the_establishment_date(agg: Community) -> None:
    enroll(agg, "R9")
    event = one_event(agg)
    assert event.enrolled_on == ESTABLISHED_ON
    assert agg.residents["R9"]["enrolled_on"] == ESTABLISHED_ON
    assert agg.residents["R9"]["departed_on"] is None


@pytest.mark.parametrize("given", [date(2026, 2, 14), "2026-02-14"])
def test_enrolment_keeps_a_back_filled_date(agg: Community, given: date | str) -> None:
    enroll(agg, "R9", enrolled_on=given)
    assert one_event(agg).enrolled_on == "2026-02-14"
    assert agg.residents["R9"]["enrolled_on"] == "2026-02-14"


def test_a_resident_enrolled_without_a_date_can_be_back_filled_from_the_establishment_day(agg: Community) -> None:
    """Old paper ledgers: a resident entered today still receives services dated since establishment."""
    enroll(agg, "R9")
    agg.collect_events()
    assert agg.record_service(**service(residents=["R9"], occurred_at=at(ESTABLISHED_ON, "00:00"))) is True
    agg.collect_events()
    assert_refused(
        agg,
        RuleViolation,
        lambda: agg.record_service(**service(record_id=OTHER_RID, residents=["R9"], occurred_at=at("2026-01-09"))),
    )


def test_enrolment_stores_categories_once_and_in_order(agg: Community) -> None:
    enroll(agg, "R9", categories=["hardship", "dibao", "hardship"])
    assert agg.residents["R9"]["categories"] == ["dibao", "hardship"]


def test_a_resident_code_cannot_be_enrolled_twice(agg: Community) -> None:
    assert_refused(agg, AlreadyExists, lambda: enroll(agg, "R1", categories=["hardship"]))


def test_a_provider_code_cannot_be_registered_twice(agg: Community) -> None:
    assert_refused(agg, AlreadyExists, lambda: register(agg, "P1", role="cadre"))


def test_registration_defaults_to_the_establishment_date(agg: Community) -> None:
    register(agg, "P9", registered_on=None)
    assert one_event(agg).registered_on == ESTABLISHED_ON
    register(agg, "P8", registered_on=date(2026, 4, 1))
    assert agg.providers["P8"]["registered_on"] == "2026-04-01"


def test_update_changes_only_the_given_fields(agg: Community) -> None:
    agg.update_resident(code="R1", categories=["hardship", "dibao"], grid=None, household=None, actor=ACTOR)
    event = one_event(agg)
    assert isinstance(event, Community.ResidentUpdated)
    assert agg.residents["R1"]["categories"] == ["dibao", "hardship"]
    assert (agg.residents["R1"]["grid"], agg.residents["R1"]["household"]) == ("G1", "H1")


@pytest.mark.parametrize(
    "update",
    [
        {"categories": None, "grid": None, "household": None},
        {"categories": ["left_behind_elderly"], "grid": None, "household": None},
        {"categories": ["left_behind_elderly", "left_behind_elderly"], "grid": "G1", "household": "H1"},
        {"categories": None, "grid": "G1", "household": None},
    ],
    ids=["nothing-given", "same-categories", "all-same", "same-grid"],
)
def test_an_update_that_changes_nothing_is_refused(agg: Community, update: dict[str, Any]) -> None:
    assert_refused(agg, RuleViolation, lambda: agg.update_resident(code="R1", actor=ACTOR, **update))


def test_a_departed_resident_cannot_be_updated(agg: Community) -> None:
    agg.depart_resident(code="R1", reason="moved", on="2026-03-01", actor=ACTOR)
    agg.collect_events()
    assert_refused(
        agg,
        NotActive,
        lambda: agg.update_resident(code="R1", categories=["hardship"], grid=None, household=None, actor=ACTOR),
    )


def test_an_unknown_resident_cannot_be_updated_or_depart(agg: Community) -> None:
    assert_refused(
        agg,
        NotFound,
        lambda: agg.update_resident(code="R9", categories=["hardship"], grid=None, household=None, actor=ACTOR),
    )
    assert_refused(agg, NotFound, lambda: agg.depart_resident(code="R9", reason="moved", on="2026-03-01", actor=ACTOR))


def test_departure_records_its_day(agg: Community) -> None:
    agg.depart_resident(code="R1", reason="deceased", on=date(2026, 3, 1), actor=ACTOR)
    event = one_event(agg)
    assert (event.code, event.reason, event.on) == ("R1", "deceased", "2026-03-01")
    assert agg.residents["R1"]["departed_on"] == "2026-03-01"


@pytest.mark.parametrize("on", ["2026-03-05", "2026-03-01"])
def test_a_departure_may_not_strand_an_active_service_on_or_after_its_day(recorded: Community, on: str) -> None:
    info = assert_refused(
        recorded, RuleViolation, lambda: recorded.depart_resident(code="R1", reason="moved", on=on, actor=ACTOR)
    )
    assert RID in str(info.value)


def test_a_departure_the_day_after_the_last_service_or_after_a_void_is_accepted(recorded: Community) -> None:
    recorded.depart_resident(code="R1", reason="moved", on="2026-03-06", actor=ACTOR)
    assert recorded.residents["R1"]["departed_on"] == "2026-03-06"
    recorded.void_service(record_id=RID, reason="duplicate", actor=ACTOR)
    recorded.retire_provider(code="P1", on="2026-03-01", actor=ACTOR)
    assert recorded.providers["P1"]["retired_on"] == "2026-03-01"


def test_a_retirement_may_not_strand_an_active_service_on_or_after_its_day(recorded: Community) -> None:
    assert_refused(recorded, RuleViolation, lambda: recorded.retire_provider(code="P1", on="2026-03-05", actor=ACTOR))
    recorded.retire_provider(code="P2", on="2026-03-05", actor=ACTOR)  # P2 served nobody


def test_departure_before_enrolment_is_refused(agg: Community) -> None:
    enroll(agg, "R9", enrolled_on="2026-02-01")
    agg.collect_events()
    assert_refused(
        agg, RuleViolation, lambda: agg.depart_resident(code="R9", reason="moved", on="2026-01-31", actor=ACTOR)
    )
    agg.depart_resident(code="R9", reason="moved", on="2026-02-01", actor=ACTOR)
    assert agg.residents["R9"]["departed_on"] == "2026-02-01"


def test_a_resident_cannot_depart_twice(agg: Community) -> None:
    agg.depart_resident(code="R1", reason="moved", on="2026-03-01", actor=ACTOR)
    agg.collect_events()
    assert_refused(agg, NotActive, lambda: agg.depart_resident(code="R1", reason="other", on="2026-03-02", actor=ACTOR))


def test_a_provider_cannot_retire_twice(agg: Community) -> None:
    agg.retire_provider(code="P1", on="2026-03-01", actor=ACTOR)
    assert one_event(agg).on == "2026-03-01"
    assert_refused(agg, NotActive, lambda: agg.retire_provider(code="P1", on="2026-03-02", actor=ACTOR))


def test_retirement_before_registration_is_refused(agg: Community) -> None:
    register(agg, "P9", registered_on="2026-02-01")
    agg.collect_events()
    assert_refused(agg, RuleViolation, lambda: agg.retire_provider(code="P9", on="2026-01-31", actor=ACTOR))


def test_an_unknown_provider_cannot_retire(agg: Community) -> None:
    assert_refused(agg, NotFound, lambda: agg.retire_provider(code="P9", on="2026-03-01", actor=ACTOR))


# ---- recording services -----------------------------------------------------------------


def test_a_valid_service_is_recorded_as_active_revision_1(agg: Community) -> None:
    assert agg.record_service(**service(residents=["R2", "R1"], providers=["P1", "P2"])) is True
    event = one_event(agg)
    assert isinstance(event, Community.ServiceRecorded)
    assert (event.record_id, event.residents, event.providers) == (RID, ["R2", "R1"], ["P1", "P2"])
    assert datetime.fromisoformat(event.occurred_at) == at("2026-03-05")
    assert agg.record_status(RID) == "active"
    assert agg.record_revision(RID) == 1
    assert agg.record_note_mac(RID) == "mac-1"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"residents": ["R9"]}, NotFound),
        ({"residents": ["R1", "R9"]}, NotFound),
        ({"providers": ["P9"]}, NotFound),
        ({"residents": []}, RuleViolation),
        ({"providers": []}, RuleViolation),
        ({"residents": ["R1", "R1"]}, RuleViolation),
        ({"providers": ["P1", "P1"]}, RuleViolation),
        ({"minutes": 0}, RuleViolation),
        ({"minutes": 1441}, RuleViolation),
        ({"minutes": -30}, RuleViolation),
        ({"occurred_at": at("2026-01-09", "23:59")}, RuleViolation),
        ({"occurred_at": at("2025-12-31")}, RuleViolation),
    ],
    ids=[
        "unknown-resident",
        "one-unknown-resident",
        "unknown-provider",
        "no-resident",
        "no-provider",
        "resident-twice",
        "provider-twice",
        "minutes-0",
        "minutes-1441",
        "minutes-negative",
        "eve-of-establishment",
        "year-before-establishment",
    ],
)
def test_a_service_breaking_a_rule_is_refused(
    agg: Community, overrides: dict[str, Any], error: type[LedgerError]
) -> None:
    assert_refused(agg, error, lambda: agg.record_service(**service(**overrides)))
    assert agg.record_status(RID) is None


@pytest.mark.parametrize("minutes", [1, 1440])
def test_minutes_at_the_bounds_are_accepted(agg: Community, minutes: int) -> None:
    assert agg.record_service(**service(minutes=minutes)) is True


def test_a_service_on_the_establishment_day_is_accepted(agg: Community) -> None:
    assert agg.record_service(**service(occurred_at=at(ESTABLISHED_ON, "00:00"))) is True


def test_a_resident_is_served_from_the_enrolment_day(agg: Community) -> None:
    enroll(agg, "R9", enrolled_on="2026-02-01")
    agg.collect_events()
    assert_refused(
        agg, NotActive, lambda: agg.record_service(**service(residents=["R9"], occurred_at=at("2026-01-31", "23:59")))
    )
    assert agg.record_service(**service(residents=["R9"], occurred_at=at("2026-02-01", "00:00"))) is True


@pytest.mark.parametrize("day", ["2026-03-10", "2026-03-11", "2026-06-01"])
def test_no_service_on_or_after_the_departure_day(agg: Community, day: str) -> None:
    agg.depart_resident(code="R1", reason="moved", on="2026-03-10", actor=ACTOR)
    agg.collect_events()
    assert_refused(agg, NotActive, lambda: agg.record_service(**service(occurred_at=at(day, "00:00"))))


def test_a_service_the_day_before_departure_can_still_be_recorded(agg: Community) -> None:
    agg.depart_resident(code="R1", reason="deceased", on="2026-03-10", actor=ACTOR)
    agg.collect_events()
    assert agg.record_service(**service(occurred_at=at("2026-03-09", "23:59"))) is True


def test_the_day_of_a_service_is_its_local_day(agg: Community) -> None:
    """2026-03-09T16:30Z is 2026-03-10 00:30 in the community's zone: the departure day."""
    agg.depart_resident(code="R1", reason="moved", on="2026-03-10", actor=ACTOR)
    agg.collect_events()
    local = at("2026-03-09", "16:30", UTC).astimezone(CST)
    assert_refused(agg, NotActive, lambda: agg.record_service(**service(occurred_at=local)))


@pytest.fixture
def p9(agg: Community) -> Community:
    """`agg` with provider P9, registered 2026-02-01 and retired 2026-03-10."""
    register(agg, "P9", registered_on="2026-02-01")
    agg.retire_provider(code="P9", on="2026-03-10", actor=ACTOR)
    agg.collect_events()
    return agg


@pytest.mark.parametrize(("day", "hm"), [("2026-01-31", "23:59"), ("2026-03-10", "00:00"), ("2026-04-01", "12:00")])
def test_a_provider_serves_not_before_registration_nor_from_retirement(p9: Community, day: str, hm: str) -> None:
    assert_refused(p9, NotActive, lambda: p9.record_service(**service(providers=["P9"], occurred_at=at(day, hm))))


@pytest.mark.parametrize(("day", "hm"), [("2026-02-01", "00:00"), ("2026-03-09", "23:59")])
def test_a_provider_serves_from_registration_until_the_day_before_retirement(p9: Community, day: str, hm: str) -> None:
    assert p9.record_service(**service(providers=["P9"], occurred_at=at(day, hm))) is True


def test_a_naive_time_is_not_accepted(agg: Community) -> None:
    before = state(agg)
    with pytest.raises(ValueError):
        agg.record_service(**service(occurred_at=datetime(2026, 3, 5, 9, 30)))
    assert agg.pending_events == [] and state(agg) == before


# ---- record ids ---------------------------------------------------------------------------


def test_the_same_record_again_changes_nothing(recorded: Community) -> None:
    before = state(recorded)
    assert recorded.record_service(**service()) is False
    assert recorded.pending_events == []
    assert state(recorded) == before


@pytest.mark.parametrize(
    "same",
    [
        {"residents": ["R2", "R1"], "providers": ["P2", "P1"]},
        {"occurred_at": at("2026-03-05", "01:30", UTC)},
        {"note": envelope("another-nonce")},
        {"actor": "clerk-2"},
    ],
    ids=["list-order", "same-instant-other-offset", "same-note-other-envelope", "other-actor"],
)
def test_the_same_content_is_recognised(agg: Community, same: dict[str, Any]) -> None:
    first = service(residents=["R1", "R2"], providers=["P1", "P2"])
    assert agg.record_service(**first) is True
    agg.collect_events()
    before = state(agg)
    assert agg.record_service(**{**first, **same}) is False
    assert agg.pending_events == [] and state(agg) == before


@pytest.mark.parametrize(
    "other",
    [
        {"kind": "counseling"},
        {"minutes": 31},
        {"residents": ["R1", "R2"]},
        {"residents": ["R2"]},
        {"providers": ["P2"]},
        {"occurred_at": at("2026-03-05", "09:31")},
        {"place": "home_visit"},
        {"place": None},
        {"entered_on": "2026-03-06"},
        {"note_mac": "mac-2"},
        {"note_mac": None, "note": None},
    ],
    ids=lambda other: "-".join(f"{k}={v}" for k, v in other.items()),
)
def test_the_same_record_id_with_other_content_is_refused(recorded: Community, other: dict[str, Any]) -> None:
    info = assert_refused(recorded, AlreadyExists, lambda: recorded.record_service(**service(**other)))
    assert "correct" in str(info.value)


def test_a_record_id_is_checked_before_the_rules(recorded: Community) -> None:
    """Other content under a taken id is a duplicate, even when it would break a rule too."""
    assert_refused(recorded, AlreadyExists, lambda: recorded.record_service(**service(residents=["R9"])))


@pytest.fixture
def corrected(recorded: Community) -> Community:
    """`recorded` corrected once: 45 minutes, resident R2, at 2026-03-04 15:00 (revision 2)."""
    recorded.correct_service(**correction(minutes=45, residents=["R2"], occurred_at=at("2026-03-04", "15:00")))
    recorded.collect_events()
    return recorded


LATEST = {"minutes": 45, "residents": ["R2"], "occurred_at": at("2026-03-04", "15:00")}


@pytest.mark.parametrize("content", [{}, LATEST], ids=["first-revision", "latest-revision"])
def test_a_corrected_record_recorded_again_as_a_known_revision_changes_nothing(
    corrected: Community, content: dict[str, Any]
) -> None:
    before = state(corrected)
    assert corrected.record_service(**service(**content)) is False
    assert corrected.pending_events == [] and state(corrected) == before


@pytest.mark.parametrize(
    "other",
    [{"minutes": 45}, {**LATEST, "kind": "counseling"}, {**LATEST, "place": None}, {**LATEST, "note_mac": "mac-2"}],
    ids=["half-corrected", "latest-other-kind", "latest-other-place", "latest-other-note"],
)
def test_a_corrected_record_with_other_content_is_refused(corrected: Community, other: dict[str, Any]) -> None:
    assert_refused(corrected, AlreadyExists, lambda: corrected.record_service(**service(**other)))


def test_a_corrected_record_with_another_entered_on_is_refused(corrected: Community) -> None:
    assert_refused(
        corrected, AlreadyExists, lambda: corrected.record_service(**service(**LATEST, entered_on="2026-03-06"))
    )


def test_the_same_content_of_a_voided_record_changes_nothing(recorded: Community) -> None:
    recorded.void_service(record_id=RID, reason="entered twice", actor=ACTOR)
    recorded.collect_events()
    before = state(recorded)
    assert recorded.record_service(**service()) is False
    assert recorded.pending_events == [] and state(recorded) == before
    assert recorded.record_status(RID) == "voided"


# ---- corrections and voids ------------------------------------------------------------------


def test_a_correction_records_the_changes_and_the_previous_values(recorded: Community) -> None:
    recorded.correct_service(**correction(minutes=45, kind="counseling", place="happiness_home"))
    event = one_event(recorded)
    assert isinstance(event, Community.ServiceCorrected)
    assert event.changes == {"minutes": 45, "kind": "counseling"}
    assert event.previous == {"minutes": 30, "kind": "life_care"}
    assert (event.reason, event.actor) == ("typo in the paper ledger", ACTOR)
    fields = record_fields(recorded, RID)
    assert (fields["minutes"], fields["kind"], fields["place"], fields["revision"]) == (
        45,
        "counseling",
        "happiness_home",
        2,
    )


def test_a_correction_of_the_time_records_the_previous_time(recorded: Community) -> None:
    recorded.correct_service(**correction(occurred_at=at("2026-03-04", "15:00")))
    event = one_event(recorded)
    assert datetime.fromisoformat(event.changes["occurred_at"]) == at("2026-03-04", "15:00")
    assert datetime.fromisoformat(event.previous["occurred_at"]) == at("2026-03-05")
    assert record_fields(recorded, RID)["occurred_at"] == at("2026-03-04", "15:00")


@pytest.mark.parametrize("field", ["residents", "providers"])
def test_a_corrections_list_replaces_the_old_list(recorded: Community, field: str) -> None:
    new = ["R2"] if field == "residents" else ["P2"]
    old = record_fields(recorded, RID)[field]
    recorded.correct_service(**correction(**{field: new}))
    event = one_event(recorded)
    assert event.changes == {field: new}
    assert event.previous == {field: old}
    assert record_fields(recorded, RID)[field] == new


def test_a_correction_of_the_note_changes_its_mac(recorded: Community) -> None:
    recorded.correct_service(**correction(note=envelope("new"), note_mac="mac-2"))
    event = one_event(recorded)
    assert event.changes == {"note": envelope("new"), "note_mac": "mac-2"}
    assert event.previous == {"note_mac": "mac-1"}
    assert recorded.record_note_mac(RID) == "mac-2"


@pytest.mark.parametrize(
    "same",
    [
        {},
        {"kind": "life_care"},
        {"minutes": 30},
        {"residents": ["R1"], "providers": ["P1"]},
        {"place": "happiness_home"},
        {"occurred_at": at("2026-03-05", "01:30", UTC)},
        {"note": envelope("again"), "note_mac": "mac-1"},
    ],
    ids=["nothing", "same-kind", "same-minutes", "same-lists", "same-place", "same-instant", "same-note"],
)
def test_a_correction_that_changes_nothing_is_refused(recorded: Community, same: dict[str, Any]) -> None:
    assert_refused(recorded, RuleViolation, lambda: recorded.correct_service(**correction(**same)))


@pytest.mark.parametrize("field", ["residents", "providers"])
def test_a_correction_that_only_reorders_a_list_changes_nothing(agg: Community, field: str) -> None:
    """A record's residents and providers are sets (content_digest and imported_record_id sort them)."""
    codes = ["R1", "R2"] if field == "residents" else ["P1", "P2"]
    agg.record_service(**service(**{field: codes}))
    agg.collect_events()
    assert_refused(agg, RuleViolation, lambda: agg.correct_service(**correction(**{field: codes[::-1]})))


def test_a_correction_needs_a_reason(recorded: Community) -> None:
    assert_refused(recorded, RuleViolation, lambda: recorded.correct_service(**correction(reason="  ", minutes=45)))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"occurred_at": at("2026-01-31", "23:59")}, NotActive),  # R9 is enrolled from 2026-02-01
        ({"residents": ["R1", "R9"], "occurred_at": at("2026-01-20")}, NotActive),
        ({"occurred_at": at("2026-01-09", "12:00")}, RuleViolation),
        ({"residents": ["R8"]}, NotFound),
        ({"providers": ["P8"]}, NotFound),
        ({"residents": []}, RuleViolation),
        ({"minutes": 0}, RuleViolation),
        ({"minutes": 1441}, RuleViolation),
        ({"residents": ["R1", "R1"]}, RuleViolation),
    ],
    ids=[
        "time-before-enrolment",
        "added-resident-not-yet-enrolled",
        "time-before-establishment",
        "unknown-resident",
        "unknown-provider",
        "no-resident",
        "minutes-0",
        "minutes-1441",
        "resident-twice",
    ],
)
def test_a_correction_must_give_a_valid_service(
    agg: Community, change: dict[str, Any], error: type[LedgerError]
) -> None:
    enroll(agg, "R9", enrolled_on="2026-02-01")
    agg.record_service(**service(residents=["R9"], occurred_at=at("2026-02-10")))
    agg.collect_events()
    assert_refused(agg, error, lambda: agg.correct_service(**correction(**change)))
    assert agg.record_revision(RID) == 1


def test_a_correction_to_after_a_departure_is_refused(recorded: Community) -> None:
    recorded.depart_resident(code="R1", reason="moved", on="2026-03-10", actor=ACTOR)
    recorded.collect_events()
    assert_refused(
        recorded, NotActive, lambda: recorded.correct_service(**correction(occurred_at=at("2026-03-10", "08:00")))
    )
    recorded.correct_service(**correction(occurred_at=at("2026-03-09", "23:00")))
    assert recorded.record_revision(RID) == 2


def test_every_correction_increments_the_revision(recorded: Community) -> None:
    for revision, minutes in enumerate((31, 32, 33), start=2):
        recorded.correct_service(**correction(minutes=minutes))
        recorded.collect_events()
        assert recorded.record_revision(RID) == revision
    assert record_fields(recorded, RID)["minutes"] == 33


def test_voiding_marks_the_record_voided(recorded: Community) -> None:
    recorded.void_service(record_id=RID, reason="entered twice", actor=ACTOR)
    event = one_event(recorded)
    assert isinstance(event, Community.ServiceVoided)
    assert (event.record_id, event.reason) == (RID, "entered twice")
    assert recorded.record_status(RID) == "voided"


@pytest.mark.parametrize("action", ["correct", "void"])
def test_a_voided_record_cannot_be_changed(recorded: Community, action: str) -> None:
    recorded.void_service(record_id=RID, reason="entered twice", actor=ACTOR)
    recorded.collect_events()
    if action == "correct":
        assert_refused(recorded, NotActive, lambda: recorded.correct_service(**correction(minutes=45)))
    else:
        assert_refused(recorded, NotActive, lambda: recorded.void_service(record_id=RID, reason="again", actor=ACTOR))


@pytest.mark.parametrize("action", ["correct", "void"])
def test_an_unknown_record_cannot_be_changed(recorded: Community, action: str) -> None:
    if action == "correct":
        assert_refused(
            recorded, NotFound, lambda: recorded.correct_service(**correction(record_id=OTHER_RID, minutes=45))
        )
    else:
        assert_refused(recorded, NotFound, lambda: recorded.void_service(record_id=OTHER_RID, reason="x", actor=ACTOR))


def test_a_void_needs_a_reason(recorded: Community) -> None:
    assert_refused(recorded, RuleViolation, lambda: recorded.void_service(record_id=RID, reason=" ", actor=ACTOR))


# ---- stored format ----------------------------------------------------------------------------


def _classes() -> Iterator[type]:
    yield Community
    for value in vars(Community).values():
        if inspect.isclass(value) and (issubclass(value, Community.Event) or issubclass(value, Aggregate.Snapshot)):
            if value is not Community.Event:
                yield value


@pytest.mark.parametrize("cls", list(_classes()), ids=lambda cls: cls.__qualname__)
def test_every_stored_class_has_an_explicit_stable_topic(cls: type) -> None:
    topic = cls.__dict__.get("TOPIC")
    assert isinstance(topic, str) and topic.startswith("taizhang:")
    assert get_topic(cls) == topic
    assert resolve_topic(topic) is cls


def test_the_base_event_class_carries_no_topic() -> None:
    """A TOPIC there would be inherited silently by every subclass (DESIGN §6)."""
    assert "TOPIC" not in Community.Event.__dict__


def test_topics_are_unique() -> None:
    topics = [cls.__dict__["TOPIC"] for cls in _classes()]
    assert len(topics) == len(set(topics))


def full_history() -> tuple[Community, list[Any]]:
    """A community with at least one event of every type; returns it and all its events."""
    community = establish()
    enroll(community, "R1", birth_date=envelope("birth"), categories=["hardship", "dibao"])
    enroll(community, "R2", enrolled_on="2026-02-01", grid=None, household=None, gender=None)
    community.update_resident(code="R1", categories=["hardship"], grid="G2", household=None, actor=ACTOR)
    register(community, "P1", team="党员先锋队")
    register(community, "P2", registered_on="2026-02-01")
    community.record_service(**service(residents=["R1", "R2"], providers=["P1", "P2"], entered_on="2026-03-06"))
    community.record_service(**service(record_id=OTHER_RID, place=None, note=None, note_mac=None))
    community.correct_service(
        **correction(minutes=45, occurred_at=at("2026-03-04"), residents=["R2"], note=envelope("n2"), note_mac="mac-2")
    )
    community.void_service(record_id=OTHER_RID, reason="entered twice", actor=ACTOR)
    community.set_visit_plan(resident="R1", every=14, provider="P1", starts_on="2026-02-01", actor=ACTOR)
    community.end_visit_plan(resident="R1", on="2026-03-01", actor=ACTOR)
    community.add_pairing(provider="P2", resident="R2", on="2026-02-01", actor=ACTOR)
    community.end_pairing(provider="P2", resident="R2", on="2026-03-20", actor=ACTOR)
    community.depart_resident(code="R2", reason="moved", on="2026-04-01", actor=ACTOR)
    community.retire_provider(code="P2", on="2026-04-01", actor=ACTOR)
    community.erase_resident(code="R2", reason="本人申请", records=community.records_of_resident("R2"), actor=ACTOR)
    closing = {"reason": "结账", "actor": "sup01"}
    community.close_period(unit="township:八步区/贺街镇", period="2026-01", closed_at="2026-02-01T09:00:00+08:00", **closing)
    community.close_period(unit="community:HZ-P01", period="2026-Q2", closed_at="2026-07-01T09:00:00+08:00", **closing)
    community.reopen_period(unit="community:HZ-P01", period="2026-Q2", reason="补录", actor="sup01")
    events = list(community.collect_events())
    return community, events


def test_the_full_history_has_every_event_type() -> None:
    _, events = full_history()
    concrete = {cls for cls in _classes() if issubclass(cls, Community.Event)} - {Community.Created}
    assert {type(e) for e in events} == concrete


def test_every_event_round_trips_through_the_orjson_mapper() -> None:
    mapper = OrjsonMapper()
    _, events = full_history()
    for event in events:
        stored = mapper.to_stored_event(event)
        assert stored.topic == type(event).TOPIC
        decoded = mapper.to_domain_event(stored)
        assert type(decoded) is type(event)
        assert decoded.__dict__ == event.__dict__


def test_replaying_decoded_events_rebuilds_the_aggregate() -> None:
    mapper = OrjsonMapper()
    community, events = full_history()
    rebuilt: Community | None = None
    for event in events:
        rebuilt = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(rebuilt)  # type: ignore[attr-defined]
    assert rebuilt is not None
    assert state(rebuilt) == state(community)


def _snapshot_round_trip(community: Community) -> Community:
    mapper = OrjsonMapper()
    snapshot = Community.Snapshot.take(community)
    stored = mapper.to_stored_event(snapshot)
    assert stored.topic == Community.Snapshot.TOPIC
    restored = mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
    assert isinstance(restored, Community)
    return restored


def test_a_snapshot_round_trips_the_registry_exactly_and_never_keeps_records() -> None:
    community, _ = full_history()
    assert community.records  # the working set of the writes above
    restored = _snapshot_round_trip(community)
    assert restored.records == {}  # record state lives in the store's record_state, not in snapshots
    assert state(restored) == {**state(community), "records": {}}
    assert (restored.id, restored.version) == (community.id, community.version)
    assert isinstance(restored.created_on, datetime) and isinstance(restored.modified_on, datetime)


# ---- frozen identifiers -------------------------------------------------------------------------


def imported(**overrides: Any) -> str:
    data: dict[str, Any] = {
        "community": "HZ-P01",
        "kind": "life_care",
        "residents": ["R002", "R001"],
        "providers": ["P001"],
        "occurred_at": at("2026-03-05"),
        "minutes": 30,
        "place": "home_visit",
        "index": 0,
        **overrides,
    }
    return imported_record_id(**data)


def test_the_imported_record_id_is_a_deterministic_uuid5() -> None:
    first = imported()
    assert first == imported()
    assert UUID(first).version == 5
    assert str(UUID(first)) == first


def test_the_imported_record_id_depends_on_the_index() -> None:
    ids = {imported(index=index) for index in range(5)}
    assert len(ids) == 5


def test_the_imported_record_id_ignores_list_order_and_offset() -> None:
    assert imported(residents=["R001", "R002"], providers=["P001"]) == imported()
    assert imported(residents=("R001", "R002")) == imported()
    assert imported(providers=["P002", "P001"]) == imported(providers=["P001", "P002"])
    assert imported(occurred_at=at("2026-03-05", "01:30", UTC)) == imported()


@pytest.mark.parametrize(
    "other",
    [
        {"community": "HZ-P02"},
        {"kind": "counseling"},
        {"residents": ["R001"]},
        {"providers": ["P002"]},
        {"occurred_at": at("2026-03-05", "09:31")},
        {"minutes": 31},
        {"place": "happiness_home"},
        {"place": None},
    ],
    ids=lambda other: next(iter(other)),
)
def test_the_imported_record_id_depends_on_the_content(other: dict[str, Any]) -> None:
    assert imported(**other) != imported()


def test_the_imported_record_id_rule_is_frozen() -> None:
    # Frozen (DESIGN §3): this value was computed once from the rule; if it changes, every
    # re-import of an old spreadsheet would duplicate its services. Never update it.
    assert imported() == "97020222-5086-5594-94aa-42279ad18ac5"


def test_the_community_id_rule_is_frozen() -> None:
    # Frozen (DESIGN §3): aggregate ids of stored communities; never update this value.
    assert str(community_id("HZ-P01")) == "2a95623d-46cb-5e01-90f0-6be14c05c910"
    assert community_id("HZ-P01") != community_id("HZ-P02")


def test_a_version_3_snapshot_with_records_loads_without_them() -> None:
    community, _ = full_history()
    mapper = OrjsonMapper()
    stored = mapper.to_stored_event(Community.Snapshot.take(community))
    old = orjson.loads(stored.state)
    old["state"]["class_version"] = 3
    old["state"]["records"] = {"R-OLD": ["active", "d", "2026-03-04T09:30:00+08:00", ["R1"], ["P1"], "k", 30, None, None, 1, None]}
    restored = mapper.to_domain_event(replace(stored, state=orjson.dumps(old))).mutate(None)  # type: ignore[attr-defined]
    assert restored.records == {}
    assert state(restored) == {**state(community), "records": {}}


def test_changes_to_records_outside_the_working_set_leave_it_alone() -> None:
    """Replaying a correction or void of a record the application did not hand in changes nothing."""
    community, events = full_history()
    rebuilt: Community | None = None
    mapper = OrjsonMapper()
    for event in events:
        rebuilt = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(rebuilt)  # type: ignore[attr-defined]
        if isinstance(event, Community.Established):
            assert rebuilt is not None
    assert rebuilt is not None
    rebuilt.forget_records()
    for event in events:
        if isinstance(event, (Community.ServiceCorrected, Community.ServiceVoided)):
            event.apply(rebuilt)
    assert rebuilt.records == {}
