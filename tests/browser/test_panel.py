"""Settings → FluxPrint in a real browser against a real OctoPrint."""

from __future__ import annotations

import os
import statistics
import time

import pytest

from tests.browser.conftest import (
    ACCESS_PRESET,
    PANEL,
    close_settings,
    open_panel,
    save_settings,
    wait_until,
)
from tests.harness.clients import NAMESPACE, PATH, NodeClient, PyClient

pytestmark = pytest.mark.integration


def plugin_settings(octo) -> dict:
    r = octo.api("GET", "/api/settings")
    r.raise_for_status()
    return r.json()["plugins"]["fluxprint"]


def set_plugin_settings(octo, values: dict) -> None:
    octo.api(
        "POST", "/api/settings", json={"plugins": {"fluxprint": values}}
    ).raise_for_status()


def screenshot_panel(page, path: str) -> None:
    """The whole panel, not just the part the modal's scroll box shows: unclip
    every scrolling ancestor, then let the page grow to the panel's height."""
    page.evaluate(
        """(selector) => {
            let node = document.querySelector(selector).parentElement;
            while (node && node !== document.body) {
                const style = getComputedStyle(node);
                if (style.position === 'fixed') {
                    node.style.position = 'absolute';
                    node.style.top = '0';
                }
                node.style.maxHeight = 'none';
                node.style.height = 'auto';
                node.style.overflow = 'visible';
                node = node.parentElement;
            }
            const dialog = document.querySelector('#settings_dialog');
            for (const other of document.body.children) {
                if (other !== dialog && !other.contains(dialog)) {
                    other.style.visibility = 'hidden';
                }
            }
            for (const part of dialog.querySelectorAll('.modal-footer, .modal-header')) {
                part.style.display = 'none';
            }
            const panel = document.querySelector(selector);
            panel.style.background = '#fff';
            panel.style.padding = '10px';
        }""",
        PANEL,
    )
    page.locator(PANEL).screenshot(path=path)


def test_temperature_interval_applies_to_connected_clients(page, panel_octo):
    set_plugin_settings(panel_octo, {"temperature_interval": 2})
    client = PyClient(panel_octo.url, auth={"apikey": panel_octo.apikey}).start()
    try:
        client.wait_for("printer:temperature", timeout=15)
        open_panel(page)
        field = page.locator("#fluxprint-temperature_interval")
        field.fill("5")
        assert not page.locator(f"{PANEL} .fluxprint-error:visible").count()
        save_settings(page)
        wait_until(
            lambda: plugin_settings(panel_octo)["temperature_interval"] == 5,
            what="temperature_interval saved as 5",
        )
        # the client stays connected: the new interval reaches it without a reconnect
        time.sleep(1.0)
        mark = client.mark()

        def recent() -> list[float]:
            return [
                r["recv"]
                for r in client.events()[mark:]
                if r["event"] == "printer:temperature"
            ]

        times = wait_until(
            lambda: recent() if len(recent()) >= 4 else None,
            timeout=30,
            interval=0.5,
            what="4 temperatures",
        )
        gaps = [(b - a) / 1000 for a, b in zip(times, times[1:])]
        median = statistics.median(gaps)
        assert 4.0 <= median <= 6.5, f"temperature gaps {gaps}, median {median:.2f} s"
        assert min(gaps) >= 3.5, f"a temperature came early: {gaps}"
        assert client.disconnects == [], "the client was disconnected by the save"
    finally:
        client.close()
        set_plugin_settings(panel_octo, {"temperature_interval": 2})


@pytest.mark.parametrize("bad", ["-1", "99999"])
def test_invalid_interval_shows_message_and_saves_nothing(page, panel_octo, bad):
    before = plugin_settings(panel_octo)["temperature_interval"]
    open_panel(page)
    page.locator("#fluxprint-temperature_interval").fill(bad)
    message = page.locator("#fluxprint-temperature_interval ~ .fluxprint-error")
    if not message.count():
        message = page.locator(f"{PANEL} .control-group.error .fluxprint-error").first
    message.wait_for(state="visible", timeout=5000)
    assert "Enter a number of seconds from 0 to 3600" in message.inner_text()
    assert page.locator(
        f"{PANEL} .control-group.error #fluxprint-temperature_interval"
    ).count()
    save_settings(page)
    time.sleep(0.5)
    assert plugin_settings(panel_octo)["temperature_interval"] == before


def test_live_table_shows_clients_and_their_transport(page, panel_octo, artifacts_dir):
    open_panel(page)
    table = page.locator("#fluxprint-clients")
    # health comes with the first push
    page.locator("#fluxprint-health-temperature").filter(has_text="ago").wait_for(
        timeout=10_000
    )
    assert page.locator("#fluxprint-health-printer .label-success").is_visible()
    node = NodeClient(
        panel_octo.url, auth={"apikey": panel_octo.apikey}, transports=["polling"]
    ).start()
    py = None
    try:
        assert node.sid
        row = table.locator(f'tr[data-sid="{node.sid}"]')
        row.wait_for(timeout=5000)
        assert row.locator(".fluxprint-transport").inner_text().strip() == "polling"
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == "admin"
        assert cells[2] == "127.0.0.1"
        assert "temperature 2 s" in cells[5] and "jobs" in cells[5]
        wait_until(
            lambda: int(row.locator(".fluxprint-num").inner_text() or 0) >= 1,
            what="messages counted",
        )
        py = PyClient(panel_octo.url, auth={"apikey": panel_octo.apikey}).start()
        ws_row = table.locator(f'tr[data-sid="{py.sio.get_sid(NAMESPACE)}"]')
        ws_row.wait_for(timeout=5000)
        assert ws_row.locator(".fluxprint-transport").inner_text().strip() == "websocket"
        assert page.locator("#fluxprint-client-count").inner_text() == "2"
        # let the numbers tick once more, then keep the panel as it looks in use
        time.sleep(1.2)
        screenshot_panel(
            page, os.path.join(artifacts_dir, "fluxprint-settings-panel.png")
        )
        node.close()
        row.wait_for(state="detached", timeout=5000)
        assert ws_row.count() == 1
    finally:
        node.close()
        if py is not None:
            py.close()
    table.locator("tr.fluxprint-client").first.wait_for(state="detached", timeout=5000)
    assert page.locator("#fluxprint-client-count").inner_text() == "0"


def test_copy_snippets(page, panel_octo):
    open_panel(page)
    page.click("#fluxprint-copy-node")
    page.locator("#fluxprint-copy-node ~ .fluxprint-copied").wait_for(state="visible")
    node = page.evaluate("() => navigator.clipboard.readText()")
    assert f'io("{panel_octo.url}{NAMESPACE}"' in node
    assert f'path: "{PATH}"' in node
    assert "auth: { apikey: process.env.OCTOPRINT_API_KEY }" in node
    assert "reconnection: true" in node
    assert node == page.locator("#fluxprint-snippet-node").inner_text()
    page.click("#fluxprint-copy-python")
    page.locator("#fluxprint-copy-python ~ .fluxprint-copied").wait_for(state="visible")
    python = page.evaluate("() => navigator.clipboard.readText()")
    assert f'socketio_path="{PATH}"' in python
    assert f'namespaces=["{NAMESPACE}"]' in python
    assert "reconnection=True" in python
    # the hint opens OctoPrint's Application Keys settings
    page.click("#fluxprint-appkeys-link")
    page.wait_for_selector("#settings_plugin_appkeys", state="visible")
    close_settings(page)


def test_panel_in_german(context, panel_octo, artifacts_dir):
    from tests.browser.conftest import ConsoleErrors

    panel_octo.api(
        "POST", "/api/settings", json={"appearance": {"defaultLanguage": "de"}}
    ).raise_for_status()
    errors = ConsoleErrors()
    page = context.new_page()
    errors.attach(page)
    try:
        page.goto("/")
        page.wait_for_function(
            "() => window.OctoPrint && OctoPrint.coreui.startedUp === true",
            timeout=60_000,
        )
        open_panel(page)
        panel = page.locator(PANEL)
        # rendered by Jinja2 from the compiled .mo
        assert "Aktualisierungsintervalle" in panel.locator("legend").first.inner_text()
        assert panel.locator("legend", has_text="Kanäle").count() == 1
        assert (
            "Node.js-Beispiel kopieren"
            in page.locator("#fluxprint-copy-node").inner_text()
        )
        # rendered by the view model through gettext, from the .po
        page.locator("#fluxprint-health-temperature").filter(
            has_text="Letzte Temperatur vor"
        ).wait_for(timeout=10_000)
        page.locator("#fluxprint-temperature_interval").fill("-5")
        assert (
            "Gib eine Anzahl Sekunden von 0 bis 3600 ein."
            in page.locator(
                f"{PANEL} .control-group.error .fluxprint-error"
            ).first.inner_text()
        )
        # the screenshot rearranges the page: nothing is clicked after it
        screenshot_panel(
            page, os.path.join(artifacts_dir, "fluxprint-settings-panel-de.png")
        )
    finally:
        page.close()
        panel_octo.api(
            "POST", "/api/settings", json={"appearance": {"defaultLanguage": "_default"}}
        ).raise_for_status()
    assert not errors, "JavaScript errors in the browser console:\n" + "\n".join(errors)


def test_access_fieldset_validates_origins_and_limits(page, panel_octo):
    open_panel(page)
    origins = page.locator("#fluxprint-allowed_origins")
    assert origins.input_value() == "\n".join(ACCESS_PRESET["allowed_origins"])
    limit = page.locator("#fluxprint-max_connections")
    assert limit.input_value() == str(ACCESS_PRESET["max_connections"])
    origin_error = page.locator(f"{PANEL} .fluxprint-access .fluxprint-error").first
    origins.fill("https://studio.example.com\nstudio.example.com")
    origin_error.wait_for(state="visible")
    assert "Not an origin: studio.example.com" in origin_error.inner_text()
    origins.fill("https://studio.example.com\nhttp://10.0.0.5:8080/")
    origin_error.wait_for(state="hidden")
    limit.fill("2.5")
    limit_error = page.locator("#fluxprint-max_connections ~ .fluxprint-error")
    limit_error.wait_for(state="visible")
    assert "Enter a whole number from 1 to 10000." in limit_error.inner_text()
    limit.fill("0")  # the server would clamp 0 to 1: refused here already
    limit_error.wait_for(state="visible")
    limit.fill("20")
    limit_error.wait_for(state="hidden")
    close_settings(page)
