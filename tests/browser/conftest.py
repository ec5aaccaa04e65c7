"""Browser tests: the app served on loopback by uvicorn, driven in real headless Chromium by selenium.

Fixtures (see tests/browser/harness.py for the machinery):

- `live_server(app, lifespan="on")` serves an ASGI app on a free 127.0.0.1 port in a background thread
  and returns a LiveServer (`.url("/path")`, `.base_url`, `.port`); every server is stopped after the test.
- `browser` is a headless Chromium WebDriver at 1366×900 (DESKTOP). For another size, parametrize it
  indirectly: `@pytest.mark.parametrize("browser", [PHONE], indirect=True)` (PHONE = 390×844), or
  pass a dict `{"window": (w, h), "mobile": bool, "lang": "zh-CN"}`.
- `open_browser(window=DESKTOP, mobile=None, lang=None)` opens more browsers in one test (a clerk on a
  phone and a supervisor on a PC); all are quit after the test.
- `store` (one per test module) is a SQLite store of tests/web's communities, actors (password
  tests.web.conftest.PASSWORD) and services, made through the CLI; a module that needs more data
  overrides it with a fixture `store(store)` that adds to it. `server` serves taizhang's web app over
  `store` for one test. Logging in and waiting are in tests/browser/pages.py.
- `screenshot(driver, name, full_page=False)` saves `name.png` in the test's tmp_path, or in
  $TAIZHANG_SCREENSHOTS when set (to refresh the pictures in docs/), and returns its path.

Without /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium, chromium-driver) these tests
skip with that reason — except under CI=true, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.harness import DESKTOP, LiveServer, save_screenshot, start_chromium, start_server, stop_chromium
from tests.e2e.conftest import Cli
from tests.web.conftest import build

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def serve(app: Any, *, lifespan: str = "on") -> LiveServer:
        server = start_server(app, lifespan=lifespan)
        servers.append(server)
        return server

    yield serve
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def open_browser() -> Iterator[Callable[..., WebDriver]]:
    opened: list[tuple[WebDriver, Path]] = []

    def open_(window: tuple[int, int] = DESKTOP, *, mobile: bool | None = None, lang: str | None = None) -> WebDriver:
        driver, profile = start_chromium(window, mobile=mobile, lang=lang)
        opened.append((driver, profile))
        return driver

    yield open_
    for driver, profile in reversed(opened):
        stop_chromium(driver, profile)


@pytest.fixture
def browser(request: pytest.FixtureRequest, open_browser: Callable[..., WebDriver]) -> WebDriver:
    param = getattr(request, "param", DESKTOP)
    if isinstance(param, dict):
        return open_browser(**param)
    return open_browser(tuple(param))


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[..., Path]:
    folder = Path(os.environ["TAIZHANG_SCREENSHOTS"]) if os.environ.get("TAIZHANG_SCREENSHOTS") else tmp_path

    def take(driver: WebDriver, name: str, *, full_page: bool = False) -> Path:
        return save_screenshot(driver, folder / f"{name}.png", full_page=full_page)

    return take


@pytest.fixture(scope="module")
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    cli = Cli(f"sqlite:///{tmp / 'taizhang.db'}", tmp / "taizhang.key")
    build(cli)
    return cli


@pytest.fixture
def server(store: Cli, live_server: Callable[..., LiveServer]) -> LiveServer:
    from commands.web.app import create_app
    from commands.web.door import Door

    return live_server(create_app(Door(store.url, store.key)))
