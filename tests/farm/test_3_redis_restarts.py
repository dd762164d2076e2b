"""Scenario 2: Redis dies three ways under a running farm: a clean restart, kill -9,
and coming back from an older RDB snapshot (taken before some durable events, so
Redis has forgotten them). Durable events happen while it is away. Each time the
plugins back-fill what Redis lacks and the dashboards see no durable gap, against
each plugin's events.db. Resumed: Redis back until the last event made while it
was away reached every client."""

from __future__ import annotations

import threading
import time

import pytest

from .conftest import IDS, assert_clean, compare_all, totals, write_report

pytestmark = pytest.mark.integration
N = 3
DOWN_S = 2.0


def resumed_ms(clients, since: dict, top: dict, back_ms: float) -> float:
    """Redis back -> the last of the events made while it was away at every client."""
    want = {(pid, s) for pid in IDS for s in range(since[pid] + 1, top[pid] + 1)}
    last = [
        m["t"]
        for m in clients.since()
        if m["type"] == "durable" and (m["printer"], m["seq"]) in want
    ]
    return round(max(last) - back_ms, 1) if last else -1.0


def phase(farm, clients, how: str) -> dict:
    redis = farm.redis
    since = farm.tops()
    if how == "snapshot":
        snap = redis.snapshot()
        farm.durable_round()  # in Redis now, gone after the restore
        time.sleep(1.5)  # and through the hubs to the clients

        def die() -> None:
            redis.restore(snap, down_for=DOWN_S)

        t = threading.Thread(target=die)
        t.start()
        time.sleep(0.3)
        farm.durable_round()  # while it is away
        t.join()
    else:
        redis.stop() if how == "clean" else redis.kill()
        farm.durable_round()
        time.sleep(max(0.0, DOWN_S - 2.2))
        redis.start()
    back_ms = time.time() * 1000
    top = farm.tops()
    result = compare_all(farm, clients, N, since, timeout=40)
    farm.durable_round()  # and the flow after
    result = compare_all(farm, clients, N, since, timeout=30)
    return {
        "counts": result,
        "totals": totals(result),
        "durable_resumed_ms": resumed_ms(clients, since, top, back_ms),
    }


def test_redis_restart_clean_kill9_older_snapshot(farm_ready, dashboards, artifacts_dir):
    farm = farm_ready
    clients = dashboards(N)
    time.sleep(1.0)
    report: dict = {"clients": N}
    try:
        for how in ("clean", "kill9", "snapshot"):
            report[how] = phase(farm, clients, how)
        report["totals"] = {
            k: sum(report[h]["totals"][k] for h in ("clean", "kill9", "snapshot"))
            for k in report["clean"]["totals"]
        }
        report["resyncs"] = len(clients.resyncs())
        for how in ("clean", "kill9", "snapshot"):
            assert_clean(report[how]["counts"], min_compared=4)
        assert report["resyncs"] == 0
    finally:
        write_report(artifacts_dir, "redis-restarts", report)
        if farm.redis.proc is None or farm.redis.proc.poll() is not None:
            farm.redis.start()
