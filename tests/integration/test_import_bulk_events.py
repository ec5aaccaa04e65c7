"""An import encodes its ServiceRecorded events without event objects (infra.codec.stored_event,
Community.recorded): the stored bytes are the mapper's, and the store ends up as if every row had
been recorded one by one (issue 12 point 3)."""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import importer
from commands.app import LedgerService
from commands.importer import import_file, validate_rows
from domain.community import Community
from infra.codec import OrjsonMapper, stored_event
from infra.store import parse_url
from tests.conftest import fresh_store_url

RESIDENTS = [f"R{i}" for i in range(6)]
PROVIDERS = [f"P{i}" for i in range(3)]


def _community() -> Community:
    community = Community.establish(
        code="HZ-01",
        name="社区",
        county="县",
        township="镇",
        village="村",
        natural_villages=[],
        established_on="2025-01-01",
        actor="clerk",
    )
    for code in RESIDENTS:
        community.enroll_resident(
            code=code,
            name={"alg": "x", "key_id": code, "nonce": "", "ct": ""},
            birth_date=None,
            gender=None,
            categories=[],
            grid=None,
            household=None,
            enrolled_on=None,
            actor="clerk",
        )
    for code in PROVIDERS:
        community.register_provider(
            code=code, name=code, role="volunteer", team=None, registered_on=None, actor="clerk"
        )
    community.collect_events()
    return community


services = st.fixed_dictionaries(
    {
        "record_id": st.uuids().map(str),
        "kind": st.sampled_from(["life_care", "counseling", "emergency_aid"]),
        "residents": st.lists(st.sampled_from(RESIDENTS), min_size=1, max_size=4, unique=True),
        "providers": st.lists(st.sampled_from(PROVIDERS), min_size=1, max_size=3, unique=True),
        "occurred_at": st.datetimes(
            min_value=datetime(2025, 1, 2), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
        ).map(lambda d: d.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))),
        "minutes": st.integers(1, 1440),
        "place": st.sampled_from([None, "home_visit", "other"]),
        "note": st.sampled_from([None, {"v": 2, "alg": "AES-256-GCM", "key_id": "note:x", "nonce": "n", "ct": "c"}]),
        "note_mac": st.sampled_from([None, "abc123", "服务"]),
        "entered_on": st.sampled_from([None, "2026-01-05"]),
        "actor": st.sampled_from(["clerk", "王芳", 'a"b\\c']),
    }
)


@settings(max_examples=150, deadline=None)
@given(service=services, micro=st.sampled_from([0, 1, 123456]))
def test_the_bulk_encoding_is_the_mappers_and_the_aggregate_ends_the_same(service: dict[str, Any], micro: int) -> None:
    """Byte for byte: trigger_event + OrjsonMapper.to_stored_event against Community.recorded +
    codec.stored_event; the event decodes with the codec to the same fields; same aggregate state."""
    base = _community()
    by_event, by_bulk = copy.deepcopy(base), copy.deepcopy(base)
    timestamp = datetime(2026, 1, 6, 1, 2, 3, micro, tzinfo=UTC)
    fields = by_event.service_to_record(**service)
    assert fields is not None and fields == by_bulk.service_to_record(**service)
    by_event.trigger_event(Community.ServiceRecorded, timestamp=timestamp, **fields)
    mapper = OrjsonMapper()
    (event,) = by_event.collect_events()
    expected = mapper.to_stored_event(event)

    version = by_bulk.recorded(fields, timestamp)
    got = stored_event(Community.ServiceRecorded, by_bulk.id, version, timestamp, fields)

    assert (got.originator_id, got.originator_version, got.topic) == (
        expected.originator_id,
        expected.originator_version,
        expected.topic,
    )
    assert got.state == expected.state
    assert mapper.to_domain_event(got).__dict__ == event.__dict__
    assert by_bulk.__dict__ == by_event.__dict__


def test_a_bulk_event_may_not_follow_pending_events() -> None:
    community = Community.establish(
        code="HZ-02", name="n", county="c", township="t", village="v", natural_villages=[], established_on="2025-01-01",
        actor="clerk",
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="pending"):
        community.recorded({}, datetime.now(UTC))


# ---- the whole import against the per-row path, on both stores ----------------------------------
@pytest.fixture
def second_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_store_url(backend, tmp_path / "one-by-one.db", request) as url:
        yield url


def _base(service: LedgerService, folder: Path) -> None:
    from tests.perf.bench_import import write_base

    for kind, path in zip(("communities", "residents", "providers"), write_base(folder), strict=True):
        import_file(service, kind, path, "clerk")


def _services(path: Path) -> None:
    from tests.perf.bench_import import write_services

    write_services(path, 260, seed=7)
    start = datetime(2025, 3, 1, 9, 0)
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        for i in range(6):  # identical rows (the frozen id rule's index), and a repeat of an earlier record
            w.writerow(["B001", "life_care", "R001;R002", "P01", (start + timedelta(days=i % 2)).strftime("%Y-%m-%d %H:%M"), 30, "other", ""])  # fmt: skip


def _log(service: LedgerService, after: int) -> list[tuple[Any, ...]]:
    """The services' events, what must agree: everything but the timestamp, and (random data keys)
    a note's ciphertext, MAC and the digest over it."""
    found = []
    for n in service.recorder.select_notifications(after + 1, 10**9):
        state = orjson.loads(n.state)
        state.pop("timestamp")
        if state.get("note") is not None:
            state["note"] = state["note"]["key_id"]
            state["note_mac"] = state["digest"] = "(keyed)"
        found.append((str(n.originator_id), n.originator_version, n.topic, state))
    return found


def _states(service: LedgerService) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for c in range(50):
        for record_id, row in service.recorder.records_of(Community.id_for(f"B{c:03d}")).items():
            if row["note_mac"] is not None:
                row = {**row, "note_mac": "(keyed)", "digest": "(keyed)"}
            rows[record_id] = row
    return rows


def test_an_import_stores_what_recording_each_row_stores(
    service: LedgerService, second_url: str, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK", 100)  # several chunks, each read back by the next
    one_by_one, _ = LedgerService.create(parse_url(second_url), key_file, None)
    try:
        _base(service, tmp_path)
        _base(one_by_one, tmp_path)
        start_bulk = service.recorder.max_notification_id() or 0
        start_rows = one_by_one.recorder.max_notification_id() or 0
        path = tmp_path / "services.csv"
        _services(path)

        result = import_file(service, "services", path, "clerk")

        from commands import tabular

        valid, problems = validate_rows(one_by_one, "services", tabular.open_table(path, "services"), lambda *_: None)
        assert not problems
        created = [one_by_one.record_service(item.cmd, "clerk", item.record_id)["created"] for item in valid]
        assert result.counts() == {"added": created.count(True), "existing": created.count(False), "skipped": 0}
        assert created.count(False) == 0  # identical rows get their own index: all new

        assert _log(service, start_bulk) == _log(one_by_one, start_rows)
        assert _states(service) == _states(one_by_one)
        ids = [item.record_id for item in valid]
        assert service.recorder.claims(ids) == one_by_one.recorder.claims(ids)

        again = import_file(service, "services", path, "clerk")  # a re-import adds nothing
        assert again.counts() == {"added": 0, "existing": len(valid), "skipped": 0}
        assert service.recorder.record_state_problem() is None
    finally:
        one_by_one.close()


def test_the_scope_guard_sees_the_communities_an_import_writes_into(service: LedgerService, tmp_path: Path) -> None:
    """The services' events are not pending in their aggregates: BulkSave hands the guard the
    aggregates it wrote into, and a guard that refuses one leaves nothing written."""
    _base(service, tmp_path)
    path = tmp_path / "services.csv"
    _services(path)
    before = service.recorder.max_notification_id()
    seen: list[str] = []

    class Refused(Exception):
        pass

    def guard(changed: list[Any], written: list[Any] = ()) -> None:  # type: ignore[assignment]
        seen.extend(aggregate.code for aggregate in [*changed, *written])
        if "B003" in seen:
            raise Refused

    service.app.guard = guard
    try:
        with pytest.raises(Refused):
            import_file(service, "services", path, "clerk")
    finally:
        service.app.guard = None
    assert "B003" in seen
    assert service.recorder.max_notification_id() == before
