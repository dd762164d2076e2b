"""Issue #2 against a real OctoPrint with the Virtual Printer, through python-socketio
and Node's socket.io-client 4, over websocket and long-polling.

Every payload any client receives is validated against the shipped JSON Schema by
the ``clients`` fixture when the test ends.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest
import requests
from harness.clients import PyClient
from octoserver import NOSTATUS, VIEWER, gcode_file

KINDS = [
    ("python", "websocket"),
    ("python", "polling"),
    ("node", "websocket"),
    ("node", "polling"),
]
DEFAULTS = {"status_interval": 5.0, "temperature_interval": 2.0, "progress_interval": 1.0}


def set_settings(octo, **values):
    r = octo.api("POST", "/api/settings", json={"plugins": {"fluxprint": values}})
    assert r.status_code == 200, r.text
    return octo.api("GET", "/api/settings").json()["plugins"]["fluxprint"]


@pytest.fixture
def default_settings(octo):
    set_settings(octo, **DEFAULTS)
    yield
    set_settings(octo, **DEFAULTS)


@pytest.fixture
def operational(octo):
    octo.ensure_operational()
    yield
    octo.ensure_operational()


def gaps(records, field="recv"):
    times = [r[field] if field == "recv" else r["data"][field] for r in records]
    return [(b - a) / 1000 for a, b in zip(times, times[1:])]


def start_print(octo, lines):
    name = f"fluxprint-{lines}-{time.monotonic_ns()}.gcode"
    octo.upload(name, gcode_file(lines), print_=True)
    return name


# ~~ connect


@pytest.mark.parametrize("kind,transport", KINDS)
def test_initial_status_on_connect(clients, octo, kind, transport):
    client = clients(kind, transport)
    status = client.wait_for("printer:status", timeout=5)
    assert client.events()[0]["event"] == "printer:status"
    assert status["state"]["text"] == "Operational"
    assert status["connection"] == {
        "state": "connected",
        "port": "VIRTUAL",
        "baudrate": 115200,
        "error": None,
    }
    assert status["printer"] and isinstance(status["seq"], int)
    assert abs(status["ts"] - time.time() * 1000) < 60_000
    assert client.transport == transport


def test_polling_client_upgrades_to_websocket(clients):
    client = clients("node", transports=["polling", "websocket"])
    client.wait_for("printer:status", timeout=5)
    deadline = time.monotonic() + 5
    while client.transport != "websocket" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.transport == "websocket"


@pytest.mark.parametrize(
    "auth,expected",
    [
        (None, "missing credentials"),
        ({"apikey": "not-a-key"}, "invalid API key"),
        ("nostatus", "permission denied"),
    ],
)
@pytest.mark.parametrize("kind", ["python", "node"])
def test_refusals_are_clear(clients, octo, kind, auth, expected):
    if auth == "nostatus":
        auth = {"apikey": octo.keys[NOSTATUS]}
    client = clients(kind, start=False, auth=auth)
    client.start(wait=False)
    with pytest.raises(ConnectionError):
        client.wait_connected(timeout=10)
    assert client.connect_error == expected
    assert client.events() == []


@pytest.mark.parametrize("kind", ["python", "node"])
def test_api_key_in_header(clients, octo, kind):
    client = clients(kind, auth={}, headers={"X-Api-Key": octo.keys[VIEWER]})
    assert client.wait_for("printer:status", timeout=5)


# ~~ REST


def test_rest_snapshot_has_the_pushed_shape(clients, octo):
    client = clients("node")
    pushed = client.wait_for("printer:status", timeout=5)
    r = octo.api("GET", "/api/plugin/fluxprint", user=VIEWER)
    assert r.status_code == 200
    snapshot = r.json()
    assert set(snapshot) == set(pushed)
    for key in ("state", "job", "progress", "connection"):
        assert set(snapshot[key]) == set(pushed[key])
    assert snapshot["seq"] > pushed["seq"]
    # schema check of the REST object, too
    from harness.validate import validate_records

    from octoprint_fluxprint import schemas

    validate_records(schemas.load(), [{"event": "printer:status", "data": snapshot}])


def test_rest_snapshot_needs_status_permission(octo):
    assert octo.api("GET", "/api/plugin/fluxprint", user=NOSTATUS).status_code == 403
    anonymous = requests.get(octo.url + "/api/plugin/fluxprint", timeout=5)
    assert anonymous.status_code in (401, 403)


def test_health_needs_no_credentials(octo, clients):
    clients("python")
    r = requests.get(octo.url + "/plugin/fluxprint/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["version"]
    assert body["printer"] == {"connected": True}
    assert body["socketio"]["clients"] >= 1
    assert set(body) == {"status", "version", "socketio", "printer"}


# ~~ client -> server


@pytest.mark.parametrize("kind,transport", KINDS)
def test_acks(clients, octo, default_settings, kind, transport):
    client = clients(kind, transport)
    client.wait_for("printer:status", timeout=5)

    ack = client.call(
        "printer:subscribe",
        {"channels": ["temperature"], "intervals": {"temperature": 6}},
    )
    assert ack["ok"] is True
    assert ack["intervals"]["temperature"] == 6
    assert set(ack["channels"]) == {
        "status",
        "temperature",
        "progress",
        "jobs",
        "connection",
    }

    faster = client.call("printer:subscribe", {"intervals": {"progress": 0.1}})
    assert faster["intervals"]["progress"] == 1.0  # never faster than configured

    for bad in (
        {"channels": ["webcam"]},
        {"intervals": {"temperature": -1}},
        {"intervals": {"temperature": "fast"}},
        {"channels": "status"},
        {"unknown": True},
        "not an object",
        [1, 2, 3],
    ):
        nack = client.call("printer:subscribe", bad)
        assert nack["ok"] is False and nack["error"], bad

    ack = client.call("printer:unsubscribe", {"channels": ["temperature", "status"]})
    assert ack["ok"] and "temperature" not in ack["channels"]
    assert client.call("printer:unsubscribe", {"channels": [7]})["ok"] is False

    status = client.call("printer:request_status")
    assert status["ok"] is True
    assert status["status"]["state"]["text"] == "Operational"
    from harness.validate import validate_records

    from octoprint_fluxprint import schemas

    validate_records(
        schemas.load(), [{"event": "printer:status", "data": status["status"]}]
    )

    assert client.call("printer:bogus", {"x": 1})["ok"] is False

    ack = client.call("printer:unsubscribe")
    assert ack == {
        "ok": True,
        "channels": [],
        "delta": False,
        "keyframe": 0.0,
        "intervals": {},
    }
    mark = client.mark()
    time.sleep(2.5)  # temperatures arrive every second: none may reach us now
    assert client.events()[mark:] == []


# ~~ telemetry


def test_temperature_cadence_and_targets(clients, octo, default_settings, operational):
    client = clients("node")
    time.sleep(9)
    temps = client.events("printer:temperature")
    assert len(temps) >= 3
    spacing = gaps(temps)
    # the printer reports every 1 s; the default 2 s interval spaces the pushes out
    assert all(g >= 1.85 for g in spacing), spacing
    assert 1.9 <= statistics.median(spacing) <= 2.6, spacing
    assert all(g > 0 for g in gaps(temps, "ts"))  # every push is a newer observation
    assert {"tool0", "bed"} <= set(temps[-1]["data"])

    mark = client.mark()
    r = octo.api(
        "POST", "/api/printer/tool", json={"command": "target", "targets": {"tool0": 42}}
    )
    assert r.status_code == 204
    heated = client.wait_for(
        "printer:temperature", lambda d: d["tool0"]["target"] == 42, timeout=8, after=mark
    )
    assert heated["tool0"]["offset"] == 0
    octo.api(
        "POST", "/api/printer/tool", json={"command": "target", "targets": {"tool0": 0}}
    )
    client.wait_for("printer:temperature", lambda d: d["tool0"]["target"] == 0, timeout=8)


@pytest.mark.engine
def test_interval_change_applies_live(clients, octo, default_settings):
    fast = clients("python", "polling")
    fast.wait_for("printer:temperature", timeout=5)
    set_settings(octo, temperature_interval=0)
    mark = fast.mark()
    time.sleep(6)
    spacing = gaps(
        [r for r in fast.events()[mark:] if r["event"] == "printer:temperature"], "ts"
    )
    assert spacing and statistics.median(spacing) < 1.5, spacing

    saved = set_settings(octo, temperature_interval=4)
    assert saved["temperature_interval"] == 4
    mark = fast.mark()
    time.sleep(12.5)
    spacing = gaps(
        [r for r in fast.events()[mark:] if r["event"] == "printer:temperature"]
    )
    assert spacing and all(g >= 3.8 for g in spacing), spacing
    assert statistics.median(spacing) <= 5.1, spacing


def test_out_of_range_settings_are_clamped(octo, default_settings):
    saved = set_settings(octo, temperature_interval=99999, progress_interval=-5)
    assert saved["temperature_interval"] == 3600
    assert saved["progress_interval"] == 0
    saved = set_settings(octo, status_interval="soon")
    assert saved["status_interval"] == 5.0


# ~~ jobs


def test_print_progress_and_complete(clients, octo, default_settings, operational):
    node = clients("node", "websocket")
    py = clients("python", "polling")
    node.wait_for("printer:status", timeout=5)
    mark = node.mark()
    name = start_print(octo, 2000)

    started = node.wait_for("printer:job_started", timeout=10, after=mark)
    assert started["file"]["name"] == name and started["file"]["origin"] == "local"
    assert started["user"] == "admin"
    printing = node.wait_for(
        "printer:status", lambda d: d["state"]["flags"]["printing"], timeout=5, after=mark
    )
    assert printing["job"]["file"]["name"] == name

    done = node.wait_for("printer:job_complete", timeout=60, after=mark)
    assert done["file"]["name"] == name and done["printTime"] > 0
    py.wait_for("printer:job_complete", lambda d: d["file"]["name"] == name, timeout=10)

    progress = [
        r
        for r in node.events()[mark:]
        if r["event"] == "printer:progress" and r["data"]["file"]["name"] == name
    ]
    completions = [
        r["data"]["completion"] for r in progress if r["data"]["completion"] is not None
    ]
    assert len(completions) >= 4, completions
    assert completions == sorted(completions) and completions[-1] > completions[0]
    # as pushed: at most one per second, except the job's last word, which goes out
    # at once, right before its job event (like a state change)
    spacing = gaps(progress[:-1])
    assert all(g >= 0.9 for g in spacing), spacing
    last = progress[-1]["data"]
    assert last["completion"] == 100.0 and last["printTimeLeft"] == 0
    after = [r["event"] for r in node.events()[mark:] if r["data"]["seq"] > last["seq"]]
    assert "printer:progress" not in after and after[0] == "printer:job_complete", after
    seqs = [r["data"]["seq"] for r in node.events()[mark:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # every progress that has moved carries the file position (OctoPrint 2.0's very
    # first one, at the job's start, may come before its first file position)
    moved = [r["data"] for r in progress if (r["data"]["completion"] or 0) > 0]
    assert moved and all(d["filepos"] is not None for d in moved), moved[:3]


def test_cancel_gives_one_job_failed(clients, octo, operational):
    client = clients("node")
    mark = client.mark()
    name = start_print(octo, 6000)
    client.wait_for(
        "printer:progress", lambda d: (d["completion"] or 0) > 1, timeout=20, after=mark
    )
    assert octo.api("POST", "/api/job", json={"command": "cancel"}).status_code == 204
    failed = client.wait_for("printer:job_failed", timeout=20, after=mark)
    assert failed["reason"] == "cancelled" and failed["error"] is None
    assert failed["file"]["name"] == name
    assert 0 < failed["progress"] < 100  # percent, not OctoPrint's 0-1 fraction
    octo.wait_state(("Operational",), 20)
    time.sleep(2)
    assert (
        len([r for r in client.events()[mark:] if r["event"] == "printer:job_failed"])
        == 1
    )
    assert not [r for r in client.events()[mark:] if r["event"] == "printer:job_complete"]


def test_firmware_error_mid_print(clients, octo, operational):
    client = clients("node")
    mark = client.mark()
    start_print(octo, 6000)
    client.wait_for(
        "printer:progress", lambda d: (d["completion"] or 0) > 1, timeout=20, after=mark
    )
    octo.send_gcode("!!DEBUG:trigger_fatal_error_marlin")
    failed = client.wait_for("printer:job_failed", timeout=20, after=mark)
    assert failed["reason"] == "error" and failed["error"]
    time.sleep(1)
    lifecycle = [
        (r["event"], r["data"].get("state") or r["data"].get("reason"))
        for r in client.events()[mark:]
        if r["event"] in ("printer:connection", "printer:job_failed")
    ]
    assert lifecycle == [("printer:connection", "error"), ("printer:job_failed", "error")]
    error = client.payloads("printer:connection")[-1]
    assert error["error"]
    status = client.call("printer:request_status")["status"]
    assert status["connection"]["state"] == "error"
    assert (
        status["state"]["flags"]["closedOrError"]
        and not status["state"]["flags"]["printing"]
    )


def test_connection_events_on_disconnect_and_reconnect(clients, octo, operational):
    client = clients("python", "websocket")
    mark = client.mark()
    octo.disconnect_printer()
    gone = client.wait_for("printer:connection", timeout=10, after=mark)
    assert gone["state"] == "disconnected" and gone["error"] is None
    client.wait_for(
        "printer:status",
        lambda d: d["connection"]["state"] == "disconnected",
        timeout=5,
        after=mark,
    )
    octo.connect_printer()
    back = client.wait_for(
        "printer:connection", lambda d: d["state"] == "connected", timeout=15, after=mark
    )
    assert back["port"] == "VIRTUAL" and back["baudrate"] == 115200
    states = [d["state"] for d in client.payloads("printer:connection")]
    assert states[-3:] == ["disconnected", "connecting", "connected"]


def test_latency_callback_to_node_client(clients, octo, artifacts_dir, operational):
    """Reports (does not assert) plugin-callback -> Node receipt latency at interval 0."""
    set_settings(octo, temperature_interval=0, progress_interval=0)
    try:
        nodes = [clients("node") for _ in range(8)]
        mark = [n.mark() for n in nodes]
        start_print(octo, 1500)
        nodes[0].wait_for("printer:job_complete", timeout=60, after=mark[0])
    finally:
        set_settings(octo, **DEFAULTS)
    samples = sorted(
        r["recv"] - r["data"]["ts"]
        for n, m in zip(nodes, mark)
        for r in n.events()[m:]
        if r["event"] in ("printer:temperature", "printer:progress")
    )
    assert len(samples) >= 100, len(samples)

    def pct(p):
        return samples[min(len(samples) - 1, round(p / 100 * (len(samples) - 1)))]

    summary = {
        "samples": len(samples),
        "clients": len(nodes),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": samples[-1],
        "what": "plugin printer-callback time (ts) to Node socket.io-client receipt, interval 0",
    }
    with open(os.path.join(artifacts_dir, "latency.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"\nFluxPrint latency: {summary}")


def test_clients_are_independent_of_each_other(octo):
    """A client that disconnects abruptly does not disturb another one."""
    a = PyClient(octo.url, auth={"apikey": octo.apikey}).start()
    b = PyClient(octo.url, auth={"apikey": octo.apikey}).start()
    try:
        a.wait_for("printer:status", timeout=5)
        a.sio.eio.disconnect(abort=True)
        mark = b.mark()
        b.wait_for("printer:temperature", timeout=6, after=mark)
    finally:
        a.close()
        b.close()
