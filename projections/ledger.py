"""The ledger projection: events -> directory, bitemporal revisions and monthly totals.

A batch of decoded events is turned into row changes in memory and written with a
few bulk statements, together with the tracking position, in the caller's
transaction (infra.runner). Applying the same events one at a time or in one
batch gives the same rows: that is tested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, and_, select, update

from infra.runner import Event
from projections import tables as t
from projections.filters import parse_utc, utc_ms

LATE_AFTER = timedelta(days=7)
MONTH_TABLES = (
    "ledger_month_kind",
    "ledger_month_resident",
    "ledger_month_category_kind",
    "ledger_month_category_resident",
    "ledger_month_quality",
)

TOPIC = "taizhang:Community."
ESTABLISHED = TOPIC + "Established"
ENROLLED = TOPIC + "ResidentEnrolled"
UPDATED = TOPIC + "ResidentUpdated"
DEPARTED = TOPIC + "ResidentDeparted"
REGISTERED = TOPIC + "ProviderRegistered"
RETIRED = TOPIC + "ProviderRetired"
RECORDED = TOPIC + "ServiceRecorded"
CORRECTED = TOPIC + "ServiceCorrected"
VOIDED = TOPIC + "ServiceVoided"


def is_late(occurred_at: str | datetime, recorded_at: str, entered_on: str | None) -> bool:
    """Recorded (or written in the paper ledger, when `entered_on` is given) more than 7 days after."""
    at = datetime.fromisoformat(occurred_at) if isinstance(occurred_at, str) else occurred_at
    if entered_on:
        return date.fromisoformat(entered_on) - at.date() > LATE_AFTER
    return _recorded(recorded_at) - at > LATE_AFTER


@lru_cache(maxsize=64)
def _recorded(recorded_at: str) -> datetime:
    """A recorded time parsed (a batch's events share a few: one per commit)."""
    return parse_utc(recorded_at)


def bulk(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """executemany at the driver level: `sql` uses `?` placeholders, adapted to the driver's style.

    SQLAlchemy's per-row parameter processing cost more than the inserts themselves.
    """
    if not rows:
        return
    if conn.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, list(rows))  # type: ignore[arg-type]


def insert_rows(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = [c.name for c in table.columns]
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    values = itemgetter(*columns)
    bulk(conn, sql, [values(row) for row in rows] if len(columns) > 1 else [(values(row),) for row in rows])


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _split(value: str) -> list[str]:
    return [item for item in value.split(";") if item]


class _Deltas:
    """Changes to the monthly totals, summed in memory and upserted once per batch."""

    def __init__(self) -> None:
        self.kind: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.resident: dict[tuple[str, str, str], int] = defaultdict(int)
        self.category_kind: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.category_resident: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.quality: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, row: dict[str, Any], people: list[tuple[str, list[str]]], sign: int) -> None:
        """Count (sign=+1) or uncount (-1) a revision in its community and month."""
        community, month = row["community"], row["month"]
        active = row["status"] == "active"
        quality = self.quality[(community, month)]
        quality[0] += sign  # every record of the month, voided ones included
        if row["late"] or not active:
            quality[1] += sign
        if not active:
            return
        kind, minutes = row["kind"], row["minutes"]
        totals = self.kind[(community, month, kind)]
        totals[0] += sign
        totals[1] += sign * minutes
        resident_totals, category_resident = self.resident, self.category_resident
        categories: set[str] = set()
        for resident, resident_categories in people:
            resident_totals[(community, month, resident)] += sign
            for category in resident_categories:
                category_resident[(community, month, category, resident)] += sign
            categories.update(resident_categories)
        category_kind = self.category_kind
        for category in categories:
            totals = category_kind[(community, month, category, kind)]
            totals[0] += sign
            totals[1] += sign * minutes

    def write(self, conn: Connection) -> None:
        bulk(
            conn,
            "INSERT INTO ledger_month_kind (community, month, kind, records, minutes) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (community, month, kind) DO UPDATE SET "
            "records = ledger_month_kind.records + excluded.records, "
            "minutes = ledger_month_kind.minutes + excluded.minutes",
            [(c, m, k, r, n) for (c, m, k), (r, n) in self.kind.items() if r or n],
        )
        bulk(
            conn,
            "INSERT INTO ledger_month_resident (community, month, resident, records) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (community, month, resident) DO UPDATE SET "
            "records = ledger_month_resident.records + excluded.records",
            [(c, m, p, r) for (c, m, p), r in self.resident.items() if r],
        )
        bulk(
            conn,
            "INSERT INTO ledger_month_category_kind (community, month, category, kind, records, minutes) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (community, month, category, kind) DO UPDATE SET "
            "records = ledger_month_category_kind.records + excluded.records, "
            "minutes = ledger_month_category_kind.minutes + excluded.minutes",
            [(c, m, g, k, r, n) for (c, m, g, k), (r, n) in self.category_kind.items() if r or n],
        )
        bulk(
            conn,
            "INSERT INTO ledger_month_category_resident (community, month, category, resident, records) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (community, month, category, resident) DO UPDATE SET "
            "records = ledger_month_category_resident.records + excluded.records",
            [(c, m, g, p, r) for (c, m, g, p), r in self.category_resident.items() if r],
        )
        bulk(
            conn,
            "INSERT INTO ledger_month_quality (community, month, records, flawed) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (community, month) DO UPDATE SET "
            "records = ledger_month_quality.records + excluded.records, "
            "flawed = ledger_month_quality.flawed + excluded.flawed",
            [(c, m, r, f) for (c, m), (r, f) in self.quality.items() if r or f],
        )
        bulk(
            conn,
            "DELETE FROM ledger_month_quality WHERE community = ? AND month = ? AND records = 0",
            [key for key, (r, _f) in self.quality.items() if r < 0],
        )
        # Totals brought down to zero are removed, so kept views equal rebuilt ones row for row.
        bulk(
            conn,
            "DELETE FROM ledger_month_kind WHERE community = ? AND month = ? AND kind = ? AND records = 0",
            [key for key, (r, _n) in self.kind.items() if r < 0],
        )
        bulk(
            conn,
            "DELETE FROM ledger_month_resident WHERE community = ? AND month = ? AND resident = ? AND records = 0",
            [key for key, r in self.resident.items() if r < 0],
        )
        bulk(
            conn,
            "DELETE FROM ledger_month_category_kind "
            "WHERE community = ? AND month = ? AND category = ? AND kind = ? AND records = 0",
            [key for key, (r, _n) in self.category_kind.items() if r < 0],
        )
        bulk(
            conn,
            "DELETE FROM ledger_month_category_resident "
            "WHERE community = ? AND month = ? AND category = ? AND resident = ? AND records = 0",
            [key for key, r in self.category_resident.items() if r < 0],
        )


class LedgerProjection:
    """Projects Community events into the ledger tables."""

    name = t.PROJECTION
    version = 5
    metadata = t.metadata

    def __init__(self) -> None:
        self._communities: dict[str, tuple[str, str, str]] = {}  # community_id -> (code, county, township)
        self._categories: dict[tuple[str, str], list[str]] = {}  # (community, resident) -> categories
        # Set by the runner for each batch: during a rebuild the monthly totals are not kept per batch
        # but counted once at the end from the current revisions (`count_totals`).
        self.totals_deferred = False

    def reset(self) -> None:
        """Forget cached directory state (another worker may have moved the tables on)."""
        self._communities.clear()
        self._categories.clear()

    # ---- one batch -------------------------------------------------------------------
    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        batch = _Batch(conn, self._communities, self._categories, None if self.totals_deferred else _Deltas())
        for event in events:
            batch.apply(event)
        batch.write()

    def count_totals(self, conn: Connection) -> None:
        """Replace the monthly totals with those counted from the current revisions.

        The same rows the batches' deltas keep (a total is the count over the revisions current
        now; totals brought to zero are absent), written once each, in key order.
        """
        for table in MONTH_TABLES:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        has = "instr(x, y) > 0" if conn.dialect.name == "sqlite" else "strpos(x, y) > 0"
        # A resident's categories in this revision, as stored: "a;b". Slugs hold no ';'.
        resident_has = has.replace("x", "';' || p.categories || ';'").replace("y", "';' || g.category || ';'")
        current = "r.recorded_to IS NULL"
        active = f"{current} AND r.status = 'active'"
        for sql in (
            "INSERT INTO ledger_month_quality (community, month, records, flawed) "
            "SELECT r.community, r.month, count(*), sum(CASE WHEN r.late OR r.status <> 'active' THEN 1 ELSE 0 END) "
            f"FROM ledger_revisions r WHERE {current} GROUP BY r.community, r.month",
            "INSERT INTO ledger_month_kind (community, month, kind, records, minutes) "
            "SELECT r.community, r.month, r.kind, count(*), sum(r.minutes) "
            f"FROM ledger_revisions r WHERE {active} GROUP BY r.community, r.month, r.kind",
            "INSERT INTO ledger_month_resident (community, month, resident, records) "
            "SELECT r.community, r.month, p.resident, count(*) FROM ledger_revisions r "
            "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
            f"WHERE {active} GROUP BY r.community, r.month, p.resident",
            "INSERT INTO ledger_month_category_kind (community, month, category, kind, records, minutes) "
            "SELECT r.community, r.month, g.category, r.kind, count(*), sum(r.minutes) FROM ledger_revisions r "
            "JOIN ledger_revision_categories g ON g.position_from = r.position_from "
            f"WHERE {active} GROUP BY r.community, r.month, g.category, r.kind",
            "INSERT INTO ledger_month_category_resident (community, month, category, resident, records) "
            "SELECT r.community, r.month, g.category, p.resident, count(*) FROM ledger_revisions r "
            "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
            f"JOIN ledger_revision_categories g ON g.position_from = r.position_from AND {resident_has} "
            f"WHERE {active} GROUP BY r.community, r.month, g.category, p.resident",
        ):
            conn.exec_driver_sql(sql)


class _Batch:
    def __init__(
        self,
        conn: Connection,
        communities: dict[str, tuple[str, str, str]],
        categories: dict[tuple[str, str], list[str]],
        deltas: _Deltas | None,
    ) -> None:
        self.conn = conn
        self.communities = communities
        self.new_communities: list[dict[str, Any]] = []
        self.new_residents: dict[tuple[str, str], dict[str, Any]] = {}
        self.resident_changes: dict[tuple[str, str], dict[str, Any]] = {}
        self.new_providers: dict[tuple[str, str], dict[str, Any]] = {}
        self.provider_changes: dict[tuple[str, str], dict[str, Any]] = {}
        self.categories = categories
        # Current revision of each record touched: (row, people), and whether it is new in this batch.
        self.current: dict[str, tuple[dict[str, Any], list[tuple[str, list[str]]]]] = {}
        # Revisions new in this batch, by position_from (their key), in log order.
        self.inserted: dict[int, tuple[dict[str, Any], list[tuple[str, list[str]]]]] = {}
        self.closed: list[tuple[str, int, int]] = []  # (recorded_to, position_to, position_from)
        self.deltas = deltas  # None: the totals are deferred (a rebuild counts them at the end)

    # ---- lookups -------------------------------------------------------------------------
    def community(self, community_id: str) -> tuple[str, str, str]:
        found = self.communities.get(community_id)
        if found is None:
            row = self.conn.execute(
                select(t.communities.c.code, t.communities.c.county, t.communities.c.township).where(
                    t.communities.c.community_id == community_id
                )
            ).first()
            if row is None:
                raise LookupError(f"community {community_id} is not in the ledger tables")
            found = (row[0], row[1], row[2])
            self.communities[community_id] = found
        return found

    def resident_categories(self, community: str, resident: str) -> list[str]:
        key = (community, resident)
        if key not in self.categories:
            row = self.conn.execute(
                select(t.residents.c.categories).where(
                    and_(t.residents.c.community == community, t.residents.c.code == resident)
                )
            ).first()
            self.categories[key] = _split(row[0]) if row else []
        return self.categories[key]

    def current_revision(self, record_id: str) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
        if record_id in self.current:
            return self.current[record_id]
        row = (
            self.conn.execute(
                select(t.revisions).where(
                    and_(t.revisions.c.record_id == record_id, t.revisions.c.recorded_to.is_(None))
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise LookupError(f"record {record_id} has no current revision in the ledger tables")
        people = [
            (r[0], _split(r[1]))
            for r in self.conn.execute(
                select(t.revision_residents.c.resident, t.revision_residents.c.categories).where(
                    t.revision_residents.c.position_from == row["position_from"]
                )
            )
        ]
        found = (dict(row), people)
        self.current[record_id] = found
        return found

    # ---- events ---------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        p = event.payload
        topic = event.topic
        if topic == RECORDED:
            self.recorded(event)
        elif topic == CORRECTED:
            self.corrected(event)
        elif topic == VOIDED:
            self.voided(event)
        elif topic == ESTABLISHED:
            self.communities[event.originator_id] = (p["code"], p["county"], p["township"])
            self.new_communities.append(
                {
                    "code": p["code"],
                    "community_id": event.originator_id,
                    "name": p["name"],
                    "county": p["county"],
                    "township": p["township"],
                    "village": p["village"],
                    "natural_villages": ";".join(p["natural_villages"]),
                    "established_on": p["established_on"],
                    "established_position": event.position,
                    "established_at": event.recorded_at,
                }
            )
        elif topic == ENROLLED:
            code = self.community(event.originator_id)[0]
            self.categories[(code, p["code"])] = list(p["categories"])
            self.new_residents[(code, p["code"])] = {
                "community": code,
                "code": p["code"],
                "name": _json(p["name"]),
                "birth_date": _json(p["birth_date"]),
                "gender": p["gender"],
                "categories": ";".join(p["categories"]),
                "grid": p["grid"],
                "household": p["household"],
                "enrolled_on": p["enrolled_on"],
                "departed_on": None,
                "departure_reason": None,
            }
        elif topic == UPDATED:
            code = self.community(event.originator_id)[0]
            change: dict[str, Any] = {}
            if p["categories"] is not None:
                change["categories"] = ";".join(p["categories"])
                self.categories[(code, p["code"])] = list(p["categories"])
            if p["grid"] is not None:
                change["grid"] = p["grid"]
            if p["household"] is not None:
                change["household"] = p["household"]
            self._change(self.new_residents, self.resident_changes, (code, p["code"]), change)
        elif topic == DEPARTED:
            code = self.community(event.originator_id)[0]
            change = {"departed_on": p["on"], "departure_reason": p["reason"]}
            self._change(self.new_residents, self.resident_changes, (code, p["code"]), change)
        elif topic == REGISTERED:
            code = self.community(event.originator_id)[0]
            self.new_providers[(code, p["code"])] = {
                "community": code,
                "code": p["code"],
                "name": p["name"],
                "role": p["role"],
                "team": p["team"],
                "registered_on": p["registered_on"],
                "retired_on": None,
            }
        elif topic == RETIRED:
            code = self.community(event.originator_id)[0]
            self._change(self.new_providers, self.provider_changes, (code, p["code"]), {"retired_on": p["on"]})

    @staticmethod
    def _change(
        new: dict[tuple[str, str], dict[str, Any]],
        changes: dict[tuple[str, str], dict[str, Any]],
        key: tuple[str, str],
        change: dict[str, Any],
    ) -> None:
        if key in new:
            new[key].update(change)
        else:
            changes.setdefault(key, {}).update(change)

    def recorded(self, event: Event) -> None:
        p = event.payload
        code, county, township = self.community(event.originator_id)
        occurred = datetime.fromisoformat(p["occurred_at"])
        row = {
            "record_id": p["record_id"],
            "seq": 1,
            "community": code,
            "county": county,
            "township": township,
            "kind": p["kind"],
            "occurred_at": p["occurred_at"],
            "occurred_utc": utc_ms(occurred),
            "occurred_on": p["occurred_at"][:10],  # the local date: ISO 8601 begins with it
            "month": p["occurred_at"][:7],
            "minutes": p["minutes"],
            "place": p["place"],
            "note": _json(p["note"]),
            "residents": ";".join(p["residents"]),
            "providers": ";".join(p["providers"]),
            "entered_on": p["entered_on"],
            "status": "active",
            "revision": 1,
            "late": is_late(occurred, event.recorded_at, p["entered_on"]),
            "recorded_at": event.recorded_at,
            "recorded_by": p["actor"],
            "revised_at": event.recorded_at,
            "revised_by": p["actor"],
            "recorded_from": event.recorded_at,
            "recorded_to": None,
            "position_from": event.position,
            "position_to": None,
        }
        people = [(resident, list(self.resident_categories(code, resident))) for resident in p["residents"]]
        self._insert(row, people)

    def corrected(self, event: Event) -> None:
        p = event.payload
        old, old_people = self.current_revision(p["record_id"])
        row = self._successor(old, event)
        changes = p["changes"]
        for field in ("kind", "minutes", "place", "note"):
            if field in changes:
                row[field] = _json(changes[field]) if field == "note" else changes[field]
        if "occurred_at" in changes:
            at = changes["occurred_at"]
            row["occurred_at"] = at
            row["occurred_utc"] = utc_ms(datetime.fromisoformat(at))
            row["occurred_on"] = at[:10]
            row["month"] = at[:7]
        if "residents" in changes:
            row["residents"] = ";".join(changes["residents"])
        # A revision counts its residents under their categories as known when it is recorded.
        people = [
            (resident, list(self.resident_categories(row["community"], resident)))
            for resident in _split(row["residents"])
        ]
        if "providers" in changes:
            row["providers"] = ";".join(changes["providers"])
        row["revision"] = old["revision"] + 1
        row["late"] = is_late(row["occurred_at"], row["recorded_at"], row["entered_on"])
        self._close(old, old_people, event)
        self._insert(row, people)

    def voided(self, event: Event) -> None:
        old, old_people = self.current_revision(event.payload["record_id"])
        row = self._successor(old, event)
        row["status"] = "voided"
        self._close(old, old_people, event)
        self._insert(row, old_people)

    @staticmethod
    def _successor(old: dict[str, Any], event: Event) -> dict[str, Any]:
        row = dict(old)
        row.update(
            seq=old["seq"] + 1,
            revised_at=event.recorded_at,
            revised_by=event.payload["actor"],
            recorded_from=event.recorded_at,
            recorded_to=None,
            position_from=event.position,
            position_to=None,
        )
        return row

    def _insert(self, row: dict[str, Any], people: list[tuple[str, list[str]]]) -> None:
        self.inserted[row["position_from"]] = (row, people)
        self.current[row["record_id"]] = (row, people)
        if self.deltas is not None:
            self.deltas.add(row, people, +1)

    def _close(self, old: dict[str, Any], people: list[tuple[str, list[str]]], event: Event) -> None:
        if self.deltas is not None:
            self.deltas.add(old, people, -1)
        old["recorded_to"] = event.recorded_at
        old["position_to"] = event.position
        if old["position_from"] not in self.inserted:  # else it is written once, already closed
            self.closed.append((event.recorded_at, event.position, old["position_from"]))

    # ---- writing ----------------------------------------------------------------------------
    def write(self) -> None:
        conn = self.conn
        insert_rows(conn, t.communities, self.new_communities)
        insert_rows(conn, t.residents, list(self.new_residents.values()))
        self._apply_changes(t.residents, self.resident_changes)
        insert_rows(conn, t.providers, list(self.new_providers.values()))
        self._apply_changes(t.providers, self.provider_changes)
        bulk(
            conn,
            "UPDATE ledger_revisions SET recorded_to = ?, position_to = ? WHERE position_from = ?",
            self.closed,
        )
        if self.inserted:
            insert_rows(conn, t.revisions, [row for row, _people in self.inserted.values()])
            residents_rows: list[tuple[int, str, str]] = []
            category_rows: list[tuple[int, str]] = []
            for position, (_row, people) in self.inserted.items():
                categories: set[str] = set()
                for resident, resident_categories in people:
                    residents_rows.append((position, resident, ";".join(resident_categories)))
                    categories.update(resident_categories)
                category_rows.extend((position, category) for category in sorted(categories))
            bulk(
                conn,
                "INSERT INTO ledger_revision_residents (position_from, resident, categories) VALUES (?, ?, ?)",
                residents_rows,
            )
            bulk(
                conn,
                "INSERT INTO ledger_revision_categories (position_from, category) VALUES (?, ?)",
                category_rows,
            )
        if self.deltas is not None:
            self.deltas.write(conn)

    def _apply_changes(self, table: Any, changes: dict[tuple[str, str], dict[str, Any]]) -> None:
        for (community, code), change in changes.items():
            self.conn.execute(
                update(table).where(and_(table.c.community == community, table.c.code == code)).values(**change)
            )
