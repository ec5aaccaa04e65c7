"""What a ledger query asks for: unit, dates, kinds, category, and which moment of history.

Pure data, no database: the CLI builds these before it touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any


def utc_ms(moment: datetime) -> str:
    """An aware datetime as fixed-width UTC text with milliseconds: 2026-03-05T01:30:00.000Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:23] + "Z"  # strftime took twice as long


def parse_utc(text_value: str) -> datetime:
    """Fixed-width UTC text (`…Z`), or ISO 8601 with an offset, as an aware datetime."""
    return datetime.fromisoformat(text_value.replace("Z", "+00:00"))


def local_iso(text_value: str, tz: tzinfo) -> str:
    """A recorded time as people read it: ISO 8601 in the store's zone, with milliseconds."""
    return parse_utc(text_value).astimezone(tz).isoformat(timespec="milliseconds")


class UnknownUnit(LookupError):
    """A unit filter that names nothing in the ledger."""


@dataclass(frozen=True)
class Unit:
    """A filter: one community, one township of a county, or one county."""

    level: str  # "community" | "township" | "county"
    county: str | None = None
    township: str | None = None
    community: str | None = None

    def where(self, alias: str = "c") -> tuple[str, dict[str, Any]]:
        if self.level == "community":
            return f"{alias}.code = :u_community", {"u_community": self.community}
        if self.level == "township":
            return (
                f"{alias}.county = :u_county AND {alias}.township = :u_township",
                {"u_county": self.county, "u_township": self.township},
            )
        return f"{alias}.county = :u_county", {"u_county": self.county}

    def describe(self) -> str:
        if self.level == "community":
            return f"community {self.community}"
        if self.level == "township":
            return f"township {self.county}/{self.township}"
        return f"county {self.county}"


@dataclass(frozen=True)
class Moment:
    """Which state of the ledger: current, as of a recorded time, or at a log position."""

    as_of: str | None = None  # fixed-width UTC text
    position: int | None = None

    def where(self, alias: str = "r") -> tuple[str, dict[str, Any]]:
        if self.as_of is not None:
            return (
                f"{alias}.recorded_from <= :m_as_of AND ({alias}.recorded_to IS NULL OR {alias}.recorded_to > :m_as_of)",
                {"m_as_of": self.as_of},
            )
        if self.position is not None:
            return (
                f"{alias}.position_from <= :m_pos AND ({alias}.position_to IS NULL OR {alias}.position_to > :m_pos)",
                {"m_pos": self.position},
            )
        return f"{alias}.recorded_to IS NULL", {}

    @property
    def current(self) -> bool:
        return self.as_of is None and self.position is None


@dataclass(frozen=True)
class Filters:
    unit: Unit | None = None
    date_from: date | None = None
    date_to: date | None = None
    kinds: tuple[str, ...] = ()
    category: str | None = None
    moment: Moment = field(default_factory=Moment)


ENTRY_FIELDS = [
    "record_id",
    "community",
    "community_name",
    "county",
    "township",
    "kind",
    "residents",
    "providers",
    "occurred_at",
    "minutes",
    "place",
    "note",
    "status",
    "revision",
    "late",
    "recorded_at",
    "recorded_by",
    "revised_at",
    "revised_by",
]


LEVEL_KEYS = {
    "county": ("county",),
    "township": ("county", "township"),
    "community": ("county", "township", "community"),
}


