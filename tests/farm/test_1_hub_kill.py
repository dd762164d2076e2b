"""Scenario 1: SIGKILL a hub mid-print. Four Node dashboards, two on each hub, all
printers; the prints run and pause/resume around the kill. The killed hub's
clients move to the other hub with their cursors: 0 durable events lost or
duplicated on any printer, against each plugin's events.db. Re-attach time: the
hub's SIGKILL until the client's connect on the other hub."""

from __future__ import annotations

import time

import pytest

from .conftest import (
    IDS,
    assert_clean,
    compare_all,
    pct,
    totals,
    write_report,
)

pytestmark = pytest.mark.integration
N = 4


def test_sigkill_a_hub_mid_print(farm_ready, dashboards, artifacts_dir):
    farm = farm_ready
    clients = dashboards(N)  # client i starts on hub i % 2
    time.sleep(1.0)
    since = farm.tops()
    report: dict = {"clients": N, "printers": list(IDS), "since": since}
    failed = True
    try:
        farm.durable_round()
        mark = clients.mark()
        killed_ms = time.time() * 1000
        farm.hubs[0].kill()
        farm.durable_round()  # while the killed hub's clients move over
        moved = [c for c in range(N) if c % 2 == 0]
        for c in moved:
            clients.wait_for(
                lambda m, c=c: m["type"] == "subscribed" and m["c"] == c, 30, mark
            )
        lines = clients.since(mark)
        # what the moved clients did, for a failure to say what happened
        report["moved_lines"] = [
            {k: m.get(k) for k in ("type", "c", "url", "t", "message", "reason")}
            for m in lines
            if m.get("c") in moved and m["type"] not in ("durable", "auth")
        ][:40]
        attach = [
            m["t"] - killed_ms
            for m in lines
            if m["type"] == "connect" and m["c"] in moved
        ]
        urls = {m["c"]: m["url"] for m in lines if m["type"] == "connect"}
        assert all(urls.get(c) == farm.hubs[1].url for c in moved), report
        farm.durable_round()
        result = compare_all(farm, clients, N, since)
        report.update(
            counts=result,
            totals=totals(result),
            reattach_ms={
                "p50": pct(attach, 50),
                "p95": pct(attach, 95),
                "max": pct(attach, 100),
                "clients": len(attach),
            },
            resyncs=len(clients.resyncs()),
        )
        assert_clean(result, min_compared=6)
        assert report["resyncs"] == 0, clients.resyncs()
        failed = False
    finally:
        try:
            farm.restart_hub(farm.hubs[0])
        except Exception as exc:  # never hide the test's own failure behind this
            report["restart_error"] = repr(exc)[:2000]
            if not failed:
                raise
        finally:
            write_report(artifacts_dir, "hub-kill", report)
