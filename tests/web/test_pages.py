"""The supervisor's dashboard and 台账, the clerk's page and the JSON API: numbers equal the CLI's, scopes hold."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Site, csrf_of, log_in

HJ = "八步区/贺街镇"


def cli_summary(site: Site, actor: str, *args: str) -> list[dict[str, object]]:
    site.cli.ok("projections", "run", actor="boss")
    return list(orjson.loads(site.cli.ok("ledger", "summary", *args, "--format", "json", actor=actor).stdout))


def dashboard_cells(html: str) -> dict[str, list[int]]:
    """code -> the six numbers of its row (this month: records, minutes, served; last month: the same)."""
    rows = re.findall(r'<tr data-code="([^"]*)">(.*?)</tr>', html, re.S)
    return {code: [int(n) for n in re.findall(r'<td class="n">(\d+)</td>', body)] for code, body in rows}


def test_the_dashboard_shows_the_numbers_of_ledger_summary_for_the_scope_only(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/dashboard?month=2026-03")
    assert page.status_code == 200
    cells = dashboard_cells(page.text)
    now = cli_summary(site, "sup-hj", "--by", "community", "--township", HJ, "--period", "2026-03")
    before = cli_summary(site, "sup-hj", "--by", "community", "--township", HJ, "--period", "2026-02")
    want = {
        str(a["community"]): [a["records"], a["minutes"], a["residents_served"], b["records"], b["minutes"], b["residents_served"]]
        for a, b in zip(now, before, strict=True)
    }  # fmt: skip
    assert cells == want
    assert set(cells) == {"HZ-001", "HZ-002"}  # not QT-2, another township's
    assert "QT-2" not in page.text


def test_the_api_summary_equals_ledger_summary_json(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    r = client.get("/api/v1/summary", params={"by": "community", "township": HJ, "period": "2026-03"})
    assert r.status_code == 200, r.text
    assert r.json() == cli_summary(site, "sup-hj", "--by", "community", "--township", HJ, "--period", "2026-03")
    r = client.get("/api/v1/summary", params={"by": "community", "period": "2026-03"})  # no unit: the scope's
    assert r.json() == cli_summary(site, "sup-hj", "--by", "community", "--township", HJ, "--period", "2026-03")


def test_another_townships_unit_is_refused(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    for url in ("/ledger?community=QT-2", "/ledger.csv?county=八步区", "/dashboard?community=QT-2"):
        r = client.get(url)
        assert r.status_code == 403, url
        assert "permission denied" in r.text or "权限" in r.text or "无权" in r.text
    r = client.get("/api/v1/entries", params={"community": "QT-2"})
    assert r.status_code == 403 and list(r.json()) == ["detail"]
    r = client.get("/api/v1/summary", params={"township": "八步区/桂岭镇"}, headers={"Accept-Language": "en"})
    assert r.status_code == 403 and r.json()["detail"].startswith("permission denied")


def test_the_ledger_page_and_its_csv_equal_ledger_entries(site: Site, client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/ledger", params={"period": "2026-03", "kind": "生活照料"})
    assert page.status_code == 200
    csv = client.get("/ledger.csv", params={"township": HJ, "period": "2026-03", "kind": "life_care"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    site.cli.ok("projections", "run", actor="boss")
    want = site.cli.ok(
        "ledger", "entries", "--township", HJ, "--period", "2026-03", "--kind", "life_care", "--format", "csv",
        actor="sup-hj",
    ).stdout  # fmt: skip
    assert csv.text == want
    records = want.count("\n") - 1
    assert f"共 {records} 条" in page.text
    entries = client.get("/api/v1/entries", params={"period": "2026-03"}).json()
    as_cli = orjson.loads(
        site.cli.ok(
            "ledger", "entries", "--township", HJ, "--period", "2026-03", "--format", "json", actor="sup-hj"
        ).stdout
    )
    assert entries == as_cli


def test_the_ledger_page_is_paginated(client: TestClient) -> None:
    import commands.web.app as web

    assert log_in(client, "sup-hj").status_code == 303
    saved, web.PAGE_SIZE = web.PAGE_SIZE, 1
    try:
        first = client.get("/ledger", params={"period": "2026-03"})
        assert "第 1 页，共 " in first.text and "page=2" in first.text
    finally:
        web.PAGE_SIZE = saved


def test_a_clerk_records_a_service_once_and_sees_it(site: Site, client: TestClient) -> None:
    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk")
    assert page.status_code == 200
    assert 'name="record_id" value="' in page.text and "生活照料" in page.text
    record_id = str(uuid.uuid4())
    form = {"csrf": csrf_of(page.text), "community": "HZ-002", "kind": "life_care", "resident": "张秀英",
            "provider": "P1", "at": "2026-03-20T10:00", "minutes": "25", "record_id": record_id}  # fmt: skip
    first = client.post("/clerk/record", data=form)
    assert first.status_code == 200 and "已登记" in first.text, first.text
    second = client.post("/clerk/record", data=form)  # a double submit: the same record id
    assert second.status_code == 200 and "此前已登记" in second.text
    assert log_in(client, "sup-hj").status_code == 303
    entries = client.get("/api/v1/entries", params={"community": "HZ-002", "period": "2026-03"}).json()
    mine = [e for e in entries if e["record_id"] == record_id]
    assert len(mine) == 1 and mine[0]["residents"] == ["R1"] and mine[0]["recorded_by"] == "clerk-hj"
    cells = dashboard_cells(client.get("/dashboard?month=2026-03").text)
    now = cli_summary(site, "sup-hj", "--by", "community", "--community", "HZ-002", "--period", "2026-03")
    assert cells["HZ-002"][:3] == [now[0]["records"], now[0]["minutes"], now[0]["residents_served"]]


def test_a_clerk_form_with_bad_input_says_which_field(client: TestClient) -> None:
    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk")
    form = {"csrf": csrf_of(page.text), "community": "HZ-001", "kind": "life_care", "resident": "R1",
            "provider": "P1", "at": "2026-03-20T10:00", "minutes": "5000", "record_id": str(uuid.uuid4())}  # fmt: skip
    r = client.post("/clerk/record", data=form)
    assert r.status_code == 422 and "5000" in r.text
    r = client.post("/clerk/record", data={**form, "minutes": "30", "community": "QT-2"})
    assert r.status_code == 403


def test_the_api_records_idempotently_and_answers_with_status_codes(client: TestClient) -> None:
    assert log_in(client, "clerk-hj").status_code == 303
    token = csrf_of(client.get("/clerk").text)
    headers = {"X-CSRF-Token": token, "Accept-Language": "en"}
    record_id = str(uuid.uuid4())
    body = {"community": "HZ-001", "kind": "counseling", "resident": ["R2"], "provider": ["P1"],
            "at": "2026-03-21 09:00", "minutes": 40, "record_id": record_id}  # fmt: skip
    r = client.post("/api/v1/records", json=body, headers=headers)
    assert r.status_code == 201 and r.json() == {"record_id": record_id, "created": True}
    r = client.post("/api/v1/records", json=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"record_id": record_id, "created": False}
    r = client.post("/api/v1/records", json={**body, "minutes": 41}, headers=headers)
    assert r.status_code == 409 and "already recorded" in r.json()["detail"]
    r = client.post(
        "/api/v1/records", json={**body, "minutes": "many", "record_id": str(uuid.uuid4())}, headers=headers
    )
    assert r.status_code == 422 and "minutes" in r.json()["detail"] and "many" in r.json()["detail"]
    r = client.post("/api/v1/records", json={**body, "record_id": "not-a-uuid"}, headers=headers)
    assert r.status_code == 422 and "record_id" in r.json()["detail"] and "not-a-uuid" in r.json()["detail"]
    r = client.post(
        "/api/v1/records", json={**body, "resident": ["R9"], "record_id": str(uuid.uuid4())}, headers=headers
    )
    assert r.status_code == 404 and "R9" in r.json()["detail"]
    r = client.post(
        "/api/v1/records", json={**body, "community": "QT-2", "record_id": str(uuid.uuid4())}, headers=headers
    )
    assert r.status_code == 403
    r = client.post("/api/v1/records", json={**body, "record_id": str(uuid.uuid4())}, headers={"X-CSRF-Token": token})
    assert r.status_code == 201  # Chinese by default
    r = client.post(
        "/api/v1/records", json={**body, "minutes": 0, "record_id": str(uuid.uuid4())}, headers={"X-CSRF-Token": token}
    )
    assert r.status_code == 422 and "时长" in r.json()["detail"]


def test_a_supervisor_may_not_record(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    token = csrf_of(client.get("/dashboard?month=2026-03").text)
    body = {"community": "HZ-001", "kind": "counseling", "resident": ["R2"], "provider": ["P1"],
            "at": "2026-03-21 09:00", "minutes": 40, "record_id": str(uuid.uuid4())}  # fmt: skip
    r = client.post("/api/v1/records", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 403


def test_pages_are_chinese_by_default_with_an_english_switch(client: TestClient) -> None:
    assert "登录" in client.get("/login").text
    r = client.get("/lang/en")
    assert r.status_code == 303
    assert ">Log in<" in client.get("/login").text
    assert log_in(client, "sup-hj").status_code == 303
    assert ">Dashboard" in client.get("/dashboard?month=2026-03").text


def _cells(data: bytes) -> list[list[list[object]]]:
    import io

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data))
    return [[[cell.value for cell in row] for row in sheet.iter_rows()] for sheet in book.worksheets]


@pytest.mark.clock  # the printed sheet's heading names today's date, on both sides
def test_the_xlsx_download_equals_ledger_entries_xlsx(site: Site, client: TestClient, tmp_path: Path) -> None:
    site.cli.ok("projections", "run", actor="boss")  # both sides read the same views
    assert log_in(client, "sup-hj").status_code == 303
    r = client.get("/ledger.xlsx", params={"period": "2026-03"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    out = tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.xlsx"
    site.cli.ok(
        "--lang", "zh", "ledger", "entries", "--township", HJ, "--period", "2026-03", "--format", "xlsx",
        "--output", str(out), actor="sup-hj",
    )  # fmt: skip
    web, cli = _cells(r.content), _cells(out.read_bytes())
    # The subtitle names the moment each was printed ("数据截至" now, to the second): the rest is equal.
    subtitles = [sheet.pop(1) for sheet in (web[0], cli[0])]
    assert all(str(row[0]).startswith("打印日期：") for row in subtitles), subtitles
    assert web == cli
    assert "张秀英" in str(_cells(r.content))  # names beside the codes, as the CLI prints them with the key


def test_pages_and_downloads_that_show_residents_are_access_logged(site: Site, client: TestClient) -> None:
    def logged() -> list[dict[str, object]]:
        return list(orjson.loads(site.cli.ok("audit", "access", "--format", "json", actor="auditor").stdout))

    before = len(logged())
    assert log_in(client, "sup-hj").status_code == 303
    for url in ("/ledger?period=2026-03", "/ledger.csv?period=2026-03", "/api/v1/entries?period=2026-03"):
        assert client.get(url).status_code == 200
    mine = [e for e in logged()[before:] if e["command"] == "web ledger entries"]
    assert len(mine) == 3 and all(e["actor"] == "sup-hj" and int(e["residents"]) >= 1 for e in mine)  # type: ignore[call-overload]


@pytest.mark.clock  # "today" is the store's today
def test_the_clerk_page_lists_todays_entries(site: Site, client: TestClient) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk")
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(second=0, microsecond=0)
    default = re.search(r'name="at" type="datetime-local" required value="([^"]+)"', page.text)
    assert default and abs((datetime.fromisoformat(default.group(1)) - now.replace(tzinfo=None)).total_seconds()) < 120
    form = {"csrf": csrf_of(page.text), "community": "HZ-001", "kind": "family_care", "resident": "R2",
            "provider": "P1", "at": default.group(1), "minutes": "12", "record_id": str(uuid.uuid4())}  # fmt: skip
    done = client.post("/clerk/record", data=form)
    assert done.status_code == 200, done.text
    today = done.text.split('id="today"', 1)[1]
    assert "亲情关怀" in today and ">12<" in today and "clerk-hj" in today


def test_each_ledger_page_is_the_matching_slice_of_ledger_entries(
    site: Site, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database sorts, skips and counts (projections.queries.entries_page): each page holds the
    rows `ledger entries --format json` lists at its place, unfiltered (the city) and filtered."""
    import commands.web.app as web
    from commands.output import render_json
    from projections.filters import ENTRY_FIELDS

    monkeypatch.setattr(web, "PAGE_SIZE", 2)
    assert log_in(client, "sup-city").status_code == 303
    door = client.app.state.door  # type: ignore[attr-defined]
    actor = door.actor("sup-city")
    site.cli.ok("projections", "run", actor="boss")
    for query, args in (
        ({}, ()),
        ({"period": "2026-03", "include_voided": "1"}, ("--period", "2026-03", "--include-voided")),
    ):
        want = orjson.loads(site.cli.ok("ledger", "entries", *args, "--format", "json", actor="sup-city").stdout)
        assert len(want) >= 3
        pages = -(-len(want) // 2)
        for page in range(1, pages + 2):  # and one past the end: empty
            rows, total = web.entry_page(door, door.env_for("sup-city", "zh"), actor, web._Query(query), page)
            assert total == len(want)
            assert (
                orjson.loads(render_json([{f: r.get(f) for f in ENTRY_FIELDS} for r in rows]))
                == want[(page - 1) * 2 : page * 2]
            )
            html = client.get("/ledger", params={**query, "page": str(page)}).text
            assert f"共 {len(want)} 条" in html
            assert len(re.findall(r"<tr><td>", html)) == len(want[(page - 1) * 2 : page * 2])


def test_reads_are_kept_while_the_store_stands_still_and_the_access_log_is_written_each_time(
    site: Site, client: TestClient
) -> None:
    def logged() -> int:
        entries = orjson.loads(site.cli.ok("audit", "access", "--format", "json", actor="auditor").stdout)
        return sum(1 for e in entries if e["command"] == "web ledger entries" and e["actor"] == "sup-hj")

    urls = ("/dashboard?month=2026-03", "/ledger?period=2026-03", "/api/v1/summary?period=2026-03")
    assert log_in(client, "sup-hj").status_code == 303
    door = client.app.state.door  # type: ignore[attr-defined]
    first = [client.get(url).text for url in urls]
    computed, shown = door.reads.computed, logged()
    again = [client.get(url).text for url in urls]
    assert door.reads.computed == computed  # the same answers, none computed again...
    assert again[1:] == first[1:] and dashboard_cells(again[0]) == dashboard_cells(first[0])
    assert logged() == shown + 1  # ...but the page that shows residents is logged each time it is shown
    records = dashboard_cells(first[0])["HZ-002"][0]
    site.cli.ok("service", "record", "HZ-002", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
                "--at", "2026-03-21 09:00", "--minutes", "5", "--record-id", str(uuid.uuid4()), actor="clerk-city")  # fmt: skip
    site.cli.ok("projections", "run", actor="boss")
    assert dashboard_cells(client.get(urls[0]).text)["HZ-002"][0] == records + 1  # the store moved: read afresh
    assert door.reads.computed == computed + 1
