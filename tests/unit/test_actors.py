"""The Actors aggregate and scopes: grants, revocations and what a scope covers (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.actors import Actors, Scope, parse_scope
from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.units import UnitRef


def opened() -> Actors:
    actors = Actors.open(actor="boss")
    actors.grant(name="boss", role="admin", scope="city", login=None, actor="boss")
    return actors


def test_grants_and_revocations_are_events_naming_who() -> None:
    actors = opened()
    actors.grant(name="c1", role="clerk", scope="township:八步区/贺街镇", login="c1_login", actor="boss")
    actors.revoke(name="c1", reason="调离", actor="boss")
    events = actors.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "Granted", "Granted", "Revoked"]
    assert [e.TOPIC for e in events] == [
        "taizhang:Actors.Opened", "taizhang:Actors.Granted", "taizhang:Actors.Granted", "taizhang:Actors.Revoked",
    ]  # fmt: skip
    assert all(e.actor == "boss" for e in events)
    c1 = actors.get("c1")
    assert c1 is not None and c1.revoked and c1.login == "c1_login" and c1.granted_by == "boss"
    assert c1.describe() == "actor c1 (clerk, township:八步区/贺街镇)"


def test_rules() -> None:
    with pytest.raises(RuleViolation, match="first actor"):
        Actors.open(actor="x").grant(name="c", role="clerk", scope="city", login=None, actor="x")
    actors = opened()
    with pytest.raises(AlreadyExists):
        actors.grant(name="boss", role="clerk", scope="city", login=None, actor="boss")
    with pytest.raises(RuleViolation, match="last admin"):
        actors.revoke(name="boss", reason="r", actor="boss")
    with pytest.raises(NotFound):
        actors.revoke(name="ghost", reason="r", actor="boss")
    actors.grant(name="c", role="clerk", scope="city", login=None, actor="boss")
    actors.revoke(name="c", reason="r", actor="boss")
    with pytest.raises(NotActive):
        actors.revoke(name="c", reason="r", actor="boss")
    with pytest.raises(AlreadyExists, match="never reused"):
        actors.grant(name="c", role="clerk", scope="city", login=None, actor="boss")
    with pytest.raises(ValueError):
        actors.grant(name="d", role="clerk", scope="village:x", login=None, actor="boss")


def test_a_replayed_aggregate_equals_the_live_one() -> None:
    actors = opened()
    actors.grant(name="a2", role="admin", scope="county:八步区", login=None, actor="boss")
    actors.revoke(name="boss", reason="r", actor="a2")
    copy = None
    for event in actors.collect_events():
        copy = event.mutate(copy)
    assert copy is not None and copy.entries == actors.entries


names = st.sampled_from(["八步区", "平桂区", "A"])
towns = st.sampled_from(["贺街镇", "莲塘镇", "B"])
codes = st.sampled_from(["HZ-1", "HZ-2", "Q"])
units = st.one_of(
    st.builds(lambda c: UnitRef("county", county=c), names),
    st.builds(lambda c, t: UnitRef("township", county=c, township=t), names, towns),
    st.builds(lambda c, t, k: UnitRef("community", county=c, township=t, community=k), names, towns, codes),
)


@given(units, units)
def test_a_scope_covers_exactly_what_lies_inside_it(scope_unit: UnitRef, target: UnitRef) -> None:
    scope = Scope(scope_unit)
    inside = scope_unit == target or scope_unit.contains(target)
    if scope_unit.level == "community" and target.level == "community":
        inside = scope_unit.community == target.community  # a code names one community in the store
    assert scope.covers(target) == inside
    assert Scope(None).covers(target) and Scope(None).covers(None) and not scope.covers(None)
    assert parse_scope(str(scope)) == Scope(UnitRef(scope_unit.level, county=scope_unit.county if scope_unit.level != "community" else "",
                                                    township=scope_unit.township if scope_unit.level == "township" else "",
                                                    community=scope_unit.community))  # fmt: skip


def test_the_projection_worker_is_city_wide() -> None:
    actors = opened()
    with pytest.raises(RuleViolation, match="scope must be city"):
        actors.grant(name="w", role="projector", scope="county:八步区", login="w", actor="boss")
    actors.grant(name="w", role="projector", scope="city", login="w", actor="boss")
    worker = actors.get("w")
    assert worker is not None and worker.role == "projector"
