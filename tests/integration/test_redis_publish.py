"""The plugin side of the print farm (issue 14), end to end: a real OctoPrint with
the Virtual Printer and ``plugins.fluxprint.redis.url`` set, publishing to its own
real redis-server (AOF everysec).

- durable events of a real print and of connect/disconnect reach both streams in
  seq order, exactly as the plugin's events.db holds them;
- Redis killed (``kill -9``) while the printer emits durable events, then back:
  back-filled, no gap, no duplicate; the plugin's own Socket.IO clients kept
  getting status and temperature meanwhile;
- Redis restored from an older RDB snapshot: detected (``snapshot_rollbacks``)
  and back-filled;
- ``/plugin/fluxprint/health?format=prometheus`` parses;
- the publisher thread's CPU per minute of a connected printer (printed).

One OctoPrint and one Redis for the module; the tests run in order.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from octoprint_fluxprint.core import streams
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.harness.clients import PyClient
from tests.harness.jobs import wait_job

pytestmark = pytest.mark.integration

PRINTER = "farm-a"
PREFIX = "fluxprint"
LIVE = streams.live_key(PREFIX, PRINTER)
DURABLE = streams.durable_key(PREFIX, PRINTER)


@pytest.fixture(scope="module")
def redis_farm(tmp_path_factory):
    from redisserver import RedisServer

    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def octo_farm(tmp_path_factory, redis_farm):
    from octoserver import OctoServer

    server = OctoServer(
        str(tmp_path_factory.mktemp("octoprint-farm")),
        config={"serial": {"timeout": {"temperatureAutoreport": 1}}},
        fluxprint={"printer_id": PRINTER, "redis": {"url": redis_farm.url}},
    )
    server.start()
    try:
        server.connect_printer()
        yield server
    finally:
        print(server.tail(30))
        server.stop()


# ~~ helpers


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # Redis down, a read racing a write
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise TimeoutError(f"{what or check}: last {last!r}")


def logged(octo) -> list[tuple[int, str]]:
    """The plugin's durable log (events.db), read-only, committed rows."""
    path = os.path.join(octo.basedir, "data", "fluxprint", "events.db")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            tuple(r) for r in conn.execute("SELECT seq, event FROM events ORDER BY seq")
        ]
    finally:
        conn.close()


def entries(client, key: str) -> list[tuple[int, str]]:
    out = []
    for entry_id, fields in client.xrange(key):
        entry = streams.decode(entry_id, fields)
        out.append((entry.seq, entry.event))
    return out


def redis_stats(octo) -> dict:
    r = octo.api("GET", "/plugin/fluxprint/health?detail=1")
    r.raise_for_status()
    return r.json()["detail"]["redis"]


def durable_matches_log(octo, client) -> bool:
    return entries(client, DURABLE) == logged(octo) and bool(logged(octo))


def reconnect(octo, times: int = 1) -> None:
    for _ in range(times):
        octo.disconnect_printer()
        octo.connect_printer()


def check_streams(octo, client) -> dict:
    """Durable == events.db; live strictly increasing and holding every durable
    event logged since it was written. Returns counts for the report."""
    log = logged(octo)
    durable = entries(client, DURABLE)
    assert durable == log
    seqs = [s for s, _ in durable]
    assert len(seqs) == len(set(seqs)), "duplicate durable entries"
    live = entries(client, LIVE)
    live_seqs = [s for s, _ in live]
    assert live_seqs == sorted(set(live_seqs))
    return {"compared": len(log), "lost": 0, "duplicated": 0}


# ~~ tests, in order


def test_print_and_connection_events_reach_both_streams(octo_farm, redis_farm):
    from octoserver import gcode_file

    client = redis_farm.client()
    wait_until(lambda: redis_stats(octo_farm)["state"] == "up", what="publisher up")
    octo_farm.upload("farm.gcode", gcode_file(150), print_=True)
    wait_job(octo_farm, lambda s: s.startswith("Printing"), 30)
    wait_job(octo_farm, lambda s: s == "Operational", 60)
    reconnect(octo_farm)
    wait_until(lambda: durable_matches_log(octo_farm, client), what="durable == log")
    counts = check_streams(octo_farm, client)
    events = {e for _, e in entries(client, DURABLE)}
    assert {"printer:job_started", "printer:job_complete", "printer:connection"} <= events
    assert events <= DURABLE_EVENTS
    # live carries telemetry too, and every durable event written while it was up
    live = entries(client, LIVE)
    assert {"printer:temperature", "printer:status"} <= {e for _, e in live}
    assert set(entries(client, DURABLE)) <= set(live)
    record = streams.parse_registry(client.hget(streams.registry_key(PREFIX), PRINTER))
    assert record is not None and record["state"] == "online"
    assert abs(record["lastSeen"] - time.time() * 1000) < 10_000
    assert len(record["instance"]) == 32
    announced = client.xrange(streams.announce_key(PREFIX))
    assert PRINTER.encode() in [f[b"id"] for _, f in announced]
    print(f"\nprint + reconnect: {counts}")


def test_redis_killed_and_back_is_backfilled_without_gap(octo_farm, redis_farm):
    viewer = PyClient(octo_farm.url, auth={"apikey": octo_farm.apikey}).start()
    try:
        viewer.wait_for("printer:status", timeout=10)
        redis_farm.kill()
        wait_until(lambda: redis_stats(octo_farm)["state"] == "down", what="down")
        mark = viewer.mark()
        reconnect(octo_farm, 2)  # durable connection events while Redis is away
        # the plugin's own clients are served as before
        viewer.wait_for("printer:temperature", timeout=10, after=mark)
        viewer.wait_for("printer:status", timeout=10, after=mark)
        assert redis_stats(octo_farm)["queue"] > 0
        redis_farm.start()
        client = redis_farm.client()
        wait_until(lambda: redis_stats(octo_farm)["state"] == "up", what="up again")
        wait_until(lambda: durable_matches_log(octo_farm, client), what="back-filled")
        counts = check_streams(octo_farm, client)
        print(f"\nredis kill -9: {counts}, stats {redis_stats(octo_farm)}")
    finally:
        viewer.close()


def test_redis_restored_from_an_older_snapshot_is_detected(octo_farm, redis_farm):
    client = redis_farm.client()
    snapshot = redis_farm.snapshot()
    before = redis_stats(octo_farm)["snapshot_rollbacks"]
    reconnect(octo_farm)  # durable events the snapshot does not hold
    wait_until(lambda: durable_matches_log(octo_farm, client), what="written")
    redis_farm.restore(snapshot)
    client = redis_farm.client()
    assert entries(client, DURABLE) != logged(octo_farm)  # Redis went back in time
    wait_until(
        lambda: redis_stats(octo_farm)["snapshot_rollbacks"] > before,
        what="rollback detected",
    )
    wait_until(lambda: durable_matches_log(octo_farm, client), what="back-filled")
    counts = check_streams(octo_farm, client)
    stats = redis_stats(octo_farm)
    assert stats["backfilled"] > 0
    print(f"\nsnapshot restore: {counts}, stats {stats}")


def test_health_prometheus_parses(octo_farm):
    r = octo_farm.api("GET", "/plugin/fluxprint/health?format=prometheus")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in (
        "fluxprint_clients",
        "fluxprint_redis_published",
        "fluxprint_redis_backfilled",
        "fluxprint_redis_dropped",
        "fluxprint_redis_queue",
        "fluxprint_redis_up",
        "fluxprint_redis_lag_seconds",
        "fluxprint_redis_publish_cpu_seconds",
    ):
        assert name in families, sorted(families)
    assert families["fluxprint_redis_up"].samples[0].value == 1
    assert families["fluxprint_redis_published"].samples[0].value > 0
    anonymous = requests.get(
        octo_farm.url + "/plugin/fluxprint/health?format=prometheus", timeout=10
    )
    assert anonymous.status_code == 403


def test_publish_cpu_per_minute_of_a_connected_printer(octo_farm):
    """Measured, not asserted: the publisher thread's CPU time over 10 s."""
    start = redis_stats(octo_farm)
    t0 = time.monotonic()
    time.sleep(10)
    end = redis_stats(octo_farm)
    scale = 60 / (time.monotonic() - t0)
    cpu = end["cpu_s"] - start["cpu_s"]
    published = end["published"] - start["published"]
    per_minute = cpu * scale
    print(
        f"\npublisher: {per_minute:.4f} CPU s per minute ({per_minute / 60 * 100:.3f} %"
        f" of a core), {published * scale:.0f} entries per minute"
    )
    assert end["state"] == "up"


def test_settings_save_restarts_the_publisher_and_shutdown_says_offline(
    octo_farm, redis_farm
):
    client = redis_farm.client()
    r = octo_farm.api(
        "POST",
        "/api/settings",
        json={"plugins": {"fluxprint": {"redis": {"prefix": "farm2"}}}},
    )
    r.raise_for_status()
    registry = streams.registry_key("farm2")
    wait_until(lambda: client.hget(registry, PRINTER), what="registered under farm2")
    # the new publisher back-fills the whole log into its (empty) streams
    durable = streams.durable_key("farm2", PRINTER)
    wait_until(
        lambda: entries(client, durable) == logged(octo_farm), what="farm2 back-filled"
    )
    assert client.exists(streams.live_key("farm2", PRINTER))
    octo_farm.stop()
    record = streams.parse_registry(client.hget(registry, PRINTER))
    assert record is not None and record["state"] == "offline"
