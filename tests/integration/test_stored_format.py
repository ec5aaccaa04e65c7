"""The event format is forever: stores written by earlier versions must still decode.

tests/fixtures/store_v1 was written by taizhang 0.1.0 (event format 1) with
tests/fixtures/make_store_v1.py. Never regenerate it: add store_v2 beside it when
the format changes, with upcasters, and keep this test passing.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from eventsourcing.utils import resolve_topic

from commands.app import LedgerService
from domain.community import Community
from domain.ids import community_id
from infra import crypto, recordstate
from infra.codec import OrjsonMapper, decode_payload
from infra.store import SCHEMA_VERSION, parse_url

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "store_v1"
RECORD = "00000000-0000-4000-8000-{:012d}"


@pytest.fixture
def v1(tmp_path: Path) -> LedgerService:
    """A copy of the v1 store (opening a store may write to it)."""
    shutil.copy(FIXTURE / "taizhang.db", tmp_path / "taizhang.db")
    shutil.copy(FIXTURE / "taizhang.key", tmp_path / "taizhang.key")
    service = LedgerService.open(parse_url(f"sqlite:///{tmp_path / 'taizhang.db'}"), tmp_path / "taizhang.key")
    yield service
    service.close()


def test_every_stored_event_decodes_with_a_registered_topic(v1: LedgerService) -> None:
    mapper = OrjsonMapper()
    notifications = v1.recorder.select_notifications(1, 10_000)
    topics = Counter(n.topic for n in notifications)
    assert topics == {
        "taizhang:Community.Established": 1,
        "taizhang:Community.ResidentEnrolled": 2,
        "taizhang:Community.ResidentUpdated": 1,
        "taizhang:Community.ResidentDeparted": 1,
        "taizhang:Community.ProviderRegistered": 2,
        "taizhang:Community.ProviderRetired": 1,
        "taizhang:Community.ServiceRecorded": 102,
        "taizhang:Community.ServiceCorrected": 1,
        "taizhang:Community.ServiceVoided": 1,
    }
    for notification in notifications:
        event = mapper.to_domain_event(notification)
        assert type(event) is resolve_topic(notification.topic)
        assert event.originator_version == notification.originator_version


def test_the_v1_aggregate_loads_from_snapshot_and_from_full_replay(v1: LedgerService) -> None:
    community_uuid = community_id("HZ-P01")
    loaded: Community = v1.app.repository.get(community_uuid)
    events = list(v1.app.events.get(community_uuid))
    replayed: Community | None = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    registry = ("_pending_events", "records")
    assert {k: v for k, v in vars(loaded).items() if k not in registry} == {
        k: v for k, v in vars(replayed).items() if k not in registry
    }
    assert loaded.version == 112
    assert loaded.residents["R002"]["departed_on"] == "2026-06-01"
    assert loaded.residents["R002"]["grid"] == "第2网格"
    assert loaded.providers["P02"]["retired_on"] == "2026-05-01"
    assert replayed.record_status(RECORD.format(2)) == "voided"
    assert replayed.record_revision(RECORD.format(1)) == 2
    assert len(replayed.records) == 102
    # The upgrade backfilled record_state from the log: it agrees with the replay, row for row.
    rows = v1.recorder.records_of(community_uuid)
    assert {r: recordstate.compact(row) for r, row in rows.items()} == replayed.records
    with_state = v1.get_community("HZ-P01", [RECORD.format(1), RECORD.format(2)])
    assert with_state.record_status(RECORD.format(2)) == "voided"
    assert with_state.record_revision(RECORD.format(1)) == 2
    assert v1.recorder.record_state_problem() is None
    assert loaded.visit_plans == {} and loaded.pairings == {} and loaded.closures == {}  # upcast v1 -> v4


def test_a_v1_store_can_close_and_reopen_a_period(v1: LedgerService) -> None:
    from commands.closing import close_period, reopen_period
    from domain.errors import PeriodClosed
    from domain.units import parse_period, parse_unit
    from tests.helpers import record

    unit, march = parse_unit("township:八步区/贺街镇"), parse_period("2026-03")
    assert close_period(v1, unit, march, "结账", "sup01")["communities"] == ["HZ-P01"]
    with pytest.raises(PeriodClosed):
        record(v1, "HZ-P01", residents=["R001"], providers=["P01"], occurred_at="2026-03-02 10:00")
    reopen_period(v1, unit, march, "补录", "sup01")
    assert record(v1, "HZ-P01", residents=["R001"], providers=["P01"], occurred_at="2026-03-02 10:00")["created"]


def test_v1_personal_data_opens_with_the_v1_key(v1: LedgerService) -> None:
    payloads = [decode_payload(n.state) for n in v1.recorder.select_notifications(1, 10_000)]
    enrolled = {p["code"]: p for p in payloads if "enrolled_on" in p}
    assert "v" not in enrolled["R001"]["name"]  # version 1: only the key id is associated data

    def opened(envelope: dict[str, str], subject: str, field: str) -> str | None:
        return v1.open_envelope(envelope, where=crypto.Binding("HZ-P01", subject, field))

    assert opened(enrolled["R001"]["name"], "R001", "name") == "张秀英"
    assert opened(enrolled["R001"]["birth_date"], "R001", "birth_date") == "1948-05-02"
    assert opened(enrolled["R002"]["name"], "R002", "name") == "王小明"
    corrected = next(p for p in payloads if "changes" in p)
    assert opened(corrected["changes"]["note"], corrected["record_id"], "note") == "更正：送米送油并检查用电"
    first = next(p for p in payloads if p.get("record_id") == RECORD.format(1) and "kind" in p)
    assert opened(first["note"], RECORD.format(1), "note") == "第1次入户：送米送油"
    # A version-1 envelope is still opened only where its key id belongs: never as another's.
    with pytest.raises(crypto.Unopenable):
        opened(enrolled["R001"]["name"], "R002", "name")
    with pytest.raises(crypto.Unopenable):
        opened(first["note"], RECORD.format(11), "note")


def test_v1_store_accepts_new_writes_and_keeps_idempotency(v1: LedgerService) -> None:
    from tests.helpers import record

    again = record(
        v1,
        "HZ-P01",
        RECORD.format(3),
        kind="life_care",
        residents=["R001", "R002"],
        providers=["P01"],
        occurred_at="2026-02-02T12:00:00+08:00",
        minutes=33,
        place="home_visit",
    )
    assert again == {"record_id": RECORD.format(3), "created": False}
    fresh = record(v1, "HZ-P01", residents=["R001"], providers=["P01"], occurred_at="2026-03-01 10:00")
    assert fresh["created"] is True


def test_opening_a_v1_store_upgrades_its_schema_in_place(v1: LedgerService) -> None:
    """Stores made before the community_units index get it, filled from the log, on first open."""
    assert v1.recorder.settings()["schema_version"] == SCHEMA_VERSION
    assert v1.recorder.units() == [("HZ-P01", "八步区", "贺街镇")]
    # Schema 3: the erasure tombstones and the access log exist and work.
    assert v1.recorder.erased_keys(["res:HZ-P01/R001"]) == set()
    v1.log_access(None, "resident list", "community=HZ-P01", [("HZ-P01", "R001")])
    assert [row["residents"] for row in v1.recorder.access_entries(resident=("HZ-P01", "R001"), actor=None, start=None, end=None)] == [1]
    # Schema 8: the record claims live in record_state, rebuilt from the log; their old table is gone.
    recorded = [RECORD.format(n) for n in range(1, 4)]
    assert v1.recorder.claims(recorded) == dict.fromkeys(recorded, str(community_id("HZ-P01")))
    assert v1.recorder._select("SELECT name FROM sqlite_master WHERE name = 'record_claims'") == []


def test_the_v1_fixture_itself_predates_the_upgrade() -> None:
    import sqlite3

    conn = sqlite3.connect(f"file:{FIXTURE / 'taizhang.db'}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        settings = dict(conn.execute("SELECT key, value FROM taizhang_settings").fetchall())
    finally:
        conn.close()
    assert "community_units" not in tables
    assert "record_claims" in tables  # dropped by the schema 8 upgrade
    assert "schema_version" not in settings
