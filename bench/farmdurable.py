"""What "durable means committed" costs: a real OctoPrint publishing to a real
Redis, bursts of durable events (Virtual Printer disconnect/connect cycles), and for
each durable event the time from the plugin's emit (``trace.emit_ns``,
``FLUXPRINT_TRACE=1``) to (a) its entry in Redis (an ``XREAD BLOCK`` reader on the
printer's live stream, receipt time) and (b) a Socket.IO client of the plugin
(python-socketio, receipt time). Run it on the code before and after a change to
compare; the figures include each reader's own wake-up (well under a millisecond
on an idle machine).

    .venv/bin/python -m bench.farmdurable [--cycles 40] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from typing import Any, Optional

import socketio

from octoprint_fluxprint.core import streams
from octoprint_fluxprint.core.replay import DURABLE_EVENTS

from .farmprocs import RedisServer
from .run import ROOT, log

sys.path.insert(0, os.path.join(ROOT, "tools"))
from octoserver import OctoServer  # noqa: E402

PID = "latency"
NAMESPACE = "/ws/printing"
PATH = "/plugin/fluxprint/socket.io/"
# discovery's zeroconf registration alone takes ~1.8 s of every start
LEAN = ("discovery", "pluginmanager", "errortracking", "achievements")


class TracedOcto(OctoServer):
    def command(self) -> list[str]:
        return ["env", "FLUXPRINT_TRACE=1", *super().command()]


def redis_reader(url: str, key: str, stop: threading.Event, out: list) -> None:
    import redis

    r = redis.Redis.from_url(url, socket_timeout=5)
    last = "0-0"
    top = r.xrevrange(key, "+", "-", count=1)
    if top:
        last = top[0][0].decode()
    while not stop.is_set():
        found = r.xread({key: last}, count=500, block=200)
        now = time.time_ns()
        for _key, entries in found or []:
            for entry_id, fields in entries:
                last = entry_id.decode()
                entry = streams.decode(entry_id, fields)
                if entry.event in DURABLE_EVENTS:
                    out.append((entry.seq, now, entry.payload))
    r.close()


def client(url: str, apikey: str, out: list) -> socketio.Client:
    sio = socketio.Client(reconnection=False)

    @sio.on("*", namespace=NAMESPACE)
    def any_event(event: str, data: Any = None) -> None:
        if event in DURABLE_EVENTS and isinstance(data, dict):
            out.append((data["seq"], time.time_ns(), data))

    sio.connect(
        url,
        namespaces=[NAMESPACE],
        socketio_path=PATH,
        auth={"apikey": apikey},
        transports=["websocket"],
        wait_timeout=10,
    )
    return sio


def pct(values: list[float], p: float) -> Optional[float]:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(len(s) * p / 100))], 2)


def summary(rows: list[tuple[int, int, dict]]) -> dict:
    ms = [(at - p["trace"]["emit_ns"]) / 1e6 for _s, at, p in rows if "trace" in p]
    return {
        "count": len(ms),
        "p50_ms": pct(ms, 50),
        "p99_ms": pct(ms, 99),
        "max_ms": round(max(ms), 2) if ms else None,
    }


def measure(cycles: int, work: str) -> dict:
    redis = RedisServer(os.path.join(work, "redis"))
    redis.start()
    octo = TracedOcto(
        os.path.join(work, "octo"),
        fluxprint={"printer_id": PID, "redis": {"url": redis.url}},
        disabled_plugins=LEAN,
    )
    got_redis: list = []
    got_client: list = []
    stop = threading.Event()
    try:
        octo.start()
        octo.connect_printer()
        sio = client(octo.url, octo.apikey, got_client)
        reader = threading.Thread(
            target=redis_reader,
            args=(
                redis.url,
                streams.live_key(streams.DEFAULT_PREFIX, PID),
                stop,
                got_redis,
            ),
        )
        reader.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        for _ in range(cycles):
            octo.disconnect_printer()
            octo.connect_printer()
        seconds = time.monotonic() - t0
        time.sleep(1.0)
        stop.set()
        reader.join(5)
        sio.disconnect()
        health = octo.api("GET", "/plugin/fluxprint/health?detail=1").json()
    finally:
        octo.stop()
        redis.stop()
    return {
        "cycles": cycles,
        "seconds": round(seconds, 1),
        "emit_to_redis": summary(got_redis),
        "emit_to_client": summary(got_client),
        "publisher": (health.get("detail") or health).get("redis"),
    }


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cycles", type=int, default=40)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fluxprint-durable-") as work:
        result = measure(args.cycles, work)
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    log(
        f"durable events: emit -> Redis p50 {result['emit_to_redis']['p50_ms']} "
        f"p99 {result['emit_to_redis']['p99_ms']} ms; emit -> client p50 "
        f"{result['emit_to_client']['p50_ms']} p99 {result['emit_to_client']['p99_ms']} ms"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
