"""The funds projection: FundingLine events -> lines, movements, spends and monthly totals.

Tables (issue 15, shared by the funds reads, `audit` and the assessment's `fund_execution`):

- `funds_lines`: one row per line (department, 文号, purpose, amount, the granted unit).
- `funds_movements`: one row per movement of money at a unit, keyed by its log position and a
  sequence inside the event (a transfer makes two rows: `passed_down` at the source, `received`
  at the target, each naming the other as `counterpart`). As-of reads filter `position <= P`.
- `funds_spends` and `funds_spend_records`: every spend with its voucher and linked records,
  and when (day and log position) a red-letter entry reversed it.
- `funds_totals`: current sums per line, unit, month and kind, so the ledger of a city-year costs
  what the answer costs, not what the history costs.

Units are text (`county:X`, `township:X/Y`, `community:CODE`) with their county, township and
community columns filled in: a community is located from its Established event (or the ledger's
directory of communities, projected in the same batch before this projection runs).
All amounts are integers in fen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, MetaData, String, Table, text

from infra.runner import Event
from projections.ledger import bulk
from projections.tables import COUNTERS, by_month

metadata = MetaData()

lines = Table(
    "funds_lines",
    metadata,
    Column("line_id", String, primary_key=True),
    Column("department", String, nullable=False),
    Column("document", String, nullable=False),
    Column("purpose", String, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("unit", String, nullable=False),
    Column("county", String),
    Column("township", String),
    Column("community", String),
    Column("granted_on", String, nullable=False),
    Column("position", Integer, nullable=False),
    Index("funds_lines_department", "department", "document"),
)

movements = Table(
    "funds_movements",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("line_id", String, nullable=False),
    Column("entry_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("unit", String, nullable=False),
    Column("county", String),
    Column("township", String),
    Column("community", String),
    Column("counterpart", String),
    Column("day", String, nullable=False),
    Column("amount", Integer, nullable=False),
    Index("funds_movements_line", "line_id", "position"),
    Index("funds_movements_unit", "county", "township", "community", "position"),
)

spends = Table(
    "funds_spends",
    metadata,
    Column("spend_id", String, primary_key=True),
    Column("line_id", String, nullable=False),
    Column("community", String, nullable=False),
    Column("county", String),
    Column("township", String),
    Column("day", String, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("voucher", String, nullable=False),
    Column("purpose", String, nullable=False),
    Column("project", String),
    Column("home", String),
    Column("reversed_on", String),
    Column("position", Integer, nullable=False),
    Column("reversed_position", Integer),
    Index("funds_spends_line", "line_id", "day"),
    Index("funds_spends_community", "community", "day"),
)

spend_records = Table(
    "funds_spend_records",
    metadata,
    Column("spend_id", String, primary_key=True),
    Column("record_id", String, primary_key=True),
    sqlite_with_rowid=False,
)

totals = Table(
    "funds_totals",
    metadata,
    Column("line_id", String, primary_key=True),
    Column("unit", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("amount", Integer, nullable=False),
    # Covering on SQLite, the keys alone on PostgreSQL, where an update of the amount is then HOT
    # (projections.tables `by_month`, docs/decisions/0031).
    *by_month("funds_totals_by_month", ("month", "line_id", "unit", "kind"), ("amount",)),
    sqlite_with_rowid=False,
    info=dict(COUNTERS),
)

# On PostgreSQL a line's row policy reads its movements, and a linked record's its spend
# (infra.pgaccess): made after them and dropped before them.
lines.add_is_dependent_on(movements)
spend_records.add_is_dependent_on(spends)

PROJECTION = "funds"
TABLES = [lines, movements, spends, spend_records, totals]

TOPIC = "taizhang:FundingLine."
ALLOCATED = TOPIC + "Allocated"
TRANSFERRED = TOPIC + "Transferred"
SPENT = TOPIC + "Spent"
REVERSED = TOPIC + "Reversed"
RETURNED = TOPIC + "Returned"
ESTABLISHED = "taizhang:Community.Established"
RELEVANT = frozenset((ALLOCATED, TRANSFERRED, SPENT, REVERSED, RETURNED, ESTABLISHED))
KINDS = ("allocated", "received", "passed_down", "spent", "reversed", "returned")

Located = tuple[str | None, str | None, str | None]  # county, township, community


class FundsProjection:
    """Projects FundingLine events into the funds tables."""

    name = PROJECTION
    version = 1
    metadata = metadata

    def __init__(self) -> None:
        self._places: dict[str, tuple[str, str]] = {}  # community code -> (county, township)

    def reset(self) -> None:
        self._places.clear()

    def apply(self, conn: Connection, events: Sequence[Event]) -> None:
        batch = _Batch(conn, self._places)
        relevant = RELEVANT
        for event in events:
            if event.topic in relevant:  # a few of the log's events
                batch.apply(event)
        batch.write()


class _Batch:
    def __init__(self, conn: Connection, places: dict[str, tuple[str, str]]) -> None:
        self.conn = conn
        self.places = places
        self.lines: list[tuple[Any, ...]] = []
        self.movements: list[tuple[Any, ...]] = []
        self.spends: list[tuple[Any, ...]] = []
        self.records: list[tuple[str, str]] = []
        self.reversals: list[tuple[str, int, str]] = []  # (reversed_on, reversed_position, spend_id)
        self.totals: dict[tuple[str, str, str, str], int] = defaultdict(int)

    def locate(self, unit: str) -> Located:
        level, _, rest = unit.partition(":")
        if level == "county":
            return rest, None, None
        if level == "township":
            county, _, township = rest.partition("/")
            return county, township, None
        found = self.places.get(rest)
        if found is None:
            row = self.conn.execute(
                text("SELECT county, township FROM ledger_communities WHERE code = :c"), {"c": rest}
            ).first()
            if row is None:
                raise LookupError(f"community {rest} is not in the ledger views")
            found = self.places[rest] = (str(row[0]), str(row[1]))
        return found[0], found[1], rest

    def move(
        self, event: Event, seq: int, entry: str, kind: str, unit: str, day: str, amount: int, counterpart: str | None
    ) -> None:
        line = event.originator_id
        self.movements.append(
            (event.position, seq, line, entry, kind, unit, *self.locate(unit), counterpart, day, amount)
        )
        self.totals[(line, unit, day[:7], kind)] += amount

    def apply(self, event: Event) -> None:
        topic, p = event.topic, event.payload
        if not topic.startswith(TOPIC):
            if topic == ESTABLISHED:
                self.places[p["code"]] = (p["county"], p["township"])
            return
        line = event.originator_id
        if topic == ALLOCATED:
            unit = p["unit"]
            self.lines.append(
                (
                    line,
                    p["department"],
                    p["document"],
                    p["purpose"],
                    p["amount"],
                    unit,
                    *self.locate(unit),
                    p["on"],
                    event.position,
                )
            )
            self.move(event, 0, line, "allocated", unit, p["on"], p["amount"], None)
        elif topic == TRANSFERRED:
            source, target = p["from_unit"], p["to_unit"]
            self.move(event, 0, p["transfer_id"], "passed_down", source, p["on"], p["amount"], target)
            self.move(event, 1, p["transfer_id"], "received", target, p["on"], p["amount"], source)
        elif topic == SPENT:
            unit = p["community"]
            county, township, community = self.locate(unit)
            self.move(event, 0, p["spend_id"], "spent", unit, p["on"], p["amount"], None)
            self.spends.append(
                (p["spend_id"], line, community, county, township, p["on"], p["amount"], p["voucher"], p["purpose"],
                 p.get("project"), p.get("home"), None, event.position, None)
            )  # fmt: skip
            self.records.extend((p["spend_id"], record) for record in dict.fromkeys(p.get("records") or ()))
        elif topic == REVERSED:
            self.move(event, 0, p["spend_id"], "reversed", p["community"], p["on"], p["amount"], None)
            self.reversals.append((p["on"], event.position, p["spend_id"]))
        elif topic == RETURNED:
            self.move(event, 0, p["return_id"], "returned", p["unit"], p["on"], p["amount"], None)

    def write(self) -> None:
        conn = self.conn

        def insert(table: Table, rows: list[tuple[Any, ...]]) -> None:
            names = [c.name for c in table.columns]
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            bulk(conn, sql, rows)

        insert(lines, self.lines)
        insert(movements, self.movements)
        insert(spends, self.spends)
        insert(spend_records, self.records)
        bulk(conn, "UPDATE funds_spends SET reversed_on = ?, reversed_position = ? WHERE spend_id = ?", self.reversals)
        bulk(
            conn,
            "INSERT INTO funds_totals (line_id, unit, month, kind, amount) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (line_id, unit, month, kind) DO UPDATE SET amount = funds_totals.amount + excluded.amount",
            [(*key, amount) for key, amount in sorted(self.totals.items()) if amount],
        )
