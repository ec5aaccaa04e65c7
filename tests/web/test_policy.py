"""Every route declares its access rule; every response carries the security headers; the doors stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from commands.access import POLICY
from commands.web.app import create_app
from commands.web.door import Door
from commands.web.policy import policy_of, public
from tests.web.conftest import Site, log_in

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"/login", "/logout", "/lang/{lang}", "/api/v1/openapi.json"}


def test_every_route_declares_an_access_rule_of_the_cli_policy(client: TestClient) -> None:
    seen = set()
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Mount):
            assert route.path == "/static", f"an unexpected mount {route.path}"
            continue
        assert isinstance(route, APIRoute), f"{route!r} is not a FastAPI route: it cannot declare a rule"
        rule = policy_of(route)
        assert rule is not None, f"{sorted(route.methods)} {route.path} declares no access rule"
        if rule.startswith("public: "):
            assert route.path in PUBLIC, f"{route.path} is public but not listed as such here"
        else:
            assert rule in POLICY and POLICY[rule].permission != "open", (route.path, rule)
        seen.add(route.path)
    assert {"/dashboard", "/ledger", "/clerk", "/clerk/record", "/api/v1/records"} <= seen


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    urls = ["/login", "/static/app.css", "/dashboard", "/api/v1/summary", "/no/such/page", "/api/v1/openapi.json"]
    responses = [client.get(url) for url in urls]
    assert log_in(client, "sup-hj").status_code == 303
    responses += [client.get("/dashboard?month=2026-03"), client.get("/ledger?community=QT-2")]
    for r in responses:
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, r.url
        assert r.headers.get("x-frame-options") == "DENY", r.url
        assert r.headers.get("referrer-policy") == "same-origin", r.url
        assert r.headers.get("x-content-type-options") == "nosniff", r.url
        assert r.headers.get("cache-control") == "no-store", r.url


def test_no_page_has_inline_script(client: TestClient) -> None:
    assert log_in(client, "sup-hj").status_code == 303
    for url in ("/login", "/dashboard?month=2026-03", "/ledger"):
        html = client.get(url).text
        for tag in html.split("<script")[1:]:
            head, _, rest = tag.partition(">")
            assert "src=" in head and rest.startswith("</script>"), f"{url}: inline script"
        assert " on" + "click=" not in html and "javascript:" not in html


def test_no_personal_data_travels_in_urls(client: TestClient) -> None:
    """Names are typed only into POST forms; the query parameters of every GET route are unit filters."""
    allowed = {"community", "township", "county", "period", "from", "to", "kind", "category", "page", "month",
               "by", "include_voided", "as_of", "lang"}  # fmt: skip
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and "GET" in route.methods:
            names = {p.name for p in route.dependant.query_params} | {p.name for p in route.dependant.path_params}
            assert names <= allowed, (route.path, names - allowed)
    assert log_in(client, "clerk-hj").status_code == 303
    page = client.get("/clerk").text
    assert '<form method="post" action="/clerk/record"' in page


def test_the_openapi_document_is_served_under_the_api(client: TestClient) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert {"/api/v1/summary", "/api/v1/entries", "/api/v1/records"} <= set(paths)


def _imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_neither_door_imports_the_other() -> None:
    web, cli = _imports(ROOT / "commands" / "web"), _imports(ROOT / "commands" / "cli")
    assert not [m for m in web if m == "commands.cli" or m.startswith("commands.cli.")]
    assert not [m for m in cli if m == "commands.web" or m.startswith("commands.web.")]
    services = set()
    for path in (ROOT / "commands").glob("*.py"):
        services |= {m for m in _imports_of(path) if m.startswith(("commands.cli", "commands.web"))}
    assert not services, f"a service module imports a door: {services}"


def _imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_a_bug_answers_500_with_the_security_headers(site: Site) -> None:
    door = Door(site.url, site.key, catch_up=False)
    app = create_app(door)

    @app.get("/boom", dependencies=[public("a test route")])
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        for url in ("/boom",):
            r = client.get(url)
            assert r.status_code == 500 and "内部错误" in r.text and "a bug" not in r.text
            assert (
                r.headers.get("x-frame-options") == "DENY"
                and "script-src 'self'" in r.headers["content-security-policy"]
            )
