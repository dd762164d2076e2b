"""Low-load latency through a real hub (issue 23, item 5): 10 socket.io-client 4
clients of a ``fluxprint-hub`` (direct source) and 10 straight to the plugin, while
the Virtual Printer prints and reports temperatures a few ms short of the plugin's
temperature interval (every 1.001 s against 1.005 s). Latency is from each
``printer:temperature``'s ``ts`` (when the plugin got the report) to its arrival.

Before the fix in core/coalesce.py every report was held 4 ms longer than the one
before, up to a whole interval: p50 124 ms / p99 231 ms over 60 s here, and the
same at the hub; with OctoPrint's and FluxPrint's default 2 s the holds drifted to
2 s and stayed there ("every sample late by one whole interval"). The bound below
is for correctness (not one interval late), not speed."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest
from octoserver import free_port, gcode_file

from tests.hub.conftest import ROOT, HubProcess

pytestmark = pytest.mark.integration

INTERVAL = 1.005  # the Virtual Printer reports every ~1.001 s (tests/conftest.py)
CLIENTS = 10
SAMPLES = 25  # temperatures per client
BOUND_MS = 50.0
SCRIPT = os.path.join(ROOT, "tests", "hub", "latency_clients.mjs")


class LatencyClients:
    """tests/hub/latency_clients.mjs: N clients in one Node process."""

    def __init__(self, url: str, path: str, auth: dict, n: int):
        opts = {"url": url, "path": path, "auth": auth, "n": n}
        self.proc = subprocess.Popen(
            ["node", SCRIPT, json.dumps(opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict] = []
        self.ready = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                self.lines.append(msg)
            if msg["type"] == "ready":
                self.ready.set()

    def temperatures(self, since_ms: int) -> list[dict]:
        with self.lock:
            return [m for m in self.lines if m["type"] == "t" and m["ts"] >= since_ms]

    def problems(self) -> list[dict]:
        with self.lock:
            return [m for m in self.lines if m["type"] in ("error", "disconnect")]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def set_interval(octo, seconds: float) -> None:
    r = octo.api(
        "POST",
        "/api/settings",
        json={"plugins": {"fluxprint": {"temperature_interval": seconds}}},
    )
    assert r.status_code == 200, r.text


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


@pytest.fixture
def short_of_interval(octo):
    octo.ensure_operational()
    set_interval(octo, INTERVAL)
    try:
        yield
    finally:
        set_interval(octo, 2.0)
        octo.ensure_operational()


def test_temperatures_a_few_ms_before_the_interval_are_not_held(
    octo, short_of_interval, tmp_path, artifacts_dir
):
    cfg = {"printers": [{"id": "mk4", "url": octo.url, "apikey": octo.apikey}]}
    hub = HubProcess(str(tmp_path), cfg, free_port())
    hub.start()
    groups: dict[str, Any] = {}
    try:
        hub.wait_synced()
        groups["hub"] = LatencyClients(hub.url, "/socket.io/", {}, CLIENTS)
        groups["plugin"] = LatencyClients(
            octo.url, "/plugin/fluxprint/socket.io/", {"apikey": octo.apikey}, CLIENTS
        )
        for name, group in groups.items():
            assert group.ready.wait(30), (name, group.problems())
        octo.upload(f"latency-{time.monotonic_ns()}.gcode", gcode_file(6000), print_=True)
        octo.wait_state(("Printing",), 30, prefix=True)
        since = int(time.time() * 1000)
        deadline = time.monotonic() + 90
        while any(
            len(g.temperatures(since)) < CLIENTS * SAMPLES for g in groups.values()
        ):
            assert time.monotonic() < deadline, {
                name: (len(g.temperatures(since)), g.problems())
                for name, g in groups.items()
            }
            time.sleep(0.5)
        result: dict[str, Any] = {}
        for name, group in groups.items():
            temps = group.temperatures(since)
            assert group.problems() == [], (name, group.problems())
            lat = [m["lat"] for m in temps]
            stamps = sorted({m["ts"] for m in temps})
            gaps = [b - a for a, b in zip(stamps, stamps[1:])]
            result[name] = {
                "samples": len(lat),
                "p50_ms": round(percentile(lat, 0.5), 1),
                "p99_ms": round(percentile(lat, 0.99), 1),
                "max_ms": round(max(lat), 1),
                "report_period_ms": percentile(gaps, 0.5),
            }
        with open(os.path.join(artifacts_dir, "hub-latency.json"), "w") as f:
            json.dump(result, f, indent=2)
        print(f"\nhub-latency.json: {result}")
        for name, r in result.items():
            # the scenario: reports a few ms short of the interval
            assert INTERVAL * 1000 - 20 <= r["report_period_ms"] < INTERVAL * 1000, r
            assert r["p99_ms"] <= BOUND_MS, (name, r)
    finally:
        for group in groups.values():
            group.close()
        hub.stop()
