"""The clerk's name pickers (POST /clerk/names): the community's active people matching what is
typed, resolved by commands.names as `service record --resident NAME` is, access-logged as that
lookup is, under `service record`'s access rule; the forms work without them. Both stores."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.web.conftest import Site, csrf_of, log_in


def ask(client: TestClient, csrf: str, **body: Any) -> Any:
    return client.post("/clerk/names", content=orjson.dumps(body),
                       headers={"Content-Type": "application/json", "X-CSRF-Token": csrf})  # fmt: skip


def clerk(client: TestClient) -> str:
    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk")
    assert page.status_code == 200
    return csrf_of(page.text)


def logged(site: Site) -> list[dict[str, Any]]:
    return list(orjson.loads(site.cli.ok("audit", "access", "--format", "json", actor="auditor").stdout))


def test_the_picker_finds_by_name_or_code_as_service_record_resolves(site: Site, client: TestClient) -> None:
    from commands.names import normalise

    csrf = clerk(client)
    r = ask(client, csrf, community="HZ-001", who="residents", text="张")
    assert r.status_code == 200, r.text
    assert r.json() == {"matches": [{"code": "R1", "name": "张秀英"}]}
    assert ask(client, csrf, community="HZ-001", who="resident", text="秀").json()["matches"] == [
        {"code": "R1", "name": "张秀英"}
    ]  # contains
    by_code = ask(client, csrf, community="HZ-001", who="residents", text="r").json()["matches"]
    assert [m["code"] for m in by_code] == ["R1", "R2"]  # codes start with it; by code
    providers = ask(client, csrf, community="HZ-001", who="providers", text="李建").json()["matches"]
    assert providers == [{"code": "P1", "name": "李建国"}]
    assert ask(client, csrf, community="HZ-001", who="residents", text="赵").json() == {"matches": []}
    # the code it offers is the one `service record --resident NAME` records
    record_id = str(uuid.uuid4())
    site.cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "张秀英", "--provider", "李建国",
                "--at", "2026-03-11 09:00", "--minutes", "10", "--record-id", record_id, actor="clerk-hj")  # fmt: skip
    site.cli.ok("projections", "run", actor="boss")
    rows = orjson.loads(site.cli.ok("ledger", "entries", "--community", "HZ-001", "--format", "json",
                                    actor="sup-hj").stdout)  # fmt: skip
    row = next(r for r in rows if r["record_id"] == record_id)
    assert row["residents"] == ["R1"] and row["providers"] == ["P1"]
    assert normalise(" 张 ") == "张"


def test_a_departed_resident_is_not_offered_and_at_most_ten_are(site: Site, client: TestClient) -> None:
    for i in range(12):
        site.cli.ok("resident", "enroll", "HZ-002", f"K{i:02d}", "--name", f"陈{i:02d}", actor="clerk-city")
    site.cli.ok("resident", "depart", "HZ-002", "K00", "--reason", "moved", "--on", "2026-03-01", actor="clerk-city")
    csrf = clerk(client)
    found = ask(client, csrf, community="HZ-002", who="residents", text="陈").json()["matches"]
    assert len(found) == 10 and "K00" not in [m["code"] for m in found]
    assert [m["code"] for m in found] == [f"K{i:02d}" for i in range(1, 11)]


def test_the_picker_is_access_logged_as_a_name_lookup(site: Site, client: TestClient) -> None:
    csrf = clerk(client)
    before = len(logged(site))
    assert ask(client, csrf, community="HZ-001", who="residents", text="张秀").status_code == 200
    assert ask(client, csrf, community="HZ-001", who="providers", text="李").status_code == 200  # providers: not logged
    mine = logged(site)[before:]
    picks = [e for e in mine if e["command"] == "web name picker"]
    assert len(picks) == 1 and picks[0]["actor"] == "clerk-hj" and int(picks[0]["residents"]) == 1
    assert "张" not in orjson.dumps(mine).decode()  # the typed text is never logged
    # the CLI's own name lookup logs the same resident
    site.cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "张秀英", "--provider", "P1",
                "--at", "2026-03-12 09:00", "--minutes", "10", "--record-id", str(uuid.uuid4()),
                actor="clerk-hj")  # fmt: skip
    cli = [e for e in logged(site)[before:] if e["command"] == "service record"]
    assert cli and int(cli[-1]["residents"]) == int(picks[0]["residents"])


def test_the_picker_follows_service_records_rule_and_needs_the_csrf_header(client: TestClient) -> None:
    csrf = clerk(client)
    assert ask(client, csrf, community="QT-2", who="residents", text="张").status_code == 403  # another township
    assert ask(client, "", community="HZ-001", who="residents", text="张").status_code == 403  # no CSRF header
    assert ask(client, csrf, community="HZ-001", who="nobody", text="张").status_code == 422
    bad = ask(client, csrf, community="HZ-001", who="residents", text="张" * 51)
    assert bad.status_code == 422 and "text" in bad.text
    assert ask(client, csrf, who="residents", text="张").status_code == 422  # no community
    client.post("/logout", data={"csrf": csrf})
    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/dashboard")
    assert ask(client, csrf_of(page.text), community="HZ-001", who="residents", text="张").status_code == 403


def test_the_forms_carry_the_pickers_and_work_without_them(site: Site, client: TestClient) -> None:
    csrf = clerk(client)
    page = client.get("/clerk").text
    assert re.search(r'<input name="resident"[^>]*data-picker="residents"', page)
    assert re.search(r'<input name="provider"[^>]*data-picker="providers"', page)
    assert '<script src="/static/picker.js"></script>' in page and "<script>" not in page
    assert client.get("/static/picker.js").status_code == 200
    record_id = str(uuid.uuid4())
    done = client.post("/clerk/record", data={"csrf": csrf, "record_id": record_id, "community": "HZ-001",
                                              "kind": "life_care", "resident": "张秀英", "provider": "李建国",
                                              "at": "2026-03-13T09:00", "minutes": "15"})  # fmt: skip
    assert done.status_code == 200 and "已登记" in done.text, done.text[-2000:]
    fix = client.get("/clerk/fix", params={"community": "HZ-001", "record_id": record_id}).text
    assert 'data-picker="residents" data-community="HZ-001"' in fix and "/static/picker.js" in fix
