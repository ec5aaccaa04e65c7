"""Snapshots are a cache: one that does not decode is ignored, and the aggregate replayed from its events.

On PostgreSQL a writer's login may add snapshots (they are not the record), so a garbage
row must not make every write to its aggregate fail. A snapshot is used only when it
decodes, is a snapshot of a taizhang aggregate with every attribute a real one has, and
rebuilds an aggregate of its own id and version; otherwise it is skipped (eventsourcing then reads every event of the
aggregate) and reported once per process through `warn`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import EventStore

SNAPSHOT_TOPICS = ("taizhang:Community.Snapshot", "taizhang:Actors.Snapshot")


@cache
def _shape(topic: str) -> dict[str, type]:
    """The state keys of a real snapshot of this kind, with the type of each container among them."""
    from domain.actors import Actors
    from domain.community import Community

    if topic == "taizhang:Actors.Snapshot":
        fresh: Any = Actors.open(actor="x")
        state = Actors.Snapshot.take(fresh).state
    else:
        fresh = Community.establish(code="x", name="x", county="x", township="x", village="x",
                                    natural_villages=[], established_on="2026-01-01", actor="x")  # fmt: skip
        state = Community.Snapshot.take(fresh).state
    return {key: type(value) for key, value in state.items()}


def _misshapen(topic: str, state: dict[str, Any]) -> str | None:
    for key, kind in _shape(topic).items():
        if key not in state:
            return f"no {key}"
        if kind in (dict, list) and not isinstance(state[key], kind):
            return f"{key} is not a {kind.__name__}"
    return None


def _problem(stored: Any, mapper: Any) -> tuple[Any, str | None]:
    """(the snapshot, None) when it is usable, else (None, what is wrong)."""
    if stored.topic not in SNAPSHOT_TOPICS:
        return None, f"unknown topic {str(stored.topic)[:60]!r}"
    try:
        snapshot = mapper.to_domain_event(stored)
        if not isinstance(snapshot, Snapshot) or not isinstance(snapshot.state, dict):
            return None, "not a snapshot"
        misshapen = _misshapen(stored.topic, snapshot.state)
        if misshapen is not None:
            return None, misshapen
        aggregate = snapshot.mutate(None)
    except Exception as e:  # anything a garbage row can raise while decoding
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
    if (
        getattr(aggregate, "id", None) != stored.originator_id
        or getattr(aggregate, "version", None) != stored.originator_version
    ):
        return None, "its id or version differs from its row"
    return snapshot, None


class CheckedSnapshots(EventStore[UUID]):
    """The snapshot store of TaizhangApplication."""

    def __init__(self, mapper: Any, recorder: Any, warn: Callable[[], Callable[[str], None] | None]) -> None:
        super().__init__(mapper=mapper, recorder=recorder)
        self.warn = warn  # the application's note sink, looked up when needed
        self.reported: set[tuple[UUID, int]] = set()

    def get(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[Any]:
        rows = self.recorder.select_events(originator_id=originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        for stored in rows:
            snapshot, problem = _problem(stored, self.mapper)
            if snapshot is not None:
                yield snapshot
                continue
            key = (stored.originator_id, stored.originator_version)
            warn = self.warn()
            if problem is not None and key not in self.reported and warn is not None:
                self.reported.add(key)
                warn(
                    f"ignored the snapshot of aggregate {stored.originator_id} at version {stored.originator_version}: "
                    f"it does not decode ({problem}); its events were replayed instead"
                )
