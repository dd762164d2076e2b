"""Scenario 5: a reconnect storm. 200 Node dashboards (one Node process) all on
hub 0, and on hub 1 one stalled dashboard (it stops reading its TCP socket: the
hub's send buffer to it fills) plus 10 probe dashboards whose latency is the
baseline. SIGKILL hub 0: the 200 reconnect at once, with jitter, to hub 1 with
their cursors. Reported: re-attach p50/p95, the probes' and the movers' latency
(recv - the plugin's trace.emit_ns) before/during/after, hub 1's RSS before/peak/after
(psutil). Asserted: every client re-attached, 0 durable events lost or duplicated
(against the plugins' logs), and hub 1's RSS bounded."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from .conftest import assert_clean, compare_all, totals, write_report

pytestmark = pytest.mark.integration
N = 200
PROBES = 10


def rss_sampler(pid: int, stop: threading.Event, samples: list[int]) -> None:
    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            samples.append(proc.memory_info().rss)
        except psutil.Error:
            return
        stop.wait(0.2)


def test_reconnect_storm_with_a_stalled_client(farm_ready, dashboards, artifacts_dir):
    farm = farm_ready
    survivor = farm.hubs[1]
    stalled = dashboards(1, start=1, spread=False)
    probes = dashboards(PROBES, start=1, spread=False, durable_lines=False)
    movers = dashboards(N, start=0, spread=False, jitter_ms=1000, batch=50)
    farm.durable_round()  # every client holds a cursor for every printer
    stalled.send("stall", c=[0])
    time.sleep(2.0)
    since = farm.tops()
    hub_ps = psutil.Process(survivor.proc.pid)
    report: dict = {"clients": N, "probes": PROBES, "stalled": 1}
    try:
        probes.window_start()
        movers.window_start()
        time.sleep(5.0)
        base_p, base_m = probes.stats(), movers.stats()
        report["rss_before"] = hub_ps.memory_info().rss
        samples: list[int] = []
        stop = threading.Event()
        sampler = threading.Thread(
            target=rss_sampler, args=(survivor.proc.pid, stop, samples)
        )
        sampler.start()
        probes.window_start()
        movers.window_start()
        farm.hubs[0].kill()
        farm.durable_round()  # durable events while the storm lands
        deadline = time.monotonic() + 60
        while movers.stats()["connected"] < N:
            assert time.monotonic() < deadline, movers.stats()
            time.sleep(0.5)
        storm_m = movers.stats()
        time.sleep(3.0)
        storm_p = probes.stats()
        probes.window_start()
        movers.window_start()
        farm.durable_round()
        time.sleep(5.0)
        after_p, after_m = probes.stats(), movers.stats()
        stop.set()
        sampler.join()
        report["rss_after"] = hub_ps.memory_info().rss
        report["rss_peak"] = max(samples or [0])
        report["rss_per_client_added"] = (report["rss_after"] - report["rss_before"]) // N
        report["reattach_ms"] = storm_m["reattach_ms"]
        report["reattached"] = storm_m["reattached"]
        report["latency_ms"] = {
            "probes_before": base_p["latency_ms"],
            "probes_during_storm": storm_p["latency_ms"],
            "probes_after": after_p["latency_ms"],
            "movers_before": base_m["latency_ms"],
            "movers_after": after_m["latency_ms"],
        }
        result = compare_all(farm, movers, N, since, timeout=40)
        report.update(totals=totals(result))
        report["worst"] = max(result.items(), key=lambda kv: kv[1]["lost"])
        report["stalled_still_connected"] = survivor.health()["socketio"]["clients"]
        assert report["reattached"] == N, report["reattached"]
        assert_clean(result, min_compared=2)
        # bounded: 211 clients should cost well under 1 MiB each
        assert report["rss_peak"] < report["rss_before"] + N * 2**20, report
    finally:
        write_report(artifacts_dir, "storm", report)
        movers.close()
        farm.restart_hub(farm.hubs[0])
