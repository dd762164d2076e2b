"""Delta subscriptions (``printer:subscribe {"delta": true}``) against a real
OctoPrint printing on the Virtual Printer: a delta client that applies what it
receives holds exactly what a full client holds, observation by observation."""

from __future__ import annotations

import json
import statistics
import time

import pytest
from octoserver import gcode_file

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.delta import apply_delta

META = ("seq", "ts", "printer", "trace")


DEFAULTS = {"status_interval": 5.0, "temperature_interval": 2.0, "progress_interval": 1.0}


def set_settings(octo, **values):
    r = octo.api("POST", "/api/settings", json={"plugins": {"fluxprint": values}})
    assert r.status_code == 200, r.text


def heat(octo, target):
    r = octo.api(
        "POST",
        "/api/printer/tool",
        json={"command": "target", "targets": {"tool0": target}},
    )
    assert r.status_code == 204, r.text


@pytest.fixture
def fast_settings(octo):
    set_settings(octo, status_interval=1, temperature_interval=0, progress_interval=0.5)
    yield
    set_settings(octo, **DEFAULTS)
    heat(octo, 0)


def by_observation(client) -> dict[str, dict[int, dict]]:
    """{event: {ts: body}} as the client holds it after each message."""
    held: dict[str, dict] = {}
    out: dict[str, dict[int, dict]] = {e: {} for e in S.DELTA_MODELS}
    for record in client.events():
        event = record["event"]
        if event not in S.DELTA_MODELS:
            continue
        held[event] = apply_delta(held.get(event), record["data"])
        body = {k: v for k, v in held[event].items() if k not in META}
        out[event][held[event]["ts"]] = body
    return out


@pytest.mark.engine
def test_delta_clients_hold_what_full_clients_hold(clients, octo, fast_settings):
    octo.ensure_operational()
    full = clients("node", "websocket")
    node = clients("node", "websocket")
    py = clients("python", "polling")
    for client in (full, node, py):
        client.wait_for("printer:status", timeout=5)
    for client in (node, py):
        ack = client.call("printer:subscribe", {"delta": True})
        assert ack["ok"] is True and ack["delta"] is True
    nack = node.call("printer:subscribe", {"delta": "yes"})
    assert nack["ok"] is False and "delta" in nack["error"]
    # heating, so temperatures change from one report to the next
    heat(octo, 60)
    mark = full.mark()
    octo.upload(f"delta-{time.monotonic_ns()}.gcode", gcode_file(2000), print_=True)
    full.wait_for("printer:job_complete", timeout=60, after=mark)
    heat(octo, 0)
    time.sleep(2.5)  # the last coalesced values go out

    reference = by_observation(full)
    for client in (node, py):
        got = by_observation(client)
        deltas = [r for r in client.events() if r["data"].get("delta") is True]
        assert len(deltas) > 20, len(deltas)
        for event in S.DELTA_MODELS:
            common = set(got[event]) & set(reference[event])
            assert len(common) >= 5, (event, len(common))
            for ts in common:
                assert got[event][ts] == reference[event][ts], (client.kind, event, ts)
        seqs = [r["data"]["seq"] for r in client.events()]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # progress deltas are smaller than the full messages they stand for (the first
    # one of a print changes nearly every field, so compare the medians)
    sizes = [
        len(json.dumps(r["data"]))
        for r in node.events("printer:progress")
        if r["data"].get("delta")
    ]
    full_sizes = [len(json.dumps(r["data"])) for r in full.events("printer:progress")]
    assert statistics.median(sizes) < 0.7 * statistics.median(full_sizes)
