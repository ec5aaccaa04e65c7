"""`funds ledger` and `funds trace` as a user runs them, on both stores.

The funding lines are saved through the application (tests.funds_helpers), the communities and
actors through the CLI. One store per backend per module; only reads run against it.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import orjson
import pytest
from openpyxl import load_workbook

from commands.app import LedgerService
from commands.funds_reads import configured_departments
from infra.store import parse_url
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, store_counts
from tests.funds_helpers import CITY, Lines

LINE = "民政局/贺民发〔2026〕12号"


@dataclass
class Funds:
    cli: Cli
    line: str
    other: str
    reversed_spend: str
    tmp: Path


def build(cli: Cli, tmp: Path) -> Funds:
    cli.ok("init")
    for code, (county, township) in CITY.items():
        cli.ok(
            "community", "establish", code, "--name", f"{code}社区", "--county", county, "--township", township,
            "--village", "村", "--established-on", "2026-01-01",
        )  # fmt: skip
    service = LedgerService.open(parse_url(cli.url), cli.key)
    try:
        lines = Lines(service)
        line = lines.allocate(
            "民政局", "贺民发〔2026〕12号", 1_200_000, "county:八步区", "2026-03-01", purpose="幸福院运营"
        )
        lines.transfer(line, "county:八步区", "township:八步区/贺街镇", 500_000, "2026-03-05")
        lines.transfer(line, "township:八步区/贺街镇", "community:HZ-A", 200_000, "2026-03-06")
        first = lines.spend(line, "community:HZ-A", 50_000, "2026-03-10", voucher="记-001", purpose="老人助餐")
        lines.spend(line, "community:HZ-A", 1_005, "2026-04-10", voucher="记-002", records=["rec-9", "rec-1"])
        time.sleep(0.02)  # the red-letter entry's commit a recorded millisecond of its own (the as-of test)
        lines.reverse(line, first, "2026-04-01")
        lines.give_back(line, "county:八步区", 100_000, "2026-05-01")
        other = lines.allocate("妇联", "贺妇发〔2026〕3号", 300_000, "community:ZS-D", "2026-02-01", purpose="儿童之家")
        lines.spend(other, "community:ZS-D", 120_000, "2026-06-01", voucher="记-001")
    finally:
        service.close()
    cli.ok("projections", "run")
    return Funds(cli, line, other, first, tmp)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def funds(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Funds]:
    tmp = tmp_path_factory.mktemp(f"funds-{request.param}")
    if request.param == "sqlite":
        yield build(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"), tmp)
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build(Cli(url, tmp / "taizhang.key"), tmp)
    finally:
        drop_pg_database(admin, url)


def by_unit(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["unit"]): r for r in rows}


def test_ledger_by_unit_every_unit_with_its_own_flows(funds: Funds) -> None:
    before = store_counts(funds.cli.url)
    rows = by_unit(funds.cli.json("funds", "ledger", "--by", "unit"))
    assert list(rows) == [
        "county:八步区",
        "township:八步区/信都镇",
        "community:HZ-C",
        "township:八步区/贺街镇",
        "community:HZ-A",
        "community:HZ-B",
        "county:钟山县",
        "township:钟山县/城关镇",
        "community:ZS-D",
    ]
    county = rows["county:八步区"]
    assert (county["allocated"], county["passed_down"], county["returned"], county["balance"]) == (
        1_200_000,
        500_000,
        100_000,
        600_000,
    )
    a = rows["community:HZ-A"]
    assert (a["received"], a["spent"], a["reversed"], a["balance"]) == (200_000, 51_005, 50_000, 198_995)
    assert a["execution_rate"] == pytest.approx(1_005 / 200_000, abs=1e-6)
    # the county's rate: net spent inside it ÷ what entered it (its allocation)
    assert county["execution_rate"] == pytest.approx(1_005 / 1_200_000, abs=1e-6)
    assert rows["community:HZ-B"]["execution_rate"] is None  # nothing entered: null, shown as –
    assert rows["community:HZ-B"]["balance"] == 0
    assert store_counts(funds.cli.url) == before  # a read writes nothing


def test_ledger_with_a_period_counts_flows_inside_it_and_the_balance_at_its_end(funds: Funds) -> None:
    rows = by_unit(funds.cli.json("funds", "ledger", "--by", "unit", "--period", "2026-03"))
    a = rows["community:HZ-A"]
    assert (a["received"], a["spent"], a["reversed"], a["balance"]) == (200_000, 50_000, 0, 150_000)
    assert a["execution_rate"] == pytest.approx(0.25)
    rows = by_unit(funds.cli.json("funds", "ledger", "--by", "unit", "--period", "2026-Q2"))
    a = rows["community:HZ-A"]
    assert (a["received"], a["spent"], a["reversed"], a["balance"]) == (0, 1_005, 50_000, 198_995)


def test_ledger_by_line_and_department(funds: Funds) -> None:
    lines = funds.cli.json("funds", "ledger", "--by", "line")
    assert [(r["department"], r["document"], r["allocated"], r["balance"]) for r in lines] == [
        ("妇联", "贺妇发〔2026〕3号", 300_000, 180_000),
        ("民政局", "贺民发〔2026〕12号", 1_200_000, 1_098_995),
    ]
    departments = funds.cli.json("funds", "ledger", "--by", "department", "--unit", "township:八步区/贺街镇")
    shown = {r["department"]: (r["lines"], r["received"], r["spent"]) for r in departments}
    assert shown["民政局"] == (1, 700_000, 51_005)
    assert shown["妇联"] == (0, 0, 0)  # every configured department appears, zeros included
    assert set(shown) >= set(configured_departments())
    text = funds.cli.ok("funds", "ledger", "--by", "department", "--format", "csv").stdout
    header, *body = list(csv.reader(io.StringIO(text)))
    assert header[:3] == ["department", "lines", "allocated"] and len(body) == len(shown)


def test_table_in_yuan_and_in_chinese(funds: Funds) -> None:
    out = funds.cli.ok("funds", "ledger", "--by", "unit").stdout
    assert "12,000.00" in out and "1,989.95" in out and "–" in out
    zh = funds.cli.ok("funds", "ledger", "--by", "line", lang="zh").stdout
    for word in ("资金来源", "文号", "下达", "拨入", "拨付下级", "支出", "红字冲销", "退回", "结余", "执行率"):
        assert word in zh


def test_as_of_before_the_funds(funds: Funds) -> None:
    rows = funds.cli.json("funds", "ledger", "--by", "line", "--as-of", "2020-01-01")
    assert rows == []
    result = funds.cli("funds", "trace", LINE, "--as-of", "2020-01-01")
    assert result.exit_code == 1 and "no funding line" in result.stderr


def test_trace_totals_agree_with_the_ledger(funds: Funds) -> None:
    ledger = {r["unit"]: r for r in funds.cli.json("funds", "ledger", "--by", "unit")}
    document = funds.cli.json("funds", "trace", LINE)
    stack = list(document["units"])
    while stack:
        node = stack.pop()
        stack.extend(node["children"])
        # this line is the only money of the 八步区 units: the trace's sums are the ledger's
        for field in ("allocated", "received", "passed_down", "spent", "reversed", "returned", "balance"):
            assert node[field] == ledger[node["unit"]][field], (node["unit"], field)
        assert node["execution_rate"] == ledger[node["unit"]]["execution_rate"]


def test_trace_from_the_department_to_every_voucher(funds: Funds) -> None:
    document = funds.cli.json("funds", "trace", LINE)
    assert document["line_id"] == funds.line
    (county,) = document["units"]
    assert county["unit"] == "county:八步区"
    (township,) = county["children"]
    (community,) = township["children"]
    spends = [m for m in community["movements"] if m["movement"] == "spent"]
    assert [(s["voucher"], s["amount"], s["reversed_on"]) for s in spends] == [
        ("记-001", 50_000, "2026-04-01"),
        ("记-002", 1_005, None),
    ]
    assert spends[1]["records"] == ["rec-1", "rec-9"]
    assert funds.cli.json("funds", "trace", funds.line)["line_id"] == funds.line
    only = funds.cli.json("funds", "trace", LINE, "--unit", "community:HZ-A")
    assert [u["unit"] for u in only["units"]] == ["community:HZ-A"]
    zh = funds.cli.ok("funds", "trace", LINE, lang="zh").stdout
    assert "红字冲销" in zh and "记-002" in zh and "结余" in zh and "执行率" in zh


def test_unknown_line_unit_and_bad_input(funds: Funds) -> None:
    result = funds.cli("funds", "trace", "民政局/没有这个文号")
    assert result.exit_code == 1 and "no funding line" in result.stderr
    result = funds.cli("funds", "ledger", "--by", "unit", "--unit", "community:NOPE")
    assert result.exit_code == 1 and "NOPE" in result.stderr
    result = funds.cli("funds", "ledger", "--by", "unit", "--unit", "village:X")
    assert result.exit_code == 2 and "--unit" in result.stderr
    result = funds.cli("funds", "ledger", "--by", "unit", "--period", "2026-13")
    assert result.exit_code == 2 and "--period" in result.stderr
    result = funds.cli("funds", "ledger", "--by", "unit", "--format", "xlsx")
    assert result.exit_code == 2 and "--output" in result.stderr


def test_printed_sheet(funds: Funds) -> None:
    path = funds.tmp / f"资金台账-{funds.cli.url[:6]}.xlsx"
    funds.cli.ok(
        "funds", "ledger", "--by", "unit", "--period", "2026", "--format", "xlsx", "--output", str(path), lang="zh"
    )
    sheet = load_workbook(path).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert "资金台账" in values[0][0] and "2026年" in values[0][0]
    assert values[1][0].startswith("打印日期")
    assert values[2][:3] == ["单位名称", "下达", "拨入"]
    total = next(row for row in values if row[0] == "合计")
    assert float(total[1]) == 15_000.0  # allocated, yuan
    assert any(isinstance(row[0], str) and "人民币壹万伍仟元整" in row[0] for row in values)
    assert sheet.freeze_panes == "A4"
    assert sheet.page_setup.orientation == "landscape"
    assert orjson.dumps(sheet.cell(row=4, column=2).number_format).decode() == '"#,##0.00"'


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    if url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


@pytest.mark.clock
def test_as_of_a_printed_time_is_the_ledger_before_what_came_after(funds: Funds) -> None:
    """--as-of the recorded time of the commit before the red-letter entry: the spend is not reversed yet."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    (reversal,) = _rows(funds.cli.url, "SELECT position FROM funds_movements WHERE kind = 'reversed'")
    (moment,) = _rows(
        funds.cli.url,
        f"SELECT recorded_at FROM taizhang_commits WHERE last_position < {reversal[0]} "
        "ORDER BY last_position DESC LIMIT 1",
    )
    at = moment[0]
    when = at if isinstance(at, datetime) else datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    printed = when.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(timespec="milliseconds")
    before = by_unit(funds.cli.json("funds", "ledger", "--by", "unit", "--as-of", printed))["community:HZ-A"]
    assert (before["spent"], before["reversed"], before["balance"]) == (51_005, 0, 148_995)
    now = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    assert funds.cli.json("funds", "ledger", "--by", "unit", "--as-of", now) == funds.cli.json(
        "funds", "ledger", "--by", "unit"
    )


def test_the_write_commands_then_the_reads(store: Cli) -> None:
    """The write side's own commands (commands.cli.funds), then the ledger and the trace of what they wrote."""
    from tests.e2e.conftest import COMMUNITY, establish_args

    store.ok(*establish_args(COMMUNITY))
    line = ("--department", "民政局", "--document", "贺民发〔2026〕12号")
    store.ok("funds", "allocate", *line, "--purpose", "幸福院运营", "--amount", "12,000.00", "--unit", "county:八步区",
             "--on", "2026-03-01")  # fmt: skip
    store.ok("funds", "transfer", *line, "--from", "county:八步区", "--to", "community:HZ-001", "--amount", "1.2万",
             "--on", "2026-03-02")  # fmt: skip
    store.ok("funds", "spend", "HZ-001", *line, "--amount", "100.05", "--voucher", "记-1", "--purpose", "助餐",
             "--on", "2026-03-05")  # fmt: skip
    store.ok("funds", "reverse", "HZ-001", "记-1", "--reason", "凭证有误", "--on", "2026-03-06")
    store.ok("funds", "spend", "HZ-001", *line, "--amount", "500", "--voucher", "记-2", "--purpose", "助餐",
             "--on", "2026-03-07")  # fmt: skip
    store.ok("projections", "run")
    rows = by_unit(store.json("funds", "ledger", "--by", "unit"))
    community = rows["community:HZ-001"]
    assert (community["received"], community["spent"], community["reversed"], community["balance"]) == (
        1_200_000, 60_005, 10_005, 1_150_000,
    )  # fmt: skip
    document = store.json("funds", "trace", "民政局/贺民发〔2026〕12号")
    (county,) = document["units"]
    (place,) = county["children"]
    spends = [(m["voucher"], m["amount"], m["reversed_on"]) for m in place["movements"] if m["movement"] == "spent"]
    assert spends == [("记-1", 10_005, "2026-03-06"), ("记-2", 50_000, None)]


def _flatten(nodes: list[dict[str, object]], depth: int = 0, parent: str | None = None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for node in nodes:
        for move in node["movements"]:  # type: ignore[attr-defined]
            rows.append({"unit": node["unit"], "unit_name": node["unit_name"], "depth": depth, "parent_unit": parent,
                         **{k: move.get(k) for k in ("movement", "entry_id", "voucher", "day", "amount",
                                                     "counterpart", "purpose", "records", "reversed_on")}})  # fmt: skip
        rows.extend(_flatten(node["children"], depth + 1, str(node["unit"])))  # type: ignore[arg-type]
    return rows


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def test_trace_csv_is_the_json_one_row_per_movement(funds: Funds) -> None:
    document = funds.cli.json("funds", "trace", LINE)
    text = funds.cli.ok("funds", "trace", LINE, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = _flatten(document["units"])
    assert [{k: _cell(v) for k, v in r.items()} for r in expected] == rows
    assert list(rows[0]) == ["unit", "unit_name", "depth", "parent_unit", "movement", "entry_id", "voucher", "day",
                             "amount", "counterpart", "purpose", "records", "reversed_on"]  # fmt: skip
    assert [(r["unit"], r["depth"], r["parent_unit"]) for r in rows[:2]] == [
        ("county:八步区", "0", ""),
        ("county:八步区", "0", ""),
    ]
    spends = [r for r in rows if r["movement"] == "spent"]
    assert [(r["voucher"], r["amount"], r["records"], r["reversed_on"], r["depth"]) for r in spends] == [
        ("记-001", "50000", "", "2026-04-01", "2"),
        ("记-002", "1005", "rec-1;rec-9", "", "2"),
    ]  # fen, as the JSON
    path = funds.tmp / f"trace-{funds.cli.url[:6]}.csv"
    funds.cli.ok("funds", "trace", LINE, "--format", "csv", "--output", str(path), "--force")
    assert path.read_text(encoding="utf-8").strip() == text.strip()
    for fmt in ("json", "table"):
        path = funds.tmp / f"trace-{funds.cli.url[:6]}.{fmt}"
        funds.cli.ok("funds", "trace", LINE, "--format", fmt, "--output", str(path), "--force")
        shown = funds.cli.ok("funds", "trace", LINE, "--format", fmt).stdout
        assert path.read_text(encoding="utf-8").strip() == shown.strip()


def test_trace_printed_sheet(funds: Funds) -> None:
    path = funds.tmp / f"资金流向-{funds.cli.url[:6]}.xlsx"
    funds.cli.ok("funds", "trace", LINE, "--format", "xlsx", "--output", str(path), lang="zh")
    sheet = load_workbook(path).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "民政局 贺民发〔2026〕12号 幸福院运营（12,000.00元）资金流向台账"
    assert values[1][0].startswith("打印日期")
    assert [h.replace("\n", "") for h in values[2]] == [
        "单位名称", "日期", "摘要", "金额（元）", "拨付单位", "凭证号", "用途", "关联服务记录", "冲销日期",
    ]  # fmt: skip
    body = values[3 : values.index(next(row for row in values if row[0] == "合计"))]
    flat = _flatten(funds.cli.json("funds", "trace", LINE)["units"])
    assert len(body) == len(flat)  # one row per movement, in the tree's order
    assert [row[2] for row in body] == [
        {"allocated": "下达", "received": "拨入", "passed_down": "拨付下级", "spent": "支出",
         "reversed": "红字冲销", "returned": "退回"}[str(r["movement"])] for r in flat
    ]  # fmt: skip
    assert [float(row[3]) for row in body] == [int(r["amount"]) / 100 for r in flat]  # type: ignore[call-overload]
    assert body[0][0] == "八步区" and body[0][1] == "2026-03-01"
    spent = [row for row in body if row[2] == "支出"]
    assert [(row[5], row[6], row[7], row[8]) for row in spent] == [
        ("记-001", "老人助餐", None, "2026-04-01"),
        ("记-002", "幸福院餐费", "rec-1\nrec-9", None),
    ]
    names = [row[0] for row in body if row[0] is not None]  # a unit named on its first row, indented by depth
    assert names == ["八步区", "\u3000八步区贺街镇", "\u3000\u3000HZ-A社区"]
    total = next(row for row in values if row[0] == "合计")
    assert total[1] == f"{len(flat)} 笔"
    assert any(isinstance(row[0], str) and row[0] == "资金金额（大写）：人民币壹万贰仟元整" for row in values)
    assert any(isinstance(row[0], str) and row[0].startswith("填表人") for row in values)
    assert sheet.cell(row=4, column=4).number_format == "#,##0.00"
    assert sheet.freeze_panes == "A4" and sheet.page_setup.orientation == "landscape"
    result = funds.cli("funds", "trace", LINE, "--format", "xlsx")
    assert result.exit_code == 2 and "--output" in result.stderr
