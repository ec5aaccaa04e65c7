"""The views' counters on PostgreSQL: an update of them is HOT (projections.tables `by_month`).

Their index by month holds the keys alone on PostgreSQL (covering, with the counters, on SQLite),
and their pages keep room for updates (COUNTER_FILLFACTOR). An update that changes only the counters
then writes no index entry, and its old version is pruned from the page without a vacuum; with the
counters in the index, every catch-up batch left a dead version of each month row it touched and a
new entry in both indexes (the totals took ~4× their live size after a 100,000-row import).
Views made before are reshaped by the next `ensure_tables`, with their totals unchanged. The funds
views' totals (`funds_totals`, the amount per line, unit, month and kind) are built the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from commands.app import LedgerService
from commands.views import Views
from infra.store import parse_url
from projections.funds import totals as funds_totals
from projections.tables import COUNTER_FILLFACTOR, MONTH_TABLES
from tests import helpers
from tests.conftest import fresh_store_url

COUNTERS = {"records", "minutes", "flawed", "amount"}
TABLES = [*MONTH_TABLES, funds_totals]


@pytest.fixture
def pg_service(tmp_path: Path, key_file: Path, request: pytest.FixtureRequest) -> Iterator[LedgerService]:
    with fresh_store_url("postgres", tmp_path / "unused.db", request) as url:
        service, _ = LedgerService.create(parse_url(url), key_file, None)
        try:
            yield service
        finally:
            service.close()


def _with_totals(service: LedgerService) -> None:
    helpers.small_community(service, "M")  # R1 left_behind_elderly, R2 left_behind_child; P1, P2
    for day, residents in ((3, ["R1"]), (4, ["R1", "R2"]), (20, ["R2"])):
        helpers.record(service, "M", None, residents=residents, occurred_at=f"2026-07-{day:02d} 09:30")
    views = Views(service)
    try:
        views.prepare()
        views.runner.catch_up()  # PostgreSQL: no worker runs here
    finally:
        views.close()
    if service.store.backend == "postgres":
        with psycopg.connect(service.store.url) as conn:  # a funds total to update (no funds are written here)
            conn.execute(
                "INSERT INTO funds_totals (line_id, unit, month, kind, amount) VALUES ('L1', 'M', '2026-07', 'spent', 500)"
            )


def _shape(url: str) -> dict[str, Any]:
    """Each month table's fillfactor, and its indexes with their columns."""
    with psycopg.connect(url) as conn:
        out: dict[str, Any] = {}
        for table in TABLES:
            options = conn.execute("SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (table.name,)).fetchone()
            indexes = conn.execute(
                "SELECT i.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass GROUP BY i.relname",
                (table.name,),
            ).fetchall()
            out[table.name] = {"options": (options or [None])[0] or [], "indexes": dict(indexes)}
        return out


def _hot_updates(url: str) -> dict[str, tuple[int, int]]:
    """For each month table: one update of the counters of one row, in a transaction rolled back, and
    how many of this transaction's updates were HOT (updated, hot)."""
    found: dict[str, tuple[int, int]] = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            counters = [c.name for c in table.columns if c.name in COUNTERS]
            sets = ", ".join(f"{c} = {c} + 1" for c in counters)
            conn.execute(f"UPDATE {table.name} SET {sets} WHERE ctid = (SELECT min(ctid) FROM {table.name})")
            updated, hot = conn.execute(
                "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
                (table.name, table.name),
            ).fetchone()  # type: ignore[misc]
            found[table.name] = (int(updated), int(hot))
        conn.rollback()
    return found


def _totals(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {t.name: conn.execute(f"SELECT * FROM {t.name} ORDER BY 1, 2, 3, 4").fetchall() for t in TABLES}


def test_an_update_of_the_monthly_counters_is_hot_on_postgresql(pg_service: LedgerService) -> None:
    _with_totals(pg_service)
    url = pg_service.store.url
    shape = _shape(url)
    for table, found in shape.items():
        assert f"fillfactor={COUNTER_FILLFACTOR}" in found["options"], table
        assert f"{table}_by_month_keys" in found["indexes"], table
        for index, columns in found["indexes"].items():
            assert not COUNTERS & set(columns), f"{index} holds a counter: {columns}"
    assert all(rows for rows in _totals(url).values())  # every table has a row to update
    assert _hot_updates(url) == {t.name: (1, 1) for t in TABLES}


def test_views_made_before_are_reshaped_and_keep_their_totals(pg_service: LedgerService) -> None:
    _with_totals(pg_service)
    url = pg_service.store.url
    before = _totals(url)
    with psycopg.connect(url, autocommit=True) as conn:  # the views as the previous version made them
        for table in TABLES:
            keys = [c.name for c in table.indexes if c.name.endswith("_keys")][0]
            covering = next(i for i in table.indexes if i.info.get("only_on") == "sqlite")
            conn.execute(f"DROP INDEX {keys}")
            conn.execute(
                f"CREATE INDEX {covering.name} ON {table.name} ({', '.join(c.name for c in covering.columns)})"
            )
            conn.execute(f"ALTER TABLE {table.name} RESET (fillfactor)")
    assert all(not found["options"] for found in _shape(url).values())
    assert _hot_updates(url) == {t.name: (1, 0) for t in TABLES}  # what the old shape did

    views = Views(pg_service)
    try:
        assert not views.runner.in_place()
        views.prepare()
        assert views.runner.in_place()
    finally:
        views.close()
    for table, found in _shape(url).items():
        assert f"fillfactor={COUNTER_FILLFACTOR}" in found["options"], table
        assert set(found["indexes"]) == {f"{table}_pkey", f"{table}_by_month_keys"}, found["indexes"]
    assert _totals(url) == before
    assert _hot_updates(url) == {t.name: (1, 1) for t in TABLES}


def test_sqlite_keeps_its_covering_indexes(sqlite_url: str, key_file: Path) -> None:
    service, _ = LedgerService.create(parse_url(sqlite_url), key_file, None)
    try:
        _with_totals(service)
        views = Views(service)
        try:
            assert views.runner.in_place()  # the PostgreSQL-only indexes are not asked for here
        finally:
            views.close()
    finally:
        service.close()
    import sqlite3

    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        for table in TABLES:
            names = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table.name,)
                )
            }
            assert f"{table.name}_by_month" in names and f"{table.name}_by_month_keys" not in names, names
            columns = [r[2] for r in conn.execute(f"PRAGMA index_info({table.name}_by_month)")]
            assert COUNTERS & set(columns), columns  # covering: a summary reads no table row
    finally:
        conn.close()
