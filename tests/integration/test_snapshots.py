"""Snapshots: only the newest one of each community is kept, and loading stays exact."""

from __future__ import annotations

from commands.app import SNAPSHOT_INTERVAL, LedgerService
from domain.community import Community
from domain.ids import community_id
from tests.helpers import record, small_community


def _snapshot_versions(service: LedgerService, code: str) -> list[int]:
    snapshots = service.app.snapshots
    assert snapshots is not None
    return [s.originator_version for s in snapshots.recorder.select_events(community_id(code))]


def test_only_the_newest_snapshot_is_kept_and_every_version_still_loads(service: LedgerService) -> None:
    code = small_community(service)
    start = service.get_community(code).version
    for day in range(1, 2 * SNAPSHOT_INTERVAL + 30 - start + 1):
        record(service, code, occurred_at=f"2026-03-{1 + day % 28:02d} {8 + day % 10:02d}:{day % 60:02d}", minutes=day % 300 + 1)
    latest = service.get_community(code)
    assert latest.version >= 2 * SNAPSHOT_INTERVAL
    assert _snapshot_versions(service, code) == [2 * SNAPSHOT_INTERVAL]

    # The state loaded from the snapshot equals a replay of every event...
    rebuilt: Community | None = None
    for event in service.app.events.get(latest.id):
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    assert rebuilt.__dict__ == latest.__dict__
    # ...and a version below the kept snapshot loads by replaying events.
    older = service.app.repository.get(latest.id, version=SNAPSHOT_INTERVAL + 5)
    assert older.version == SNAPSHOT_INTERVAL + 5
    assert len(older.records) < len(latest.records)
