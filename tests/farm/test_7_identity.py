"""Scenario 7: what Redis holds changed while an OctoPrint was down.

- A rollback while it was down: farm-b stops (SIGTERM) after durable events Redis
  had; Redis then comes back from an older snapshot that lacks them. The plugin
  restarted finds Redis's durable stream below what it believes it wrote (its
  belief is kept on disk: a memory-only belief died with the process), counts a
  snapshot rollback, and back-fills; the dashboards lose nothing.
- A reinstall (runs last: farm-c keeps its new install): farm-c's data folder is
  wiped (a new instance id, a new log whose seqs start again far below the old
  ones). Its publisher replaces the old install's streams; a dashboard of a hub
  gets ``printer:resync`` for farm-c and then the new install's durable events,
  not silence."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.hub.conftest import HubClient

from .conftest import IDS, assert_clean, compare_all, totals, write_report

pytestmark = pytest.mark.integration


def redis_stats(octo) -> dict:
    health = octo.api("GET", "/plugin/fluxprint/health?detail=1").json()
    return (health.get("detail") or health)["redis"]


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_rollback_while_octoprint_was_down_is_found_and_backfilled(
    farm_ready, dashboards, artifacts_dir
):
    farm = farm_ready
    victim = "farm-b"
    octo = farm.octos[victim]
    clients = dashboards(2)
    time.sleep(1.0)
    since = farm.tops()
    report: dict = {"victim": victim}
    try:
        snap = farm.redis.snapshot()
        farm.durable_round([victim])  # in Redis and in the log; gone after the restore
        top = farm.tops()[victim]
        wait(
            lambda: (
                redis_stats(octo)["state"] == "up"
                and redis_stats(octo)["last_seq"] >= top
            ),
            15,
            "published",
        )
        time.sleep(1.2)  # its belief is saved at most once a second
        octo.stop()
        farm.redis.restore(snap, down_for=0.5)
        durable_key = f"fluxprint:{victim}:durable"
        with farm.redis.client() as r:
            report["redis_top_restored"] = int(
                r.xrevrange(durable_key, "+", "-", count=1)[0][0].split(b"-")[0]
            )
        assert report["redis_top_restored"] < top
        octo.start()
        octo.connect_printer()
        stats = wait(
            lambda: (s := redis_stats(octo))["state"] == "up" and s, 30, "publisher up"
        )
        report["publisher"] = stats
        assert stats["snapshot_rollbacks"] == 1, stats
        assert stats["last_error"] is None, stats  # up: the old error is not shown
        farm.ensure_printing(victim)
        farm.durable_round()
        result = compare_all(farm, clients, 2, since, timeout=40)
        report.update(counts=result, totals=totals(result))
        assert_clean(result, min_compared=2)
        assert len(clients.resyncs()) == 0
    finally:
        write_report(artifacts_dir, "rollback-while-down", report)
        if octo.proc is None:
            octo.start()
        farm.ensure_printing(victim)


def test_zz_a_reinstalled_octoprint_resyncs_its_dashboards(farm_ready, artifacts_dir):
    farm = farm_ready
    victim = "farm-c"
    octo = farm.octos[victim]
    client = HubClient(farm.hubs[0].url, printers=list(IDS)).start()
    report: dict = {"victim": victim}
    try:
        wait(
            lambda: (
                any(p == victim for p, _s, _e in client.durable)
                or client.seen("printer:status")
            ),
            20,
            "the dashboard is served",
        )
        farm.durable_round([victim])
        old_top = farm.tops()[victim]
        wait(
            lambda: (
                max([s for p, s, _e in client.durable if p == victim] or [0]) >= old_top
            ),
            20,
            "the old install's events",
        )
        octo.stop()
        shutil.rmtree(os.path.join(octo.basedir, "data", "fluxprint"))
        octo.start()
        octo.connect_printer()
        farm.ensure_printing(victim)
        farm.durable_round([victim])
        new_log = farm.log(victim)
        report["old_top"], report["new_log"] = old_top, new_log
        assert new_log and new_log[-1][0] < old_top  # its seqs started again
        resync = wait(
            lambda: [m for m in client.seen("printer:resync") if m["printer"] == victim],
            30,
            "printer:resync for the reinstalled printer",
        )[0]
        report["resync"] = resync
        want = {s for s, _e in new_log}
        wait(
            lambda: want <= {s for p, s, _e in client.durable if p == victim},
            30,
            "the new install's durable events at the dashboard",
        )
        report["publisher"] = redis_stats(octo)
        assert report["publisher"]["takeovers"] == 1
        for hub in farm.hubs:
            farm.wait_hub(hub)
    finally:
        write_report(artifacts_dir, "reinstall", report)
        client.close()
