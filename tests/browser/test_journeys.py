"""Journeys across browsers in headless Chromium: a record on a phone reaching a supervisor's dashboard,
forged forms refused, a revoked actor logged out at its next page.

SQLite only (tests/web runs the same app on both stores). The store is the web tests' (made through
the CLI); each test makes records of its own, so they share it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from tests.browser.harness import DESKTOP, PHONE, LiveServer, console_messages
from tests.browser.pages import log_in, wait_for
from tests.e2e.conftest import Cli
from tests.web.conftest import ADMIN, login_args, set_password

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

HJ = "八步区/贺街镇"


def entries(store: Cli, community: str = "HZ-001") -> list[dict[str, Any]]:
    store.ok("projections", "run", actor=ADMIN)
    return list(orjson.loads(store.ok("ledger", "entries", "--community", community, "--include-voided",
                                      "--format", "json", actor=ADMIN).stdout))  # fmt: skip


DASHBOARD_ROWS = """
    var out = {};
    document.querySelectorAll('#units tr[data-code]').forEach(function (tr) {
      out[tr.dataset.code] = Array.from(tr.querySelectorAll('td.n')).slice(0, 3).map(function (td) {
        return parseInt(td.textContent, 10); });
    });
    return out;
"""


def dashboard(driver: WebDriver, server: LiveServer) -> dict[str, list[int]]:
    """code -> this month's records, minutes, residents served, as the page shows them (March 2026)."""
    driver.get(server.url("/dashboard?month=2026-03"))
    wait_for(driver, "return document.querySelector('#units tr[data-code]') !== null")
    return dict(driver.execute_script(DASHBOARD_ROWS))


def status_of(driver: WebDriver) -> int:
    """The HTTP status of the page the browser shows (Navigation Timing's responseStatus)."""
    return int(driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus"))


def fill_record(driver: WebDriver, minutes: str, when: str) -> str:
    """Fill the clerk's form for HZ-001 (王小明, 心理抚慰, P1); returns the form's record id."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait_for(driver, "return document.querySelector('input[name=record_id]') !== null")
    Select(driver.find_element(By.NAME, "community")).select_by_value("HZ-001")
    driver.find_element(By.XPATH, "//label[contains(@class,'kind')][.//span[text()='心理抚慰']]").click()
    driver.find_element(By.NAME, "resident").send_keys("王小明")
    driver.find_element(By.NAME, "provider").send_keys("P1")
    driver.execute_script("document.querySelector('input[name=at]').value = arguments[0]", when)
    driver.find_element(By.NAME, "minutes").send_keys(minutes)
    return str(driver.find_element(By.NAME, "record_id").get_attribute("value"))


# ---- (a) a clerk's record on a phone shows on the township supervisor's dashboard ---------------------
def test_a_record_made_on_a_phone_shows_on_the_supervisors_dashboard(
    store: Cli, server: LiveServer, open_browser: Callable[..., WebDriver], screenshot: Callable[..., Path]
) -> None:
    from selenium.webdriver.common.by import By

    supervisor = open_browser(DESKTOP)
    clerk = open_browser(PHONE, mobile=True)
    store.ok("projections", "run", actor=ADMIN)
    log_in(supervisor, server, "sup-hj")
    before = dashboard(supervisor, server)
    screenshot(supervisor, "journey-dashboard-before", full_page=True)
    assert set(before) == {"HZ-001", "HZ-002"}  # the township's communities only

    log_in(clerk, server, "clerk-hj")
    clerk.get(server.url("/clerk"))
    assert clerk.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]
    record_id = fill_record(clerk, "37", "2026-03-27T09:15")
    screenshot(clerk, "journey-clerk-phone-filled")
    clerk.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait_for(clerk, "return document.querySelector('p.done') !== null")
    assert "已登记" in clerk.find_element(By.CSS_SELECTOR, "p.done").text
    screenshot(clerk, "journey-clerk-phone-recorded")

    # the server's views catch up in the background (every 0.5 s): the supervisor reloads until they have
    after = before
    for _ in range(40):
        after = dashboard(supervisor, server)
        if after != before:
            break
        supervisor.execute_script("return new Promise(function (done) { setTimeout(done, 250); })")
    screenshot(supervisor, "journey-dashboard-after", full_page=True)
    records, minutes, served = before["HZ-001"]
    assert after["HZ-001"][:2] == [records + 1, minutes + 37]
    assert after["HZ-001"][2] in (served, served + 1)  # 王小明 may have been served already this month
    assert after["HZ-002"] == before["HZ-002"]
    mine = [e for e in entries(store) if e["record_id"] == record_id]
    assert len(mine) == 1 and mine[0]["minutes"] == 37 and mine[0]["residents"] == ["R2"]
    assert not console_messages(clerk) and not console_messages(supervisor)


# ---- (b) forged forms ----------------------------------------------------------------------------------
def attacker_app(target: str, record_id: str) -> Any:
    """Another origin's page that posts a service record to taizhang as soon as it loads (no CSRF token)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    fields = {"community": "HZ-001", "kind": "life_care", "resident": "R1", "provider": "P1",
              "at": "2026-03-28T10:00", "minutes": "41", "record_id": record_id, "csrf": "guessed"}  # fmt: skip
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    page = (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<h1>免费领取鸡蛋</h1><form method="post" action="{target}">{inputs}</form></body></html>'
    )

    async def index(_request: Any) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", index)])


@pytest.mark.parametrize(
    ("host", "defence"),
    [("localhost", "samesite"), ("127.0.0.1", "csrf")],
    ids=["another-site", "same-site-another-port"],
)
def test_a_form_posted_from_another_origin_records_nothing(
    store: Cli,
    server: LiveServer,
    live_server: Callable[..., LiveServer],
    browser: WebDriver,
    screenshot: Callable[..., Path],
    host: str,
    defence: str,
) -> None:
    """The victim is logged in; a page elsewhere auto-submits a record to /clerk/record.

    From another site (localhost vs 127.0.0.1) the SameSite=Strict session cookie is not sent: the
    post arrives without a session and is sent to the login page. From the same host on another port
    (same site, another origin) the cookie is sent, and the missing CSRF token refuses it (403).
    """
    log_in(browser, server, "clerk-hj")
    record_id = str(uuid.uuid4())
    evil = live_server(attacker_app(server.url("/clerk/record"), record_id))
    browser.get(f"http://{host}:{evil.port}/")
    wait_for(browser, f"return location.port === '{server.port}'")  # the form went to taizhang's server
    wait_for(browser, "return document.readyState === 'complete'")
    screenshot(browser, f"journey-forged-{defence}")
    path = browser.execute_script("return location.pathname")
    if defence == "samesite":
        assert path == "/login" and status_of(browser) == 200  # no session came with it: sent to log in
        assert browser.find_elements("name", "password")
    else:
        assert path == "/clerk/record"
        assert status_of(browser) == 403 and "已登记" not in browser.page_source
        assert "表单已过期或并非本站发出" in browser.find_element("tag name", "body").text
    assert not [e for e in entries(store) if e["record_id"] == record_id]
    browser.get(server.url("/clerk"))  # and the victim's own session still works
    assert browser.execute_script("return location.pathname") == "/clerk"


def test_a_form_with_its_csrf_field_removed_is_refused(
    store: Cli, server: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "clerk-hj")
    browser.get(server.url("/clerk"))
    record_id = fill_record(browser, "43", "2026-03-29T08:30")
    removed = browser.execute_script(
        "var f = document.querySelector('form[action=\"/clerk/record\"]');"
        "var c = f.querySelector('input[name=csrf]'); if (!c) return false; c.remove(); return true;"
    )
    assert removed
    browser.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait_for(browser, "return document.readyState === 'complete' && location.pathname === '/clerk/record'")
    screenshot(browser, "journey-csrf-removed")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "已登记" not in text
    assert status_of(browser) == 403 and "表单已过期或并非本站发出" in text
    assert not [e for e in entries(store) if e["record_id"] == record_id]


# ---- (c) a revoked actor is logged out at its next page load ----------------------------------------------
def test_an_actor_revoked_with_the_cli_is_logged_out_at_its_next_page(
    store: Cli, server: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    name = f"sup-{uuid.uuid4().hex[:6]}"
    store.ok("actor", "add", name, "--role", "supervisor", "--scope", f"township:{HJ}", *login_args(store.url),
             actor=ADMIN)  # fmt: skip
    set_password(store, name)
    log_in(browser, server, name)
    browser.get(server.url("/dashboard?month=2026-03"))
    assert browser.execute_script("return location.pathname") == "/dashboard"
    screenshot(browser, "journey-revoked-before")
    store.ok("actor", "revoke", name, "--reason", "调离岗位", actor=ADMIN)
    browser.get(server.url("/dashboard?month=2026-03"))
    wait_for(browser, "return document.readyState === 'complete'")
    screenshot(browser, "journey-revoked-after")
    assert browser.execute_script("return location.pathname") == "/login"
    assert "HZ-001" not in browser.page_source and "石门" not in browser.page_source
    browser.get(server.url("/ledger"))  # and it stays out
    assert browser.execute_script("return location.pathname") == "/login"
