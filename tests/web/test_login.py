"""Logins, sessions, CSRF, throttling and the access log of the web door, on both stores."""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import backend_of
from tests.web.conftest import ADMIN, PASSWORD, Site, csrf_of, log_in, login_args, main_cli


def access_log(site: Site) -> list[dict[str, object]]:
    result = site.cli.ok("audit", "access", "--format", "json", actor="auditor")
    return list(orjson.loads(result.stdout))


def test_a_login_opens_a_session_in_a_strict_httponly_cookie(client: TestClient) -> None:
    r = log_in(client, "sup-hj")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "tz_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/").headers["location"] == "/dashboard"
    assert client.get("/dashboard?month=2026-03").status_code == 200


def test_a_wrong_password_or_an_unknown_actor_is_refused_and_logged(site: Site, client: TestClient) -> None:
    before = len(access_log(site))
    for actor, password in (("sup-hj", "not the password"), ("nobody", PASSWORD)):
        r = log_in(client, actor, password)
        assert r.status_code == 401
        assert "操作人或密码不正确" in r.text
        assert "tz_session" not in r.headers.get("set-cookie", "")
    assert client.get("/dashboard").status_code == 303  # still not logged in
    entries = access_log(site)[before:]
    failed = [e for e in entries if e["command"] == "web login" and str(e["detail"]).startswith("failed")]
    assert [e["actor"] for e in failed] == ["sup-hj", "nobody"]


def test_logins_are_throttled_per_actor_and_per_address(site: Site, client: TestClient) -> None:
    for _ in range(5):
        assert log_in(client, "sup-city", "wrong wrong wrong").status_code == 401
    r = log_in(client, "sup-city")  # the right password, too late
    assert r.status_code == 429
    assert "登录失败次数过多" in r.text
    r = log_in(client, "auditor")  # the same address, another actor: the address is throttled too
    assert r.status_code == 429
    with site.client() as other:  # another server process counts the same failures (they are in the store)
        assert log_in(other, "sup-city").status_code == 429
        other.app.state.door.close()  # type: ignore[attr-defined]
    later = time.time() + 16 * 60  # a quarter of an hour later
    client.app.state.door.throttle.clock = lambda: later  # type: ignore[attr-defined]
    assert log_in(client, "sup-city").status_code == 303
    assert any(e["command"] == "web login" and "too many" in str(e["detail"]) for e in access_log(site))


def test_login_and_logout_are_in_the_access_log(site: Site, client: TestClient) -> None:
    before = len(access_log(site))
    assert log_in(client, "sup-hj").status_code == 303
    page = client.get("/dashboard?month=2026-03")
    r = client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/dashboard").status_code == 303  # the session is gone
    commands = [(e["actor"], e["command"]) for e in access_log(site)[before:]]
    assert ("sup-hj", "web login") in commands and ("sup-hj", "web logout") in commands


def test_a_form_without_its_csrf_token_is_refused(client: TestClient) -> None:
    page = client.get("/login")
    assert client.post("/login", data={"actor": "sup-hj", "password": PASSWORD}).status_code == 403
    assert client.post("/login", data={"actor": "sup-hj", "password": PASSWORD, "csrf": "forged"}).status_code == 403
    assert csrf_of(page.text)
    assert log_in(client, "clerk-hj").status_code == 303
    form = {"community": "HZ-001", "kind": "life_care", "resident": "R1", "provider": "P1",
            "at": "2026-03-10T10:00", "minutes": "30", "record_id": "0b7f6f0e-6c57-4a8e-9a55-3f2d7c0b0001"}  # fmt: skip
    assert client.post("/clerk/record", data=form).status_code == 403
    assert client.post("/clerk/record", data={**form, "csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    r = client.post("/api/v1/records", json=form)  # the API under a session needs the token in a header
    assert r.status_code == 403


def test_a_revoked_actor_is_logged_out_at_once(site: Site, client: TestClient) -> None:
    assert log_in(client, "gone").status_code == 303
    assert client.get("/clerk").status_code == 200
    door = client.app.state.door  # type: ignore[attr-defined]
    replays = door.replays
    assert client.get("/clerk").status_code == 200
    assert door.replays == replays  # the actors are kept while the log stands still...
    site.cli.ok("actor", "revoke", "gone", "--reason", "调离岗位", actor=ADMIN)  # ...and a revocation moves it
    r = client.get("/clerk")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert client.get("/api/v1/summary").status_code == 401
    assert log_in(client, "gone").status_code == 401  # and can never log in again


def test_the_actors_are_replayed_only_when_they_change(site: Site, client: TestClient) -> None:
    import uuid

    assert log_in(client, "sup-hj").status_code == 303
    door = client.app.state.door  # type: ignore[attr-defined]
    assert client.get("/api/v1/summary").status_code == 200
    replays = door.replays
    for _ in range(3):  # the log unchanged: who is asking and the policy take no replay
        assert client.get("/api/v1/summary").status_code == 200
    assert door.replays == replays
    site.cli.ok("service", "record", "HZ-001", "--kind", "life_care", "--resident", "R1", "--provider", "P1",
                "--at", "2026-03-09 09:00", "--minutes", "5", "--record-id", str(uuid.uuid4()), actor="clerk-city")  # fmt: skip
    assert client.get("/api/v1/summary").status_code == 200
    assert door.replays == replays  # the log moved, the actors did not: still no replay
    name = f"sup-{uuid.uuid4().hex[:6]}"
    site.cli.ok("actor", "add", name, "--role", "supervisor", "--scope", "city", *login_args(site.url), actor=ADMIN)
    assert client.get("/api/v1/summary").status_code == 200
    assert client.get("/api/v1/summary").status_code == 200
    assert door.replays == replays + 1  # an actor added: replayed once, then kept again


def test_idle_sessions_expire(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    client.app.state.door.idle = -1  # type: ignore[attr-defined]
    assert client.get("/dashboard").status_code == 303


def test_actor_password_is_asked_twice_stored_hashed_and_logged(site: Site) -> None:
    result = site.cli.runner.invoke(
        main_cli, ["--db", site.url, "--key-file", str(site.key), "--actor", ADMIN, "actor", "password", "sup-hj"],
        input="short\nshort\n",
    )  # fmt: skip
    assert result.exit_code == 2 and "at least 10 characters" in result.output
    result = site.cli.runner.invoke(
        main_cli, ["--db", site.url, "--key-file", str(site.key), "--actor", ADMIN, "actor", "password", "nobody"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 1 and "nobody is not known" in result.output
    result = site.cli.runner.invoke(
        main_cli, ["--db", site.url, "--key-file", str(site.key), "--actor", "sup-hj", "actor", "password", "sup-hj"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 1 and "permission denied" in result.output  # admins set passwords
    assert PASSWORD not in result.output
    with site.client() as client:
        stored = client.app.state.door.auth.password_hash("sup-hj")  # type: ignore[attr-defined]
        client.app.state.door.close()  # type: ignore[attr-defined]
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    assert any(e["command"] == "actor password" and e["detail"] == "actor=sup-hj" for e in access_log(site))


def test_serve_refuses_a_store_without_actors(tmp_path: pytest.TempPathFactory) -> None:
    from tests.e2e.conftest import Cli

    cli = Cli(f"sqlite:///{tmp_path / 'taizhang.db'}", tmp_path / "taizhang.key")  # type: ignore[operator]
    cli.ok("init")
    result = cli("serve", "--port", "1", actor=None)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "no actors" in lines[0] and "actor password" in lines[0]
    result = cli("--lang", "zh", "serve", actor=None)
    assert result.exit_code == 1 and "此台账库没有操作人" in result.stderr


def make_token(site: Site, actor: str, *extra: str) -> str:
    result = site.cli.ok("actor", "token", actor, *extra, actor=ADMIN)
    token = result.stdout.strip()
    assert token.startswith("tz_") and "shown only now" in result.stderr
    return token


def test_api_tokens_work_until_revoked_and_are_stored_hashed(site: Site, client: TestClient) -> None:
    token = make_token(site, "sup-city", "--days", "30")
    bearer = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/v1/summary", params={"by": "county", "period": "2026-03"}, headers=bearer)
    assert r.status_code == 200, r.text
    assert client.get("/dashboard", headers=bearer).status_code == 303  # pages want a session, not a token
    token_id, secret = token.split("_")[1], token.split("_", 2)[2]
    with site.client() as other:
        auth = other.app.state.door.auth  # type: ignore[attr-defined]
        assert auth.token_actor(token_id, secret) == "sup-city"
        other.app.state.door.close()  # type: ignore[attr-defined]
    assert secret not in str(site.cli.ok("audit", "access", "--format", "json", actor="auditor").stdout)
    forged = {"Authorization": f"Bearer tz_{token_id}_{'x' * len(secret)}"}
    assert client.get("/api/v1/summary", headers=forged).status_code == 401
    site.cli.ok("actor", "token", "sup-city", "--revoke", token_id, actor=ADMIN)
    assert client.get("/api/v1/summary", params={"by": "county"}, headers=bearer).status_code == 401
    error = site.cli("actor", "token", "sup-city", "--revoke", token_id, actor=ADMIN)
    assert error.exit_code == 1 and "no live token" in error.stderr


def test_tokens_are_listed_by_id_and_expiry_never_with_their_secret(site: Site) -> None:
    token = make_token(site, "auditor", "--days", "7")
    token_id, secret = token.split("_")[1], token.split("_", 2)[2]

    def listed() -> dict[str, dict[str, object]]:
        result = site.cli.ok("actor", "token", "auditor", "--list", "--format", "json", actor=ADMIN)
        assert secret not in result.stdout
        return {str(t["token"]): t for t in orjson.loads(result.stdout)}

    mine = listed()[token_id]
    assert mine["status"] == "live" and mine["made_by"] == ADMIN and mine["revoked_at"] is None
    assert str(mine["created_at"]) < str(mine["expires_at"])
    assert set(mine) == {"token", "status", "created_at", "expires_at", "revoked_at", "made_by"}
    table = site.cli.ok("actor", "token", "auditor", "--list", actor=ADMIN).stdout
    assert token_id in table and secret not in table
    site.cli.ok("actor", "token", "auditor", "--revoke", token_id, actor=ADMIN)
    mine = listed()[token_id]
    assert mine["status"] == "revoked" and mine["revoked_at"]
    refused = site.cli("actor", "token", "auditor", "--list", actor="sup-city")
    assert refused.exit_code != 0 and "permission denied" in refused.stderr  # admins only, as for making one
    both = site.cli("actor", "token", "auditor", "--list", "--revoke", token_id, actor=ADMIN)
    assert both.exit_code == 2 and "--list and --revoke" in both.stderr


def test_a_token_records_without_csrf_and_stops_with_its_actor(site: Site, client: TestClient) -> None:
    import uuid

    site.cli.ok("actor", "add", "clerk-tok", "--role", "clerk", "--scope", "community:HZ-001",
                *login_args(site.url), actor=ADMIN)  # fmt: skip
    token = make_token(site, "clerk-tok")
    bearer = {"Authorization": f"Bearer {token}"}
    body = {"community": "HZ-001", "kind": "life_care", "resident": ["R1"], "provider": ["P1"],
            "at": "2026-03-22 09:00", "minutes": 10, "record_id": str(uuid.uuid4())}  # fmt: skip
    assert client.post("/api/v1/records", json=body, headers=bearer).status_code == 201
    site.cli.ok("actor", "revoke", "clerk-tok", "--reason", "离职", actor=ADMIN)
    r = client.post("/api/v1/records", json={**body, "record_id": str(uuid.uuid4())}, headers=bearer)
    assert r.status_code == 401


def test_an_expired_token_is_refused(site: Site, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    token = make_token(site, "auditor", "--days", "1")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2 * 86400)
    assert client.get("/api/v1/summary", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_on_postgresql_the_stores_groups_cannot_read_hashes_or_sessions(site: Site) -> None:
    if backend_of(site.url) != "postgres":
        pytest.skip("PostgreSQL's grants")
    import uuid

    import psycopg

    login = f"tz_web_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(site.url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {login} LOGIN PASSWORD 'x'")
        owner.execute(f"GRANT taizhang_writer, taizhang_reader TO {login}")
    try:
        site.cli.ok(
            "actor", "add", f"w-{login[-8:]}", "--role", "clerk", "--scope", "city", "--login", login, actor=ADMIN
        )
        other = site.url.replace("postgres:postgres@", f"{login}:x@", 1)
        with psycopg.connect(other, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM community_units").fetchone()  # the groups read the store
            for table in ("web_credentials", "web_sessions", "web_tokens", "web_login_failures"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT * FROM {table}")
    finally:
        with psycopg.connect(site.url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {login}")
            owner.execute(f"DROP ROLE {login}")
