"""The admins' page: actors listed; add, revoke, password, token — the services of `actor …`, its rules, its log."""

from __future__ import annotations

import uuid

import orjson
from fastapi.testclient import TestClient

from tests.web.conftest import ADMIN, PASSWORD, Site, csrf_of, log_in


def test_admins_list_add_set_a_password_issue_and_revoke_a_token_and_revoke_an_actor(
    site: Site, client: TestClient
) -> None:
    assert log_in(client, ADMIN).status_code == 303
    page = client.get("/admin")
    assert page.status_code == 200 and 'data-actor="sup-hj"' in page.text and "贺街镇" in page.text
    csrf = csrf_of(page.text)
    name = f"clerk-{uuid.uuid4().hex[:6]}"
    bad = client.post("/admin/add", data={"csrf": csrf, "name": name, "role": "clerk", "scope": "village:x"})
    assert bad.status_code == 422 and "village:x" in bad.text
    added = client.post("/admin/add", data={"csrf": csrf, "name": name, "role": "clerk", "scope": "community:HZ-001"})
    assert added.status_code == 200 and f'data-actor="{name}"' in added.text, added.text
    again = client.post("/admin/add", data={"csrf": csrf, "name": name, "role": "clerk", "scope": "community:HZ-001"})
    assert again.status_code == 409
    differ = client.post("/admin/password", data={"csrf": csrf, "name": name, "password": PASSWORD, "repeat": "x"})
    assert differ.status_code == 422
    short = client.post("/admin/password", data={"csrf": csrf, "name": name, "password": "short", "repeat": "short"})
    assert short.status_code == 422
    ok = client.post("/admin/password", data={"csrf": csrf, "name": name, "password": PASSWORD, "repeat": PASSWORD})
    assert ok.status_code == 200 and "已设置" in ok.text or "密码" in ok.text
    issued = client.post("/admin/token", data={"csrf": csrf, "name": name, "days": "7"})
    assert issued.status_code == 200
    token = issued.text.split('<code id="token">', 1)[1].split("<", 1)[0]
    assert client.get("/admin").text.count(token) == 0  # shown once
    bearer = {"Authorization": f"Bearer {token}"}  # a bearer token is what /api/v1 reads first
    assert client.get("/api/v1/entries", params={"community": "HZ-001"}, headers=bearer).status_code == 200
    token_id = token.split("_")[1]
    revoked = client.post("/admin/token", data={"csrf": csrf, "name": name, "token_id": token_id})
    assert revoked.status_code == 200
    assert client.get("/api/v1/entries", params={"community": "HZ-001"}, headers=bearer).status_code == 401
    gone = client.post("/admin/revoke", data={"csrf": csrf, "name": name, "reason": "调离岗位"})
    assert gone.status_code == 200
    assert log_in(client, name).status_code == 401
    site.cli.ok("projections", "run", actor=ADMIN)
    log = orjson.loads(site.cli.ok("audit", "access", "--format", "json", actor="auditor").stdout)
    commands = [(e.get("command"), e.get("actor")) for e in log]
    assert ("actor password", ADMIN) in commands and ("actor token", ADMIN) in commands
    listed = orjson.loads(site.cli.ok("actor", "list", "--format", "json", actor=ADMIN).stdout)
    assert [a["status"] for a in listed if a["actor"] == name] == ["revoked"]


def test_only_admins_change_actors_auditors_read_them_others_see_nothing(client: TestClient) -> None:
    assert log_in(client, "auditor").status_code == 303
    page = client.get("/admin")
    assert page.status_code == 200 and 'action="/admin/add"' not in page.text
    form = {"csrf": csrf_of(page.text), "name": "x1", "role": "clerk", "scope": "city"}
    assert client.post("/admin/add", data=form).status_code == 403
    assert client.post("/admin/token", data={**form, "name": "sup-hj"}).status_code == 403
    assert log_in(client, "sup-hj").status_code == 303
    assert client.get("/admin").status_code == 403


def test_an_admin_form_without_its_csrf_token_is_refused(client: TestClient) -> None:
    assert log_in(client, ADMIN).status_code == 303
    r = client.post("/admin/revoke", data={"csrf": "forged", "name": "sup-city", "reason": "x"})
    assert r.status_code == 403
