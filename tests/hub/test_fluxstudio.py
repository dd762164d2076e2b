"""FluxStudio as it ships, against the hub in front of a real OctoPrint (Virtual
Printer): tests/fluxstudio/relay.mjs (its printing-socket.js) with only
``FLUXPRINT_WS_URL`` set (no path, no credentials: the hub serves ``/socket.io/`` and
admits loopback as the ``fluxstudio`` profile), and tests/fluxstudio/browser.mjs (its
usePrintWebSocket hook) reading what the relay forwards. And the seed's test 4: the
hub restarts mid-print, the relay comes back by itself, and a resuming client loses
no durable event (checked against the plugin's own log)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from harness.fluxstudio import Browser, Relay, fluxprint_records, from_fluxprint
from harness.validate import validate_records
from octoserver import free_port, gcode_file

from tests.hub.conftest import HubClient, HubProcess, compare, plugin_log

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(octo, tmp_path):
    octo.ensure_operational()
    cfg = {"printers": [{"id": "mk4", "url": octo.url, "apikey": octo.apikey}]}
    proc = HubProcess(str(tmp_path), cfg, free_port())
    proc.start()
    proc.wait_synced()
    yield proc
    proc.stop()
    octo.ensure_operational()


@pytest.fixture
def fluxstudio(hub, event_schema, artifacts_dir, request):
    """Relays (FLUXPRINT_WS_URL only) and browsers; every FluxPrint payload a browser
    got is validated against the shipped schema at the end."""
    folder = os.path.join(artifacts_dir, "fluxstudio-hub")
    os.makedirs(folder, exist_ok=True)
    made: list[tuple[str, Any]] = []
    test = request.node.name.replace("/", "_")

    def relay(**env: str) -> Relay:
        log = os.path.join(folder, f"{test}-relay{len(made)}.out")
        r = Relay.start(hub.url, None, log, **env)
        made.append(("relay", r))
        return r

    def browser(r: Relay, **env: str) -> Browser:
        log = os.path.join(folder, f"{test}-browser{len(made)}.out")
        b = Browser.start(r.url, log, **env)
        made.append(("browser", b))
        return b

    yield relay, browser
    for kind, proc in reversed(made):
        proc.close() if kind == "browser" else proc.stop()
    for kind, proc in made:
        if kind == "browser":
            validate_records(event_schema, fluxprint_records(proc.lines))


def report(artifacts_dir: str, name: str, data: dict) -> None:
    with open(os.path.join(artifacts_dir, name), "w") as f:
        json.dump(data, f, indent=2)
    print(f"\n{name}: {data}")


def spacing(lines: list[dict]) -> list[float]:
    times = [m["t"] / 1000 for m in lines]
    return [round(b - a, 2) for a, b in zip(times, times[1:])]


def strictly_increasing(browser: Browser) -> bool:
    seqs = [m["payload"]["seq"] for m in browser.lines if from_fluxprint(m)]
    return all(a < b for a, b in zip(seqs, seqs[1:]))


def test_fluxstudio_relay_against_the_hub(octo, fluxstudio, artifacts_dir):
    relay_of, browser_of = fluxstudio
    relay = relay_of()
    browser = browser_of(relay)
    # the relay asked on connect (no ack): the browser's first FluxPrint status
    first = browser.wait_event("printer:status", from_fluxprint_ok, timeout=10)
    assert first["payload"]["printer"] == "mk4"
    assert first["payload"]["state"]["flags"]["operational"]
    mark = browser.mark()
    asked = browser.request_status()
    answer = browser.wait_event("printer:status", timeout=5, after=mark)
    assert answer["payload"]["seq"] > first["payload"]["seq"]
    assert answer["view"]["dashboard"]["isServiceAvailable"] is True
    print(f"status after request_status: {(answer['t'] - asked['t']) / 1000:.3f} s")

    # a real print: completion rising, job_complete with filename
    name = f"hub-{time.monotonic_ns()}.gcode"
    mark = browser.mark()
    octo.upload(name, gcode_file(1200), print_=True)
    done = browser.wait_event("printer:job_complete", timeout=90, after=mark)
    assert done["payload"]["filename"] == name
    assert done["view"]["problems"] == []
    completions = [
        p["completion"]
        for p in browser.payloads("printer:progress", mark)
        if p["file"]["name"] == name and p["completion"] is not None
    ]
    assert len(completions) >= 3 and completions == sorted(completions), completions
    assert completions[-1] > completions[0]

    # a cancel: job_failed with filename
    octo.ensure_operational()
    name2 = f"hub-cancel-{time.monotonic_ns()}.gcode"
    mark = browser.mark()
    octo.upload(name2, gcode_file(6000), print_=True)
    browser.wait_event(
        "printer:progress",
        lambda p: p["file"]["name"] == name2 and (p["completion"] or 0) > 1,
        timeout=30,
        after=mark,
    )
    octo.api("POST", "/api/job", json={"command": "cancel"}).raise_for_status()
    failed = browser.wait_event("printer:job_failed", timeout=30, after=mark)
    assert failed["payload"]["filename"] == name2
    assert failed["payload"]["reason"] == "cancelled"

    # temperatures all along, about every 2 s, with bed and tool0. How many came by
    # now depends on when the browser's first status came (the print starts after
    # it): at once, or at the hub's 5 s keyframe, so 3 or 5-6 by the cancel (4 of
    # 30 runs had 3). Wait for the fifth instead of counting (issue 22: 3 of 5)
    by_job_failed = len(browser.events("printer:temperature"))
    deadline = time.monotonic() + 20
    while len(browser.events("printer:temperature")) < 5:
        assert time.monotonic() < deadline, browser.events("printer:temperature")
        time.sleep(0.2)
    temps = browser.events("printer:temperature")
    gaps = spacing(temps)
    assert all({"bed", "tool0"} <= set(m["payload"]) for m in temps)
    gaps.sort()
    median = gaps[len(gaps) // 2]
    assert 1.5 <= median <= 3.0, gaps

    # the printer goes away and comes back: printer:connection with connected
    octo.ensure_operational()
    mark = browser.mark()
    octo.disconnect_printer()
    browser.wait_event(
        "printer:connection",
        lambda p: "seq" in p and p["connected"] is False,
        timeout=15,
        after=mark,
    )
    octo.connect_printer()
    up = browser.wait_event(
        "printer:connection",
        lambda p: "seq" in p and p["connected"] is True,
        timeout=20,
        after=mark,
    )
    assert up["payload"]["printer"] == "mk4"
    assert up["view"]["dashboard"]["isServiceAvailable"] is True

    # a browser joining later, on an idle printer: a status within 5 s (the
    # fluxstudio profile's keyframes; nobody asks)
    time.sleep(3)
    requests_before = len(relay.of("request_status"))
    late = browser_of(relay)
    joined = late.events("connect")[0]
    status = late.wait_event("printer:status", timeout=8)
    waited = (status["t"] - joined["t"]) / 1000
    assert waited <= 5.5, waited
    assert len(relay.of("request_status")) == requests_before
    # seq never repeats or goes back at a browser (the hub's own statuses included)
    assert strictly_increasing(browser) and strictly_increasing(late)
    report(
        artifacts_dir,
        "hub-fluxstudio.json",
        {
            "request_status_answer_s": round((answer["t"] - asked["t"]) / 1000, 3),
            "completions": completions,
            "temperature_spacing_median_s": median,
            "temperature_spacing_max_s": gaps[-1],
            "temperatures_by_job_failed": by_job_failed,
            "late_browser_first_status_s": round(waited, 3),
        },
    )


def from_fluxprint_ok(payload: Any) -> bool:
    return isinstance(payload, dict) and "seq" in payload


def test_hub_restart_mid_print_relay_reconnects_and_nothing_durable_is_lost(
    octo, hub, fluxstudio, artifacts_dir
):
    relay_of, browser_of = fluxstudio
    relay = relay_of()
    browser = browser_of(relay)
    client = HubClient(hub.url).start()
    try:
        time.sleep(1)
        since = max([s for s, _ in plugin_log(octo.basedir)] or [0])
        name = f"hub-restart-{time.monotonic_ns()}.gcode"
        octo.upload(name, gcode_file(3000), print_=True)
        browser.wait_event(
            "printer:progress",
            lambda p: p["file"]["name"] == name and (p["completion"] or 0) > 0,
            timeout=30,
        )
        mark, rmark = browser.mark(), relay.mark()
        stopped = time.monotonic()
        assert hub.stop() == 0
        relay.wait_for(lambda m: m.get("relay") == "upstream_disconnect", 10, rmark)
        assert client.seen("printer:closing"), "the hub said goodbye"
        # durable events while the hub is away
        octo.api(
            "POST", "/api/job", json={"command": "pause", "action": "pause"}
        ).raise_for_status()
        time.sleep(2)
        octo.api(
            "POST", "/api/job", json={"command": "pause", "action": "resume"}
        ).raise_for_status()
        time.sleep(1)
        hub.start()
        restarted = time.monotonic()
        up = relay.wait_for(
            lambda m: m.get("relay") == "upstream_connect", 30, relay.mark()
        )
        relay_back = time.monotonic() - restarted
        browser.wait_event("printer:status", timeout=10, after=mark)
        browser.wait_event("printer:temperature", timeout=10, after=mark)
        # the job goes on to its end; the resuming client got what it missed
        deadline = time.monotonic() + 120
        while not any(e == "printer:job_complete" for _p, _s, e in client.durable):
            assert time.monotonic() < deadline, (
                "no job_complete at the resuming client",
                client.durable,
                client.errors,
            )
            time.sleep(0.5)
        time.sleep(1)
        log = plugin_log(octo.basedir)
        result = compare(client, "mk4", log, since)
        report(
            artifacts_dir,
            "hub-restart.json",
            {
                **result,
                "relay_reconnect_after_restart_s": round(relay_back, 2),
                "hub_down_s": round(restarted - stopped, 2),
                "client_connects": client.connects,
                "relay_upstream_connect_t": up["t"],
            },
        )
        assert result["lost"] == 0 and result["duplicated"] == 0, (result, log)
        assert result["out_of_order"] == 0
        assert result["compared"] >= 4  # started, paused, resumed, complete
        assert client.errors == []
    finally:
        client.close()
