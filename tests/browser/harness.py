"""The machinery behind tests/browser/conftest.py: an ASGI app served on loopback, headless Chromium.

Nothing is downloaded at run time: the browser is Debian's `chromium` driven through Debian's
`chromium-driver` (.ci/run installs both when missing). Without them the browser tests skip, except
under CI=true, where they fail: CI must not pass by skipping.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

PHONE = (390, 844)
DESKTOP = (1366, 900)

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the test with `reason`, or fail it under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: browser tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def require_chromium(chromium: Path = CHROMIUM, chromedriver: Path = CHROMEDRIVER) -> None:
    missing = [str(p) for p in (chromium, chromedriver) if not p.exists()]
    if missing:
        unavailable(
            f"browser tests need {' and '.join(missing)}: apt-get install chromium chromium-driver "
            "(.ci/run does it when run as root)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        unavailable("browser tests need selenium: pip install -e '.[test]'")


# --- the app under test, served by uvicorn in a thread ---------------------------------------


@dataclass
class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread. `server.url("/path")`."""

    base_url: str
    _server: Any
    _thread: threading.Thread
    _socket: socket.socket

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # a connection that will not close: stop waiting for it
            self._server.force_exit = True
            self._thread.join(timeout)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError(f"the test server on {self.base_url} did not stop within {2 * timeout:.0f} s")


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def start_server(app: Any, *, lifespan: str = "on", timeout: float = 20.0) -> LiveServer:
    """Serve `app` on a free loopback port; returns once the port accepts connections.

    The socket is bound here (port 0) and handed to uvicorn, so no other process can take the port
    between choosing and binding it. lifespan="on": the app's startup and shutdown run, and a
    failing startup fails the test here; pass "off" for a bare ASGI callable without lifespan.
    """
    try:
        import uvicorn
    except ImportError:
        unavailable("browser tests need uvicorn: pip install -e '.[test]'")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_config=None,  # leave the test process's logging alone
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    exited: list[object] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit as e:  # uvicorn exits this way when the app's startup fails
            exited.append(e.code)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    live = LiveServer(f"http://127.0.0.1:{port}", server, thread, sock)
    deadline = time.monotonic() + timeout
    while not (server.started and _accepts(port)):
        if not thread.is_alive():
            sock.close()
            raise RuntimeError(f"the test server stopped while starting (exit code {exited[0] if exited else None})")
        if time.monotonic() > deadline:
            live.stop()
            raise RuntimeError(f"the test server on port {port} did not accept connections within {timeout:.0f} s")
        time.sleep(0.02)
    return live


# --- the browser ---------------------------------------------------------------------------------


def start_chromium(
    window: tuple[int, int] = DESKTOP, *, mobile: bool | None = None, lang: str | None = None
) -> tuple[WebDriver, Path]:
    """Headless Chromium with a fresh profile; returns the driver and the profile dir (remove it after quit).

    The viewport is exactly `window` (CSS pixels): set by device-metrics emulation, not by the
    window's outer size. `mobile` (default: width < 600) makes the page's <meta name=viewport>
    count, as on a phone. `lang` (e.g. "zh-CN", "en") sets Accept-Language and navigator.language.
    """
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    width, height = window
    profile = Path(tempfile.mkdtemp(prefix="taizhang-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    if lang:
        options.add_argument(f"--lang={lang}")
        options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        # With the driver's path given, selenium skips Selenium Manager: nothing is looked up or fetched.
        driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    try:
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": width < 600 if mobile is None else mobile,
            },
        )
    except Exception:
        stop_chromium(driver, profile)
        raise
    return driver, profile


def stop_chromium(driver: WebDriver, profile: Path) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def chromium(window: tuple[int, int] = DESKTOP, **kwargs: Any) -> Iterator[WebDriver]:
    driver, profile = start_chromium(window, **kwargs)
    try:
        yield driver
    finally:
        stop_chromium(driver, profile)


def save_screenshot(driver: WebDriver, path: Path | str, *, full_page: bool = False) -> Path:
    """Write a PNG of the viewport (or of the whole page with full_page=True) to `path`; returns it."""
    path = Path(path)
    if full_page:
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
        )
        png = base64.b64decode(shot["data"])
    else:
        png = driver.get_screenshot_as_png()
    if not png.startswith(PNG_SIGNATURE):
        raise RuntimeError("the browser did not return a PNG screenshot")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def console_messages(driver: WebDriver, level: str = "SEVERE") -> list[str]:
    """The browser console's messages at `level` since the last call (errors, CSP violations)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == level]
