"""`funds allocate|transfer|spend|reverse|return` through the CLI, on both stores.

One store per backend for the module (`funded`): the shared `ledger` history (HZ-001 with
an active and a voided record, QT-2) plus a funding line allocated to 八步区, passed down to
贺街镇 and HZ-001, one spend and its reversal, and 贺街镇's January closed. Every refusal runs
against it and must leave every table of the store as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import pytest

from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, Ledger, backend_of, build_ledger, error_line, sqlite_path, store_counts

LINE = ("--department", "民政局", "--document", "贺民发〔2026〕12号")
HJ = "township:八步区/贺街镇"


@dataclass
class Funded:
    ledger: Ledger
    line_id: str
    spend_id: str

    @property
    def cli(self) -> Cli:
        return self.ledger.cli


def build(cli: Cli) -> Funded:
    ledger = build_ledger(cli)
    allocated = cli.json("funds", "allocate", *LINE, "--purpose", "幸福院运营补助", "--amount", "1.2万",
                         "--unit", "county:八步区", "--on", "2026-01-15")  # fmt: skip
    cli.ok(
        "funds", "transfer", *LINE, "--from", "county:八步区", "--to", HJ, "--amount", "6,000.00", "--on", "2026-02-01"
    )
    cli.ok("funds", "transfer", "--line", allocated["line_id"], "--from", HJ, "--to", "community:HZ-001",
           "--amount", "5000", "--on", "2026-02-02")  # fmt: skip
    spent = cli.json("funds", "spend", "HZ-001", *LINE, "--amount", "350.50", "--voucher", "记-001", "--purpose", "送餐",
                     "--payee", "张秀英", "--record", ledger.active, "--on", "2026-03-05")  # fmt: skip
    cli.ok("funds", "spend", "HZ-001", *LINE, "--amount", "100", "--voucher", "记-002", "--purpose", "误报",
           "--on", "2026-03-06")  # fmt: skip
    cli.ok("funds", "reverse", "HZ-001", "记-002", "--reason", "重复报销", "--on", "2026-03-07")
    cli.ok("ledger", "close", "--unit", HJ, "--period", "2026-01", "--reason", "一月结账")
    return Funded(ledger, allocated["line_id"], spent["spend_id"])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def funded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Funded]:
    tmp = tmp_path_factory.mktemp(f"funds-{request.param}")
    if request.param == "sqlite":
        yield build(Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key"))
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = make_pg_database(admin)
    try:
        yield build(Cli(url, tmp / "taizhang.key"))
    finally:
        drop_pg_database(admin, url)


def _stored_events(url: str) -> list[tuple[str, dict]]:
    if backend_of(url) == "sqlite":
        import sqlite3

        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT topic, state FROM stored_events ORDER BY rowid").fetchall()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT topic, state FROM taizhang_events ORDER BY notification_id").fetchall()
    return [(topic, orjson.loads(bytes(state))) for topic, state in rows]


def test_the_writes_store_fen_and_the_actor_and_seal_the_payee(funded: Funded) -> None:
    events = [(t, s) for t, s in _stored_events(funded.cli.url) if "FundingLine" in t or "Voucher" in t]
    topics = [t.rsplit(".", 1)[1] for t, _ in events]
    assert topics == ["Allocated", "Transferred", "Transferred", "Spent", "Claimed", "Spent", "Claimed", "Reversed"]
    assert all(state["actor"] == "clerk01" for _, state in events)
    allocated, spent = events[0][1], events[3][1]
    assert allocated["amount"] == 1_200_000 and allocated["unit"] == "county:八步区"
    assert spent["amount"] == 35_050 and spent["records"] == [funded.ledger.active]
    assert spent["payee"]["key_id"] == "payee:HZ-001/2026"
    assert "张秀英" not in orjson.dumps(events).decode()  # sealed, never in clear in the log


def test_json_names_the_ids_touched(funded: Funded) -> None:
    cli = funded.cli
    before = store_counts(cli.url)
    result = cli.json("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "记-json", "--purpose", "p",
                      "--on", "2026-03-08")  # fmt: skip
    assert result["line_id"] == funded.line_id and result["voucher"] == "记-json" and result["year"] == 2026
    assert result["amount"] == 100 and result["spend_id"]
    undone = cli.json("funds", "reverse", "HZ-001", "记-json", "--reason", "测试", "--on", "2026-03-08")
    assert undone["spend_id"] == result["spend_id"] and undone["line_id"] == funded.line_id
    back = cli.json("funds", "return", "--line", funded.line_id, "--unit", "county:八步区", "--amount", "0.01",
                    "--reason", "结余", "--on", "2026-03-09")  # fmt: skip
    assert back["return_id"] and back["unit"] == "county:八步区" and back["amount"] == 1
    assert store_counts(cli.url) != before


# fmt: off
REFUSED = [
    # (args, exit code, needles)
    pytest.param(("funds", "allocate", *LINE, "--purpose", "p", "--amount", "1", "--unit", "county:八步区", "--on",
                  "2026-02-01"), 1, ["already allocated", "12,000.00"], id="allocate-same-line"),  # fmt: skip
    pytest.param(("funds", "allocate", "--department", "外星局", "--document", "X1", "--purpose", "p", "--amount", "1",
                  "--unit", "county:八步区"), 2, ["--department", "外星局"], id="unknown-department"),  # fmt: skip
    pytest.param(("funds", "allocate", "--department", "妇联", "--document", "X1", "--purpose", "p", "--amount", "1",
                  "--unit", "county:无此县"), 1, ["no county 无此县"], id="unknown-unit"),  # fmt: skip
    pytest.param(("funds", "allocate", "--department", "妇联", "--document", "X1", "--purpose", "p", "--amount", "1",
                  "--unit", HJ, "--on", "2026-01-20"), 1, ["closed: township:八步区/贺街镇 2026-01"],
                 id="allocate-closed"),  # fmt: skip
    pytest.param(("funds", "allocate", "--department", "妇联", "--document", "X1", "--purpose", "p", "--amount", "1",
                  "--unit", "community:HZ-001", "--on", "2026-01-20"), 1, ["closed: township:八步区/贺街镇 2026-01"],
                 id="allocate-closed-community"),  # fmt: skip
    pytest.param(("funds", "allocate", "--department", "妇联", "--document", "X1", "--purpose", "p", "--amount", "1",
                  "--unit", "county:八步区", "--on", "2999-01-01"), 2, ["--on", "in the future"], id="future"),  # fmt: skip
    pytest.param(("funds", "transfer", *LINE, "--from", "community:HZ-001", "--to", "county:八步区", "--amount", "1",
                  "--on", "2026-03-01"), 1, ["never up"], id="transfer-up"),  # fmt: skip
    pytest.param(("funds", "transfer", *LINE, "--from", HJ, "--to", "community:QT-2", "--amount", "1", "--on",
                  "2026-03-01"), 1, ["never sideways"], id="transfer-sideways"),  # fmt: skip
    pytest.param(("funds", "transfer", *LINE, "--from", "county:八步区", "--to", HJ, "--amount", "6000.01", "--on",
                  "2026-03-01"), 1, ["holds 6,000.00 yuan", "less than 6,000.01"], id="transfer-too-much"),  # fmt: skip
    pytest.param(("funds", "transfer", *LINE, "--from", "county:八步区", "--to", HJ, "--amount", "1", "--on",
                  "2026-01-20"), 1, ["closed: township:八步区/贺街镇 2026-01", "down to township"],
                 id="transfer-closed"),  # fmt: skip
    pytest.param(("funds", "transfer", "--line", "2b0c3f0e-6f0a-4bb6-9f5e-1a2b3c4d5e6f", "--from", "county:八步区",
                  "--to", HJ, "--amount", "1"), 1, ["no funding line"], id="unknown-line"),  # fmt: skip
    pytest.param(("funds", "transfer", "--line", "x", *LINE, "--from", "county:八步区", "--to", HJ, "--amount", "1"),
                 2, ["--line", "not both"], id="line-twice"),  # fmt: skip
    pytest.param(("funds", "transfer", "--department", "民政局", "--from", "county:八步区", "--to", HJ, "--amount", "1"),
                 2, ["--document"], id="line-unnamed"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "记-001", "--purpose", "p", "--on",
                  "2026-03-10"), 1, ["voucher 记-001", "already used by spend", "民政局"], id="voucher-taken"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "记-002", "--purpose", "p", "--on",
                  "2026-03-10"), 1, ["already used"], id="voucher-of-a-reversed-spend"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-001", *LINE, "--amount", "5000", "--voucher", "记-big", "--purpose", "p",
                  "--on", "2026-03-10"), 1, ["holds 4,649.50 yuan"], id="spend-too-much"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "记-jan", "--purpose", "p", "--on",
                  "2026-01-25"), 1, ["closed: township:八步区/贺街镇 2026-01"], id="spend-closed"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "记-feb", "--purpose", "p", "--on",
                  "2026-02-01"), 1, ["holds 0.00 yuan", "on 2026-02-01"], id="spend-before-the-money-came"),  # fmt: skip
    pytest.param(("funds", "spend", "QT-2", *LINE, "--amount", "1", "--voucher", "记-qt", "--purpose", "p", "--on",
                  "2026-03-10"), 1, ["community:QT-2 has received no money"], id="spend-elsewhere"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-404", *LINE, "--amount", "1", "--voucher", "v", "--purpose", "p"), 1,
                 ["community HZ-404 is not established"], id="spend-unknown-community"),  # fmt: skip
    pytest.param(("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "v", "--purpose", "p",
                  "--record", "not-a-uuid"), 2, ["--record", "not-a-uuid"], id="record-malformed"),  # fmt: skip
    pytest.param(("funds", "reverse", "HZ-001", "记-404", "--reason", "r", "--on", "2026-03-10"), 1,
                 ["no spend with voucher 记-404"], id="reverse-unknown"),  # fmt: skip
    pytest.param(("funds", "reverse", "HZ-001", "记-002", "--reason", "r", "--on", "2026-03-10"), 1,
                 ["already reversed on 2026-03-07"], id="reverse-twice"),  # fmt: skip
    pytest.param(("funds", "reverse", "HZ-001", "记-001", "--reason", "r", "--on", "2026-03-01"), 1,
                 ["a reversal cannot be dated 2026-03-01"], id="reverse-before-spend"),  # fmt: skip
    pytest.param(("funds", "reverse", "HZ-001", "记-001", "--reason", "r", "--year", "2025", "--on", "2026-03-10"), 1,
                 ["no spend with voucher 记-001", "2025"], id="reverse-other-year"),  # fmt: skip
    pytest.param(("funds", "return", *LINE, "--unit", HJ, "--amount", "1", "--reason", "r", "--on", "2026-01-20"), 1,
                 ["closed: township:八步区/贺街镇 2026-01"], id="return-closed"),  # fmt: skip
    pytest.param(("funds", "return", *LINE, "--unit", "community:QT-2", "--amount", "1", "--reason", "r"), 1,
                 ["has received no money"], id="return-from-nowhere"),  # fmt: skip
    pytest.param(("funds", "return", *LINE, "--unit", "county:八步区", "--amount", "6000.01", "--reason", "r", "--on",
                  "2026-03-10"), 1, ["less than 6,000.01"], id="return-too-much"),  # fmt: skip
]
# fmt: on


@pytest.mark.parametrize(("args", "code", "needles"), REFUSED)
def test_every_rule_is_refused_and_nothing_is_written(
    funded: Funded, args: tuple[str, ...], code: int, needles: list[str]
) -> None:
    before = store_counts(funded.cli.url)
    error_line(funded.cli(*args), code, *needles)
    assert store_counts(funded.cli.url) == before


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--amount", "1.234", "more than two decimals"),
        ("--amount", "-5", "more than 0"),
        ("--amount", "0", "more than 0"),
        ("--amount", "0.00", "more than 0"),
        ("--amount", "1e5", "not an amount in yuan"),
        ("--amount", "nan", "not an amount in yuan"),
        ("--amount", "12,00", "not an amount in yuan"),
        ("--amount", "1.2345678万", "finer than a fen"),
    ],
)
def test_a_bad_amount_is_malformed_input_naming_option_and_value(
    funded: Funded, option: str, value: str, needle: str
) -> None:
    before = store_counts(funded.cli.url)
    args = ("funds", "spend", "HZ-001", *LINE, option, value, "--voucher", "v9", "--purpose", "p")
    error_line(funded.cli(*args), 2, option, value, needle)
    assert store_counts(funded.cli.url) == before


def test_linked_records_must_be_current_records_of_the_spending_community(funded: Funded) -> None:
    cli, ledger = funded.cli, funded.ledger
    spend = (
        "funds",
        "spend",
        "HZ-001",
        *LINE,
        "--amount",
        "1",
        "--voucher",
        "记-rec",
        "--purpose",
        "p",
        "--on",
        "2026-03-10",
    )
    before = store_counts(cli.url)
    error_line(cli(*spend, "--record", ledger.voided), 1, f"record {ledger.voided} of community HZ-001 was voided")
    error_line(cli(*spend, "--record", ledger.missing), 1, f"record {ledger.missing} is not a service record")
    assert store_counts(cli.url) == before


def test_chinese_refusal(funded: Funded) -> None:
    args = (
        "funds",
        "spend",
        "HZ-001",
        *LINE,
        "--amount",
        "1",
        "--voucher",
        "记-001",
        "--purpose",
        "p",
        "--on",
        "2026-03-10",
    )
    error_line(funded.cli(*args, lang="zh"), 1, "凭证号 记-001 已被资金 民政局", prefix="错误：")


# ---- attacks: actors outside their scope, on both stores ---------------------------------------------------------
def _login(url: str) -> list[str]:
    return [] if backend_of(url) != "postgres" else ["--login", url.split("://", 1)[1].split(":", 1)[0]]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def guarded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    tmp = tmp_path_factory.mktemp(f"funds-acl-{request.param}")
    admin_url = None
    if request.param == "sqlite":
        cli = Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key")
    else:
        admin_url = request.getfixturevalue("pg_admin_url")
        cli = Cli(make_pg_database(admin_url), tmp / "taizhang.key")
    try:
        cli.ok("init", "--admin", "boss")
        for code, township in (("HZ-001", "贺街镇"), ("HZ-002", "莲塘镇")):
            cli.ok("community", "establish", code, "--name", code, "--county", "八步区", "--township", township,
                   "--village", "v", "--established-on", "2026-01-01", actor="boss")  # fmt: skip
        login = _login(cli.url)
        for name, role, scope in (("clerk-hz2", "clerk", "community:HZ-002"), ("clerk-hz1", "clerk", "community:HZ-001"),
                                  ("sup-hj", "supervisor", HJ), ("aud", "auditor", "city")):  # fmt: skip
            cli.ok("actor", "add", name, "--role", role, "--scope", scope, *login, actor="boss")
        cli.ok("funds", "allocate", *LINE, "--purpose", "p", "--amount", "1万", "--unit", "county:八步区", "--on",
               "2026-01-15", actor="boss")  # fmt: skip
        cli.ok("funds", "transfer", *LINE, "--from", "county:八步区", "--to", "community:HZ-001", "--amount", "5000",
               "--on", "2026-02-01", actor="boss")  # fmt: skip
        yield cli
    finally:
        if admin_url is not None:
            drop_pg_database(admin_url, cli.url)


# fmt: off
ATTACKS = [
    pytest.param("clerk-hz2", ("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "x1", "--purpose", "p",
                               "--on", "2026-03-01"), id="clerk-of-another-community-spends"),  # fmt: skip
    pytest.param("sup-hj", ("funds", "transfer", *LINE, "--from", "county:八步区", "--to", HJ, "--amount", "1", "--on",
                            "2026-03-01"), id="township-supervisor-transfers-from-its-county"),  # fmt: skip
    pytest.param("sup-hj", ("funds", "allocate", "--department", "妇联", "--document", "Y", "--purpose", "p", "--amount",
                            "1", "--unit", "county:八步区"), id="township-supervisor-allocates-to-its-county"),  # fmt: skip
    pytest.param("clerk-hz1", ("funds", "transfer", *LINE, "--from", "county:八步区", "--to", "community:HZ-001",
                               "--amount", "1"), id="clerk-transfers"),  # fmt: skip
    pytest.param("clerk-hz1", ("funds", "return", *LINE, "--unit", "community:HZ-001", "--amount", "1", "--reason", "r"),
                 id="clerk-returns"),  # fmt: skip
    pytest.param("aud", ("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "x2", "--purpose", "p",
                         "--on", "2026-03-01"), id="auditor-spends"),  # fmt: skip
    pytest.param("sup-hj", ("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "x3", "--purpose", "p",
                            "--on", "2026-03-01"), id="supervisor-spends"),  # fmt: skip
]
# fmt: on


@pytest.mark.parametrize(("actor", "args"), ATTACKS)
def test_an_actor_outside_its_scope_or_role_is_refused_and_nothing_written(
    guarded: Cli, actor: str, args: tuple[str, ...]
) -> None:
    before = store_counts(guarded.url)
    error_line(guarded(*args, actor=actor), 1, "permission denied", f"actor {actor}")
    assert store_counts(guarded.url) == before


def test_the_scope_guard_refuses_a_save_outside_the_scope_even_past_the_command_rule(guarded: Cli) -> None:
    """The second line: a transfer whose saved events name a unit outside the actor's scope."""
    from commands.access import Lookup, ScopeGuard, load_actors
    from commands.app import LedgerService
    from commands.context import Refused
    from commands.funds import Funds, LineRef
    from domain.units import UnitRef
    from infra.store import parse_url

    service = LedgerService.open(parse_url(guarded.url), guarded.key)
    try:
        actors = load_actors(service)
        assert actors is not None
        service.app.guard = ScopeGuard(actors.get("sup-hj"), Lookup(service.recorder, actors))
        before = store_counts(guarded.url)
        with pytest.raises(Refused, match="permission denied: actor sup-hj .* may not write to county:八步区"):
            Funds(service).transfer(
                line=LineRef.of(None, *LINE[1::2]),
                from_unit=UnitRef("county", county="八步区"),
                to_unit=UnitRef("township", county="八步区", township="贺街镇"),
                amount=100,
                on=date(2026, 3, 1),
                note=None,
                actor="sup-hj",
            )
        assert store_counts(guarded.url) == before
    finally:
        service.close()


def test_inside_their_scope_they_may(guarded: Cli) -> None:
    guarded.ok("funds", "spend", "HZ-001", *LINE, "--amount", "1", "--voucher", "ok-1", "--purpose", "p",
               "--on", "2026-03-01", actor="clerk-hz1")  # fmt: skip
    guarded.ok("funds", "reverse", "HZ-001", "ok-1", "--reason", "r", "--on", "2026-03-02", actor="clerk-hz1")
    guarded.ok("funds", "return", *LINE, "--unit", "community:HZ-001", "--amount", "1", "--reason", "r",
               "--on", "2026-03-03", actor="sup-hj")  # fmt: skip


# ---- import allocations|spending -------------------------------------------------------------------------------
ALLOCATIONS = [
    ["2026年资金下达表", "", "", "", "", "", "", ""],
    ["序号", "资金来源", "文号", "用途", "金额（元）", "下达日期", "拨付单位", "经办人"],
    ["1", "民政局", "贺民发〔2026〕12号", "幸福院运营", "12,000.00", "2026-01-15", "county:八步区", "黄"],
    ["2", "妇联", "贺妇发〔2026〕3号", "关爱儿童", "1.2万", "2026/1/20", "community:HZ-001", ""],
    ["合计", "", "", "", "24,000.00", "", "", ""],
]
SPENDING = [
    ["资金来源", "文号", "社区", "支出日期", "凭证号", "收款人", "摘要", "金额（元）"],
    ["妇联", "贺妇发〔2026〕3号", "HZ-001", "2026年3月5日", "记-101", "张秀英", "送餐", "350.5"],
    ["妇联", "贺妇发〔2026〕3号", "HZ-001", "2026-03-06", "记-102", "", "慰问", "1,000"],
]


def _imported(store: Cli, tmp: Path) -> tuple[Path, Path]:
    from tests.e2e.conftest import COMMUNITY, establish_args, write_csv

    store.ok(*establish_args(COMMUNITY))
    return write_csv(tmp / "下达.csv", ALLOCATIONS), write_csv(tmp / "支出.csv", SPENDING, bom=True)


def test_import_allocations_and_spending_exactly_once(store: Cli, tmp_path: Path) -> None:
    allocations, spending = _imported(store, tmp_path)
    report = store.json("import", "allocations", str(allocations))
    assert report == {"added": 2, "existing": 0, "skipped": 0, "ignored_columns": ["经办人"], "footer_rows_skipped": 1}
    assert store.json("import", "spending", str(spending)) == {"added": 2, "existing": 0, "skipped": 0}
    before = store_counts(store.url)
    assert store.json("import", "allocations", str(allocations))["existing"] == 2
    assert store.json("import", "spending", str(spending)) == {"added": 0, "existing": 2, "skipped": 0}
    assert store_counts(store.url) == before
    events = [s for t, s in _stored_events(store.url) if t.endswith("FundingLine.Spent")]
    assert [e["amount"] for e in events] == [35_050, 100_000]
    assert events[0]["payee"]["key_id"] == "payee:HZ-001/2026" and events[1]["payee"] is None
    text = store.ok("import", "spending", str(spending)).stdout
    assert "added 0, existing 2, skipped 0" in text


@pytest.mark.parametrize(
    ("row", "code", "needle"),
    [
        (["妇联", "贺妇发〔2026〕3号", "HZ-001", "2026-03-07", "记-9", "", "p", "1.234"], 2,
         "row 4: amount: '1.234' has more than two decimals"),
        (["外星局", "贺妇发〔2026〕3号", "HZ-001", "2026-03-07", "记-9", "", "p", "1"], 2, "row 4: department: unknown"),
        (["妇联", "贺妇发〔2026〕3号", "HZ-001", "2026-03-07", "记-101", "", "p", "1"], 1,
         "row 4: voucher: voucher 记-101 of community:HZ-001 in 2026 is already used"),
        (["妇联", "贺妇发〔2026〕3号", "HZ-001", "2026-03-07", "记-9", "", "p", "99999"], 1,
         "row 4: amount: community:HZ-001 holds"),
        (["妇联", "无此文号", "HZ-001", "2026-03-07", "记-9", "", "p", "1"], 1, "row 4: document: no funding line 妇联 无此文号"),
        (["妇联", "贺妇发〔2026〕3号", "HZ-404", "2026-03-07", "记-9", "", "p", "1"], 1,
         "row 4: community: community HZ-404 is not established"),
    ],
)  # fmt: skip
def test_an_import_is_all_or_nothing_with_numbered_rows(
    store: Cli, tmp_path: Path, row: list[str], code: int, needle: str
) -> None:
    from tests.e2e.conftest import write_csv

    allocations, _spending = _imported(store, tmp_path)
    store.ok("import", "allocations", str(allocations))
    bad = write_csv(tmp_path / "bad.csv", [*SPENDING, row])
    before = store_counts(store.url)
    result = store("import", "spending", str(bad))
    assert result.exit_code == code, result.output
    assert needle in result.stderr, result.stderr
    assert "nothing imported" in result.stderr.splitlines()[-1]
    assert store_counts(store.url) == before
    skipped = store("import", "spending", str(bad), "--skip-invalid", "--format", "json")
    assert skipped.exit_code == 0 and orjson.loads(skipped.stdout)["skipped"] == 1


def test_importing_allocations_needs_the_fund_permission(guarded: Cli, tmp_path: Path) -> None:
    from tests.e2e.conftest import write_csv

    allocations = write_csv(
        tmp_path / "a.csv", [ALLOCATIONS[1], ["1", "残联", "Z1", "p", "1", "2026-01-15", "county:八步区", ""]]
    )
    spending = write_csv(
        tmp_path / "s.csv", [SPENDING[0], ["民政局", "贺民发〔2026〕12号", "HZ-001", "2026-03-01", "z1", "", "p", "1"]]
    )
    before = store_counts(guarded.url)
    error_line(guarded("import", "allocations", str(allocations), actor="clerk-hz1"), 1, "permission denied")
    error_line(
        guarded("import", "spending", str(spending), actor="clerk-hz2"), 1, "permission denied", "community:HZ-001"
    )
    assert store_counts(guarded.url) == before


def test_an_xlsx_with_number_and_date_cells_imports_exactly(store: Cli, tmp_path: Path) -> None:
    """A spreadsheet's number cells (12000, 350.5) and date cells are read exactly; 350.555 is refused."""
    import openpyxl

    from tests.e2e.conftest import COMMUNITY, establish_args

    store.ok(*establish_args(COMMUNITY))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["资金来源", "文号", "用途", "金额（元）", "下达日期", "拨付单位"])
    sheet.append(["民政局", "X-1", "运营", 12000, date(2026, 1, 15), "community:HZ-001"])
    sheet.append(["残联", "X-2", "助残", 350.5, date(2026, 1, 16), "community:HZ-001"])
    path = tmp_path / "下达.xlsx"
    book.save(path)
    assert store.json("import", "allocations", str(path))["added"] == 2
    amounts = [s["amount"] for t, s in _stored_events(store.url) if t.endswith("FundingLine.Allocated")]
    assert amounts == [1_200_000, 35_050]
    sheet.append(["妇联", "X-3", "p", 350.555, date(2026, 1, 16), "community:HZ-001"])
    book.save(path)
    before = store_counts(store.url)
    result = store("import", "allocations", str(path))
    assert result.exit_code == 2 and "row 4: amount: '350.555' has more than two decimals" in result.stderr
    assert store_counts(store.url) == before


def test_a_county_names_its_own_departments_in_a_file_outside_the_package(funded: Funded, tmp_path: Path) -> None:
    own = tmp_path / "departments.toml"
    own.write_text('departments = ["县扶贫办", "民政局"]\n', encoding="utf-8")
    grant = (
        "funds",
        "allocate",
        "--document",
        "扶〔2026〕1号",
        "--purpose",
        "p",
        "--amount",
        "10",
        "--unit",
        "county:八步区",
    )
    refused = funded.cli(*grant[:2], "--department", "县扶贫办", *grant[2:])
    error_line(refused, 2, "--department", "县扶贫办")
    env = {"TAIZHANG_DEPARTMENTS": str(own)}
    funded.cli.ok(*grant[:2], "--department", "县扶贫办", *grant[2:], env=env)
    dropped = funded.cli(*grant[:2], "--department", "妇联", *grant[2:], env=env)
    error_line(dropped, 2, "--department", "妇联")
    bad = tmp_path / "bad.toml"  # (a list is read once per process and path)
    bad.write_text("departments = 3\n", encoding="utf-8")
    broken = funded.cli(*grant[:2], "--department", "民政局", *grant[2:], env={"TAIZHANG_DEPARTMENTS": str(bad)})
    error_line(broken, 2, "TAIZHANG_DEPARTMENTS", "list of names")
