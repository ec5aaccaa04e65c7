"""The dashboard's key-group coverage, per-kind counts and red flags, and the 台账 page's `as of` and
category filters — each equal to the CLI's `--format json` for the same question, on both stores."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Site, log_in

HJ = "八步区/贺街镇"


@pytest.fixture(scope="module", autouse=True)
def accountability(site: Site) -> Iterator[None]:
    """A key-visit plan overdue in HZ-001, one in QT-2 (another township); supervised items, one resolved."""
    for code in ("HZ-001", "QT-2"):
        site.cli.ok("visit-plan", "set", code, "R1", "--every", "7", "--provider", "P1", "--from", "2026-01-01",
                    actor="clerk-city")  # fmt: skip
    site.cli.ok("supervise", "open", "--unit", f"township:{HJ}", "--item", "补齐3月巡访记录", "--due", "2026-03-20",
                actor="sup-hj")  # fmt: skip
    site.cli.ok("supervise", "open", "--unit", "community:HZ-002", "--item", "整改台账", "--due", "2026-03-25",
                actor="sup-hj")  # fmt: skip
    done = site.cli.ok("supervise", "open", "--unit", "community:HZ-001", "--item", "已办事项", "--due", "2026-03-10",
                       "--format", "json", actor="sup-hj")  # fmt: skip
    site.cli.ok("supervise", "resolve", orjson.loads(done.stdout)["item_id"], "--note", "已完成", actor="sup-hj")
    site.cli.ok("supervise", "open", "--unit", "township:八步区/桂岭镇", "--item", "别镇事项", "--due", "2026-03-25",
                actor="sup-city")  # fmt: skip
    yield


def cli_json(site: Site, actor: str, *args: str) -> Any:
    site.cli.ok("projections", "run", actor="boss")
    return orjson.loads(site.cli.ok(*args, "--format", "json", actor=actor).stdout)


def kind_rows(html: str) -> dict[str, tuple[str, list[int]]]:
    """unit -> (coverage cell "served/eligible", the per-kind counts) of the dashboard's kinds table."""
    table = html.split('id="kinds"', 1)[1].split("</table>", 1)[0]
    out = {}
    for unit, body in re.findall(r'<tr data-unit="([^"]*)">(.*?)</tr>', table, re.S):
        cover = re.search(r'data-served="(\d+)" data-eligible="(\d+)"', body)
        assert cover
        out[unit] = (f"{cover[1]}/{cover[2]}", [int(n) for n in re.findall(r'<td class="n kind">(\d+)</td>', body)])
    return out


@pytest.mark.clock  # overdue visits and open items are judged on today's date (the CLI's too)
def test_coverage_and_kinds_equal_assess_and_ledger_summary(site: Site, client: TestClient) -> None:
    from domain.vocab import KINDS

    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/dashboard?month=2026-03")
    assert page.status_code == 200, page.text
    rows = kind_rows(page.text)
    assert set(rows) == {"community:HZ-001", "community:HZ-002"}
    summary = cli_json(
        site, "sup-hj", "ledger", "summary", "--by", "community", "--township", HJ, "--period", "2026-03"
    )
    for row in summary:
        unit = f"community:{row['community']}"
        assert rows[unit][1] == [row["kinds"][k] for k in KINDS.labels]
        for kind in KINDS.labels:  # the same count as `ledger summary --kind KIND`
            one = cli_json(site, "sup-hj", "ledger", "summary", "--by", "community", "--community", row["community"],
                           "--period", "2026-03",
                           "--kind", kind)  # fmt: skip
            assert rows[unit][1][list(KINDS.labels).index(kind)] == one[0]["records"]
        explained = cli_json(site, "sup-hj", "assess", "explain", "--period", "2026-03", "--unit", unit,
                             "--metric", "coverage")  # fmt: skip
        assert rows[unit][0] == f"{int(explained['numerator'])}/{int(explained['denominator'])}"
    assert rows["community:HZ-001"][0] == "1/1"  # R1 (留守老人) served in March; HZ-002 likewise
    assert "重点对象覆盖率" in page.text


@pytest.mark.parametrize("actor", ["sup-hj", "sup-city"])
def test_the_trend_adds_up_ledger_summary_per_month(site: Site, client: TestClient, actor: str) -> None:
    """The 12-month trend (projections.queries.month_totals) is `ledger summary --per month` added up
    by month, every month of the range listed (zeros included)."""
    from commands.web import app as web

    assert log_in(client, actor).status_code == 303
    door = client.app.state.door  # type: ignore[attr-defined]
    board = web.dashboard_numbers(door, door.env_for(actor, "zh"), door.actor(actor), "2026-03")
    scope = ("--township", HJ) if actor == "sup-hj" else ()
    summary = cli_json(site, actor, "ledger", "summary", "--by", board["by"], *scope, "--from", "2025-04",
                       "--to", "2026-03", "--per", "month")  # fmt: skip
    want: dict[str, dict[str, Any]] = {}
    for row in summary:
        month = want.setdefault(row["month"], {"month": row["month"], "records": 0, "minutes": 0})
        month["records"] += row["records"]
        month["minutes"] += row["minutes"]
    assert board["trend"] == [want[m] for m in sorted(want)]
    assert len(board["trend"]) == 12 and sum(m["records"] for m in board["trend"]) > 0
    # a range that cuts months (the revisions answer the partial ones): the same sums
    from commands import ledger_reads

    env = door.env_for(actor, "zh")
    filters = web._filters(env, door.actor(actor), web._Query({"from": "2026-02-15", "to": "2026-03-06"}))
    summary = cli_json(site, actor, "ledger", "summary", "--by", "county", *scope, "--from", "2026-02-15",
                       "--to", "2026-03-06", "--per", "month")  # fmt: skip
    partial = ledger_reads.month_totals(env, filters)
    assert [m["month"] for m in partial] == ["2026-02", "2026-03"]
    for month in partial:
        rows = [r for r in summary if r["month"] == month["month"]]
        assert month["records"] == sum(r["records"] for r in rows)
        assert month["minutes"] == sum(r["minutes"] for r in rows)


@pytest.mark.clock
def test_the_city_sees_coverage_per_county_as_assess_run(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-city").status_code == 303
    rows = kind_rows(client.get("/dashboard?month=2026-03").text)
    document = cli_json(site, "sup-city", "assess", "run", "--period", "2026-03", "--level", "county")
    for unit in document["units"]:
        explained = cli_json(site, "sup-city", "assess", "explain", "--period", "2026-03", "--unit", unit["unit"],
                             "--metric", "coverage")  # fmt: skip
        assert explained["value"] == unit["metrics"]["coverage"]["value"]
        assert rows[unit["unit"]][0] == f"{int(explained['numerator'])}/{int(explained['denominator'])}"


@pytest.mark.clock
def test_red_flags_equal_visits_overdue_and_open_items_and_idle_units(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/dashboard?month=2026-02")
    assert page.status_code == 200
    flags = page.text.split('id="flags"', 1)[1].split("</section>", 1)[0]
    overdue = cli_json(site, "sup-hj", "visits", "overdue", "--township", HJ)
    assert overdue and {row["community"] for row in overdue} == {"HZ-001"}
    assert f"{len(overdue)} 项重点巡访逾期" in flags and '<span data-community="HZ-001">HZ-001: ' in flags
    assert "QT-2" not in flags  # another township's visit plan
    obligations = cli_json(site, "sup-hj", "audit", "responsibility", "--unit", f"township:{HJ}", "--period", "2026-03")
    open_items = {row["subject"] for row in obligations if row["obligation"] == "supervision"
                  and row["status"] in ("open", "overdue")}  # fmt: skip
    shown = set(re.findall(r'<li data-item="[^"]*"[^>]*>([^<]*) <small>', flags))
    assert shown == open_items == {"补齐3月巡访记录", "整改台账"}  # not the resolved one, not 桂岭镇's
    # February: HZ-002 has no records (as `ledger summary` says), HZ-001 has
    summary = cli_json(
        site, "sup-hj", "ledger", "summary", "--by", "community", "--township", HJ, "--period", "2026-02"
    )
    idle = {f"community:{r['community']}" for r in summary if r["records"] == 0}
    assert set(re.findall(r'<span data-unit="([^"]*)">', flags)) == idle == {"community:HZ-002"}


# ---- the 台账 page: as of, category --------------------------------------------------------------------
def test_the_ledger_page_filters_as_of_and_category_as_ledger_entries(site: Site, client: TestClient) -> None:
    site.cli.ok("projections", "run", actor="boss")
    moment = cli_json(site, "sup-hj", "ledger", "entries", "--township", HJ, "--period", "2026-03")
    cut = max(row["recorded_at"] for row in moment)  # every March record so far
    site.cli.ok("service", "record", "HZ-001", "--kind", "counseling", "--resident", "R2", "--provider", "P1",
                "--at", "2026-03-09 09:00", "--minutes", "25", "--record-id", str(uuid.uuid4()),
                actor="clerk-city")  # fmt: skip
    assert log_in(client, "sup-hj").status_code == 303
    site.cli.ok("projections", "run", actor="boss")
    for params, flags in (
        ({"period": "2026-03", "as_of": cut}, ["--as-of", cut]),
        ({"period": "2026-03", "category": "left_behind_elderly"}, ["--category", "left_behind_elderly"]),
        ({"period": "2026-03", "category": "留守老人", "as_of": cut}, ["--category", "留守老人", "--as-of", cut]),
        ({"period": "2026-03"}, []),
    ):
        want = site.cli.ok("ledger", "entries", "--township", HJ, "--period", "2026-03", *flags, "--format", "csv",
                           actor="sup-hj").stdout  # fmt: skip
        page = client.get("/ledger", params=params)
        assert page.status_code == 200, page.text
        assert f"共 {want.count(chr(10)) - 1} 条" in page.text
        links = re.findall(r'href="(/ledger\.(?:csv|xlsx)\?[^"]*)"', page.text)
        assert len(links) == 2
        for link in links:  # the downloads keep the filters
            for key in params:
                assert f"{key}=" in link
        csv = client.get(links[0].replace("&amp;", "&"))
        assert csv.status_code == 200 and csv.text == want
    counts = {
        "as_of": site.cli.ok(
            "ledger",
            "entries",
            "--township",
            HJ,
            "--period",
            "2026-03",
            "--as-of",
            cut,
            "--format",
            "json",
            actor="sup-hj",
        ).stdout,  # fmt: skip
        "now": site.cli.ok(
            "ledger", "entries", "--township", HJ, "--period", "2026-03", "--format", "json", actor="sup-hj"
        ).stdout,  # fmt: skip
    }
    assert len(orjson.loads(counts["now"])) == len(orjson.loads(counts["as_of"])) + 1  # the cut hides the new one


def test_the_ledger_pages_links_keep_the_filters(site: Site, client: TestClient) -> None:
    import commands.web.app as web

    cut = max(row["recorded_at"] for row in cli_json(site, "sup-hj", "ledger", "entries", "--township", HJ))
    assert log_in(client, "sup-hj").status_code == 303
    saved, web.PAGE_SIZE = web.PAGE_SIZE, 1
    try:
        page = client.get("/ledger", params={"period": "2026-03", "category": "left_behind_elderly", "as_of": cut})
        assert page.status_code == 200, page.text
        nxt = re.search(r'<a href="(/ledger\?[^"]*page=2[^"]*)">', page.text)
        assert nxt and "category=left_behind_elderly" in nxt[1] and "as_of=" in nxt[1]
        assert '<option value="left_behind_elderly" selected>' in page.text
        assert f'value="{cut}"' in page.text
    finally:
        web.PAGE_SIZE = saved


def test_a_malformed_as_of_is_refused_naming_the_field(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/ledger", params={"as_of": "yesterday"})
    assert page.status_code == 422 and "--as-of" in page.text
