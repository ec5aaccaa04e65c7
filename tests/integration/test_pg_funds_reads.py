"""The funds views on PostgreSQL, read from real logins: each sees the units inside its scope.

Reuses the store of tests/integration/test_pg_reads.py (three communities in two counties, a
login per kind of actor) and adds funding lines granted at county level and passed down.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from commands.app import LedgerService
from infra.store import parse_url
from tests.e2e.conftest import error_line
from tests.funds_helpers import Lines
from tests.integration.test_pg_reads import Store
from tests.integration.test_pg_reads import store as pg_store  # noqa: F401  (the module's store)

PLACES = {"HZ-001": ("八步区", "贺街镇"), "HZ-002": ("八步区", "莲塘镇"), "QT-2": ("平桂区", "望高镇")}
UNIT_ROWS = ("funds_movements", "funds_totals")


@pytest.fixture(scope="module")
def funded(pg_store: Store) -> Iterator[Store]:  # noqa: F811
    service = LedgerService.open(parse_url(pg_store.owner), pg_store.key)
    try:
        lines = Lines(service, PLACES, actor="clerk-city")
        bb = lines.allocate("民政局", "贺民发〔2026〕7号", 1_000_000, "county:八步区", "2026-03-01")
        lines.transfer(bb, "county:八步区", "township:八步区/贺街镇", 400_000, "2026-03-02")
        lines.transfer(bb, "township:八步区/贺街镇", "community:HZ-001", 100_000, "2026-03-03")
        lines.transfer(bb, "county:八步区", "community:HZ-002", 200_000, "2026-03-03")
        lines.spend(bb, "community:HZ-001", 30_000, "2026-03-04", voucher="记-1")
        lines.spend(bb, "community:HZ-002", 50_000, "2026-03-04", voucher="记-1")
        pg = lines.allocate("妇联", "平妇发〔2026〕1号", 500_000, "county:平桂区", "2026-03-01")
        lines.transfer(pg, "county:平桂区", "community:QT-2", 100_000, "2026-03-02")
        lines.spend(pg, "community:QT-2", 10_000, "2026-03-05", voucher="记-1")
    finally:
        service.close()
    pg_store.cli("worker").ok("projections", "run", actor="worker")
    yield pg_store


SEES = {
    "clerk_hj": {"township:八步区/贺街镇", "community:HZ-001"},
    "sup_bb": {"county:八步区", "township:八步区/贺街镇", "community:HZ-001", "community:HZ-002"},
    "aud_pg": {
        "county:八步区",
        "township:八步区/贺街镇",
        "community:HZ-001",
        "community:HZ-002",
        "county:平桂区",
        "community:QT-2",
    },  # auditors read everything  # fmt: skip
    "nobody": set(),
}


@pytest.mark.parametrize(("login", "sees"), list(SEES.items()))
def test_funds_views_show_a_login_only_the_units_inside_its_scopes(funded: Store, login: str, sees: set[str]) -> None:
    for table in UNIT_ROWS:
        assert {row[0] for row in funded.rows(login, f"SELECT DISTINCT unit FROM {table}")} == sees, table
    spends = {row[0] for row in funded.rows(login, "SELECT community FROM funds_spends")}
    assert spends == {unit.split(":", 1)[1] for unit in sees if unit.startswith("community:")}
    lines = {row[0] for row in funded.rows(login, "SELECT department FROM funds_lines")}
    assert lines == ({"民政局"} if any("八步区" in u or "HZ" in u for u in sees) else set()) | (
        {"妇联"} if any("平桂区" in u or "QT" in u for u in sees) else set()
    )


def test_the_cli_reads_the_funds_inside_the_scope(funded: Store) -> None:
    clerk = funded.cli("clerk_hj")
    rows = orjson.loads(
        clerk.ok(
            "funds", "ledger", "--by", "unit", "--unit", "township:八步区/贺街镇", "--format", "json", actor="clerk-hj"
        ).stdout
    )
    got = {r["unit"]: (r["received"], r["spent"], r["balance"]) for r in rows}
    assert got == {"township:八步区/贺街镇": (400_000, 0, 300_000), "community:HZ-001": (100_000, 30_000, 70_000)}
    error_line(clerk("funds", "ledger", "--by", "unit", actor="clerk-hj"), 1, "permission denied", "--unit")
    trace = orjson.loads(
        clerk.ok(
            "funds",
            "trace",
            "民政局/贺民发〔2026〕7号",
            "--unit",
            "community:HZ-001",
            "--format",
            "json",
            actor="clerk-hj",
        ).stdout  # fmt: skip
    )
    assert [u["unit"] for u in trace["units"]] == ["community:HZ-001"]


def test_a_rebuild_keeps_the_funds_row_policies(funded: Store) -> None:
    funded.cli().ok("projections", "rebuild", actor="boss")
    for login, sees in SEES.items():
        assert {row[0] for row in funded.rows(login, "SELECT DISTINCT unit FROM funds_movements")} == sees, login
    assert {row[0] for row in funded.owner_rows("SELECT DISTINCT unit FROM funds_totals")} == SEES["aud_pg"]


@pytest.mark.clock
def test_a_clerk_reads_the_funds_as_of_now(funded: Store) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    clerk = funded.cli("clerk_hj")
    now = datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    args = ("funds", "ledger", "--by", "line", "--unit", "community:HZ-001", "--format", "json")
    assert orjson.loads(clerk.ok(*args, "--as-of", now, actor="clerk-hj").stdout) == orjson.loads(
        clerk.ok(*args, actor="clerk-hj").stdout
    )
