"""The hub's live page in Debian's chromium (Playwright), against hubs in front of
the session's OctoPrint: a viewer from a trusted network sees the printers at once;
elsewhere the page asks for a token, keeps it in sessionStorage only and never puts
it into a URL; German beside English; no JavaScript error in the console. (The
farm's page test, tests/farm/test_6_page.py, has the 3 printers and the states.)"""

from __future__ import annotations

import os

import pytest
from harness.browser import CHROMIUM, CHROMIUM_ARGS

from tests.js.conftest import PRINTER, TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page with its console errors and every URL it requested."""

    def __init__(self, browser, locale: str = "en-US"):
        self.context = browser.new_context(
            viewport={"width": 1200, "height": 800}, locale=locale
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.urls.append(r.url))
        self.page.on("websocket", lambda ws: self.urls.append(ws.url))

    def close(self) -> None:
        self.context.close()


def badge(page) -> str:
    return page.get_attribute("#connection-badge", "data-state")


def test_trusted_network_sees_its_printers_at_once(browser, hub, artifacts_dir):
    w = Watched(browser)
    try:
        page = w.page
        page.goto(hub.url + "/")
        page.wait_for_selector(f'.tile[data-printer="{PRINTER}"]')
        page.wait_for_function(
            "() => document.querySelector('#connection-badge').dataset.state"
            " === 'realtime'"
        )
        page.wait_for_function(
            "() => Number(document.querySelector('.tile').dataset.points || 0) >= 2",
            timeout=15_000,
        )
        assert page.is_hidden("#token-form")
        assert page.inner_text("#connection-badge") == "Real-Time"
        nozzle = page.inner_text(".tile .nozzle .actual")
        assert float(nozzle) > 0, nozzle
        assert "badge-green" in page.get_attribute("#connection-badge", "class")
        assert page.locator(".tile .chart canvas").count() == 1  # uPlot's
        page.screenshot(path=os.path.join(artifacts_dir, "page-single.png"))
        assert not w.errors, w.errors
        # only the hub's own origin, no CDN
        assert all(u.startswith((hub.url, hub.url.replace("http", "ws"))) for u in w.urls)
    finally:
        w.close()


def test_a_token_prompt_keeps_the_token_out_of_urls(browser, token_hub, artifacts_dir):
    w = Watched(browser)
    try:
        page = w.page
        page.goto(token_hub.url + "/")
        page.wait_for_selector("#token-form", state="visible")
        assert badge(page) == "closed"
        assert page.inner_text("#token-reason").startswith("missing credentials")
        page.screenshot(path=os.path.join(artifacts_dir, "page-token-prompt.png"))
        page.fill("#token-input", "a-wrong-token")
        page.click("#token-submit")
        page.wait_for_function(
            "() => document.querySelector('#token-reason').textContent"
            " === 'invalid token'"
        )
        page.fill("#token-input", TOKEN)
        page.click("#token-submit")
        page.wait_for_selector(f'.tile[data-printer="{PRINTER}"]')
        page.wait_for_function(
            "() => document.querySelector('#connection-badge').dataset.state"
            " === 'realtime'"
        )
        assert page.is_hidden("#token-form")
        stored = page.evaluate("() => sessionStorage.getItem('fluxprint:hub-token')")
        assert stored == TOKEN
        assert page.evaluate("() => localStorage.length") == 0
        # a reload in the same tab connects with the stored token, no prompt
        page.reload()
        page.wait_for_function(
            "() => document.querySelector('#connection-badge').dataset.state"
            " === 'realtime'"
        )
        assert page.is_hidden("#token-form")
        assert not [u for u in w.urls if TOKEN in u], "the token went into a URL"
        assert not [e for e in w.errors if "invalid token" not in e], w.errors
    finally:
        w.close()


def test_german_beside_english(browser, hub, artifacts_dir):
    w = Watched(browser, locale="de-DE")
    try:
        page = w.page
        page.goto(hub.url + "/")
        page.wait_for_function(
            "() => document.querySelector('#connection-badge').dataset.state"
            " === 'realtime'"
        )
        page.wait_for_selector(".tile .nozzle .label")
        assert page.inner_text("#connection-badge") == "Echtzeit"
        assert page.inner_text(".tile .nozzle .label") == "Düse"
        assert page.inner_text(".tile .bed .label") == "Bett"
        assert page.evaluate("() => document.documentElement.lang") == "de"
        page.goto(hub.url + "/?lang=en")
        page.wait_for_selector(".tile .nozzle .label")
        assert page.inner_text(".tile .nozzle .label") == "Nozzle"
        assert not w.errors, w.errors
    finally:
        w.close()
