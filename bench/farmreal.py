"""bench.farm's real OctoPrints: the plugin's added CPU for publishing to Redis and
the payload of OctoPrint's own SockJS socket (FDM Monster's per-printer feed)."""

from __future__ import annotations

import time
from typing import Any

from .run import gcode_file, server

GCODE = "farm-bench.gcode"


def plugin_cost(work: str, redis_url: str, window: float) -> dict:
    """Two real OctoPrints printing the same file, one publishing to Redis and one
    not: the difference of their CPU over the same window is the publishing cost."""
    from octoprint_fluxprint.plugin.settings import DEFAULTS

    if "redis" not in DEFAULTS:
        return {"available": False, "why": "this plugin has no redis publisher"}
    pub = {"printer_id": "real-pub", "redis": {"url": redis_url}}
    off = {"printer_id": "real-off"}
    with server(work, "real-pub", trace=True, fluxprint=pub) as a:
        with server(work, "real-off", trace=True, fluxprint=off) as b:
            for srv in (a, b):
                srv.upload(GCODE, gcode_file(200_000))
                srv.ensure_printing(GCODE)
            time.sleep(5)
            cpu0 = [s.ps.cpu_times() for s in (a, b)]
            t0 = time.monotonic()
            time.sleep(window)
            seconds = time.monotonic() - t0
            cpu1 = [s.ps.cpu_times() for s in (a, b)]
            health = a.api("GET", "/plugin/fluxprint/health?detail=1").json()
            sockjs = sockjs_payload(b, min(window, 10))
    used = [
        (c1.user + c1.system - c0.user - c0.system) / seconds
        for c0, c1 in zip(cpu0, cpu1)
    ]
    return {
        "available": True,
        "seconds": seconds,
        "publishing_cores": used[0],
        "not_publishing_cores": used[1],
        "added_cores": used[0] - used[1],
        "publisher": (health.get("detail") or health).get("redis"),
        "sockjs": sockjs,
    }


def sockjs_payload(srv: Any, window: float) -> dict:
    """One dashboard socket on OctoPrint's real SockJS (/sockjs), as FDM Monster holds
    per printer: bytes/s and the mean ``current`` message."""
    from .loadgen import LoadGen

    gen = LoadGen("sockjs", srv.url, auth=srv.passive_login())
    try:
        gen.grow(1)
        time.sleep(1)
        gen.window_start()
        time.sleep(window)
        w = gen.window_end()
    finally:
        gen.close()
    current = w["events"].get("current", 0)
    return {
        "seconds": w["seconds"],
        "bytes_per_s": w["bytes_read"] / w["seconds"],
        "current_per_s": current / w["seconds"],
        "bytes_per_current": w["bytes_read"] / current if current else None,
    }
