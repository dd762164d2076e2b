"""The hub's live page in Debian's chromium on the farm (the session's 3 OctoPrints
with the Virtual Printer, Redis and the hubs of tests/farm/conftest.py): 3 tiles
with live temperatures; a print's progress rising to its job_complete; the seed's
Test 4 on the connection badge (the hub stopped: yellow Reconnecting, then gray
Polling Mode; started again: green Real-Time, with no reload). A screenshot of each
state goes to test-artifacts/ (docs/img/ has copies)."""

from __future__ import annotations

import os
import time

import pytest
from harness.browser import CHROMIUM, CHROMIUM_ARGS
from harness.jobs import job_command, job_state, wait_job
from octoserver import gcode_file

from tests.farm.conftest import IDS, Farm

pytestmark = pytest.mark.integration

# the seed's delays shrunk (1 s growing to 30 s, 30 s polling) so Test 4 takes seconds
TUNING = "?delay=200&delayMax=1000&pollAfter=2&statusInterval=1000"


def badge(page) -> str:
    return page.get_attribute("#connection-badge", "data-state")


def wait_badge(page, state: str, timeout: float = 30_000) -> float:
    page.wait_for_function(
        f"() => document.querySelector('#connection-badge').dataset.state === '{state}'",
        timeout=timeout,
    )
    return time.monotonic()


def points(page) -> dict[str, int]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.tile')]"
        ".map(t => [t.dataset.printer, Number(t.dataset.points || 0)]))"
    )


def short_print(farm: Farm, pid: str) -> str:
    """Ends the farm's long print on ``pid`` and starts one of a few seconds."""
    octo = farm.octos[pid]
    if job_state(octo).startswith(("Printing", "Paused")):
        job_command(octo, "cancel")
    wait_job(octo, lambda s: s == "Operational", 30)
    name = f"page-{time.monotonic_ns()}.gcode"
    octo.upload(name, gcode_file(800), print_=True)
    return name


def test_the_live_page_on_the_farm(farm_ready: Farm, artifacts_dir):
    from playwright.sync_api import sync_playwright

    farm = farm_ready
    hub = farm.hubs[0]
    shots = {}
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1240, "height": 560})
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        loads = []
        page.on("load", lambda _p: loads.append(time.monotonic()))

        def shot(name: str) -> None:
            path = os.path.join(artifacts_dir, f"page-{name}.png")
            page.screenshot(path=path)
            shots[name] = path

        try:
            # heat up, so the charts have curves to show (cooled down at the end)
            for octo in farm.octos.values():
                octo.send_gcode("M104 S210", "M140 S60")
            page.goto(hub.url + "/" + TUNING)
            # 3 tiles, live temperatures on each
            page.wait_for_function(
                "() => document.querySelectorAll('.tile').length === 3"
            )
            wait_badge(page, "realtime")
            assert page.inner_text("#connection-badge") == "Real-Time"
            assert sorted(points(page)) == sorted(IDS)
            first = points(page)
            page.wait_for_function(
                "(before) => [...document.querySelectorAll('.tile')].every("
                " t => Number(t.dataset.points || 0) >= before[t.dataset.printer] + 2)",
                arg=first,
                timeout=20_000,
            )
            for pid in IDS:
                tile = page.locator(f'.tile[data-printer="{pid}"]')
                assert float(tile.locator(".nozzle .actual").inner_text()) > 0
                assert tile.locator(".chart canvas").count() == 1

            # a print's progress rising, then its job_complete
            name = short_print(farm, "farm-a")
            tile = '.tile[data-printer="farm-a"]'
            seen: list[float] = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if page.get_attribute(tile, "data-last-event") == "printer:job_complete":
                    break
                file = page.inner_text(f"{tile} .file")
                value = page.get_attribute(tile, "data-completion")
                if file == name and value and (not seen or float(value) != seen[-1]):
                    seen.append(float(value))
                    if len(seen) == 3:
                        shot("printing")
                time.sleep(0.05)
            assert page.get_attribute(tile, "data-last-event") == "printer:job_complete"
            assert name in page.inner_text(f"{tile} .lastevent .value")
            assert len(seen) >= 3 and seen == sorted(seen), seen
            assert page.get_attribute(tile, "data-completion") == "100"
            shot("realtime")

            # the seed's Test 4: stop the hub...
            stopped = time.monotonic()
            hub.stop()
            yellow = wait_badge(page, "reconnecting", 15_000)
            assert "badge-yellow" in page.get_attribute("#connection-badge", "class")
            shot("reconnecting")
            gray = wait_badge(page, "polling", 15_000)
            assert page.inner_text("#connection-badge") == "Polling Mode"
            assert "badge-gray" in page.get_attribute("#connection-badge", "class")
            shot("polling")
            # ... start it again: green without a reload, and data flowing again
            hub.start()
            farm.wait_hub(hub)
            started = time.monotonic()
            green = wait_badge(page, "realtime", 30_000)
            again = points(page)
            page.wait_for_function(
                "(before) => [...document.querySelectorAll('.tile')].every("
                " t => Number(t.dataset.points || 0) > before[t.dataset.printer])",
                arg=again,
                timeout=20_000,
            )
            # the status as it is now, not the one from before the outage
            page.wait_for_function(
                "() => document.querySelector('.tile[data-printer=\"farm-a\"]')"
                ".dataset.state === 'Operational'",
                timeout=5_000,
            )
            shot("realtime-again")
            assert len(loads) == 1, "the page was reloaded"
            transitions = page.evaluate(
                "() => window.fluxprint.transitions.map(t => [t.from, t.to])"
            )
            assert transitions[-3:] == [
                ["realtime", "reconnecting"],
                ["reconnecting", "polling"],
                ["polling", "realtime"],
            ], transitions
            print(
                f"\npage Test 4: yellow {yellow - stopped:.2f} s after the stop, gray"
                f" {gray - stopped:.2f} s; green {green - started:.2f} s after the hub"
                f" served again; progress seen {seen}"
            )
        finally:
            context.close()
            browser.close()
            for octo in farm.octos.values():
                octo.send_gcode("M104 S0", "M140 S0")
    # only the engine.io polls against the stopped hub may fail
    unexpected = [
        e for e in errors if "Failed to load resource" not in e and "ERR_" not in e
    ]
    assert not unexpected, unexpected
    assert set(shots) == {
        "printing",
        "realtime",
        "reconnecting",
        "polling",
        "realtime-again",
    }


def test_rest_at_a_redis_hub(farm_ready: Farm):
    """The REST fallback of a hub on the redis source: its printers, statuses and the
    durable events after a cursor (from the cache or Redis) equal each plugin's log."""
    import requests

    hub = farm_ready.hubs[1]
    listed = requests.get(hub.url + "/api/printers", timeout=10).json()
    assert sorted(p["id"] for p in listed["printers"]) == sorted(IDS)
    farm_ready.durable_round(IDS)
    for pid in IDS:
        status = requests.get(f"{hub.url}/api/printers/{pid}/status", timeout=10).json()
        assert status["printer"] == pid and "state" in status
        log = farm_ready.log(pid)
        since = log[max(0, len(log) - 6)][0] - 1
        want = [(s, e) for s, e in log if s > since]
        deadline = time.monotonic() + 15
        while True:
            url = f"{hub.url}/api/printers/{pid}/events?since={since}&limit=3"
            got, cursor = [], since
            while True:
                page = requests.get(
                    f"{hub.url}/api/printers/{pid}/events?since={cursor}&limit=3",
                    timeout=10,
                ).json()
                assert page["resync"] is None, page
                got += [(p["seq"], e) for e, p in page["events"]]
                if not page["more"]:
                    break
                cursor = got[-1][0]
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert got == want, (pid, url)
