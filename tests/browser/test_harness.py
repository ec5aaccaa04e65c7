"""The browser harness itself, on a tiny app: an ECharts chart drawn from the vendored file, a form,
a strict Content-Security-Policy that blocks inline script but not the page's static JS."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pytest

from tests.browser import harness
from tests.browser.harness import DESKTOP, PHONE, LiveServer, console_messages
from tests.browser.pages import wait_for

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>harness</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/page.css">
<script src="/static/vendor/echarts.min.js" defer></script>
<script src="/assets/chart.js" defer></script>
</head>
<body>
<h1>服务记录</h1>
<div id="chart"></div>
<form method="post" action="/record">
  <label>时长（分钟） <input name="minutes" inputmode="numeric" required></label>
  <button type="submit">登记</button>
</form>
<script>window.inlineScriptRan = true;</script>
</body>
</html>
"""

CHART_JS = """
document.addEventListener("DOMContentLoaded", function () {
  var chart = echarts.init(document.getElementById("chart"), null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    title: { text: "近三月服务人次" },
    // ECharts' default HTML tooltip writes style="" attributes, which style-src 'self' blocks;
    // richText draws the tooltip on the canvas instead.
    tooltip: { trigger: "axis", renderMode: "richText" },
    xAxis: { type: "category", data: ["1月", "2月", "3月"] },
    yAxis: { type: "value" },
    series: [{ type: "bar", data: [120, 200, 150] }]
  });
  document.body.dataset.chart = "drawn";
});
"""

PAGE_CSS = """
body { font-family: sans-serif; margin: 1rem; }
#chart { width: 100%; max-width: 640px; height: 320px; }
"""


def make_app(assets: Path) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def record(request: Request) -> HTMLResponse:
        form = parse_qs((await request.body()).decode("utf-8"))
        minutes = int(form["minutes"][0])
        return HTMLResponse(f'<!doctype html><p id="recorded">recorded {minutes} minutes</p>')

    async def csp(scope: Any, receive: Any, send: Any) -> None:
        async def send_with_csp(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", CSP.encode())]
            await send(message)

        await app(scope, receive, send_with_csp if scope["type"] == "http" else send)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/record", record, methods=["POST"]),
            # The vendored files come from the installed package, as the web app will serve them.
            Mount("/static", StaticFiles(packages=[("commands.web", "static")])),
            Mount("/assets", StaticFiles(directory=assets)),
        ]
    )
    return csp


@pytest.fixture
def site(tmp_path: Path, live_server: Callable[..., LiveServer]) -> LiveServer:
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "chart.js").write_text(CHART_JS, encoding="utf-8")
    (assets / "page.css").write_text(PAGE_CSS, encoding="utf-8")
    return live_server(make_app(assets), lifespan="off")


def test_the_chart_draws_from_the_vendored_echarts(
    site: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]
) -> None:
    browser.get(site.url("/"))
    wait_for(browser, "return document.body.dataset.chart === 'drawn'")
    drawn = browser.execute_script(
        """
        var div = document.getElementById("chart");
        var chart = echarts.getInstanceByDom(div);
        var canvas = div.querySelector("canvas");
        var pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        var painted = 0;
        for (var i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) painted++; }
        return {version: echarts.version, instance: chart !== undefined && chart !== null,
                data: chart.getOption().series[0].data, width: canvas.width, painted: painted};
        """
    )
    assert drawn["instance"] and drawn["version"].startswith("5.")
    assert drawn["data"] == [120, 200, 150]
    assert drawn["width"] > 300 and drawn["painted"] > 1000, drawn
    assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == list(DESKTOP)
    shot = screenshot(browser, "harness-desktop")
    assert shot.read_bytes().startswith(harness.PNG_SIGNATURE)


@pytest.mark.parametrize("browser", [PHONE], indirect=True)
def test_the_form_submits_on_a_phone(site: LiveServer, browser: WebDriver, screenshot: Callable[..., Path]) -> None:
    from selenium.webdriver.common.by import By

    browser.get(site.url("/"))
    assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == list(PHONE)
    wait_for(browser, "return document.body.dataset.chart === 'drawn'")
    # On a 390-pixel screen the chart shrinks to fit rather than overflowing.
    assert browser.execute_script("return document.getElementById('chart').getBoundingClientRect().right") <= 390
    screenshot(browser, "harness-phone", full_page=True)
    browser.find_element(By.NAME, "minutes").send_keys("45")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(browser, "return document.getElementById('recorded') !== null")
    assert browser.find_element(By.ID, "recorded").text == "recorded 45 minutes"


def test_a_strict_csp_blocks_inline_script_but_runs_the_static_js(site: LiveServer, browser: WebDriver) -> None:
    with urllib.request.urlopen(site.url("/")) as response:
        assert response.headers["Content-Security-Policy"] == CSP
    browser.get(site.url("/"))
    wait_for(browser, "return document.body.dataset.chart === 'drawn'")
    assert browser.execute_script("return window.inlineScriptRan === undefined"), "the CSP did not apply"
    browser.execute_script(
        "echarts.getInstanceByDom(document.getElementById('chart'))"
        ".dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 1})"
    )
    errors = console_messages(browser)
    assert len(errors) == 1 and "Executing inline script violates" in errors[0], errors


def test_the_server_stops_and_frees_its_port(tmp_path: Path) -> None:
    (tmp_path / "chart.js").write_text(CHART_JS, encoding="utf-8")
    server = harness.start_server(make_app(tmp_path), lifespan="off")
    with urllib.request.urlopen(server.url("/assets/chart.js")) as response:
        assert response.status == 200 and b"echarts.init" in response.read()
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
        pass


def test_a_failing_startup_is_reported_not_waited_for() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no store"})

    with pytest.raises(RuntimeError, match="stopped while starting"):
        harness.start_server(app, timeout=10)


@pytest.mark.parametrize("ci", ["", "true"])
def test_missing_chromium_skips_but_fails_under_ci(ci: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected, match="chromium-driver"):
        harness.require_chromium(tmp_path / "chromium", tmp_path / "chromedriver")


@pytest.mark.parametrize("browser", [{"window": PHONE, "lang": "zh-CN"}], indirect=True)
def test_the_browser_language_reaches_the_server(live_server: Callable[..., LiveServer], browser: WebDriver) -> None:
    async def echo_language(scope: Any, receive: Any, send: Any) -> None:
        language = dict(scope["headers"]).get(b"accept-language", b"")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": language})

    browser.get(live_server(echo_language, lifespan="off").url("/"))
    assert browser.execute_script("return document.body.textContent").startswith("zh-CN")
    assert browser.execute_script("return navigator.language") == "zh-CN"
