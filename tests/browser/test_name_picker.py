"""The clerk's name picker in real headless Chromium, on a phone: typing part of a name shows the
community's matches (static/picker.js, no inline script under the CSP); choosing one puts its
code in the field, and the record is saved with it. SQLite only (tests/web/test_pickers.py runs
the endpoint on both stores)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import orjson
import pytest

from tests.browser.harness import PHONE, LiveServer, console_messages
from tests.browser.pages import log_in, wait_for
from tests.e2e.conftest import Cli

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


@pytest.mark.parametrize("browser", [PHONE], indirect=True)
def test_a_clerk_picks_a_resident_by_part_of_a_name(store: Cli, server: LiveServer, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, server, "clerk-hj")
    wait_for(browser, "return location.pathname === '/clerk'")
    Select(browser.find_element(By.NAME, "community")).select_by_value("HZ-001")
    browser.find_element(By.XPATH, "//label[contains(@class,'kind')][.//span[text()='生活照料']]").click()
    browser.find_element(By.NAME, "resident").send_keys("秀英")
    wait_for(browser, "return document.querySelector('ul.picks button[data-code]') !== null")
    offered = browser.execute_script(
        "return Array.from(document.querySelectorAll('ul.picks button')).map(b => b.textContent)"
    )
    assert offered == ["张秀英 (R1)"]
    browser.find_element(By.CSS_SELECTOR, "ul.picks button[data-code='R1']").click()
    assert browser.find_element(By.NAME, "resident").get_attribute("value") == "R1"
    browser.find_element(By.NAME, "provider").send_keys("李")
    wait_for(browser, "return document.querySelector('ul.picks button[data-code=\"P1\"]') !== null")
    browser.find_element(By.CSS_SELECTOR, "ul.picks button[data-code='P1']").click()
    browser.execute_script("document.querySelector('input[name=at]').value = '2026-03-27T10:00'")
    browser.find_element(By.NAME, "minutes").send_keys("20")
    record_id = browser.find_element(By.NAME, "record_id").get_attribute("value")
    browser.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait_for(browser, "return document.querySelector('p.done') !== null")
    entries = orjson.loads(
        store.ok("ledger", "entries", "--community", "HZ-001", "--format", "json", actor="sup-hj").stdout
    )
    mine = [e for e in entries if e["record_id"] == record_id]
    assert len(mine) == 1 and mine[0]["residents"] == ["R1"] and mine[0]["providers"] == ["P1"]
    assert uuid.UUID(record_id)
    assert not console_messages(browser), console_messages(browser)
