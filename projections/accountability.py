"""The accountability projection: duties, visit plans, pairings, targets, supervision items,
debriefings and resident states — all bitemporal, so an assessment "as of T" is a query.

Every table keeps one row per known state of a thing, valid in recorded time from
`recorded_from` (inclusive) to `recorded_to` (exclusive, NULL while current) and in
log positions from `position_from` to `position_to`. These events are few beside
the services, so rows are written as each event arrives, in the runner's batch
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Column, Connection, Float, Index, Integer, MetaData, String, Table, Text, text

from infra.runner import Event

metadata = MetaData()


def _temporal(name: str, *columns: Column[Any], indexes: Sequence[Index] = ()) -> Table:
    return Table(
        name,
        metadata,
        *columns,
        Column("seq", Integer, primary_key=True),
        Column("recorded_from", String, nullable=False),
        Column("recorded_to", String),
        Column("position_from", Integer, nullable=False),
        Column("position_to", Integer),
        *indexes,
    )


officials = Table(
    "acct_officials",
    metadata,
    Column("code", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("title", String, nullable=False),
)

duties = _temporal(
    "acct_duties",
    Column("official", String, primary_key=True),
    Column("unit", String, primary_key=True),
    Column("duty", String, primary_key=True),
    Column("spell", Integer, primary_key=True),  # 1, 2, … each time the duty is taken up again
    Column("starts_on", String, nullable=False),
    Column("ends_on", String),  # exclusive: no longer answerable from this day
)

visit_plans = _temporal(
    "acct_visit_plans",
    Column("community", String, primary_key=True),
    Column("resident", String, primary_key=True),
    Column("plan", Integer, primary_key=True),  # 1, 2, … per resident
    Column("every", Integer, nullable=False),
    Column("provider", String, nullable=False),
    Column("starts_on", String, nullable=False),
    Column("ends_on", String),  # exclusive
)

pairings = _temporal(
    "acct_pairings",
    Column("community", String, primary_key=True),
    Column("provider", String, primary_key=True),
    Column("resident", String, primary_key=True),
    Column("pairing", Integer, primary_key=True),
    Column("starts_on", String, nullable=False),
    Column("ends_on", String),  # exclusive
)

targets = _temporal(
    "acct_targets",
    Column("unit", String, primary_key=True),
    Column("period", String, primary_key=True),
    Column("metric", String, primary_key=True),
    Column("kind", String, primary_key=True),  # "" for every kind
    Column("at_least", Float, nullable=False),
    Column("source", String),
)

items = _temporal(
    "acct_items",
    Column("item_id", String, primary_key=True),
    Column("unit", String, nullable=False),
    Column("item", Text, nullable=False),
    Column("due", String, nullable=False),
    Column("resolved_on", String),
    Column("note", Text),
    indexes=[Index("acct_items_unit_due", "unit", "due")],
)

debriefs = _temporal(
    "acct_debriefs",
    Column("official", String, primary_key=True),
    Column("unit", String, primary_key=True),
    Column("period", String, primary_key=True),
    Column("summary", Text, nullable=False),
    Column("filed_at", String, nullable=False),
)

resident_states = _temporal(
    "acct_resident_states",
    Column("community", String, primary_key=True),
    Column("code", String, primary_key=True),
    Column("enrolled_on", String, nullable=False),
    Column("departed_on", String),
    Column("categories", Text, nullable=False),
    indexes=[Index("acct_resident_states_current", "community", "recorded_to")],
)

KEYS: dict[str, tuple[str, ...]] = {
    "acct_duties": ("official", "unit", "duty", "spell"),
    "acct_visit_plans": ("community", "resident", "plan"),
    "acct_pairings": ("community", "provider", "resident", "pairing"),
    "acct_targets": ("unit", "period", "metric", "kind"),
    "acct_items": ("item_id",),
    "acct_debriefs": ("official", "unit", "period"),
    "acct_resident_states": ("community", "code"),
}

COMMUNITY = "taizhang:Community."
OFFICIAL = "taizhang:Official."
TARGETS = "taizhang:UnitTargets."
ITEM = "taizhang:SupervisionItem."
IGNORED = frozenset(COMMUNITY + name for name in ("ServiceRecorded", "ServiceCorrected", "ServiceVoided"))
"""Most of the log, and nothing here: skipped before any other test."""


_INSERTS: dict[tuple[str, ...], str] = {}  # (table, *columns given) -> INSERT statement


class AccountabilityProjection:
    name = "accountability"
    version = 2
    metadata = metadata

    def __init__(self) -> None:
        self._codes: dict[str, str] = {}  # community_id -> code

    def reset(self) -> None:
        self._codes.clear()

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        writer = _Writer(conn, self._codes)
        ignored = IGNORED
        for event in events:
            if event.topic not in ignored:
                writer.apply(event)
        writer.flush()


class _Writer:
    def __init__(self, conn: Connection, codes: dict[str, str]) -> None:
        self.conn = conn
        self.codes = codes
        self.placeholder = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
        # The driver's own cursor, in the caller's transaction: SQLAlchemy's per-statement work cost
        # more than these small statements (one per resident enrolled, on a rebuild).
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # Inserts waiting to be sent, one executemany per statement (a rebuild enrolls residents by
        # the thousand); sent, in order, before any other statement and at the end of the batch.
        self.pending: dict[str, list[tuple[Any, ...]]] = {}

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self.pending:
            self.flush()
        self.cursor.execute(sql, tuple(params))
        return self.cursor

    def flush(self) -> None:
        for sql, rows in self.pending.items():
            self.cursor.executemany(sql, rows)
        self.pending.clear()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    def community(self, event: Event) -> str:
        code = self.codes.get(event.originator_id)
        if code is None:
            row = self.conn.execute(
                text("SELECT code FROM ledger_communities WHERE community_id = :i"), {"i": event.originator_id}
            ).fetchone()
            if row is None:
                raise LookupError(f"community {event.originator_id} is not in the ledger views")
            code = str(row[0])
            self.codes[event.originator_id] = code
        return code

    # ---- bitemporal rows ------------------------------------------------------------------
    def current(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        where = " AND ".join(f"{k} = ?" for k in key)
        cursor = self._x(self._sql(f"SELECT * FROM {table} WHERE {where} AND recorded_to IS NULL"), tuple(key.values()))
        row = cursor.fetchone()
        return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None

    def insert(self, table: str, values: dict[str, Any], event: Event, seq: int = 1) -> None:
        shape = (table, *values)
        sql = _INSERTS.get(shape)
        if sql is None:
            columns = [*values, "seq", "recorded_from", "recorded_to", "position_from", "position_to"]
            sql = _INSERTS[shape] = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            )
        sql = self._sql(sql)
        if self.pending and sql not in self.pending:
            self.flush()  # inserts into different tables keep their order
        self.pending.setdefault(sql, []).append((*values.values(), seq, event.recorded_at, None, event.position, None))

    def replace(self, table: str, key: dict[str, Any], changes: dict[str, Any], event: Event) -> bool:
        """Close the current row of `key` and insert its successor with `changes`; False if none."""
        old = self.current(table, key)
        if old is None:
            return False
        where = " AND ".join(f"{k} = ?" for k in key)
        self._x(
            self._sql(f"UPDATE {table} SET recorded_to = ?, position_to = ? WHERE {where} AND seq = ?"),
            (event.recorded_at, event.position, *key.values(), old["seq"]),
        )
        values = {
            k: v
            for k, v in old.items()
            if k not in ("seq", "recorded_from", "recorded_to", "position_from", "position_to")
        }
        values.update(changes)
        self.insert(table, values, event, seq=old["seq"] + 1)
        return True

    def next_number(self, table: str, column: str, key: dict[str, Any]) -> int:
        where = " AND ".join(f"{k} = ?" for k in key)
        row = self._x(self._sql(f"SELECT max({column}) FROM {table} WHERE {where}"), tuple(key.values())).fetchone()
        return int(row[0] or 0) + 1 if row else 1

    # ---- events -------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        topic, p = event.topic, event.payload
        if topic.startswith(COMMUNITY):
            self.community_event(topic[len(COMMUNITY) :], p, event)
        elif topic == OFFICIAL + "Registered":
            self._x(
                self._sql("INSERT INTO acct_officials (code, name, title) VALUES (?, ?, ?)"),
                (p["code"], p["name"], p["title"]),
            )
            self._x(
                self._sql("INSERT INTO acct_official_ids (official_id, code) VALUES (?, ?)"),
                (event.originator_id, p["code"]),
            )
        elif topic.startswith(OFFICIAL):
            self.official_event(topic[len(OFFICIAL) :], p, event)
        elif topic == TARGETS + "TargetSet":
            key = {"unit": self.unit_of(event), "period": p["period"], "metric": p["metric"], "kind": p["kind"] or ""}
            changes = {"at_least": p["at_least"], "source": p["source"]}
            if not self.replace("acct_targets", key, changes, event):
                self.insert("acct_targets", {**key, **changes}, event)
        elif topic == TARGETS + "Opened":
            self._x(
                self._sql("INSERT INTO acct_unit_ids (unit_id, unit) VALUES (?, ?)"), (event.originator_id, p["unit"])
            )
        elif topic == ITEM + "Opened":
            values = {"item_id": event.originator_id, "unit": p["unit"], "item": p["item"], "due": p["due"]}
            self.insert("acct_items", {**values, "resolved_on": None, "note": None}, event)
        elif topic == ITEM + "Resolved":
            self.replace(
                "acct_items", {"item_id": event.originator_id}, {"resolved_on": p["on"], "note": p["note"]}, event
            )

    def unit_of(self, event: Event) -> str:
        row = self._x(self._sql("SELECT unit FROM acct_unit_ids WHERE unit_id = ?"), (event.originator_id,)).fetchone()
        if row is None:
            raise LookupError(f"targets {event.originator_id} were never opened")
        return str(row[0])

    def official_event(self, name: str, p: dict[str, Any], event: Event) -> None:
        code = self.official_code(event)
        if name == "DutyAssigned":
            key = {"official": code, "unit": p["unit"], "duty": p["duty"]}
            spell = self.next_number("acct_duties", "spell", key)
            self.insert("acct_duties", {**key, "spell": spell, "starts_on": p["starts_on"], "ends_on": None}, event)
        elif name == "DutyEnded":
            key = {"official": code, "unit": p["unit"], "duty": p["duty"]}
            spell = self.next_number("acct_duties", "spell", key) - 1
            self.replace("acct_duties", {**key, "spell": spell}, {"ends_on": p["on"]}, event)
        elif name == "DebriefFiled":
            values = {"official": code, "unit": p["unit"], "period": p["period"], "summary": p["summary"]}
            self.insert("acct_debriefs", {**values, "filed_at": event.recorded_at}, event)

    def official_code(self, event: Event) -> str:
        row = self._x(
            self._sql("SELECT code FROM acct_official_ids WHERE official_id = ?"), (event.originator_id,)
        ).fetchone()
        if row is not None:
            return str(row[0])
        raise LookupError(f"official {event.originator_id} is not registered in the views")

    def community_event(self, name: str, p: dict[str, Any], event: Event) -> None:
        if name == "Established":
            self.codes[event.originator_id] = p["code"]
            return
        if name not in (
            "ResidentEnrolled",
            "ResidentUpdated",
            "ResidentDeparted",
            "VisitPlanSet",
            "VisitPlanEnded",
            "PairingAdded",
            "PairingEnded",
        ):
            return
        community = self.community(event)
        if name == "ResidentEnrolled":
            values = {
                "community": community,
                "code": p["code"],
                "enrolled_on": p["enrolled_on"],
                "departed_on": None,
                "categories": ";".join(p["categories"]),
            }
            self.insert("acct_resident_states", values, event)
        elif name == "ResidentUpdated" and p["categories"] is not None:
            key = {"community": community, "code": p["code"]}
            self.replace("acct_resident_states", key, {"categories": ";".join(p["categories"])}, event)
        elif name == "ResidentDeparted":
            self.replace(
                "acct_resident_states", {"community": community, "code": p["code"]}, {"departed_on": p["on"]}, event
            )
        elif name == "VisitPlanSet":
            self.end_plan(community, p["resident"], p["starts_on"], event)
            number = self.next_number("acct_visit_plans", "plan", {"community": community, "resident": p["resident"]})
            values = {
                "community": community,
                "resident": p["resident"],
                "plan": number,
                "every": p["every"],
                "provider": p["provider"],
                "starts_on": p["starts_on"],
                "ends_on": None,
            }
            self.insert("acct_visit_plans", values, event)
        elif name == "VisitPlanEnded":
            self.end_plan(community, p["resident"], p["on"], event)
        elif name == "PairingAdded":
            key = {"community": community, "provider": p["provider"], "resident": p["resident"]}
            number = self.next_number("acct_pairings", "pairing", key)
            self.insert("acct_pairings", {**key, "pairing": number, "starts_on": p["on"], "ends_on": None}, event)
        elif name == "PairingEnded":
            key = {"community": community, "provider": p["provider"], "resident": p["resident"]}
            number = self.next_number("acct_pairings", "pairing", key) - 1
            self.replace("acct_pairings", {**key, "pairing": number}, {"ends_on": p["on"]}, event)

    def end_plan(self, community: str, resident: str, on: str, event: Event) -> None:
        """End the resident's plan in force (if any) on `on` (exclusive)."""
        row = self._x(
            self._sql(
                "SELECT plan FROM acct_visit_plans WHERE community = ? AND resident = ? "
                "AND recorded_to IS NULL AND ends_on IS NULL"
            ),
            (community, resident),
        ).fetchone()
        if row is not None:
            key = {"community": community, "resident": resident, "plan": row[0]}
            self.replace("acct_visit_plans", key, {"ends_on": on}, event)


# Small lookup tables: which aggregate id is which official / unit.
official_ids = Table(
    "acct_official_ids",
    metadata,
    Column("official_id", String, primary_key=True),
    Column("code", String, nullable=False),
)
unit_ids = Table(
    "acct_unit_ids",
    metadata,
    Column("unit_id", String, primary_key=True),
    Column("unit", String, nullable=False),
)


def day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
