"""bench.farm's recovery: a hub SIGKILL (its clients re-attached on the other hub)
and a Redis kill -9 and back (the first durable event at a client)."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from .farmprocs import Hub, Load, RedisServer, fmt, open_clients, pct_merge
from .run import log


def recovery(
    work: str, redis: RedisServer, hubs: list[Hub], ids: list[str], n: int
) -> dict:
    """Hub SIGKILL -> its clients on the other hub; Redis kill -9 and back -> the
    first durable event at a client."""
    gens = open_clients(hubs, ids, n, jitter_ms=1000)
    out: dict[str, Any] = {"clients": n, "printers": len(ids)}
    try:
        time.sleep(2)
        for g in gens:
            g.window_start()
        killed = time.monotonic()
        hubs[0].kill()
        deadline = time.monotonic() + 60
        moved = n // 2
        while sum(g.stats()["reattached"] for g in gens) < moved:
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        out["hub_kill_all_reattached_s"] = round(time.monotonic() - killed, 2)
        st = [g.stats() for g in gens]
        out["reattach_ms"] = pct_merge(st, "reattach_ms")
        out["reattached"] = sum(s["reattached"] for s in st)
        out["moved"] = moved
        hubs[0].start(len(ids))

        redis.kill()
        time.sleep(2.0)
        start_ms = time.time() * 1000
        for g in gens:
            # only a durable event written once Redis is back counts (a client
            # still working through what came before the kill would say 0 ms)
            g.window_start(durable_after_ms=start_ms)
        redis.start()
        back_ms = time.time() * 1000  # it answers PING (the hubs may be faster)
        deadline = time.monotonic() + 30
        first = written = None
        while time.monotonic() < deadline:
            st = [g.stats() for g in gens]
            t = [(s["first_durable_t"], s.get("first_durable_ts")) for s in st]
            t = [x for x in t if x[0]]
            if t:
                first, written = min(t)
                out["window_latency_ms"] = pct_merge(st, "latency_ms")
                break
            time.sleep(0.1)
        # where the time went: Redis back -> the load wrote it (the writer's own
        # reconnect), written -> at a client (the hubs' readers and the clients)
        out["redis_back_to_written_ms"] = (
            None if written is None else max(0.0, written - back_ms)
        )
        out["written_to_client_ms"] = (
            None if first is None or written is None else first - written
        )
        out["redis_back_durable_ms"] = (
            None if first is None else max(0.0, first - back_ms)
        )
        out["redis_start_to_durable_ms"] = None if first is None else first - start_ms
        out["redis_start_to_ping_ms"] = back_ms - start_ms
        out["redis_down_s"] = 2.0
    finally:
        for g in gens:
            g.close()
    log(
        f"recovery: re-attach p50 {fmt(out['reattach_ms']['p50'])} p95 "
        f"{fmt(out['reattach_ms']['p95'])} ms; Redis back -> durable "
        f"{fmt(out['redis_back_durable_ms'])} ms"
    )
    return out


def recovery_only(printers: int, n: int) -> dict:
    """Recovery on fresh hubs and a fresh Redis (bench.farm --recovery P,N)."""
    with tempfile.TemporaryDirectory(prefix="fluxprint-farmbench-") as work:
        redis = RedisServer(os.path.join(work, "redis"))
        redis.start()
        load = Load(redis.url, printers)
        hubs = [Hub(work, redis.url) for _ in range(2)]
        try:
            for hub in hubs:
                hub.start(printers)
            return recovery(work, redis, hubs, load.ids, n)
        finally:
            for hub in hubs:
                hub.close()
            load.close()
            redis.stop()
