"""Browser tests of the settings panel: Playwright (the pip package) driving
Debian's chromium against a real OctoPrint with the Virtual Printer.

One OctoPrint and one logged-in browser context for the whole module; every test
gets a fresh page and fails if the browser console logged a JavaScript error.
"""

from __future__ import annotations

import os
import runpy
import time

import pytest
from harness.browser import CHROMIUM, CHROMIUM_ARGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PANEL = "#settings_plugin_fluxprint"
ACCESS_PRESET = {
    "allowed_origins": ["https://studio.example.com"],
    "max_connections": 100,
    "max_connections_per_user": 50,
}


def pytest_configure(config):
    # the dev install is editable: OctoPrint reads the catalogues from the source
    # tree, so compile them there (git-ignored) before any OctoPrint starts
    runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="fluxprint_setup")[
        "compile_catalogs"
    ]()


@pytest.fixture(scope="module")
def panel_octo(tmp_path_factory, artifacts_dir):
    from octoserver import OctoServer

    server = OctoServer(
        str(tmp_path_factory.mktemp("octoprint-browser")),
        # errortracking reads softwareupdate's settings, which the harness disables:
        # it would log a TypeError to the console on every page load
        disabled_plugins=("errortracking",),
        config={"serial": {"timeout": {"temperatureAutoreport": 1}}},
        # the access settings (allowed_origins, max_connections,
        # max_connections_per_user) come with the security work; set here, the
        # panel shows its Access fieldset whether or not their defaults exist yet
        fluxprint=ACCESS_PRESET,
    )
    server.start()
    try:
        server.connect_printer()
        yield server
    finally:
        code = server.stop()
        with open(os.path.join(artifacts_dir, "octoprint-browser.log"), "w") as f:
            f.write(server.octoprint_log())
        assert code in (0, -15, None), f"OctoPrint exited with {code}"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def context(browser, panel_octo):
    from octoserver import ADMIN, ADMIN_PASSWORD

    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, base_url=panel_octo.url
    )
    context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=panel_octo.url
    )
    page = context.new_page()
    page.goto("/")
    page.fill("#login-user", ADMIN)
    page.fill("#login-password", ADMIN_PASSWORD)
    page.click("#login-button")
    page.wait_for_selector("#navbar_show_settings", state="visible", timeout=60_000)
    page.close()
    try:
        yield context
    finally:
        context.close()


class ConsoleErrors(list):
    def attach(self, page) -> None:
        page.on(
            "console",
            lambda msg: (
                self.append(f"console.{msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.append(f"pageerror: {exc}"))


@pytest.fixture
def page(context):
    """A fresh OctoPrint page; the test fails on any JavaScript error."""
    errors = ConsoleErrors()
    page = context.new_page()
    errors.attach(page)
    page.goto("/")
    page.wait_for_selector("#navbar_show_settings", state="visible", timeout=60_000)
    # view models bound, settings loaded
    page.wait_for_function(
        "() => window.OctoPrint && OctoPrint.coreui.startedUp === true"
    )
    yield page
    page.close()
    assert not errors, "JavaScript errors in the browser console:\n" + "\n".join(errors)


def open_panel(page) -> None:
    page.click("#navbar_show_settings")
    page.click(f'#settingsTabs a[href="{PANEL}"]')
    page.wait_for_selector(PANEL, state="visible")


def save_settings(page) -> None:
    page.click('[data-test-id="settings-save"]')
    page.wait_for_selector("#settings_dialog", state="hidden", timeout=20_000)


def close_settings(page) -> None:
    page.click('[data-test-id="settings-close-button"]')
    page.wait_for_selector("#settings_dialog", state="hidden", timeout=20_000)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or predicate}")
        time.sleep(interval)
