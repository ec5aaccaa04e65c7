"""Who may act on the ledger: actors, their role and their scope (DESIGN §3 "Who may do what").

One `Actors` aggregate holds every grant and revocation of the store, so the
question "who could do what, when, and who said so" is answered by its events.
Same stored-format rules as the other aggregates: explicit stable topics, flat
primitive payloads. A store without this aggregate has no access control.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from domain.errors import AlreadyExists, NotActive, NotFound, RuleViolation
from domain.units import UnitRef, parse_unit

ROLES = ("admin", "clerk", "supervisor", "auditor", "projector")
# The projection worker keeps the views of the whole store and records nothing.
CITY_ONLY_ROLES = ("projector",)
ACTORS_ID = uuid5(UUID("7d1e4c2a-93b5-4f61-8a0c-5e2f9b3d6a05"), "actors")
CITY = "city"


@dataclass(frozen=True)
class Scope:
    """`city` (everything) or the unit an actor is confined to."""

    unit: UnitRef | None  # None: the whole city

    def __str__(self) -> str:
        return CITY if self.unit is None else str(self.unit)

    def covers(self, target: UnitRef | None) -> bool:
        """Whether `target` (None: the whole store) lies inside this scope.

        A community target must be located (county and township filled in) for a
        county or township scope to cover it.
        """
        if self.unit is None:
            return True
        if target is None:
            return False
        mine = self.unit
        if mine.level == "community":
            return target.level == "community" and target.community == mine.community
        if mine.level == "township":
            return target.level in ("township", "community") and (target.county, target.township) == (
                mine.county,
                mine.township,
            )
        return target.county == mine.county


def parse_scope(text: str) -> Scope:
    """`city`, `county:NAME`, `township:COUNTY/NAME` or `community:CODE`; ValueError names what is wrong."""
    if text.strip() == CITY:
        return Scope(None)
    try:
        return Scope(parse_unit(text))
    except ValueError:
        raise ValueError(
            f"expected city, county:NAME, township:COUNTY/NAME or community:CODE, got {text!r}"
        ) from None


@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    scope: Scope
    login: str | None
    granted_by: str
    revoked: bool

    def describe(self) -> str:
        return f"actor {self.name} ({self.role}, {self.scope})"


class Actors(Aggregate):
    """Every actor ever granted in the store; revoked ones stay, marked revoked."""

    TOPIC = "taizhang:Actors"

    class Event(Aggregate.Event):
        actor: str

    class Created(Event, Aggregate.Created):
        TOPIC = "taizhang:Actors.Created"

    class Opened(Created):
        TOPIC = "taizhang:Actors.Opened"

    class Granted(Event):
        TOPIC = "taizhang:Actors.Granted"
        name: str
        role: str
        scope: str
        login: str | None

        def apply(self, actors: Actors) -> None:
            actors.entries[self.name] = {
                "role": self.role,
                "scope": self.scope,
                "login": self.login,
                "granted_by": self.actor,
                "revoked": False,
            }

    class Revoked(Event):
        TOPIC = "taizhang:Actors.Revoked"
        name: str
        reason: str

        def apply(self, actors: Actors) -> None:
            actors.entries[self.name]["revoked"] = True

    class Snapshot(Aggregate.Snapshot):
        TOPIC = "taizhang:Actors.Snapshot"

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    @classmethod
    def open(cls, *, actor: str) -> Actors:
        return cls._create(cls.Opened, id=ACTORS_ID, actor=actor)

    def get(self, name: str) -> Actor | None:
        entry = self.entries.get(name)
        if entry is None:
            return None
        return Actor(
            name=name,
            role=entry["role"],
            scope=parse_scope(entry["scope"]),
            login=entry["login"],
            granted_by=entry["granted_by"],
            revoked=entry["revoked"],
        )

    def all(self) -> list[Actor]:
        return [a for a in (self.get(name) for name in sorted(self.entries)) if a is not None]

    def active_admins(self) -> list[str]:
        return sorted(n for n, e in self.entries.items() if e["role"] == "admin" and not e["revoked"])

    def grant(self, *, name: str, role: str, scope: str, login: str | None, actor: str) -> None:
        if not name.strip():
            raise RuleViolation("actor name must not be empty")
        if role not in ROLES:
            raise RuleViolation(f"unknown role {role!r}")
        if parse_scope(scope).unit is not None and role in CITY_ONLY_ROLES:
            raise RuleViolation(f"a {role} works for the whole store: its scope must be city, not {scope}")
        if name in self.entries:
            if self.entries[name]["revoked"]:
                raise AlreadyExists(f"actor {name} was revoked; an actor's name is never reused")
            raise AlreadyExists(f"actor {name} is already granted; an actor's name is never reused")
        if not self.entries and role != "admin":
            raise RuleViolation("the first actor of a store must be an admin (or nobody could add the others)")
        self.trigger_event(self.Granted, name=name, role=role, scope=scope, login=login, actor=actor)

    def revoke(self, *, name: str, reason: str, actor: str) -> None:
        entry = self.entries.get(name)
        if entry is None:
            raise NotFound(f"no actor {name}")
        if entry["revoked"]:
            raise NotActive(f"actor {name} is already revoked")
        if not reason.strip():
            raise RuleViolation("reason must not be empty")
        if entry["role"] == "admin" and self.active_admins() == [name]:
            raise RuleViolation(f"actor {name} is the last admin; add another admin first")
        self.trigger_event(self.Revoked, name=name, reason=reason, actor=actor)


register_topic(Actors.Snapshot.TOPIC, Actors.Snapshot)
