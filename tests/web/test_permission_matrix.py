"""The web's permission matrix: every route × role × scope × (no unit, a unit inside, a unit outside), both stores.

The expected answer is derived here from the CLI's policy table (commands.access.POLICY: the
permission a route's CLI command needs, PERMISSIONS: the roles holding it, and the kind of units
the rule reads) and from where the test's communities lie — never from the app's own answer.
Allowed: the route answers as it does for a permitted request (200, or 201/303 where that is its
answer). Refused: 403 naming the actor. A revoked actor (revoked with the CLI while its session is
open) is sent to the login page (401 on the API) by every route.

Every route that is not public must have a probe below: a new route without one fails
`test_every_route_has_a_probe`. One store per backend for the module; the actors log in once.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.datastructures import Headers, UploadFile

from commands.access import PERMISSIONS, POLICY
from commands.web import uploads
from commands.web.policy import SESSION_COOKIE, policy_of
from tests.conftest import drop_pg_database, make_pg_database
from tests.e2e.conftest import Cli, backend_of, establish_args
from tests.web.conftest import ADMIN, HZ, Site, build, log_in, login_args, set_password

# ---- where the communities lie, and the scopes (the test's own table) -------------------------
ZM = {**HZ, "code": "ZM-1", "name": "走马新型农村社区", "county": "昭平县", "township": "走马镇", "village": "走马村"}
PLACES = {
    "HZ-001": ("八步区", "贺街镇"),
    "HZ-002": ("八步区", "贺街镇"),
    "QT-2": ("八步区", "桂岭镇"),
    "ZM-1": ("昭平县", "走马镇"),
}
SCOPES = {
    "city": "city",
    "county": "county:八步区",
    "township": "township:八步区/贺街镇",
    "community": "community:HZ-001",
}
INSIDE = "HZ-001"  # inside every scope of SCOPES
OUTSIDE = {"county": "ZM-1", "township": "QT-2", "community": "HZ-002"}  # the city has no outside
ROLES = ("admin", "clerk", "supervisor", "auditor")
REVOKED = "m-gone"

# ("community", code) | ("township", county, name) | ("county", name); None: the whole store
Target = tuple[str, ...] | None


def unit_of(scope: str) -> Target:
    if scope == "city":
        return None
    level, _, name = scope.partition(":")
    if level == "township":
        return ("township", *name.split("/", 1))
    return (level, name)


def covers(scope: str, target: Target) -> bool:
    """The scope relation, from PLACES: the city covers all; a county its townships and communities; …"""
    own = unit_of(scope)
    if own is None:
        return True
    if target is None:
        return False
    if target[0] == "community":
        county, township = PLACES[target[1]]
        chain = {("county", county), ("township", county, township), ("community", target[1])}
    elif target[0] == "township":
        chain = {("county", target[1]), target}
    else:
        chain = {target}
    return own in chain


def scope_filter(scope: str) -> Target:
    """What a route without a unit reads by default: the actor's own scope (the web narrows to it)."""
    return unit_of(scope)


def expected(rule: str, role: str, scope: str, named: Target | str | None) -> bool:
    """May this role at this scope run CLI command `rule` on what the request names?

    `scope`: a key of SCOPES. `named`: a community code, "scope" (no unit given: the route reads the actor's scope), or None
    (no unit given). Which units count is the rule's target function in POLICY.
    """
    policy, scope = POLICY[rule], SCOPES[scope]
    if role not in PERMISSIONS[policy.permission]:
        return False
    kind = policy.targets.__name__
    if kind == "nothing":
        targets: list[Target] = []
    elif kind == "whole_store":
        targets = [None]
    elif named == "scope":
        targets = [scope_filter(scope)] if scope != "city" else [None]
    elif named is None:
        assert kind in ("filters", "resident_filter"), (rule, kind)  # a required unit is always named
        targets = [None]
    else:
        assert kind in ("filters", "community_arg", "unit_opt", "new_actor_scope", "revoked_actor_scope",
                        "import_rows"), (rule, kind)  # fmt: skip
        targets = [("community", str(named))]
    return all(covers(scope, t) for t in targets)


# ---- the store: the web fixtures' store, a community in another county, one actor per role × scope ----
def actor_name(role: str, scope: str) -> str:
    return f"m-{role}-{scope}"


def build_matrix(cli: Cli) -> None:
    build(cli)
    cli.ok(*establish_args(ZM), actor=ADMIN)
    cli.ok("resident", "enroll", "ZM-1", "R1", "--name", "张秀英", actor="clerk-city")
    cli.ok("provider", "register", "ZM-1", "P1", "--name", "李建国", "--role", "党员", actor="clerk-city")
    for role in ROLES:
        for scope, text in SCOPES.items():
            cli.ok("actor", "add", actor_name(role, scope), "--role", role, "--scope", text, *login_args(cli.url),
                   actor=ADMIN)  # fmt: skip
            set_password(cli, actor_name(role, scope))
    cli.ok("actor", "add", REVOKED, "--role", "clerk", "--scope", "city", *login_args(cli.url), actor=ADMIN)
    set_password(cli, REVOKED)
    cli.ok("projections", "run", actor=ADMIN)


@dataclass
class World:
    site: Site
    client: TestClient
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # actor -> (session id, csrf)
    sealed: tuple[str, bytes] = ("", b"")  # a record id, and a checkpoint sealed after it (for /audit/prove)

    def as_(self, actor: str) -> str:
        """Send the next requests as `actor` (its session cookie); returns its CSRF token."""
        sid, csrf = self.sessions[actor]
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, sid)
        return csrf

    def record(self, community: str) -> str:
        """A fresh record in `community` (made by the city clerk through the API)."""
        csrf = self.as_(actor_name("clerk", "city"))
        rid = str(uuid.uuid4())
        r = self.client.post("/api/v1/records", json={**service(community), "record_id": rid},
                             headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert r.status_code == 201, r.text
        return rid

    def new_actor(self, community: str) -> str:
        """A fresh clerk of `community` (added by the city admin through its page)."""
        csrf = self.as_(actor_name("admin", "city"))
        name = f"t-{uuid.uuid4().hex[:8]}"
        r = self.client.post("/admin/add", data={"csrf": csrf, "name": name, "role": "clerk",
                                                 "scope": f"community:{community}"})  # fmt: skip
        assert r.status_code == 200, r.text
        return name


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"matrix-{request.param}")
    key = tmp / "taizhang.key"
    admin_url = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'taizhang.db'}"
    else:
        admin_url = request.getfixturevalue("pg_admin_url")
        url = make_pg_database(admin_url)
    mp = pytest.MonkeyPatch()
    mp.setenv("TAIZHANG_UPLOAD_DIR", str(tmp / "uploads"))
    try:
        cli = Cli(url, key)
        build_matrix(cli)
        site = Site(cli, url, key)
        record = orjson.loads(cli.ok("ledger", "entries", "--community", "HZ-001", "--format", "json",
                                     actor=ADMIN).stdout)[0]["record_id"]  # fmt: skip
        cli.ok("audit", "keygen", "--key-file", str(tmp / "office.key"), actor="auditor")
        cli.ok("audit", "seal", "--key-file", str(tmp / "office.key"), "--output", str(tmp / "sealed.checkpoint"),
               actor="auditor")  # fmt: skip
        with site.client() as client:
            world = World(site, client, sealed=(record, (tmp / "sealed.checkpoint").read_bytes()))
            for name in [actor_name(r, s) for r in ROLES for s in SCOPES] + [REVOKED]:
                client.cookies.clear()
                assert log_in(client, name).status_code == 303, name
                sid = client.cookies[SESSION_COOKIE]
                session = client.app.state.door.auth.session(sid, 3600)  # type: ignore[attr-defined]
                world.sessions[name] = (sid, session.csrf)
            cli.ok("actor", "revoke", REVOKED, "--reason", "调离岗位", actor=ADMIN)  # while its session is open
            yield world
            client.app.state.door.close()  # type: ignore[attr-defined]
    finally:
        mp.undo()
        if admin_url is not None:
            drop_pg_database(admin_url, url)


# ---- how each route is asked, with a unit or without -----------------------------------------------
def service(community: str) -> dict[str, Any]:
    return {"community": community, "kind": "life_care", "resident": "R1", "provider": "P1",
            "at": "2026-03-10T10:00", "minutes": 30}  # fmt: skip


def sheet(community: str) -> bytes:
    minutes = 11 + uuid.uuid4().int % 400
    return (f"社区,服务类型,服务对象,服务人员,服务时间,时长(分钟)\n{community},生活照料,R1,P1,2026-03-11 09:00,{minutes}\n"
            ).encode()  # fmt: skip


def kept_upload(actor: str, community: str) -> str:
    """An upload kept for `actor` as the report step keeps it (the confirmation names it)."""
    file = UploadFile(io.BytesIO(sheet(community)), filename="三月.csv", headers=Headers({"content-type": "text/csv"}))
    options = {"community": "", "year": "", "duration_unit": "", "default_time": ""}
    return asyncio.run(uploads.keep(file, actor, options)).id


Send = Callable[[World, str, str, "str | None"], Any]  # (world, actor, csrf, community or None) -> response


@dataclass(frozen=True)
class Probe:
    send: Send
    unit: str  # "query": optional (none: the scope's), "store": optional (none: the whole store),
    #            "required": always named, "none": the route names no unit
    ok: int = 200


def get(path: str, key: str = "community", prefix: str = "", extra: dict[str, str] | None = None) -> Send:
    def send(w: World, _actor: str, _csrf: str, unit: str | None) -> Any:
        params = dict(extra or {})
        if unit is not None:
            params[key] = prefix + unit
        return w.client.get(path, params=params)

    return send


def form(path: str, make: Callable[[World, str, str], dict[str, Any]]) -> Send:
    def send(w: World, actor: str, csrf: str, unit: str | None) -> Any:
        assert unit is not None
        data = make(w, actor, unit)
        w.as_(actor)
        return w.client.post(path, data={"csrf": csrf, **data})

    return send


def api(path: str, make: Callable[[World, str, str], dict[str, Any]]) -> Send:
    def send(w: World, actor: str, csrf: str, unit: str | None) -> Any:
        assert unit is not None
        body = make(w, actor, unit)
        w.as_(actor)
        return w.client.post(path, json=body, headers={"X-CSRF-Token": csrf})

    return send


def upload(path: str, header: bool) -> Send:
    def send(w: World, _actor: str, csrf: str, unit: str | None) -> Any:
        assert unit is not None
        files = {"file": ("三月.csv", sheet(unit), "text/csv")}
        if header:
            return w.client.post(path, data={"dry_run": "true"}, files=files, headers={"X-CSRF-Token": csrf})
        return w.client.post(path, data={"csrf": csrf}, files=files)

    return send


def confirm(w: World, actor: str, csrf: str, unit: str | None) -> Any:
    assert unit is not None
    return w.client.post("/clerk/import/confirm", data={"csrf": csrf, "upload": kept_upload(actor, unit)})


def prove(w: World, _actor: str, csrf: str, unit: str | None) -> Any:
    record, checkpoint = w.sealed  # a record of HZ-001 (INSIDE)
    files = {"checkpoint": ("sealed.checkpoint", checkpoint, "application/json")}
    data = {"csrf": csrf, "record_id": record, **({"community": unit} if unit is not None else {})}
    return w.client.post("/audit/prove", data=data, files=files)


def fresh(w: World, _actor: str, unit: str) -> dict[str, Any]:
    return {**service(unit), "record_id": str(uuid.uuid4())}


def fix(w: World, _actor: str, unit: str) -> dict[str, Any]:
    return {"community": unit, "record_id": w.record(unit), "reason": "时长登记有误", "minutes": 50}


def void(w: World, _actor: str, unit: str) -> dict[str, Any]:
    return {"community": unit, "record_id": w.record(unit), "reason": "重复登记"}


TARGETS: dict[str, str] = {}  # community -> an actor of it (for password and token), made once per store


def target(w: World, unit: str) -> str:
    key = f"{w.site.url}|{unit}"
    if key not in TARGETS:
        TARGETS[key] = w.new_actor(unit)
    return TARGETS[key]


def add(w: World, _actor: str, unit: str) -> dict[str, Any]:
    return {"name": f"n-{uuid.uuid4().hex[:8]}", "role": "clerk", "scope": f"community:{unit}"}


PROBES: dict[tuple[str, str], Probe] = {
    ("GET", "/"): Probe(get("/"), "none", ok=303),
    ("GET", "/dashboard"): Probe(get("/dashboard"), "query"),
    ("GET", "/ledger"): Probe(get("/ledger"), "query"),
    ("GET", "/ledger.csv"): Probe(get("/ledger.csv"), "query"),
    ("GET", "/ledger.xlsx"): Probe(get("/ledger.xlsx"), "query"),
    ("GET", "/clerk"): Probe(get("/clerk"), "query"),
    ("GET", "/clerk/import"): Probe(get("/clerk/import"), "query"),
    ("GET", "/api/v1/summary"): Probe(get("/api/v1/summary"), "query"),
    ("GET", "/api/v1/entries"): Probe(get("/api/v1/entries"), "query"),
    ("GET", "/visits/overdue"): Probe(get("/visits/overdue"), "query"),
    ("GET", "/api/v1/visits/overdue"): Probe(get("/api/v1/visits/overdue"), "query"),
    ("GET", "/clerk/fix"): Probe(get("/clerk/fix"), "required"),
    ("POST", "/clerk/record"): Probe(form("/clerk/record", fresh), "required"),
    ("POST", "/api/v1/records"): Probe(api("/api/v1/records", fresh), "required", ok=201),
    ("POST", "/clerk/names"): Probe(
        api("/clerk/names", lambda _w, _a, unit: {"who": "resident", "community": unit, "text": "张"}), "required"
    ),  # the form's name picker (fetch with X-CSRF-Token)
    ("POST", "/clerk/correct"): Probe(form("/clerk/correct", fix), "required"),
    ("POST", "/api/v1/corrections"): Probe(api("/api/v1/corrections", fix), "required"),
    ("POST", "/clerk/void"): Probe(form("/clerk/void", void), "required"),
    ("POST", "/api/v1/voids"): Probe(api("/api/v1/voids", void), "required"),
    ("POST", "/clerk/import"): Probe(upload("/clerk/import", header=False), "required"),
    ("POST", "/api/v1/imports"): Probe(upload("/api/v1/imports", header=True), "required"),
    ("POST", "/clerk/import/confirm"): Probe(confirm, "required"),
    ("GET", "/admin"): Probe(get("/admin"), "none"),
    ("POST", "/admin/add"): Probe(form("/admin/add", add), "required"),
    ("POST", "/admin/revoke"): Probe(
        form("/admin/revoke", lambda w, _a, unit: {"name": w.new_actor(unit), "reason": "调离岗位"}), "required"
    ),
    ("POST", "/admin/password"): Probe(
        form(
            "/admin/password",
            lambda w, _a, unit: {
                "name": target(w, unit),
                "password": "another long secret",
                "repeat": "another long secret",
            },
        ),
        "required",
    ),
    ("POST", "/admin/token"): Probe(form("/admin/token", lambda w, _a, unit: {"name": target(w, unit)}), "required"),
    ("GET", "/assess"): Probe(get("/assess"), "none"),
    ("GET", "/api/v1/assess"): Probe(get("/api/v1/assess"), "none"),
    ("GET", "/assess/explain"): Probe(get("/assess/explain", "unit", "community:", {"metric": "coverage"}), "required"),
    ("GET", "/api/v1/assess/explain"): Probe(
        get("/api/v1/assess/explain", "unit", "community:", {"metric": "coverage"}), "required"
    ),
    ("GET", "/audit/history"): Probe(get("/audit/history"), "store"),
    ("GET", "/audit/chain"): Probe(get("/audit/chain"), "store"),
    ("GET", "/api/v1/history"): Probe(get("/api/v1/history"), "required"),
    ("POST", "/audit/prove"): Probe(prove, "store"),  # no community: the whole store (`audit prove` unfiltered)
    ("GET", "/audit/access"): Probe(get("/audit/access"), "none"),
}


def cases(probe: Probe, scope: str) -> list[tuple[str, str | None, str | None]]:
    """(label, the community sent or None, what the model is told the request names)."""
    found: list[tuple[str, str | None, str | None]] = []
    if probe.unit == "query":
        found.append(("no unit", None, "scope"))
    elif probe.unit in ("store", "none"):
        found.append(("no unit", None, None))
    if probe.unit != "none":
        found.append(("inside", INSIDE, INSIDE))
        if scope in OUTSIDE:
            found.append(("outside", OUTSIDE[scope], OUTSIDE[scope]))
    return found


def test_every_route_has_a_probe(world: World) -> None:
    routes = set()
    for route in world.client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute):
            continue
        rule = policy_of(route)
        assert rule is not None, route.path
        if rule.startswith("public: "):
            continue
        for method in route.methods:
            routes.add((method, route.path))
    assert routes == set(PROBES), (sorted(routes - set(PROBES)), sorted(set(PROBES) - routes))


def rule_of(world: World, method: str, path: str) -> str:
    for route in world.client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and route.path == path and method in route.methods:
            rule = policy_of(route)
            assert rule is not None
            return rule
    raise AssertionError(f"no route {method} {path}")


@pytest.mark.parametrize(("method", "path"), sorted(PROBES))
def test_the_route_answers_as_the_clis_policy_says(world: World, method: str, path: str) -> None:
    probe = PROBES[(method, path)]
    rule = rule_of(world, method, path)
    wrong = []
    for role in ROLES:
        for scope in SCOPES:
            actor = actor_name(role, scope)
            for label, unit, named in cases(probe, scope):
                csrf = world.as_(actor)
                r = probe.send(world, actor, csrf, unit)
                allowed = expected(rule, role, scope, named)
                if allowed:
                    good = r.status_code == probe.ok and (r.status_code != 303 or "/login" not in r.headers["location"])
                else:
                    good = r.status_code == 403 and actor in r.text
                if not good:
                    wrong.append(f"{actor} {label} ({unit}): expected {'allowed' if allowed else 403}, "
                                 f"got {r.status_code} {r.text[:200]!r}")  # fmt: skip
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("method", "path"), sorted(PROBES))
def test_a_revoked_actors_session_gets_nothing(world: World, method: str, path: str) -> None:
    """Revoked with the CLI while logged in: every route sends it to the login page (the API: 401)."""
    probe = PROBES[(method, path)]
    csrf = world.as_(REVOKED)
    unit = INSIDE if probe.unit != "none" else None
    r = probe.send(world, REVOKED, csrf, unit)
    if path.startswith("/api/"):
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
    else:
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), (path, r.status_code)
    door = world.client.app.state.door  # type: ignore[attr-defined]
    assert door.auth.session(world.sessions[REVOKED][0], 3600) is None  # its session is gone


def test_the_model_agrees_with_the_cli_on_a_few_commands(world: World) -> None:
    """The test's own reading of the policy, checked against the CLI itself for a sample of cases."""
    cli = world.site.cli
    for role in ROLES:
        for scope in ("township", "community"):
            actor = actor_name(role, scope)
            for community in (INSIDE, OUTSIDE[scope]):
                want = expected("ledger entries", role, scope, community)
                result = cli("ledger", "entries", "--community", community, actor=actor)
                assert (result.exit_code == 0) == want, (actor, community, result.output)
    assert backend_of(world.site.url) in ("sqlite", "postgres")
