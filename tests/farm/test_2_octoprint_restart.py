"""Scenario 3: restart one OctoPrint mid-farm (farm-b, mid-print): its seq continues
where it stopped (its log and its Redis streams), and the dashboards get every
durable event of every printer: before, across and after the restart."""

from __future__ import annotations

import time

import pytest

from .conftest import IDS, assert_clean, compare_all, totals, write_report

pytestmark = pytest.mark.integration
N = 3
VICTIM = "farm-b"


def test_restart_an_octoprint_mid_farm(farm_ready, dashboards, artifacts_dir):
    farm = farm_ready
    clients = dashboards(N)
    time.sleep(1.0)
    since = farm.tops()
    report: dict = {"clients": N, "restarted": VICTIM}
    try:
        farm.durable_round()
        before = farm.tops()[VICTIM]
        t0 = time.monotonic()
        octo = farm.octos[VICTIM]
        octo.restart()
        octo.connect_printer()
        report["restart_s"] = round(time.monotonic() - t0, 1)
        farm.ensure_printing(VICTIM)
        farm.durable_round()
        after = [s for s, _ in farm.log(VICTIM) if s > before]
        report["seq_before"] = before
        report["seq_after_first"] = after[0] if after else None
        result = compare_all(farm, clients, N, since)
        report.update(counts=result, totals=totals(result))
        report["resyncs"] = len(clients.resyncs())
        assert after and after[0] > before, (before, after[:3])  # continues, no reset
        assert_clean(result, min_compared=4)
        assert report["resyncs"] == 0
    finally:
        write_report(artifacts_dir, "octoprint-restart", report)


def test_every_printer_online_at_both_hubs(farm_ready):
    for hub in farm_ready.hubs:
        states = farm_ready.wait_hub(hub)
        assert {pid: states[pid] for pid in IDS} == dict.fromkeys(IDS, "online")
