"""Every route declares its access rule; every response carries the security headers; the doors stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from commands.access import POLICY
from commands.web.policy import policy_of
from tests.web.conftest import log_in

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
               "by", "include_voided", "as_of", "lang",
               "level", "unit", "metric", "actor"}  # fmt: skip
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
    # and nothing the web app loads brings the click modules in (commands.help_i18n, the CLI's -h, may)
    import subprocess
    import sys

    probe = "import sys, commands.web.app; print(sorted(m for m in sys.modules if m.startswith('commands.cli')))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
