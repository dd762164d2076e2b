"""FluxStudio's relay as it ships, against the hub in front of a real OctoPrint
(Virtual Printer): only ENABLE_FLUXPRINT and FLUXPRINT_WS_URL set. And the seed's
test 4: the hub restarts mid-print, the relay comes back by itself, and a resuming
client loses no durable event (checked against the plugin's own log)."""

from __future__ import annotations

import time

import pytest
from octoserver import free_port, gcode_file

from tests.hub.conftest import HubClient, HubProcess, Relay, compare, plugin_log

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


def gaps(items):
    times = [i["recv"] for i in items]
    return [round((b - a) / 1000, 2) for a, b in zip(times, times[1:])]


def test_fluxstudio_relay_against_the_hub(octo, hub):
    relay = Relay(hub.url)
    try:
        relay.lines.wait(lambda i: i["type"] == "connect", 15)
        first = relay.browser("printer:status", timeout=10)["data"]
        assert first["state"]["flags"]["operational"] and first["printer"] == "mk4"
        mark = relay.lines.mark()
        relay.request_status()
        relay.browser("printer:status", after=mark, timeout=5)

        mark = relay.lines.mark()
        time.sleep(7)
        temps = [
            i for i in relay.lines.items[mark:] if i.get("event") == "printer:temperature"
        ]
        assert len(temps) >= 2 and all(
            "bed" in t["data"] and "tool0" in t["data"] for t in temps
        )
        print("temperature gaps at the relay (s):", gaps(temps))

        # a real print
        name = f"hub-{int(time.time())}.gcode"
        mark = relay.lines.mark()
        octo.upload(name, gcode_file(300), print_=True)
        done = relay.browser("printer:job_complete", timeout=90, after=mark)["data"]
        assert done["filename"] == name
        completions = [
            i["data"]["completion"]
            for i in relay.lines.items[mark:]
            if i.get("event") == "printer:progress"
            and i["data"]["completion"] is not None
        ]
        assert len(completions) >= 3 and completions == sorted(completions)
        print("completion at the relay:", completions[:3], "...", completions[-1])

        # a cancel
        octo.ensure_operational()
        name2 = f"hub-cancel-{int(time.time())}.gcode"
        mark = relay.lines.mark()
        octo.upload(name2, gcode_file(3000), print_=True)
        relay.browser("printer:progress", lambda d: (d["completion"] or 0) > 0, 30, mark)
        octo.api("POST", "/api/job", json={"command": "cancel"}).raise_for_status()
        failed = relay.browser("printer:job_failed", timeout=30, after=mark)["data"]
        assert failed["filename"] == name2

        # the printer goes away and comes back
        octo.ensure_operational()
        mark = relay.lines.mark()
        octo.disconnect_printer()
        relay.browser(
            "printer:connection",
            lambda d: d.get("connected") is False and "seq" in d,
            15,
            mark,
        )
        octo.connect_printer()
        up = relay.browser(
            "printer:connection",
            lambda d: d.get("connected") is True and "seq" in d,
            15,
            mark,
        )
        assert up["data"]["printer"] == "mk4"

        # a browser joining later on an idle printer: a status within 5 s
        time.sleep(6)
        joined = time.time() * 1000
        mark = relay.lines.mark()
        status = relay.browser("printer:status", timeout=8, after=mark)
        waited = (status["recv"] - joined) / 1000
        print(f"late browser saw a status after {waited:.2f} s")
        assert waited <= 5.5
    finally:
        relay.close()


def test_hub_restart_mid_print_relay_reconnects_and_nothing_durable_is_lost(octo, hub):
    relay = Relay(hub.url)
    client = HubClient(hub.url).start()
    try:
        relay.lines.wait(lambda i: i["type"] == "connect", 15)
        time.sleep(1)
        since = max([s for s, _ in plugin_log(octo.basedir)] or [0])
        name = f"hub-restart-{int(time.time())}.gcode"
        octo.upload(name, gcode_file(4000), print_=True)
        relay.browser("printer:progress", lambda d: (d["completion"] or 0) > 0, 30)

        mark = relay.lines.mark()
        stopped = time.monotonic()
        assert hub.stop() == 0
        relay.lines.wait(lambda i: i["type"] == "disconnect", 10, mark)
        assert client.seen("printer:closing"), "the hub said goodbye"
        # durable events while the hub is away
        octo.api(
            "POST", "/api/job", json={"command": "pause", "action": "pause"}
        ).raise_for_status()
        time.sleep(2)
        octo.api(
            "POST", "/api/job", json={"command": "pause", "action": "resume"}
        ).raise_for_status()
        hub.start()
        up = relay.lines.wait(lambda i: i["type"] == "connect", 30, mark)
        print(
            f"relay reconnected {time.monotonic() - stopped:.1f} s after the hub stopped"
        )
        relay.browser("printer:status", timeout=10, after=mark)
        relay.browser(
            "printer:temperature", timeout=10, after=relay.lines.items.index(up)
        )
        # FluxStudio's relay keeps no cursor: a job event while it was away is the
        # resuming client's to get (below)
        deadline = time.monotonic() + 120
        while not any(e == "printer:job_complete" for _p, _s, e in client.durable):
            assert time.monotonic() < deadline, "no job_complete at the resuming client"
            time.sleep(0.5)
        time.sleep(1)
        result = compare(client, "mk4", plugin_log(octo.basedir), since)
        print(
            "resuming client vs the plugin's log:", result, "reconnects:", client.connects
        )
        assert result == {
            "compared": result["compared"],
            "lost": 0,
            "duplicated": 0,
            "out_of_order": 0,
        }
        assert result["compared"] >= 4
    finally:
        client.close()
        relay.close()
