"""Scenario 6: durable means committed. One OctoPrint of the farm (farm-c) is
SIGKILLed during a burst of durable events (its Virtual Printer disconnected and
connected as fast as the REST API allows: printer:connection events), ``CYCLES``
times, and restarted in place each time (autoconnect). Half the kills land at a
random point of the burst; the other half at the worst one: the moment Redis shows a
durable entry it did not have (a blocking XREAD on the durable stream, armed at a
random point of the burst), where an event published before its commit would still
be missing from the log. (Random points alone hit that few-millisecond gap in only
a few kills of 20: the old hand-over passed them about half the time.) A
python-socketio client of the plugin itself and one of a hub (fed through Redis)
watch it throughout. After each restart, every durable event either client
received, and every durable entry in Redis (its durable and live streams), must
be in the plugin's events.db with the same seq, event and payload: nothing is
published, to a client or to Redis, before SQLite committed it."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
import time

import pytest
import redis
import requests
from harness.clients import PyClient

from octoprint_fluxprint.core import streams as ST
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.hub.conftest import HubClient

from .conftest import write_report

pytestmark = pytest.mark.integration
VICTIM = "farm-c"
CYCLES = 20


def log_rows(basedir: str, since: int) -> dict[int, tuple[str, dict]]:
    path = os.path.join(basedir, "data", "fluxprint", "events.db")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT seq, event, payload FROM events WHERE seq > ?", (since,)
        ).fetchall()
    return {seq: (event, json.loads(payload)) for seq, event, payload in rows}


def redis_durable(r: redis.Redis, since: int) -> list[tuple[str, int, str, dict]]:
    out = []
    for where in ("durable", "live"):
        key = (ST.durable_key if where == "durable" else ST.live_key)("fluxprint", VICTIM)
        for entry_id, fields in r.xrange(key, f"({since}-0", "+"):
            entry = ST.decode(entry_id, fields)
            if entry.event in DURABLE_EVENTS:
                out.append((f"redis-{where}", entry.seq, entry.event, entry.payload))
    return out


def client_durable(events: list, since: int, who: str) -> list:
    return [
        (who, d["seq"], e, d)
        for e, d in events
        if e in DURABLE_EVENTS
        and isinstance(d, dict)
        and d.get("printer") == VICTIM
        and d["seq"] > since
    ]


def not_in_log(seen: list, log: dict) -> list:
    bad = []
    for who, seq, event, payload in seen:
        row = log.get(seq)
        if row is None or row[0] != event or row[1] != payload:
            bad.append(
                {"who": who, "seq": seq, "event": event, "in_log": row is not None}
            )
    return bad


def burst(octo, stop: threading.Event, made: list) -> None:
    """Disconnect/connect cycles as fast as OctoPrint takes them."""
    session = requests.Session()
    session.headers.update(octo.headers())
    url = octo.url + "/api/connection"
    connect = {"command": "connect", "port": "VIRTUAL", "baudrate": 115200}
    while not stop.is_set():
        try:
            session.post(url, json={"command": "disconnect"}, timeout=2)
            session.post(url, json=connect, timeout=2)
            made.append(time.monotonic())
            time.sleep(0.05)
        except requests.RequestException:
            return  # killed


def on_next_durable(url: str, top: str, pgid: int) -> None:
    """SIGKILL as soon as Redis has a durable entry above ``top``."""
    r = redis.Redis.from_url(url, socket_timeout=5)
    try:
        r.xread({ST.durable_key("fluxprint", VICTIM): top}, count=1, block=3000)
    finally:
        os.killpg(pgid, signal.SIGKILL)  # at the latest after 3 s: a random point
        r.close()


def publisher_up(octo) -> bool:
    try:
        health = octo.api("GET", "/plugin/fluxprint/health?detail=1", timeout=2).json()
    except (requests.RequestException, ValueError):
        return False
    return ((health.get("detail") or health).get("redis") or {}).get("state") == "up"


def wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigkill_during_durable_bursts_publishes_only_what_was_committed(
    farm_ready, artifacts_dir
):
    farm = farm_ready
    octo = farm.octos[VICTIM]
    # the default log (scenario 4 shrank it)
    octo.fluxprint = farm.plugin_settings(VICTIM)
    octo.autoconnect = True  # restarted in place, it connects by itself
    octo.restart()
    since = farm.tops()[VICTIM]
    r = farm.redis.client()
    hub_client = HubClient(farm.hubs[1].url, printers=[VICTIM]).start()
    rng = random.Random(os.environ.get("FLUXPRINT_CRASH_SEED") or None)
    report: dict = {"cycles": CYCLES, "kills": [], "violations": []}
    direct_events: list = []
    t0 = time.monotonic()
    try:
        for cycle in range(CYCLES):
            wait(lambda: publisher_up(octo), 30, "the publisher is up")
            direct = PyClient(octo.url, auth={"apikey": octo.apikey}).start()
            stop, made = threading.Event(), []
            thread = threading.Thread(target=burst, args=(octo, stop, made))
            thread.start()
            delay = rng.uniform(0.15, 1.2) if cycle % 2 == 0 else rng.uniform(0.1, 0.6)
            time.sleep(delay)
            pgid = octo.proc.pid
            if cycle % 2 == 0:
                os.killpg(pgid, signal.SIGKILL)  # a random point
            else:
                top = r.xrevrange(ST.durable_key("fluxprint", VICTIM), "+", "-", count=1)
                on_next_durable(
                    farm.redis.url,
                    top[0][0].decode() if top else "0-0",
                    pgid,
                )
            octo.proc.wait(10)
            stop.set()
            thread.join(5)
            direct_events += [(r_["event"], r_["data"]) for r_ in direct.events()]
            direct.close()
            octo.proc = None
            octo.start()
            # what the hub relayed from Redis before the kill has reached its client
            time.sleep(0.3)
            log = log_rows(octo.basedir, since)
            with hub_client.lock:
                hub_events = [(e, d) for _t, e, d in hub_client.events]
            seen = (
                client_durable(direct_events, since, "plugin-client")
                + client_durable(hub_events, since, "hub-client")
                + redis_durable(r, since)
            )
            bad = not_in_log(seen, log)
            report["kills"].append(
                {
                    "at": "random" if cycle % 2 == 0 else "a durable entry in Redis",
                    "after_s": round(delay, 2),
                    "cycles": len(made),
                    "log": len(log),
                }
            )
            report["violations"] += [dict(v, cycle=cycle) for v in bad]
        report["seconds"] = round(time.monotonic() - t0, 1)
        log = log_rows(octo.basedir, since)
        report["durable_in_log"] = len(log)
        with hub_client.lock:
            report["hub_client_durable"] = len(
                client_durable([(e, d) for _t, e, d in hub_client.events], since, "h")
            )
        report["plugin_client_durable"] = len(client_durable(direct_events, since, "p"))
        report["redis_durable"] = len(redis_durable(r, since))
        assert report["violations"] == [], report["violations"][:10]
        # the kills landed inside bursts, and the bursts made durable events
        assert sum(1 for k in report["kills"] if k["cycles"] > 0) >= CYCLES // 2
        assert report["hub_client_durable"] > CYCLES and report["redis_durable"] > CYCLES
    finally:
        write_report(artifacts_dir, "crash", report)
        hub_client.close()
        r.close()
        octo.autoconnect = False
        if octo.proc is None:
            octo.start()
        farm.ensure_printing(VICTIM)
