from __future__ import annotations

from tests.web.conftest import log_in


def test_login_then_dashboard(client) -> None:
    r = log_in(client, "sup-hj")
    assert r.status_code == 303, r.text
    page = client.get("/dashboard?month=2026-03")
    assert page.status_code == 200, page.text
    print(page.text)
