"""The ledger projection: events -> directory, bitemporal revisions and monthly totals.

A batch of decoded events is turned into row changes in memory and written with a
few bulk statements, together with the tracking position, in the caller's
transaction (infra.runner). Applying the same events one at a time or in one
batch gives the same rows: that is tested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import repeat
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
    # The driver's own cursor, in the caller's transaction: rows may be lists (SQLAlchemy wants tuples).
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


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


# A revision is a list in `ledger_revisions`' column order (written as it is, no dict per row).
REVISION_COLUMNS = (
    "record_id", "seq", "community", "county", "township", "kind", "occurred_at", "occurred_utc",
    "occurred_on", "month", "minutes", "place", "note", "residents", "providers", "entered_on", "status",
    "revision", "late", "recorded_at", "recorded_by", "revised_at", "revised_by", "recorded_from",
    "recorded_to", "position_from", "position_to",
)  # fmt: skip
(
    RECORD_ID, SEQ, COMMUNITY, _COUNTY, _TOWNSHIP, KIND, OCCURRED_AT, OCCURRED_UTC, OCCURRED_ON, MONTH, MINUTES,
    PLACE, NOTE, RESIDENTS, PROVIDERS, ENTERED_ON, STATUS, REVISION, LATE, RECORDED_AT, _RECORDED_BY,
    REVISED_AT, REVISED_BY, RECORDED_FROM, RECORDED_TO, POSITION_FROM, POSITION_TO,
) = range(len(REVISION_COLUMNS))  # fmt: skip
assert REVISION_COLUMNS == tuple(c.name for c in t.revisions.columns), (
    "ledger_revisions changed: update REVISION_COLUMNS"
)
INSERT_REVISION = (
    f"INSERT INTO ledger_revisions ({', '.join(REVISION_COLUMNS)}) VALUES ({', '.join('?' * len(REVISION_COLUMNS))})"
)
SELECT_CURRENT = (
    f"SELECT {', '.join(REVISION_COLUMNS)} FROM ledger_revisions WHERE recorded_to IS NULL AND record_id IN "
)

# While a rebuild loads on SQLite, `ledger_revisions_record` (record_id, seq) is not there (it is made
# once at the end): a correction finds the revision it replaces from the record's first one, whose
# position is that of the record's ServiceRecorded event (the store's `record_state` names the
# community and the event's version, `stored_events` its position), then along `position_to` (the
# position of the event that replaced a revision is the `position_from` of its successor): primary-key
# probes only. A record not found this way (a store without `record_state`) is read by `record_id`.
CHAIN_SQLITE = (
    "WITH RECURSIVE chain(record_id, position) AS ("
    "SELECT s.record_id, e.rowid FROM record_state s JOIN stored_events e "
    "ON e.originator_id = s.community_id AND e.originator_version = s.first_version "
    "WHERE s.record_id IN ({marks}) "
    "UNION ALL SELECT c.record_id, r.position_to FROM chain c JOIN ledger_revisions r "
    "ON r.position_from = c.position WHERE r.position_to IS NOT NULL) "
    f"SELECT {', '.join('r.' + c for c in REVISION_COLUMNS)} FROM chain c JOIN ledger_revisions r "
    "ON r.position_from = c.position WHERE r.recorded_to IS NULL AND r.record_id = c.record_id"
)

Revision = list[Any]
Person = tuple[str, tuple[str, ...], str, tuple[str, ...]]
"""A resident counted by a revision: (code, categories when the revision was recorded, the same as
"a;b", the same sorted without repeats)."""


def query(conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    """A query at the driver level (`?` placeholders, adapted), rows as tuples."""
    if conn.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, tuple(params)).all()


class _Deltas:
    """Changes to the monthly totals, summed in memory and upserted once per batch."""

    def __init__(self) -> None:
        self.kind: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.resident: dict[tuple[str, str, str], int] = defaultdict(int)
        self.category_kind: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.category_resident: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.quality: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, row: Revision, people: list[Person], sign: int) -> None:
        """Count (sign=+1) or uncount (-1) a revision in its community and month."""
        community, month = row[COMMUNITY], row[MONTH]
        active = row[STATUS] == "active"
        quality = self.quality[(community, month)]
        quality[0] += sign  # every record of the month, voided ones included
        if row[LATE] or not active:
            quality[1] += sign
        if not active:
            return
        kind, minutes = row[KIND], row[MINUTES]
        totals = self.kind[(community, month, kind)]
        totals[0] += sign
        totals[1] += sign * minutes
        resident_totals, category_resident = self.resident, self.category_resident
        categories: set[str] = set()
        for resident, resident_categories, _joined, _sorted in people:
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
    version = 7
    metadata = t.metadata

    def __init__(self) -> None:
        self._communities: dict[str, tuple[str, str, str]] = {}  # community_id -> (code, county, township)
        self._people: dict[tuple[str, str], Person] = {}  # (community, resident) -> (code, categories, "a;b")
        # Set by the runner for each batch: during a rebuild the monthly totals are not kept per batch
        # but counted once at the end from the current revisions (`count_totals`).
        self.totals_deferred = False
        self._chain: bool | None = None  # whether the store has what CHAIN_SQLITE reads

    def reset(self) -> None:
        """Forget cached directory state (another worker may have moved the tables on)."""
        self._communities.clear()
        self._people.clear()

    # ---- one batch -------------------------------------------------------------------
    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        deferred = self.totals_deferred  # a rebuild is loading
        by_chain = deferred and conn.dialect.name == "sqlite" and self._chain_possible(conn)
        batch = _Batch(conn, self._communities, self._people, None if deferred else _Deltas(), by_chain)
        batch.apply_all(events)
        batch.write()

    def _chain_possible(self, conn: Connection) -> bool:
        if self._chain is None:
            found = conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('record_state', 'stored_events')"
            ).scalar()
            self._chain = found == 2
        return self._chain

    def count_totals(self, conn: Connection) -> None:
        """Replace the monthly totals with those counted from the current revisions.

        The same rows the batches' deltas keep (a total is the count over the revisions current
        now; totals brought to zero are absent), written once each, in key order.
        """
        for table in MONTH_TABLES:
            conn.exec_driver_sql(f"DELETE FROM {table}")
        current = "r.recorded_to IS NULL"
        active = f"{current} AND r.status = 'active'"
        category_kind = (
            "INSERT INTO ledger_month_category_kind (community, month, category, kind, records, minutes) "
            "SELECT r.community, r.month, g.category, r.kind, count(*), sum(r.minutes) FROM ledger_revisions r "
            "JOIN ledger_revision_categories g ON g.position_from = r.position_from "
            f"WHERE {active} GROUP BY r.community, r.month, g.category, r.kind"
        )
        quality = (
            "INSERT INTO ledger_month_quality (community, month, records, flawed) "
            "SELECT r.community, r.month, count(*), sum(CASE WHEN r.late OR r.status <> 'active' THEN 1 ELSE 0 END) "
            f"FROM ledger_revisions r WHERE {current} GROUP BY r.community, r.month"
        )
        kind = (
            "INSERT INTO ledger_month_kind (community, month, kind, records, minutes) "
            "SELECT r.community, r.month, r.kind, count(*), sum(r.minutes) "
            f"FROM ledger_revisions r WHERE {active} GROUP BY r.community, r.month, r.kind"
        )
        statements = [category_kind]
        if conn.dialect.name == "sqlite":
            # The quality and kind totals from one pass over the revisions (a few rows per month).
            statements += [
                "CREATE TEMP TABLE ledger_month_counts AS SELECT r.community, r.month, r.kind, count(*) AS n, "
                "sum(CASE WHEN r.late OR r.status <> 'active' THEN 1 ELSE 0 END) AS flawed, "
                "sum(CASE WHEN r.status = 'active' THEN 1 ELSE 0 END) AS active, "
                "sum(CASE WHEN r.status = 'active' THEN r.minutes ELSE 0 END) AS minutes "
                f"FROM ledger_revisions r WHERE {current} GROUP BY r.community, r.month, r.kind",
                "INSERT INTO ledger_month_quality (community, month, records, flawed) "
                "SELECT community, month, sum(n), sum(flawed) FROM temp.ledger_month_counts GROUP BY community, month",
                "INSERT INTO ledger_month_kind (community, month, kind, records, minutes) "
                "SELECT community, month, kind, active, minutes FROM temp.ledger_month_counts WHERE active > 0",
                "DROP TABLE temp.ledger_month_counts",
            ]
        else:
            statements += [quality, kind]
        if conn.dialect.name == "sqlite":
            # Each resident's revisions counted once per month and categories string (one join and
            # sort of every resident row); both resident totals are summed from those few rows,
            # the strings split into their categories (slugs hold no ';').
            statements += [
                "CREATE TEMP TABLE ledger_month_people AS "
                "SELECT r.community, r.month, p.resident, p.categories, count(*) AS n FROM ledger_revisions r "
                "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
                f"WHERE {active} GROUP BY r.community, r.month, p.resident, p.categories",
                "INSERT INTO ledger_month_resident (community, month, resident, records) "
                "SELECT community, month, resident, sum(n) FROM temp.ledger_month_people "
                "GROUP BY community, month, resident",
                "WITH RECURSIVE split(community, month, resident, category, rest, n) AS ("
                "SELECT community, month, resident, '', categories || ';', n FROM temp.ledger_month_people "
                "UNION ALL SELECT community, month, resident, substr(rest, 1, instr(rest, ';') - 1), "
                "substr(rest, instr(rest, ';') + 1), n FROM split WHERE rest <> '') "
                "INSERT INTO ledger_month_category_resident (community, month, category, resident, records) "
                "SELECT community, month, category, resident, sum(n) FROM split WHERE category <> '' "
                "GROUP BY community, month, category, resident",
                "DROP TABLE temp.ledger_month_people",
            ]
        else:
            # A resident's categories in this revision, as stored: "a;b".
            resident_has = "strpos(';' || p.categories || ';', ';' || g.category || ';') > 0"
            statements += [
                "INSERT INTO ledger_month_resident (community, month, resident, records) "
                "SELECT r.community, r.month, p.resident, count(*) FROM ledger_revisions r "
                "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
                f"WHERE {active} GROUP BY r.community, r.month, p.resident",
                "INSERT INTO ledger_month_category_resident (community, month, category, resident, records) "
                "SELECT r.community, r.month, g.category, p.resident, count(*) FROM ledger_revisions r "
                "JOIN ledger_revision_residents p ON p.position_from = r.position_from "
                f"JOIN ledger_revision_categories g ON g.position_from = r.position_from AND {resident_has} "
                f"WHERE {active} GROUP BY r.community, r.month, g.category, p.resident",
            ]
        for sql in statements:
            conn.exec_driver_sql(sql)


class _Batch:
    def __init__(
        self,
        conn: Connection,
        communities: dict[str, tuple[str, str, str]],
        people: dict[tuple[str, str], Person],
        deltas: _Deltas | None,
        by_chain: bool = False,
    ) -> None:
        self.conn = conn
        self.communities = communities
        self.new_communities: list[dict[str, Any]] = []
        self.new_residents: dict[tuple[str, str], dict[str, Any]] = {}
        self.resident_changes: dict[tuple[str, str], dict[str, Any]] = {}
        self.new_providers: dict[tuple[str, str], dict[str, Any]] = {}
        self.provider_changes: dict[tuple[str, str], dict[str, Any]] = {}
        self.people = people  # (community, resident) -> the resident as a revision counts them now
        # Current revision of each record touched (or fetched ahead for this batch's corrections).
        self.current: dict[str, tuple[Revision, list[Person]]] = {}
        # Revisions new in this batch, by position_from (their key), in log order.
        self.inserted: dict[int, tuple[Revision, list[Person]]] = {}
        self.closed: list[tuple[str, int, int]] = []  # (recorded_to, position_to, position_from)
        self.deltas = deltas  # None: the totals are deferred (a rebuild counts them at the end)
        self.by_chain = by_chain  # find revisions to replace along their chain (CHAIN_SQLITE)

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

    def person(self, community: str, resident: str) -> Person:
        key = (community, resident)
        found = self.people.get(key)
        if found is None:
            row = self.conn.execute(
                select(t.residents.c.categories).where(
                    and_(t.residents.c.community == community, t.residents.c.code == resident)
                )
            ).first()
            found = self.people[key] = _person(resident, _split(row[0]) if row else [])
        return found

    def fetch_current(self, record_ids: list[str]) -> None:
        """Read the current revisions (and their residents) of these records, a few queries in all."""
        conn = self.conn
        for start in range(0, len(record_ids), 500):
            chunk = record_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            if self.by_chain:
                rows = query(conn, CHAIN_SQLITE.format(marks=marks), chunk)
                if len(rows) < len(chunk):
                    found = {row[RECORD_ID] for row in rows}
                    missing = [record_id for record_id in chunk if record_id not in found]
                    rows += query(conn, SELECT_CURRENT + f"({', '.join('?' * len(missing))})", missing)
            else:
                rows = query(conn, SELECT_CURRENT + f"({marks})", chunk)
            if not rows:
                continue
            people: dict[int, list[Person]] = {}
            positions = [row[POSITION_FROM] for row in rows]
            for position, resident, categories in query(
                conn,
                "SELECT position_from, resident, categories FROM ledger_revision_residents "
                f"WHERE position_from IN ({', '.join('?' * len(positions))}) ORDER BY position_from, resident",
                positions,
            ):
                people.setdefault(position, []).append(_person(resident, _split(categories)))
            for row in rows:
                self.current[row[RECORD_ID]] = (list(row), people.get(row[POSITION_FROM], []))

    def current_revision(self, record_id: str) -> tuple[Revision, list[Person]]:
        found = self.current.get(record_id)
        if found is None:
            self.fetch_current([record_id])
            found = self.current.get(record_id)
            if found is None:
                raise LookupError(f"record {record_id} has no current revision in the ledger tables")
        return found

    # ---- events ---------------------------------------------------------------------------
    def apply_all(self, events: Sequence[Event]) -> None:
        # The revisions this batch's corrections and voids replace, fetched together up front
        # (records first recorded in this batch are already at hand).
        wanted: dict[str, None] = {}
        new: set[str] = set()
        for event in events:
            topic = event.topic
            if topic == RECORDED:
                new.add(event.payload["record_id"])
            elif topic == CORRECTED or topic == VOIDED:
                record_id = event.payload["record_id"]
                if record_id not in new:
                    wanted[record_id] = None
        if wanted:
            self.fetch_current(list(wanted))
        recorded, corrected, voided, other = self.recorded, self.corrected, self.voided, self.apply
        for event in events:
            topic = event.topic
            if topic == RECORDED:
                recorded(event)
            elif topic == CORRECTED:
                corrected(event)
            elif topic == VOIDED:
                voided(event)
            else:
                other(event)

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
            self.people[(code, p["code"])] = _person(p["code"], p["categories"])
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
                self.people[(code, p["code"])] = _person(p["code"], p["categories"])
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
        found = self.communities.get(event.originator_id)
        code, county, township = found if found is not None else self.community(event.originator_id)
        at = p["occurred_at"]
        occurred = datetime.fromisoformat(at)
        recorded_at, actor, entered_on, note = event.recorded_at, p["actor"], p["entered_on"], p["note"]
        residents = p["residents"]
        if entered_on:  # is_late, inline (once per service event)
            late = date.fromisoformat(entered_on) - occurred.date() > LATE_AFTER
        else:
            late = _recorded(recorded_at) - occurred > LATE_AFTER
        row = [
            p["record_id"], 1, code, county, township, p["kind"],
            at, occurred.astimezone(UTC).isoformat(timespec="milliseconds")[:23] + "Z",  # utc_ms, inline
            at[:10], at[:7],  # the local date and month: ISO 8601 begins with them
            p["minutes"], p["place"], None if note is None else orjson.dumps(note).decode(),
            ";".join(residents), ";".join(p["providers"]), entered_on, "active", 1, late,
            recorded_at, actor, recorded_at, actor, recorded_at, None, event.position, None,
        ]  # fmt: skip
        people = self.people
        counted = []
        for resident in residents:
            person = people.get((code, resident))
            counted.append(person if person is not None else self.person(code, resident))
        if self.deltas is None:  # _insert, inline
            self.inserted[event.position] = self.current[row[RECORD_ID]] = (row, counted)
        else:
            self._insert(row, counted)

    def corrected(self, event: Event) -> None:
        p = event.payload
        old, old_people = self.current_revision(p["record_id"])
        row = self._successor(old, event)
        changes = p["changes"]
        if "kind" in changes:
            row[KIND] = changes["kind"]
        if "minutes" in changes:
            row[MINUTES] = changes["minutes"]
        if "place" in changes:
            row[PLACE] = changes["place"]
        if "note" in changes:
            row[NOTE] = _json(changes["note"])
        if "occurred_at" in changes:
            at = changes["occurred_at"]
            row[OCCURRED_AT] = at
            row[OCCURRED_UTC] = utc_ms(datetime.fromisoformat(at))
            row[OCCURRED_ON] = at[:10]
            row[MONTH] = at[:7]
        if "residents" in changes:
            row[RESIDENTS] = ";".join(changes["residents"])
        # A revision counts its residents under their categories as known when it is recorded.
        community = row[COMMUNITY]
        people = [self.person(community, resident) for resident in _split(row[RESIDENTS])]
        if "providers" in changes:
            row[PROVIDERS] = ";".join(changes["providers"])
        row[REVISION] = old[REVISION] + 1
        row[LATE] = is_late(row[OCCURRED_AT], row[RECORDED_AT], row[ENTERED_ON])
        self._close(old, old_people, event)
        self._insert(row, people)

    def voided(self, event: Event) -> None:
        old, old_people = self.current_revision(event.payload["record_id"])
        row = self._successor(old, event)
        row[STATUS] = "voided"
        self._close(old, old_people, event)
        self._insert(row, old_people)

    @staticmethod
    def _successor(old: Revision, event: Event) -> Revision:
        row = list(old)
        row[SEQ] = old[SEQ] + 1
        row[REVISED_AT] = row[RECORDED_FROM] = event.recorded_at
        row[REVISED_BY] = event.payload["actor"]
        row[RECORDED_TO] = row[POSITION_TO] = None
        row[POSITION_FROM] = event.position
        return row

    def _insert(self, row: Revision, people: list[Person]) -> None:
        self.inserted[row[POSITION_FROM]] = self.current[row[RECORD_ID]] = (row, people)
        if self.deltas is not None:
            self.deltas.add(row, people, +1)

    def _close(self, old: Revision, people: list[Person], event: Event) -> None:
        if self.deltas is not None:
            self.deltas.add(old, people, -1)
        old[RECORDED_TO] = event.recorded_at
        old[POSITION_TO] = event.position
        if old[POSITION_FROM] not in self.inserted:  # else it is written once, already closed
            self.closed.append((event.recorded_at, event.position, old[POSITION_FROM]))

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
            bulk(conn, INSERT_REVISION, [row for row, _people in self.inserted.values()])
            residents_rows: list[tuple[int, str, str]] = []
            category_rows: list[tuple[int, str]] = []
            add_resident, add_categories = residents_rows.append, category_rows.extend
            for position, (_row, people) in self.inserted.items():
                if len(people) == 1:
                    resident, _categories, joined, categories = people[0]
                    add_resident((position, resident, joined))
                else:
                    found: set[str] = set()
                    for resident, resident_categories, joined, _sorted in people:
                        add_resident((position, resident, joined))
                        found.update(resident_categories)
                    categories = tuple(sorted(found))
                add_categories(zip(repeat(position), categories))
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


def _person(resident: str, categories: Sequence[str]) -> Person:
    return (resident, tuple(categories), ";".join(categories), tuple(sorted(set(categories))))
