"""The demo sample (`taizhang demo`): deterministic, Hezhou-shaped, valid, only into an empty store.

These use real SQLite stores in tmp directories; each demo run takes one to two seconds.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from commands import models
from commands.app import LedgerService
from commands.cli import cli
from commands.demo import COUNTIES, KEY_CATEGORIES, PAIRING_ROLES, WINDOW_DAYS, DemoSummary, last_full_month, run_demo
from domain.errors import LedgerError
from domain.ids import community_id
from infra import crypto
from infra.codec import decode_payload
from infra.store import parse_url

TODAY = date(2026, 6, 30)
MONTH, QUARTER, PREVIOUS = "2026-06", "2026-Q2", "2026-05"  # the last full month of TODAY, its quarter, the one before
ENVELOPES = ("name", "birth_date", "note", "payee")
OFFICIAL, TARGETS, ITEM = "taizhang:Official.", "taizhang:UnitTargets.", "taizhang:SupervisionItem."


@dataclass
class Run:
    service: LedgerService
    summary: DemoSummary
    progress: list[tuple[int, int]]
    events: list[tuple[int, str, str, int, dict[str, Any]]]  # position, topic, originator, version, payload

    def topics(self) -> collections.Counter[str]:
        return collections.Counter(topic.rsplit(".", 1)[-1] for _p, topic, _o, _v, _d in self.events)

    def of(self, name: str) -> list[tuple[str, int, dict[str, Any]]]:
        return [(o, v, d) for _p, topic, o, v, d in self.events if topic.endswith("." + name)]

    def topic(self, full: str) -> list[tuple[str, int, dict[str, Any]]]:
        return [(o, v, d) for _p, topic, o, v, d in self.events if topic == full]

    def communities(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Each community's events (by code), in version order: (event name, payload)."""
        by_id: dict[str, list[tuple[int, str, dict[str, Any]]]] = collections.defaultdict(list)
        for _p, topic, originator, version, payload in self.events:
            if topic.startswith("taizhang:Community."):
                by_id[originator].append((version, topic.rsplit(".", 1)[-1], payload))
        return {
            events[0][2]["code"]: [(name, d) for _v, name, d in sorted(events, key=lambda e: e[0])]
            for events in by_id.values()
        }


def new_service(directory: Path) -> LedgerService:
    directory.mkdir(parents=True, exist_ok=True)
    crypto.create_key_file(directory / "k.key")
    service, _ = LedgerService.create(parse_url(f"sqlite:///{directory / 't.db'}"), directory / "k.key", None)
    return service


def events_of(service: LedgerService) -> list[tuple[int, str, str, int, dict[str, Any]]]:
    return [
        (n.id, n.topic, str(n.originator_id), n.originator_version, decode_payload(n.state))
        for n in service.app.recorder.select_notifications(1, 10**6)
    ]


def demo(directory: Path, seed: int, today: date | None = TODAY) -> Run:
    service = new_service(directory)
    calls: list[tuple[int, int]] = []
    summary = run_demo(service, seed=seed, today=today, progress=lambda done, total: calls.append((done, total)))
    return Run(service, summary, calls, events_of(service))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    base = tmp_path_factory.mktemp("demo")
    found = {"a": demo(base / "a", 1), "b": demo(base / "b", 1), "c": demo(base / "c", 2)}
    yield found
    for run in found.values():
        run.service.close()


def normalised(run: Run) -> list[tuple[Any, ...]]:
    """Every event without what must differ between runs.

    Dropped: the timestamp; the envelopes (random nonces; their key ids stay); the note
    MAC and the record digest, which are keyed by fresh random data keys.
    """
    result = []
    for _position, topic, originator, version, payload in run.events:
        data = dict(payload)
        data.pop("timestamp", None)
        for name in ENVELOPES:
            if isinstance(data.get(name), dict):
                data[name] = data[name]["key_id"]
        data.pop("digest", None)
        if "note_mac" in data:
            data["note_mac"] = data["note_mac"] is not None
        result.append((topic, originator, version, sorted(data.items(), key=lambda kv: kv[0]).__repr__()))
    return result


def test_same_seed_gives_the_same_events(runs: dict[str, Run]) -> None:
    a, b = runs["a"], runs["b"]
    assert a.summary == b.summary
    assert len(a.events) == len(b.events)
    assert normalised(a) == normalised(b)


def test_another_seed_gives_another_sample(runs: dict[str, Run]) -> None:
    assert normalised(runs["a"]) != normalised(runs["c"])
    records = lambda run: {d["record_id"] for _o, _v, d in run.of("ServiceRecorded")}  # noqa: E731
    assert not records(runs["a"]) & records(runs["c"])


def test_summary_counts_match_the_store(runs: dict[str, Run]) -> None:
    run = runs["a"]
    s, topics = run.summary, run.topics()
    assert topics["Established"] == s.communities == 60
    assert topics["ResidentEnrolled"] == s.residents
    assert topics["ProviderRegistered"] == s.providers
    assert topics["ServiceRecorded"] == s.services
    assert topics["ServiceCorrected"] == s.corrections
    assert topics["ServiceVoided"] == s.voids
    assert topics["ResidentDeparted"] == s.departures
    assert topics["ProviderRetired"] == s.retirements
    assert topics["VisitPlanSet"] == s.visit_plans
    assert topics["PairingAdded"] == s.pairings
    assert len(run.topic(OFFICIAL + "Registered")) == s.officials
    assert topics["DutyAssigned"] == s.duties
    assert topics["DebriefFiled"] == s.debriefings
    assert topics["TargetSet"] == s.targets
    assert len(run.topic(ITEM + "Opened")) == s.supervision_items
    assert set(topics) == {
        "Established", "ResidentEnrolled", "ProviderRegistered", "ServiceRecorded", "ServiceCorrected",
        "ServiceVoided", "ResidentDeparted", "ProviderRetired",
        "VisitPlanSet", "VisitPlanEnded", "PairingAdded", "PairingEnded",
        "Registered", "DutyAssigned", "DutyEnded", "DebriefFiled",
        "Opened", "TargetSet", "TargetDecomposed", "Resolved",
        "Allocated", "Transferred", "Spent", "Reversed", "Returned", "Claimed",
    }  # fmt: skip
    assert topics["Allocated"] == s.funding_lines == 20 and topics["Transferred"] == s.fund_transfers
    assert topics["Spent"] == topics["Claimed"] == s.fund_spends > 100
    assert topics["Reversed"] == s.fund_reversals == 1 and topics["Returned"] == s.fund_returns == 1
    # seed 1: 5 county and 17 township secretaries, 17 deputies and a successor, 10 contact-point cadres
    assert (s.officials, s.duties) == (50, 50)
    assert s.visit_plans > 800 and s.pairings >= 150 and s.targets == 144
    assert 5 <= s.supervision_items <= 18 and 5 <= s.debriefings <= 8
    assert run.service.recorder.claims([d["record_id"] for _o, _v, d in run.of("ServiceRecorded")]).keys() == {
        d["record_id"] for _o, _v, d in run.of("ServiceRecorded")
    }
    established = [d for _o, _v, d in run.of("Established")]
    assert len({d["county"] for d in established}) == s.counties == 5
    assert len({(d["county"], d["township"]) for d in established}) == s.townships
    assert sum(d["code"].startswith("HZ-P") for d in established) == s.pilot == 10
    assert sum(d["code"].startswith("HZ-D") for d in established) == s.demonstration == 50
    assert run.progress == [(10, 60), (20, 60), (30, 60), (40, 60), (50, 60), (60, 60)]


def test_volumes_are_those_of_a_city(runs: dict[str, Run]) -> None:
    for run in runs.values():
        s = run.summary
        assert 3000 <= s.residents <= 4500
        assert 4000 <= s.services <= 5500
        assert 0.02 * s.services <= s.corrections <= 0.04 * s.services
        assert 0.003 * s.services <= s.voids <= 0.02 * s.services
        assert s.departures > 0 and s.retirements > 0
        assert 0 < s.late < 0.2 * s.services


def test_geography(runs: dict[str, Run]) -> None:
    established = [d for _o, _v, d in runs["a"].of("Established")]
    townships = {county: set(names) for county, names in COUNTIES}
    assert set(townships) == {"八步区", "平桂区", "钟山县", "昭平县", "富川瑶族自治县"}
    assert all(2 <= len(names) <= 4 for names in townships.values())
    assert sorted(d["code"] for d in established) == sorted(
        [f"HZ-P{i:02d}" for i in range(1, 11)] + [f"HZ-D{i:02d}" for i in range(1, 51)]
    )
    for county in townships:
        mine = [d for d in established if d["county"] == county]
        assert {d["township"] for d in mine} == townships[county]  # every township has a community
        assert sum(d["code"].startswith("HZ-P") for d in mine) == 2
    for d in established:
        assert d["name"].endswith("社区") and d["village"].endswith("村")
        assert 1 <= len(d["natural_villages"]) <= 4
        assert len(set(d["natural_villages"])) == len(d["natural_villages"])
        assert TODAY - timedelta(days=365) <= date.fromisoformat(d["established_on"]) < TODAY
    assert len({d["name"] for d in established}) == 60


def test_residents_fit_their_categories(runs: dict[str, Run]) -> None:
    run = runs["a"]
    keys = run.service.key_session()
    households: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    per_category: collections.Counter[int] = collections.Counter()
    code_of = {o: d["code"] for o, _v, d in run.of("Established")}
    for originator, _v, d in run.of("ResidentEnrolled"):
        community = code_of[originator]
        name = run.service.open_envelope(d["name"], keys, where=crypto.Binding(community, d["code"], "name"))
        birth_text = run.service.open_envelope(
            d["birth_date"], keys, where=crypto.Binding(community, d["code"], "birth_date")
        )
        assert name and 2 <= len(name) <= 4 and birth_text
        birth = date.fromisoformat(birth_text)
        categories = set(d["categories"])
        per_category[len(categories)] += 1
        if "left_behind_child" in categories:
            assert 2010 <= birth.year <= 2022
        if categories & {"left_behind_elderly", "elderly_living_alone"}:
            assert 1935 <= birth.year <= 1962
        if "left_behind_woman" in categories:
            assert d["gender"] == "female" and 1970 <= birth.year <= 2000
        assert d["gender"] in ("male", "female")
        assert d["grid"].startswith("第") and d["grid"].endswith("网格")
        households[(originator, d["household"])].append({**d, "birth": birth})
    assert per_category[0] and per_category[1] > per_category[2] > 0
    assert all(1 <= len(members) <= 5 for members in households.values())
    assert sum(len(m) > 1 for m in households.values()) > len(households) / 3
    for (_community, code), members in households.items():
        assert code.startswith("HZ-")
        if any("left_behind_child" in m["categories"] for m in members) and not any(
            "left_behind_woman" in m["categories"] for m in members
        ):
            assert any("left_behind_elderly" in m["categories"] for m in members)  # children live with a grandparent
        assert len({m["grid"] for m in members}) == 1


def test_providers(runs: dict[str, Run]) -> None:
    run = runs["a"]
    per_community = collections.Counter(o for o, _v, _d in run.of("ProviderRegistered"))
    assert len(per_community) == 60 and all(4 <= n <= 10 for n in per_community.values())
    roles = collections.defaultdict(set)
    for originator, _v, d in run.of("ProviderRegistered"):
        roles[originator].add(d["role"])
        assert d["role"] in models.ROLES
    assert all({"grid_worker", "cadre"} <= r for r in roles.values())
    teams = {d["team"] for _o, _v, d in run.of("ProviderRegistered")}
    assert {"党员先锋队", "巾帼志愿服务队"} <= teams


def test_services_follow_the_rules_and_the_calendar(runs: dict[str, Run]) -> None:
    """Check the domain's rules again from the stored events, and the order of each community's log."""
    run = runs["a"]
    by_community: dict[str, list[tuple[int, str, dict[str, Any]]]] = collections.defaultdict(list)
    for _position, topic, originator, version, payload in run.events:
        if topic.startswith("taizhang:Community."):
            by_community[originator].append((version, topic.rsplit(".", 1)[-1], payload))
    kinds: collections.Counter[str] = collections.Counter()
    late = with_note = entered = 0
    first_day, last_day = date.max, date.min
    window_start = TODAY - timedelta(days=WINDOW_DAYS)
    for events in by_community.values():
        assert [v for v, _t, _d in events] == list(range(1, len(events) + 1))
        assert events[0][1] == "Established"
        established = events[0][2]["established_on"]
        residents: dict[str, dict[str, Any]] = {}
        providers: dict[str, dict[str, Any]] = {}
        records: dict[str, dict[str, Any]] = {}
        plans: dict[str, str] = {}  # resident -> first day of the plan in force
        pairings: dict[tuple[str, str], str] = {}
        calendar = established  # services, plans and pairings follow the calendar
        last_at = None
        count = 0
        for _version, name, d in events[1:]:
            if name == "ResidentEnrolled":
                residents[d["code"]] = {"from": d["enrolled_on"], "to": None, "categories": set(d["categories"])}
            elif name == "ResidentDeparted":
                residents[d["code"]]["to"] = d["on"]
            elif name == "ProviderRegistered":
                providers[d["code"]] = {"from": d["registered_on"], "to": None, "role": d["role"]}
            elif name in ("VisitPlanSet", "PairingAdded"):
                day = d["starts_on"] if name == "VisitPlanSet" else d["on"]
                assert calendar <= day <= TODAY.isoformat()
                calendar = day
                r, p = residents[d["resident"]], providers[d["provider"]]  # of this community …
                assert r["from"] <= day and (r["to"] is None or day < r["to"])  # … and active that day
                assert p["from"] <= day and (p["to"] is None or day < p["to"])
                if name == "VisitPlanSet":
                    assert r["categories"] & KEY_CATEGORIES and 7 <= d["every"] <= 30
                    assert plans.get(d["resident"], "") < day  # a new plan replaces the old from a later day
                    plans[d["resident"]] = day
                else:
                    assert p["role"] in PAIRING_ROLES and (d["provider"], d["resident"]) not in pairings
                    pairings[(d["provider"], d["resident"])] = day
            elif name in ("VisitPlanEnded", "PairingEnded"):
                since = (
                    plans.pop(d["resident"])
                    if name == "VisitPlanEnded"
                    else pairings.pop((d["provider"], d["resident"]))
                )
                assert since <= calendar <= d["on"] <= TODAY.isoformat()
                calendar = d["on"]
            elif name == "ProviderRetired":
                providers[d["code"]]["to"] = d["on"]
            elif name == "ServiceRecorded":
                count += 1
                at = datetime.fromisoformat(d["occurred_at"])
                assert last_at is None or at >= last_at  # services in time order
                last_at = at
                day = at.date().isoformat()
                assert established <= day <= TODAY.isoformat() and calendar <= day
                calendar = day
                assert 8 <= at.hour <= 18 and at.utcoffset() == timedelta(hours=8)
                assert 1 <= len(d["residents"]) <= 3 and 1 <= len(d["providers"]) <= 2
                for code in d["residents"]:
                    r = residents[code]
                    assert r["from"] <= day and (r["to"] is None or day < r["to"])
                for code in d["providers"]:
                    p = providers[code]
                    assert p["from"] <= day and (p["to"] is None or day < p["to"])
                assert 15 <= d["minutes"] <= 240
                assert d["place"] is None or d["place"] in models.PLACES
                kinds[d["kind"]] += 1
                with_note += d["note"] is not None
                assert d["entered_on"] is not None  # `today` is in the past: every entry carries its date
                gap = (date.fromisoformat(d["entered_on"]) - at.date()).days
                assert 0 <= gap <= 20
                entered += gap > 0
                late += gap > 7
                first_day, last_day = min(first_day, at.date()), max(last_day, at.date())
                records[d["record_id"]] = {"at": at, "status": "active"}
            elif name in ("ServiceCorrected", "ServiceVoided"):
                record = records[d["record_id"]]  # refers to an earlier record …
                assert record["status"] == "active"  # … that is still active
                if name == "ServiceVoided":
                    assert d["reason"] == "重复登记"
                    record["status"] = "voided"
                else:
                    assert set(d["changes"]) <= {"minutes", "kind", "residents"} and d["reason"]
        assert 40 <= count <= 125
    s = run.summary
    assert late == s.late
    assert (first_day, last_day) == (s.first_day, s.last_day)
    assert window_start <= first_day and last_day <= TODAY
    assert 0.2 * s.services <= entered <= 0.4 * s.services  # paper ledgers written up later
    assert 0.3 * s.services <= with_note <= 0.6 * s.services
    assert kinds.most_common(2)[0][0] in ("life_care", "family_care")
    assert {k for k, _n in kinds.most_common(2)} == {"life_care", "family_care"}
    assert set(kinds) == set(models.KINDS.labels)
    # The aggregates load (from their snapshots) after the bulk save.
    for community in run.service.communities():
        assert len(run.service.recorder.records_of(community.id)) >= 40


def test_a_store_with_events_is_refused(runs: dict[str, Run], tmp_path: Path) -> None:
    run = runs["a"]
    before = run.service.recorder.max_notification_id()
    with pytest.raises(LedgerError, match="already holds events"):
        run_demo(run.service, seed=1, today=TODAY)
    assert run.service.recorder.max_notification_id() == before

    service = new_service(tmp_path / "one")
    try:
        data = {"code": "X1", "name": "石门社区", "county": "八步区", "township": "贺街镇", "village": "石门村"}
        service.establish_community(service.validate(models.EstablishCommunity, data), "clerk")
        with pytest.raises(LedgerError, match="already holds events"):
            run_demo(service, seed=3, today=TODAY)
        assert service.recorder.event_count() == 1
    finally:
        service.close()


def test_needs_the_master_key_and_writes_nothing_without_it(tmp_path: Path) -> None:
    service, _ = LedgerService.create(parse_url(f"sqlite:///{tmp_path / 't.db'}"), tmp_path / "missing.key", None)
    try:
        with pytest.raises(crypto.KeyFileError):
            run_demo(service, seed=1, today=TODAY)
        assert not service.recorder.max_notification_id()
    finally:
        service.close()


@pytest.mark.clock  # the demo ends today
def test_a_future_today_is_malformed(tmp_path: Path) -> None:
    service = new_service(tmp_path)
    try:
        with pytest.raises(models.Malformed):
            run_demo(service, seed=1, today=service.now().date() + timedelta(days=1))
        assert not service.recorder.max_notification_id()
    finally:
        service.close()


@pytest.mark.clock  # the demo ends today
def test_ending_today_nothing_is_in_the_future_and_recent_entries_are_not_late(tmp_path: Path) -> None:
    run = demo(tmp_path, seed=5, today=None)
    try:
        now = run.service.now()
        today = now.date()
        assert run.summary.last_day <= today
        recent_without_date = 0
        for _o, _v, d in run.of("ServiceRecorded"):
            at = datetime.fromisoformat(d["occurred_at"])
            assert at <= now
            if d["entered_on"] is None:
                # recorded now, without a paper-ledger date: only within the last week
                assert now - at < timedelta(days=7)
                recent_without_date += 1
        assert recent_without_date > 0
        assert 0 < run.summary.late < run.summary.services * 0.2
    finally:
        run.service.close()


# ---- accountability ------------------------------------------------------------------------------
def _communities_by_unit(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The Established payloads of each county, township and community unit."""
    units: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for _o, _v, d in run.of("Established"):
        for unit in (f"county:{d['county']}", f"township:{d['county']}/{d['township']}", f"community:{d['code']}"):
            units[unit].append(d)
    return units


def test_officials_answer_for_every_county_township_and_pilot(runs: dict[str, Run]) -> None:
    run = runs["a"]
    units = _communities_by_unit(run)
    officials = {o: d for o, _v, d in run.topic(OFFICIAL + "Registered")}
    assert len(officials) == run.summary.officials == 50
    for d in officials.values():
        assert re.fullmatch(r"O-(BB|PG|ZS|ZP|FC)-\d{2}", d["code"])
        assert 2 <= len(d["name"]) <= 4 and all("\u4e00" <= ch <= "\u9fff" for ch in d["name"])
    assert len({d["code"] for d in officials.values()}) == 50
    held: dict[tuple[str, str], list[tuple[str, str]]] = collections.defaultdict(list)  # (unit, duty) -> (code, from)
    for o, _v, d in run.topic(OFFICIAL + "DutyAssigned"):
        held[(d["unit"], d["duty"])].append((officials[o]["code"], d["starts_on"]))
        assert d["starts_on"] <= TODAY.isoformat()
    first_day = {unit: min(c["established_on"] for c in communities) for unit, communities in units.items()}
    counties = [f"county:{c}" for c, _t in COUNTIES]
    townships = sorted({u for u in units if u.startswith("township:")})
    pilots = [f"community:HZ-P{i:02d}" for i in range(1, 11)]
    assert len(townships) == 17
    assert sorted(u for u, duty in held if duty == "secretary") == sorted(counties + townships)
    assert sorted(u for u, duty in held if duty == "deputy") == townships
    assert sorted(u for u, duty in held if duty == "contact_point") == sorted(pilots)
    for (unit, duty), spells in held.items():
        assert spells[0][1] == first_day[unit]  # answerable from the unit's first community
        code = spells[0][0]
        title = next(d["title"] for d in officials.values() if d["code"] == code)
        if duty == "secretary":
            assert title.endswith("委书记") if unit.startswith("county:") else title.endswith("党委书记")
    # one deputy handed over: the duty ended on the day the successor's began
    (ended,) = run.topic(OFFICIAL + "DutyEnded")
    unit, on = ended[2]["unit"], ended[2]["on"]
    assert ended[2]["duty"] == "deputy"
    assert [start for _code, start in held[(unit, "deputy")]] == [first_day[unit], on]
    assert TODAY - timedelta(days=50) <= date.fromisoformat(on) <= TODAY - timedelta(days=30)
    # debriefings: by township secretaries, for the month before TODAY's
    debriefs = run.topic(OFFICIAL + "DebriefFiled")
    assert len(debriefs) == run.summary.debriefings and 5 <= len(debriefs) <= 8
    for o, _v, d in debriefs:
        assert d["period"] == PREVIOUS and d["unit"].startswith("township:")
        assert officials[o]["code"] == held[(d["unit"], "secretary")][0][0]
        assert d["summary"].startswith(f"{PREVIOUS}专项述职")


def _active_service_days(events: list[tuple[str, dict[str, Any]]]) -> dict[str, set[date]]:
    """Resident -> days with an active service, corrections applied."""
    records: dict[str, tuple[date, list[str]]] = {}
    for name, d in events:
        if name == "ServiceRecorded":
            records[d["record_id"]] = (datetime.fromisoformat(d["occurred_at"]).date(), d["residents"])
        elif name == "ServiceCorrected" and "residents" in d["changes"]:
            records[d["record_id"]] = (records[d["record_id"]][0], d["changes"]["residents"])
        elif name == "ServiceVoided":
            del records[d["record_id"]]
    days: dict[str, set[date]] = collections.defaultdict(set)
    for day, residents in records.values():
        for code in residents:
            days[code].add(day)
    return days


def test_visit_plans_and_pairings(runs: dict[str, Run]) -> None:
    run = runs["a"]
    eligible = planned = replaced = ended = mid_period = kept = missed = 0
    pairings_ended = handed_over = 0
    for code, events in run.communities().items():
        established = date.fromisoformat(events[0][1]["established_on"])
        first_service = max(established, TODAY - timedelta(days=WINDOW_DAYS))
        eligible += sum(1 for n, d in events if n == "ResidentEnrolled" and set(d["categories"]) & KEY_CATEGORIES)
        days = _active_service_days(events)
        spells: dict[str, list[list[Any]]] = collections.defaultdict(list)  # resident -> [start, every, end]
        paired: collections.Counter[str] = collections.Counter()
        for name, d in events:
            if name == "VisitPlanSet":
                start = date.fromisoformat(d["starts_on"])
                if spells[d["resident"]] and spells[d["resident"]][-1][2] is None:
                    spells[d["resident"]][-1][2] = start
                    replaced += 1
                spells[d["resident"]].append([start, d["every"], None])
                mid_period += start > first_service
            elif name == "VisitPlanEnded":
                spells[d["resident"]][-1][2] = date.fromisoformat(d["on"])
                ended += 1
            elif name == "PairingAdded":
                paired[d["resident"]] += 1
            elif name == "PairingEnded":
                pairings_ended += 1
        handed_over += sum(n > 1 for n in paired.values())
        assert 1 <= sum(paired.values()) <= 6, code
        planned += len(spells)
        for resident, plans in spells.items():
            for start, every, end in plans:
                windows = []
                window = start
                while window + timedelta(days=every - 1) <= min(
                    TODAY, (end or TODAY + timedelta(days=1)) - timedelta(days=1)
                ):
                    last = window + timedelta(days=every - 1)
                    windows.append(any(window <= day <= last for day in days[resident]))
                    window = last + timedelta(days=1)
                if len(windows) >= 2:
                    kept += all(windows)
                    missed += not all(windows)
    assert eligible * 0.7 <= planned <= eligible  # most of the residents in a key category
    assert replaced >= 10 and ended >= 5 and mid_period >= 50
    assert kept >= 100 and missed >= 100  # some plans well kept, some not
    assert pairings_ended >= 10 and handed_over >= 5


def test_targets_are_set_and_decomposed(runs: dict[str, Run]) -> None:
    run = runs["a"]
    units = _communities_by_unit(run)
    unit_of = {o: d["unit"] for o, _v, d in run.topic(TARGETS + "Opened")}
    assert len(unit_of) == 5 + 17
    targets = {
        (unit_of[o], d["period"], d["metric"], d["kind"]): (d["at_least"], d["source"])
        for o, _v, d in run.topic(TARGETS + "TargetSet")
    }
    assert len(targets) == len(run.topic(TARGETS + "TargetSet")) == run.summary.targets
    for county, _townships in COUNTIES:
        for period in (MONTH, QUARTER):
            for metric in ("records", "residents_served"):
                at_least, source = targets[(f"county:{county}", period, metric, None)]
                assert at_least > 0 and at_least == int(at_least) and source is None
        assert targets[(f"county:{county}", QUARTER, "records", "emergency_aid")][0] > 0
    decompositions = run.topic(TARGETS + "TargetDecomposed")
    assert len(decompositions) == 5 * 5
    for o, _v, d in decompositions:
        parent = unit_of[o]
        whole, _source = targets[(parent, d["period"], d["metric"], d["kind"])]
        assert sum(d["into"].values()) >= whole
        inside = sorted(u for u in units if u.startswith(f"township:{parent.split(':', 1)[1]}/"))
        assert sorted(d["into"]) == inside  # every township of the county has its part
        for child, part in d["into"].items():
            assert targets[(child, d["period"], d["metric"], d["kind"])] == (part, parent)
    townships = [u for u in units if u.startswith("township:")]
    for unit in townships:
        for period in (MONTH, QUARTER):
            assert targets[(unit, period, "coverage", None)] == (0.6, None)


def test_supervision_items_are_due_in_the_last_full_month(runs: dict[str, Run]) -> None:
    run = runs["a"]
    opened = {o: d for o, _v, d in run.topic(ITEM + "Opened")}
    resolved = {o: d for o, _v, d in run.topic(ITEM + "Resolved")}
    assert len(opened) == run.summary.supervision_items
    outcomes: collections.Counter[str] = collections.Counter()
    for o, d in opened.items():
        assert d["unit"].startswith("township:") and d["due"][:7] == MONTH and d["item"]
        if o in resolved:
            assert resolved[o]["on"] <= TODAY.isoformat() and resolved[o]["note"]
            outcomes["on time" if resolved[o]["on"] <= d["due"] else "late"] += 1
        else:
            outcomes["open"] += 1
    assert set(outcomes) == {"on time", "late", "open"}
    assert 5 <= len({d["unit"] for d in opened.values()}) <= 9


def test_the_accountability_layer_differs_by_seed(runs: dict[str, Run]) -> None:
    names = lambda run: [d["name"] for _o, _v, d in run.topic(OFFICIAL + "Registered")]  # noqa: E731
    assert names(runs["a"]) == names(runs["b"]) != names(runs["c"])
    items = lambda run: {o for o, _v, _d in run.topic(ITEM + "Opened")}  # noqa: E731
    assert items(runs["a"]) == items(runs["b"]) and not items(runs["a"]) & items(runs["c"])


def test_last_full_month() -> None:
    assert last_full_month(date(2026, 6, 30)).text == "2026-06"
    assert last_full_month(date(2026, 6, 29)).text == "2026-05"
    assert last_full_month(date(2026, 1, 15)).text == "2025-12"
    assert last_full_month(date(2026, 2, 28)).text == "2026-02"


# ---- the command -------------------------------------------------------------------------------------
@pytest.mark.clock  # the demo ends today
def test_the_command_ends_with_the_township_ranking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TAIZHANG_DB", "TAIZHANG_ACTOR", "TAIZHANG_LANG", "TAIZHANG_KEY_FILE", "TAIZHANG_TZ"):
        monkeypatch.delenv(name, raising=False)
    store = ["--db", f"sqlite:///{tmp_path / 'demo.db'}", "--key-file", str(tmp_path / "demo.key")]
    runner = CliRunner()
    result = runner.invoke(cli, [*store, "demo", "--seed", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.search(
        r"50 officials with 50 duties, \d debriefings; \d+ visit plans, \d+ pairings; 144 targets", result.stdout
    )
    headings = [i for i, line in enumerate(lines) if line.startswith("township ranking ")]
    assert len(headings) == 1 and headings[0] > lines.index(
        next(x for x in lines if x.startswith("services by township"))
    )
    month = re.match(r"township ranking (\d{4}-\d{2}) ", lines[headings[0]])
    assert month is not None
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert month.group(1) in {last_full_month(today).text, last_full_month(today - timedelta(days=1)).text}
    funds = lines.index("the city's funding ledger (资金台账) by department:")
    header, rule, *rows = lines[headings[0] + 1 : funds - 1]
    assert header.split() == ["rank", "unit", "score"] and set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == 17
    # It ends with the city's funding ledger: one row per department and the total.
    header, rule, *departments = lines[funds + 1 :]
    assert header.split()[:2] == ["department", "lines"] and header.endswith("execution rate")
    assert sorted(row.split()[0] for row in departments) == sorted(["民政局", "乡村振兴局", "妇联", "残联"])
    assert all(re.fullmatch(r"\d+\.\d+%", row.split()[-1]) for row in departments)
    ranks = [int(row.split()[0]) for row in rows]  # every township has a score, so a rank
    assert ranks[0] == 1 and ranks == sorted(ranks) and max(ranks) <= 17
    assert {row.split()[1] for row in rows} == {
        f"{c}{t}" for c, names in COUNTIES for t in names
    }  # as people name them
    assert all(0 <= float(row.split()[2]) <= 100 and re.fullmatch(r"\d+\.\d", row.split()[2]) for row in rows)

    again = runner.invoke(cli, [*store, "demo", "--seed", "1"])
    assert again.exit_code == 1 and "already holds events" in again.output


def test_the_funding_ledger_reaches_vouchers_linked_to_active_services(runs: dict[str, Run]) -> None:
    from commands.demo_funds import DEPARTMENTS, city_summary, stored_lines
    from commands.funds_history import payee_binding

    run = runs["a"]
    lines = stored_lines(run.service)
    assert {line.department for line in lines} == set(DEPARTMENTS) and len(lines) == 20
    voided = {d["record_id"] for _o, _v, d in run.of("ServiceVoided")}
    owners = run.service.recorder.claims([r for _o, _v, d in run.of("Spent") for r in d["records"]])
    codes = {str(community_id(d["code"])): d["code"] for _o, _v, d in run.of("Established")}
    vouchers = collections.Counter((d["community"], d["year"], d["voucher"]) for _o, _v, d in run.of("Claimed"))
    assert set(vouchers.values()) == {1}
    keys = run.service.key_session()
    for _o, _v, d in run.of("Spent"):
        assert d["records"] and not set(d["records"]) & voided
        assert {codes[owners[r]] for r in d["records"]} == {d["community"].split(":", 1)[1]}
        where = payee_binding(d["community"], d["spend_id"], d["on"])
        assert run.service.open_envelope(d["payee"], keys, where=where)
    for line in lines:
        for unit in line.units():
            assert line.balance(unit) >= 0
    rows = city_summary(lines)
    assert [r["department"] for r in rows] == list(DEPARTMENTS)
    for row in rows:
        assert row["balance"] == row["allocated"] - row["returned"] - row["spent"] + row["reversed"] > 0
        assert 0.2 < row["execution_rate"] < 0.6
