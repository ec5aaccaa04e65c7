"""Periods and townships as people say them (`ledger entries|summary`), on both stores.

`--period 2026-11|2026-Q4|2026` is exclusive with `--from/--to`; `--from 2026-11` is the
month's first day and `--to 2026-11` its last; `--township 贺街镇` is accepted where that
name is unique in the store, and refused (exit 1) naming the counties where it is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import COMMUNITY, Cli, error_line, establish_args, store_counts

WANGGAO_1 = {**COMMUNITY, "code": "WG-1", "name": "望高社区", "county": "平桂区", "township": "望高镇", "village": "望高村", "natural_villages": []}  # fmt: skip
WANGGAO_2 = {**COMMUNITY, "code": "WG-2", "name": "望高新社区", "county": "钟山县", "township": "望高镇", "village": "新村", "natural_villages": []}  # fmt: skip

# When each record happened (local time): around the edges of November and of Q4.
TIMES = ["2026-03-05 09:30", "2026-10-31 23:30", "2026-11-01 00:10", "2026-11-30 23:50", "2026-12-01 08:00"]


@dataclass
class Towns:
    cli: Cli
    ids: dict[str, str]  # time -> record id (all in HZ-001)


def build(cli: Cli) -> Towns:
    cli.ok("init")
    for community in (COMMUNITY, WANGGAO_1, WANGGAO_2):
        cli.ok(*establish_args(community))
    cli.ok("resident", "enroll", "HZ-001", "R1", "--name", "张秀英")
    cli.ok("provider", "register", "HZ-001", "P1", "--name", "李建国", "--role", "党员")
    ids = {}
    for at in TIMES:
        ids[at] = str(uuid.uuid4())
        cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
               "--at", at, "--minutes", "30", "--record-id", ids[at])  # fmt: skip
    cli.ok("projections", "run")
    return Towns(cli, ids)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def towns(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Towns]:
    tmp = tmp_path_factory.mktemp(f"towns-{request.param}")
    if request.param == "sqlite":
        yield build(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"))
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build(Cli(url, tmp / "taizhang.key"))
    finally:
        drop_pg_database(admin, url)


def ids_of(towns: Towns, *args: str) -> list[str]:
    return [row["record_id"] for row in towns.cli.json("ledger", "entries", *args)]


@pytest.mark.parametrize(
    ("period", "times"),
    [
        ("2026-11", TIMES[2:4]),
        ("2026-Q4", TIMES[1:]),
        ("2026", TIMES),
        ("2026-03", TIMES[:1]),
        ("2025", []),
    ],
)
def test_period_selects_the_local_days_of_a_month_quarter_or_year(towns: Towns, period: str, times: list[str]) -> None:
    assert ids_of(towns, "--period", period) == [towns.ids[t] for t in times]
    assert ids_of(towns, "--from", period, "--to", period) == [towns.ids[t] for t in times]


def test_from_a_month_is_its_first_day_and_to_a_month_its_last(towns: Towns) -> None:
    assert (
        ids_of(towns, "--from", "2026-11") == ids_of(towns, "--from", "2026-11-01") == [towns.ids[t] for t in TIMES[2:]]
    )
    assert ids_of(towns, "--to", "2026-11") == ids_of(towns, "--to", "2026-11-30") == [towns.ids[t] for t in TIMES[:4]]
    assert ids_of(towns, "--from", "2026-Q4", "--to", "2026-11") == [towns.ids[t] for t in TIMES[1:4]]


def test_summary_takes_a_period_too(towns: Towns) -> None:
    by_period = towns.cli.json("ledger", "summary", "--by", "township", "--period", "2026-Q4")
    by_dates = towns.cli.json("ledger", "summary", "--by", "township", "--from", "2026-10-01", "--to", "2026-12-31")
    assert by_period == by_dates
    (hejie,) = [row for row in by_period if row["township"] == "贺街镇"]
    assert hejie["records"] == 4


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--period", "2026-11", "--from", "2026-11-01"], ["--period", "--from/--to", "not both"]),
        (["--period", "2026-11", "--to", "2026-12"], ["--period", "not both"]),
        (["--period", "2026-Q5"], ["--period", "2026-Q5"]),
        (["--period", "2026-13"], ["--period", "2026-13"]),
        (["--from", "2026-13"], ["--from", "2026-13"]),
        (["--from", "2026-12", "--to", "2026-11"], ["--from 2026-12-01 is after --to 2026-11-30"]),
    ],
)
@pytest.mark.parametrize("command", [["entries"], ["summary", "--by", "county"]])
def test_a_bad_period_is_malformed_input(towns: Towns, command: list[str], args: list[str], needles: list[str]) -> None:
    before = store_counts(towns.cli.url)
    error_line(towns.cli("ledger", *command, *args), 2, *needles)
    assert store_counts(towns.cli.url) == before


def test_a_township_by_its_name_alone_where_it_is_unique(towns: Towns) -> None:
    assert (
        ids_of(towns, "--township", "贺街镇")
        == ids_of(towns, "--township", "八步区/贺街镇")
        == list(towns.ids.values())
    )
    alone = towns.cli.json("ledger", "summary", "--by", "community", "--township", "贺街镇")
    assert alone == towns.cli.json("ledger", "summary", "--by", "community", "--township", "八步区/贺街镇")
    assert [row["community"] for row in alone] == ["HZ-001"]
    assert ids_of(towns, "--township", "平桂区/望高镇") == []


@pytest.mark.parametrize("command", [["entries"], ["summary", "--by", "county"]])
def test_an_ambiguous_township_name_is_refused_naming_its_counties(towns: Towns, command: list[str]) -> None:
    before = store_counts(towns.cli.url)
    error_line(towns.cli("ledger", *command, "--township", "望高镇"), 1, "望高镇", "平桂区, 钟山县", "平桂区/望高镇")
    line = error_line(towns.cli("ledger", *command, "--township", "望高镇", lang="zh"), 1, prefix="错误：")
    assert "平桂区, 钟山县" in line and "县区/乡镇" in line
    error_line(towns.cli("ledger", *command, "--township", "无此镇"), 1, "no township 无此镇")
    assert store_counts(towns.cli.url) == before


def test_a_township_name_alone_is_placed_for_access_control_too(tmp_path: Path) -> None:
    """With actors the scope check places the township as the command does."""
    cli = Cli(f"sqlite:///{tmp_path / 'acl.db'}", tmp_path / "acl.key")
    cli.ok("init", "--admin", "boss")
    for community in (COMMUNITY, WANGGAO_1, WANGGAO_2):
        cli.ok(*establish_args(community), actor="boss")
    cli.ok("actor", "add", "c-hj", "--role", "clerk", "--scope", "township:八步区/贺街镇", actor="boss")
    cli.ok("actor", "add", "c-pg", "--role", "clerk", "--scope", "county:平桂区", actor="boss")
    assert cli.json("ledger", "entries", "--township", "贺街镇", actor="c-hj") == []
    error_line(
        cli("ledger", "entries", "--township", "贺街镇", actor="c-pg"), 1, "permission denied", "township:八步区/贺街镇"
    )
    error_line(cli("ledger", "entries", "--township", "望高镇", actor="c-pg"), 1, "平桂区, 钟山县")


def test_help_says_how_to_give_a_period_and_a_township(towns: Towns) -> None:
    for command in ("entries", "summary"):
        text = towns.cli.ok("ledger", command, "-h").stdout
        assert "--period" in text and "2026-Q4" in text and "贺街镇 alone" in text
