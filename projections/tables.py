"""Read-model tables (SQLAlchemy Core). Rebuilt from the events at will; never the source of truth.

Times are fixed-width UTC text (`2026-03-05T01:30:00.000Z`), comparable as text on
both SQLite and PostgreSQL; local dates are `YYYY-MM-DD` text, months `YYYY-MM`.

The ledger is bitemporal: `ledger_revisions` keeps one row per known state of a
record, valid in recorded time from `recorded_from` (inclusive) to `recorded_to`
(exclusive; NULL while current), and in log positions from `position_from` to
`position_to`. "As of T" is a query over it, not a replay. The `ledger_month_*`
tables keep current totals per community and month, so a summary costs what the
answer costs, not what the history costs.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text, text

metadata = MetaData()

communities = Table(
    "ledger_communities",
    metadata,
    Column("code", String, primary_key=True),
    Column("community_id", String, nullable=False, unique=True),
    Column("name", String, nullable=False),
    Column("county", String, nullable=False),
    Column("township", String, nullable=False),
    Column("village", String, nullable=False),
    Column("natural_villages", Text, nullable=False),
    Column("established_on", String, nullable=False),
    Column("established_position", Integer, nullable=False),  # when the store learnt of it, for "as of"
    Column("established_at", String, nullable=False),
)

residents = Table(
    "ledger_residents",
    metadata,
    Column("community", String, primary_key=True),
    Column("code", String, primary_key=True),
    Column("name", Text, nullable=False),  # encrypted envelope (JSON)
    Column("birth_date", Text),  # encrypted envelope (JSON)
    Column("gender", String),
    Column("categories", Text, nullable=False),  # "cat1;cat2"
    Column("grid", String),
    Column("household", String),
    Column("enrolled_on", String, nullable=False),
    Column("departed_on", String),
    Column("departure_reason", String),
)

providers = Table(
    "ledger_providers",
    metadata,
    Column("community", String, primary_key=True),
    Column("code", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("role", String, nullable=False),
    Column("team", String),
    Column("registered_on", String, nullable=False),
    Column("retired_on", String),
)

revisions = Table(
    "ledger_revisions",
    metadata,
    Column("record_id", String, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("community", String, nullable=False),
    Column("county", String, nullable=False),
    Column("township", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("occurred_at", String, nullable=False),  # local ISO 8601 with offset
    Column("occurred_utc", String, nullable=False),  # UTC text, for ordering
    Column("occurred_on", String, nullable=False),  # local date
    Column("month", String, nullable=False),
    Column("minutes", Integer, nullable=False),
    Column("place", String),
    Column("note", Text),  # encrypted envelope (JSON)
    Column("residents", Text, nullable=False),  # "R1;R2"
    Column("providers", Text, nullable=False),
    Column("entered_on", String),
    Column("status", String, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("recorded_at", String, nullable=False),
    Column("recorded_by", String, nullable=False),
    Column("revised_at", String, nullable=False),
    Column("revised_by", String, nullable=False),
    Column("recorded_from", String, nullable=False),
    Column("recorded_to", String),
    # The log position of the event that made this revision: unique and increasing with the log,
    # so it keys the revision (on SQLite the rowid itself) and its child rows, and a rebuild
    # appends to their B-trees instead of writing into them at random places.
    Column("position_from", Integer, primary_key=True, autoincrement=False),
    Column("position_to", Integer),
    # A record's revisions, for the projector's lookups and corrections. A secondary index, not a
    # constraint: its keys are random UUIDs, so it is made once, sorted, at the end of a rebuild
    # (written during a replay it dirtied a random page per revision in every batch). While a
    # SQLite rebuild loads, the projector finds a record's revisions without it (`projections.
    # ledger`, `CHAIN_SQLITE`); on PostgreSQL a rebuild keeps it.
    Index("ledger_revisions_record", "record_id", "seq", unique=True, info={"rebuild_keeps_on": ("postgres",)}),
    Index(
        "ledger_revisions_current_community",
        "community",
        "occurred_on",
        sqlite_where=text("recorded_to IS NULL"),
        postgresql_where=text("recorded_to IS NULL"),
    ),
    Index(
        "ledger_revisions_current_township",
        "county",
        "township",
        "occurred_on",
        sqlite_where=text("recorded_to IS NULL"),
        postgresql_where=text("recorded_to IS NULL"),
    ),
    Index(  # the 台账 in its own order (occurred, record) without a sort: the web's unfiltered pages
        "ledger_revisions_current_time",
        "occurred_utc",
        "record_id",
        sqlite_where=text("recorded_to IS NULL"),
        postgresql_where=text("recorded_to IS NULL"),
    ),
    Index("ledger_revisions_community_time", "community", "occurred_on", "recorded_from"),
    Index("ledger_revisions_township_time", "county", "township", "occurred_on", "recorded_from"),
)

# A revision's child rows hang off its `position_from` (see ledger_revisions). On SQLite they are
# WITHOUT ROWID tables: one B-tree each, in key order, appended to as the log is replayed.
revision_residents = Table(
    "ledger_revision_residents",
    metadata,
    Column("position_from", Integer, primary_key=True, autoincrement=False),
    Column("resident", String, primary_key=True),
    Column("categories", Text, nullable=False),  # the resident's categories when this revision was recorded
    sqlite_with_rowid=False,
)

revision_categories = Table(
    "ledger_revision_categories",
    metadata,
    Column("position_from", Integer, primary_key=True, autoincrement=False),
    Column("category", String, primary_key=True),
    sqlite_with_rowid=False,
)

# The monthly totals are small rows that are nearly all key: on SQLite they are WITHOUT ROWID tables
# (one B-tree each instead of a table and its primary-key index).
#
# Summaries select months across all communities, by an index led by the month. On SQLite it covers
# the counters too (a summary reads no table row; SQLite updates a row in place). On PostgreSQL it
# holds the keys alone and the tables leave room on each page (COUNTER_FILLFACTOR, which the runner
# sets from the table's info): an update that changes only the counters is then HOT — no index entry
# is written, and the row's old versions are pruned from its page without a vacuum. With the
# counters in the index every update wrote new entries in both indexes and left a dead version
# behind: after the views caught up with a 100,000-row import the totals took ~4× their live size
# (docs/decisions/0031). The funds views' totals are built the same way (projections.funds).
COUNTER_FILLFACTOR = 70
"""PostgreSQL: tables of counters updated in place are filled to this percentage, the rest left for updates."""
COUNTERS = {"pg_fillfactor": COUNTER_FILLFACTOR}
"""The info of a table whose counters are updated in place: the runner sets its fill factor on PostgreSQL."""


def by_month(name: str, keys: tuple[str, ...], counters: tuple[str, ...]) -> tuple[Index, Index]:
    """A table of counters' index by month: covering on SQLite, the keys alone on PostgreSQL (`*_keys`)."""
    covering = Index(name, *keys, *counters, info={"only_on": "sqlite"}).ddl_if(dialect="sqlite")
    keyed = Index(f"{name}_keys", *keys, info={"only_on": "postgres"}).ddl_if(dialect="postgresql")
    return covering, keyed


month_kind = Table(
    "ledger_month_kind",
    metadata,
    Column("community", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("records", Integer, nullable=False),
    Column("minutes", Integer, nullable=False),
    *by_month("ledger_month_kind_by_month", ("month", "community", "kind"), ("records", "minutes")),
    sqlite_with_rowid=False,
    info=dict(COUNTERS),
)

month_resident = Table(
    "ledger_month_resident",
    metadata,
    Column("community", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("resident", String, primary_key=True),
    Column("records", Integer, nullable=False),
    *by_month("ledger_month_resident_by_month", ("month", "community", "resident"), ("records",)),
    sqlite_with_rowid=False,
    info=dict(COUNTERS),
)

month_category_kind = Table(
    "ledger_month_category_kind",
    metadata,
    Column("community", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("category", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("records", Integer, nullable=False),
    Column("minutes", Integer, nullable=False),
    *by_month(
        "ledger_month_category_kind_by_month", ("category", "month", "community", "kind"), ("records", "minutes")
    ),
    sqlite_with_rowid=False,
    info=dict(COUNTERS),
)

month_category_resident = Table(
    "ledger_month_category_resident",
    metadata,
    Column("community", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("category", String, primary_key=True),
    Column("resident", String, primary_key=True),
    Column("records", Integer, nullable=False),
    *by_month("ledger_month_category_resident_by_month", ("category", "month", "community", "resident"), ("records",)),
    sqlite_with_rowid=False,
    info=dict(COUNTERS),
)

month_quality = Table(
    "ledger_month_quality",
    metadata,
    Column("community", String, primary_key=True),
    Column("month", String, primary_key=True),
    Column("records", Integer, nullable=False),  # records that occurred in the month, voided included
    Column("flawed", Integer, nullable=False),  # of which entered late or voided
    *by_month("ledger_month_quality_by_month", ("month", "community"), ("records", "flawed")),
    sqlite_with_rowid=False,
    info=dict(COUNTERS),
)

MONTH_TABLES = [month_kind, month_resident, month_category_kind, month_category_resident, month_quality]

PROJECTION = "ledger"
"""The one projection name in the tracking table: all ledger tables move together."""

TABLES = [
    communities,
    residents,
    providers,
    revisions,
    revision_residents,
    revision_categories,
    month_kind,
    month_resident,
    month_category_kind,
    month_category_resident,
    month_quality,
]
