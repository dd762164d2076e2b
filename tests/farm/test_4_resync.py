"""Scenario 4: a client away longer than Redis retains gets printer:resync, never a
silent partial replay. farm-c is restarted with event_log.max_events 10, so its
durable stream keeps what its log keeps (about 10 events); one dashboard goes away,
farm-c's printer is disconnected and connected until more than 10 durable events
happened; both hubs restart meanwhile (their in-memory caches held more than Redis,
and hubs hold no state a client needs), and the dashboard comes back with its old
cursor: a resync for farm-c
(nothing silently skipped), plain replays for farm-a and farm-b. A dashboard that
stayed got every event."""

from __future__ import annotations

import time

import pytest

from .conftest import IDS, assert_clean, compare_all, parallel, totals, write_report

pytestmark = pytest.mark.integration
SMALL = "farm-c"
MAX_EVENTS = 10


def test_client_away_longer_than_redis_retains_gets_resync(
    farm_ready, dashboards, artifacts_dir
):
    farm = farm_ready
    octo = farm.octos[SMALL]
    octo.fluxprint = farm.plugin_settings(SMALL, event_log={"max_events": MAX_EVENTS})
    octo.restart()
    octo.connect_printer()
    for hub in farm.hubs:
        farm.wait_hub(hub)
    clients = dashboards(2)  # 0 stays, 1 goes away
    farm.ensure_printing(SMALL)
    farm.durable_round()  # both clients hold a cursor for every printer
    time.sleep(1.0)
    since = farm.tops()
    cursors = clients.request("cursors", "cursors")["cursors"]
    assert all(set(c) == set(IDS) for c in cursors), cursors
    report: dict = {"max_events": MAX_EVENTS}
    try:
        clients.send("away", c=[1])
        time.sleep(0.5)
        farm.durable_round(["farm-a", "farm-b"])
        cycles = 0
        first_after = None  # the first durable event the away client misses
        while first_after is None or farm.log(SMALL)[0][0] <= first_after:
            octo.disconnect_printer()
            octo.connect_printer()
            cycles += 1
            if first_after is None:
                first_after = min(s for s, _ in farm.log(SMALL) if s > since[SMALL])
            assert cycles < 15, farm.log(SMALL)
        octo.disconnect_printer()  # and a few more beyond it
        octo.connect_printer()
        cycles += 1
        report["first_missed"] = first_after
        # the hubs' caches (cache_events) still hold what Redis pruned: they restart
        # while the client is away, so only Redis can answer its cursor
        parallel(farm.restart_hub, farm.hubs)
        report["connect_cycles"] = cycles
        report["log_oldest"] = farm.log(SMALL)[0][0]
        report["cursor_before"] = since[SMALL]
        mark = clients.mark()
        clients.send("back", c=[1])
        resync = clients.wait_for(
            lambda m: m["type"] == "resync" and m["c"] == 1, 30, mark
        )
        report["resync"] = resync["data"]
        stayed = compare_all(farm, clients, 1, since)
        back = compare_all(farm, clients, 2, since, pids=["farm-a", "farm-b"])
        back = {k: v for k, v in back.items() if k.startswith("c1/")}
        resyncs = clients.resyncs(mark)
        report.update(
            stayed=stayed,
            stayed_totals=totals(stayed),
            came_back=back,
            came_back_totals=totals(back),
            resyncs_for=sorted({m["printer"] for m in resyncs if m["c"] == 1}),
        )
        assert_clean(stayed)
        assert_clean(back, min_compared=2)
        assert report["resyncs_for"] == [SMALL]
        assert resync["printer"] == SMALL
    finally:
        write_report(artifacts_dir, "resync", report)
        farm.ensure_printing(SMALL)
