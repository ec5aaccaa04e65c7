"""The clerk's upload report on a phone and the admins' page, in real headless Chromium (SQLite)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.harness import PHONE, LiveServer, console_messages
from tests.browser.pages import log_in, wait_for
from tests.e2e.conftest import Cli

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

SHEET = (
    "社区,服务类型,服务对象,服务人员,服务时间,时长(分钟),经办人\n"
    "HZ-001,生活照料,R1,P1,2026-03-16 09:00,35,小李\n"
    "HZ-001,心理抚慰,R2,P1,2026-03-16 10:00,5000,小李\n"
    "合计,,,,,,\n"
)


@pytest.mark.parametrize("browser", [PHONE], indirect=True)
def test_a_clerk_on_a_phone_sees_the_upload_report_before_confirming(
    store: Cli,
    server: LiveServer,
    browser: WebDriver,
    screenshot: Callable[..., Path],
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    sheet = tmp_path / "march.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    log_in(browser, server, "clerk-hj")
    browser.get(server.url("/clerk/import"))
    browser.find_element(By.NAME, "file").send_keys(str(sheet))
    browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
    wait_for(browser, "return document.getElementById('report') !== null")
    report = browser.find_element(By.ID, "report").text
    assert "第 3 行" in report and "5000" in report and "未导入的列：经办人" in report
    assert not browser.find_elements(By.NAME, "upload")  # a bad row: nothing to confirm
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    assert not console_messages(browser), console_messages(browser)
    screenshot(browser, "web-clerk-upload-report", full_page=True)


def test_an_admin_sees_the_actors_and_issues_a_token(
    store: Cli,
    server: LiveServer,
    browser: WebDriver,
    screenshot: Callable[..., Path],
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, server, "boss")
    browser.get(server.url("/admin"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#actors tr[data-actor]")
    assert {"sup-hj", "clerk-hj", "auditor"} <= {r.get_attribute("data-actor") for r in rows}
    form = browser.find_element(By.ID, "token-form")
    form.find_element(By.NAME, "name").send_keys("clerk-hj")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, "return document.getElementById('token') !== null")
    assert browser.find_element(By.ID, "token").text.startswith("tz_")
    assert not console_messages(browser), console_messages(browser)
    screenshot(browser, "web-admin", full_page=True)
