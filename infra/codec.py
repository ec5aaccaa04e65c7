"""The stored format: orjson payloads through a lean mapper.

Payloads are flat primitives (see domain.community); the only non-primitive an
event carries is eventsourcing's own `timestamp`, which goes out as ISO text and
comes back as an aware datetime. Snapshots round-trip exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

_AGGREGATE_DATETIMES = ("_created_on", "_modified_on")


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class OrjsonMapper(Mapper[UUID]):
    """Maps domain events to stored events and back, without the JSON transcoding registry."""

    def __init__(self) -> None:
        super().__init__(transcoder=OrjsonTranscoder())

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(domain_event.__dict__)
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=orjson.dumps(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        try:
            state: dict[str, Any] = orjson.loads(stored_event.state)
        except orjson.JSONDecodeError as e:
            msg = (
                f"cannot decode stored event {stored_event.originator_id} "
                f"v{stored_event.originator_version} ({stored_event.topic}): {e}"
            )
            raise MapperDeserialisationError(msg) from e
        timestamp = state.get("timestamp")
        if isinstance(timestamp, str):
            state["timestamp"] = datetime.fromisoformat(timestamp)
        snapshot_state = state.get("state")
        if isinstance(snapshot_state, dict):
            # A snapshot carries the aggregate's own datetimes as ISO text.
            for name in _AGGREGATE_DATETIMES:
                if isinstance(snapshot_state.get(name), str):
                    snapshot_state[name] = datetime.fromisoformat(snapshot_state[name])
        originator_id = stored_event.originator_id
        state["originator_id"] = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event


def stored_event(
    event_class: type[Any], originator_id: UUID, originator_version: int, timestamp: datetime, fields: dict[str, Any]
) -> StoredEvent:
    """The stored event that `OrjsonMapper.to_stored_event` makes of `event_class(originator_id=…,
    originator_version=…, timestamp=…, **fields)`, without the event object (bulk imports):
    `fields` in the event's field order, the very same bytes (tested)."""
    state = {"timestamp": timestamp, **fields}
    class_version = getattr(event_class, "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    return StoredEvent(
        originator_id=originator_id,
        originator_version=originator_version,
        topic=get_topic(event_class),
        state=orjson.dumps(state),
    )


def decode_payload(state: bytes) -> dict[str, Any]:
    """A stored payload as a plain dict, for projectors that need no domain objects."""
    return orjson.loads(state)
