"""The clerk corrects and voids records and uploads a spreadsheet (report, then confirm); the API does the same."""

from __future__ import annotations

import uuid

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import Site, csrf_of, log_in

SHEET = (
    "社区,服务类型,服务对象,服务人员,服务时间,时长(分钟),序号x\n"
    + "HZ-001,生活照料,R1,P1,2026-03-{day} 09:00,{minutes},1\n"
)


def record(site: Site, community: str = "HZ-001") -> str:
    rid = str(uuid.uuid4())
    site.cli.ok("service", "record", community, "--kind", "life_care", "--resident", "R1", "--provider", "P1",
                "--at", "2026-03-09 09:00", "--minutes", "30", "--record-id", rid, actor="clerk-city")  # fmt: skip
    return rid


def entry(site: Site, rid: str, community: str = "HZ-001") -> dict[str, object] | None:
    site.cli.ok("projections", "run", actor="boss")
    rows = orjson.loads(site.cli.ok("ledger", "entries", "--community", community, "--include-voided",
                                    "--format", "json", actor="boss").stdout)  # fmt: skip
    return next((r for r in rows if r["record_id"] == rid), None)


def test_a_clerk_corrects_then_voids_a_record_with_the_clis_refusals(site: Site, client: TestClient) -> None:
    rid = record(site)
    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk/fix", params={"community": "HZ-001", "record_id": rid})
    assert page.status_code == 200 and "保存更正" in page.text
    form = {"csrf": csrf_of(page.text), "community": "HZ-001", "record_id": rid, "reason": "时长登记有误"}
    r = client.post("/clerk/correct", data=form)
    assert r.status_code == 422, r.text  # nothing to change
    r = client.post("/clerk/correct", data={**form, "minutes": "5000"})
    assert r.status_code == 422 and "5000" in r.text
    r = client.post("/clerk/correct", data={**form, "minutes": "50"})
    assert r.status_code == 200 and "已更正" in r.text, r.text
    found = entry(site, rid)
    assert found is not None and found["minutes"] == 50 and found["revision"] == 2
    r = client.post("/clerk/void", data={**form, "reason": "重复登记"})
    assert r.status_code == 200 and "已作废" in r.text
    assert (entry(site, rid) or {})["status"] == "voided"
    again = client.post("/clerk/void", data={**form, "reason": "重复登记"})
    assert again.status_code == 409
    unknown = client.post("/clerk/void", data={**form, "record_id": str(uuid.uuid4())})
    assert unknown.status_code == 404
    elsewhere = client.post("/clerk/void", data={**form, "community": "QT-2"})
    assert elsewhere.status_code == 403
    forged = client.post("/clerk/correct", data={**form, "minutes": "40", "csrf": "x"})
    assert forged.status_code == 403


def upload(client: TestClient, csrf: str, body: str, **options: str) -> object:
    files = {"file": ("三月台账.csv", body.encode("utf-8"), "text/csv")}
    return client.post("/clerk/import", data={"csrf": csrf, **options}, files=files)


def test_an_upload_is_reported_before_it_is_imported_and_imported_once(site: Site, client: TestClient) -> None:
    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk/import")
    assert page.status_code == 200 and "检查文件" in page.text
    csrf = csrf_of(page.text)
    minutes = 11 + uuid.uuid4().int % 400  # a sheet of its own (rows without record ids)
    good = (
        SHEET.format(day="11", minutes=minutes)
        + SHEET.split("\n", 1)[1].format(day="12", minutes=minutes)
        + "合计,,,,,,\n"
    )
    r = upload(client, csrf, good)
    assert r.status_code == 200, r.text
    assert "新增 2 条，已有 0 条，跳过 0 条" in r.text and "未导入的列：序号x" in r.text and "跳过的表尾行：1" in r.text
    assert 'name="upload"' in r.text
    before = orjson.loads(
        site.cli.ok("ledger", "entries", "--community", "HZ-001", "--format", "json", actor="boss").stdout
    )
    confirm = {"csrf": csrf, "upload": r.text.split('name="upload" value="', 1)[1].split('"', 1)[0]}
    assert log_in(client, "sup-hj").status_code == 303  # only the clerk who uploaded may confirm
    assert (
        client.post(
            "/clerk/import/confirm", data={**confirm, "csrf": csrf_of(client.get("/dashboard").text)}
        ).status_code
        == 403
    )
    assert log_in(client, "clerk-hj").status_code == 303
    confirm["csrf"] = csrf_of(client.get("/clerk/import").text)
    done = client.post("/clerk/import/confirm", data=confirm)
    assert done.status_code == 200 and "新增 2 条" in done.text, done.text
    site.cli.ok("projections", "run", actor="boss")
    after = orjson.loads(
        site.cli.ok("ledger", "entries", "--community", "HZ-001", "--format", "json", actor="boss").stdout
    )
    assert len(after) == len(before) + 2
    assert client.post("/clerk/import/confirm", data=confirm).status_code == 403  # used: gone
    again = upload(client, confirm["csrf"], good)
    assert "新增 0 条，已有 2 条" in again.text


def test_a_bad_row_is_reported_and_nothing_can_be_confirmed(client: TestClient) -> None:
    assert log_in(client, "clerk-hj").status_code == 303
    csrf = csrf_of(client.get("/clerk/import").text)
    bad = SHEET.format(day="13", minutes="30") + "HZ-001,生活照料,R1,P1,2026-03-13 10:00,5000,2\n"
    r = upload(client, csrf, bad)
    assert r.status_code == 200 and "第 3 行" in r.text and "5000" in r.text
    assert 'name="upload"' not in r.text
    from commands.web import uploads

    kept_before = sorted(uploads.folder().iterdir())
    outside = upload(client, csrf, SHEET.replace("HZ-001", "QT-2").format(day="13", minutes="30"))
    assert outside.status_code == 403
    assert sorted(uploads.folder().iterdir()) == kept_before  # a refused upload is not left on disk
    wrong = client.post("/clerk/import", data={"csrf": csrf}, files={"file": ("a.txt", b"x", "text/plain")})
    assert wrong.status_code == 422 and ".txt" in wrong.text
    bad_year = upload(client, csrf, SHEET.format(day="13", minutes="30"), year="99")
    assert bad_year.status_code == 422 and "99" in bad_year.text


def test_an_upload_past_the_size_limit_is_refused_with_a_clear_message(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands.web import uploads

    monkeypatch.setattr(uploads, "MAX_BYTES", 1024 * 1024)
    assert log_in(client, "clerk-hj").status_code == 303
    csrf = csrf_of(client.get("/clerk/import").text)
    big = SHEET.format(day="14", minutes="30") + "x" * (2 * 1024 * 1024)
    r = upload(client, csrf, big)
    assert r.status_code == 422 and "超过 1 MB" in r.text


def test_the_api_corrects_voids_and_imports_with_the_clis_semantics(site: Site, client: TestClient) -> None:
    rid = record(site)
    assert log_in(client, "clerk-hj").status_code == 303
    headers = {"X-CSRF-Token": csrf_of(client.get("/clerk").text), "Accept-Language": "en"}
    body = {"community": "HZ-001", "record_id": rid, "reason": "fix"}
    r = client.post("/api/v1/corrections", json={**body, "minutes": "abc"}, headers=headers)
    assert r.status_code == 422 and "minutes" in r.json()["detail"] and "abc" in r.json()["detail"]
    r = client.post("/api/v1/corrections", json={**body, "minutes": 35}, headers=headers)
    assert r.status_code == 200 and r.json() == {"record_id": rid, "revision": 2}
    assert client.post("/api/v1/corrections", json={**body, "minutes": 35}, headers={}).status_code == 403  # no CSRF
    assert (
        client.post("/api/v1/voids", json={**body, "record_id": str(uuid.uuid4())}, headers=headers).status_code == 404
    )
    assert client.post("/api/v1/voids", json={**body, "community": "QT-2"}, headers=headers).status_code == 403
    assert client.post("/api/v1/voids", json=body, headers=headers).json() == {"record_id": rid, "status": "voided"}
    again = client.post("/api/v1/voids", json=body, headers=headers)
    assert again.status_code == 409 and list(again.json()) == ["detail"]
    sheet = SHEET.format(day="15", minutes=11 + uuid.uuid4().int % 400).encode()
    files = {"file": ("march.csv", sheet, "text/csv")}
    dry = client.post("/api/v1/imports", data={"dry_run": "true"}, files=files, headers=headers)
    assert dry.status_code == 200 and dry.json()["added"] == 1 and dry.json()["problems"] == []
    first = client.post("/api/v1/imports", files=files, headers=headers)
    assert first.status_code == 200 and first.json()["added"] == 1
    second = client.post("/api/v1/imports", files=files, headers=headers)
    assert (
        second.json()["added"] == 0
        and second.json()["existing"] == 1
        and second.json()["digest"] == first.json()["digest"]
    )
    bad = {"file": ("bad.csv", SHEET.format(day="15", minutes="0").encode(), "text/csv")}
    refused = client.post("/api/v1/imports", files=bad, headers=headers)
    assert refused.status_code == 422 and refused.json()["problems"][0].startswith("row 2: minutes")


def test_the_api_writes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for path in ("/api/v1/corrections", "/api/v1/voids", "/api/v1/imports"):
        assert "requestBody" in paths[path]["post"], path
