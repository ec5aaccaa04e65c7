"""The assessment ranking (on a phone too) and an auditor's history in real headless Chromium (SQLite)."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def store(store: Cli) -> Cli:
    """The conftest's store with a visit plan (obligations to assess) and a corrected record (history)."""
    store.ok("visit-plan", "set", "HZ-001", "R1", "--every", "7", "--provider", "P1", "--from", "2026-01-01",
             actor="clerk-city")  # fmt: skip
    record = orjson.loads(
        store.ok("ledger", "entries", "--community", "HZ-001", "--format", "json", actor="boss").stdout
    )
    store.ok("service", "correct", "HZ-001", record[0]["record_id"], "--minutes", "50", "--reason", "录错了",
             actor="clerk-city")  # fmt: skip
    return store


@pytest.mark.clock  # obligations are judged on today's date
@pytest.mark.parametrize("browser", [PHONE], indirect=True)
def test_the_assessment_ranking_reads_on_a_phone_and_drills_down(
    server: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "sup-city")
    wait_for(browser, "return location.pathname === '/dashboard'")
    browser.get(server.url("/assess?period=2026-03"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")
    assert len(rows) == 2 and "贺街镇" in browser.page_source
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE[0]  # the table scrolls
    screenshot(browser, "web-assessment-phone", full_page=True)
    browser.find_element(By.CSS_SELECTOR, "#ranking tr[data-unit='township:八步区/贺街镇'] td a").click()
    wait_for(browser, "return location.pathname === '/assess/explain'")
    assert browser.find_elements(By.CSS_SELECTOR, "#evidence tbody tr")
    screenshot(browser, "web-assessment-explain-phone", full_page=True)
    assert not console_messages(browser), console_messages(browser)


def test_an_auditor_reads_a_communitys_history(
    server: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "auditor")
    wait_for(browser, "return location.pathname === '/dashboard'")
    browser.get(server.url("/audit/history"))
    Select(browser.find_element(By.NAME, "community")).select_by_value("HZ-001")
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for(browser, "return document.querySelectorAll('#history tbody tr').length > 0")
    assert "→ 50" in browser.page_source
    screenshot(browser, "web-audit-history", full_page=True)
    browser.get(server.url("/audit/chain"))
    assert browser.find_element(By.ID, "chain-status").get_attribute("data-intact") == "1"
    assert not console_messages(browser), console_messages(browser)
