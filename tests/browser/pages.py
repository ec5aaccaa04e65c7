"""What the browser tests do on taizhang's pages: log in, wait for a script to hold.

The store and server fixtures are in tests/browser/conftest.py; these are plain functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.web.conftest import PASSWORD

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

    from tests.browser.harness import LiveServer


def wait_for(driver: WebDriver, script: str, timeout: float = 10) -> Any:
    """Wait until `script` returns something true; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def log_in(driver: WebDriver, server: LiveServer, actor: str) -> None:
    """Log `actor` in with tests.web's password; returns once the login's redirect has landed."""
    from selenium.webdriver.common.by import By

    driver.get(server.url("/login"))
    driver.find_element(By.NAME, "actor").send_keys(actor)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait_for(driver, "return location.pathname !== '/login'")
