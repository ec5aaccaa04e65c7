"""The web door's pages in real headless Chromium: a supervisor's dashboard on a PC, a clerk on a phone.

SQLite only (the pages are the same on both stores; tests/web runs the app on both).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from tests.browser.harness import PHONE, LiveServer, console_messages
from tests.browser.pages import log_in, wait_for
from tests.e2e.conftest import Cli

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


def test_a_supervisor_sees_the_numbers_of_ledger_summary_and_the_chart(
    store: Cli, server: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    store.ok("projections", "run", actor="boss")  # the views as of now: the door's catch-up thread may not have run yet
    log_in(browser, server, "sup-hj")
    browser.get(server.url("/dashboard?month=2026-03"))
    wait_for(browser, "return document.body.dataset.chart === 'drawn'")
    shown = browser.execute_script(
        """
        var out = {};
        document.querySelectorAll('#units tr[data-code]').forEach(function (tr) {
          out[tr.dataset.code] = Array.from(tr.querySelectorAll('td.n')).slice(0, 3).map(function (td) {
            return parseInt(td.textContent, 10); });
        });
        return out;
        """
    )
    rows = orjson.loads(
        store.ok("ledger", "summary", "--by", "community", "--township", "八步区/贺街镇", "--period", "2026-03",
                 "--format", "json", actor="sup-hj").stdout
    )  # fmt: skip
    assert shown == {r["community"]: [r["records"], r["minutes"], r["residents_served"]] for r in rows}
    assert "QT-2" not in browser.page_source
    assert not console_messages(browser), console_messages(browser)  # no CSP violation, no script error
    screenshot(browser, "web-dashboard", full_page=True)


@pytest.mark.parametrize("browser", [PHONE], indirect=True)
def test_a_clerk_records_on_a_phone(
    store: Cli, server: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "clerk-hj")
    wait_for(browser, "return location.pathname === '/clerk'")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]  # no sideways scrolling
    Select(browser.find_element(By.NAME, "community")).select_by_value("HZ-001")
    browser.find_element(By.XPATH, "//label[contains(@class,'kind')][.//span[text()='心理抚慰']]").click()
    browser.find_element(By.NAME, "resident").send_keys("王小明")
    browser.find_element(By.NAME, "provider").send_keys("P1")
    browser.execute_script("document.querySelector('input[name=at]').value = '2026-03-26T09:15'")
    browser.find_element(By.NAME, "minutes").send_keys("35")
    record_id = browser.find_element(By.NAME, "record_id").get_attribute("value")
    screenshot(browser, "web-clerk-phone")
    browser.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait_for(browser, "return document.querySelector('p.done') !== null")
    assert "已登记" in browser.find_element(By.CSS_SELECTOR, "p.done").text
    entries = orjson.loads(
        store.ok("ledger", "entries", "--community", "HZ-001", "--period", "2026-03", "--format", "json",
                 actor="sup-hj").stdout
    )  # fmt: skip
    mine = [e for e in entries if e["record_id"] == record_id]
    assert len(mine) == 1 and mine[0]["residents"] == ["R2"] and mine[0]["kind"] == "counseling"
    assert uuid.UUID(record_id)
    assert not console_messages(browser), console_messages(browser)
