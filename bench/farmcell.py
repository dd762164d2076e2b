"""One bench.farm cell (printers x clients x hubs) measured over a window: latency,
deliveries per hub core, hub RSS per client, Redis CPU and memory, bytes per client;
and Redis's bytes per stream and per entry."""

from __future__ import annotations

import time
from typing import Any

from octoprint_fluxprint.core import streams

from .farmprocs import PER_CLIENT, Hub, Load, fmt, merge_counts, open_clients, pct_merge
from .run import log

PROBES = 20  # of a cell's clients, real socket.io-client 4 (the others lean)


def redis_cpu(r: Any) -> float:
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def stream_usage(r: Any, prefix: str, ids: list[str]) -> dict:
    """MEMORY USAGE per stream and per entry, over a sample of printers."""
    live = durable = live_n = durable_n = 0
    for pid in ids[:10]:
        lk, dk = streams.live_key(prefix, pid), streams.durable_key(prefix, pid)
        live += r.memory_usage(lk, samples=0) or 0
        live_n += r.xlen(lk)
        durable += r.memory_usage(dk, samples=0) or 0
        durable_n += r.xlen(dk)
    k = max(1, min(10, len(ids)))
    return {
        "live_stream_bytes": live // k,
        "live_entries": live_n // k,
        "live_entry_bytes": live // max(1, live_n),
        "durable_stream_bytes": durable // k,
        "durable_entries": durable_n // k,
        "durable_entry_bytes": durable // max(1, durable_n) if durable_n else None,
    }


def entry_bytes(r: Any, prefix: str = "benchprobe") -> dict:
    """Redis's bytes per entry at retention scale: a minute of one printer's live
    messages and 2,000 durable events, written with the load's payloads into scratch
    streams, MEMORY USAGE divided by the entries (stream overhead amortized)."""
    from .farmload import Printer

    p = Printer("probe0001", time.time())
    live, durable = f"{prefix}:live", f"{prefix}:durable"
    r.delete(live, durable)
    t = time.time()
    pipe = r.pipeline(transaction=False)
    n_live = n_durable = 0
    while n_live < 210 or n_durable < 2000:  # 60 s x 3.5/s; a durable-heavy log
        t += 0.05
        for event, payload, is_durable in p.due(t, 0.5):
            fields = streams.encode(event, payload)
            eid = streams.entry_id(payload["seq"])
            if is_durable and n_durable < 2000:
                pipe.xadd(durable, fields, id=eid)
                n_durable += 1
            elif not is_durable and n_live < 210:
                pipe.xadd(live, fields, id=eid)
                n_live += 1
    pipe.execute()
    out = {
        "live_entry_bytes": (r.memory_usage(live, samples=0) or 0) // n_live,
        "durable_entry_bytes": (r.memory_usage(durable, samples=0) or 0) // n_durable,
        "live_sample": n_live,
        "durable_sample": n_durable,
    }
    r.delete(live, durable)
    return out


def one_cell(
    hubs: list[Hub], r: Any, load: Load, ids: list[str], n: int, window: float
) -> dict:
    base_rss = sum(h.rss() for h in hubs)
    probes = min(PROBES, n // 2)
    gens = open_clients(hubs, ids, n - probes)
    gens += open_clients(hubs, ids, probes, lean=False)  # socket.io-client 4
    try:
        time.sleep(2 + n / 1000)
        for g in gens:
            g.window_start()
        cpu0 = [h.cpu() for h in hubs]
        node0 = [g.cpu_seconds() for g in gens]
        rcpu0 = redis_cpu(r)
        l0 = load.stats()
        t0 = time.monotonic()
        time.sleep(window)
        seconds = time.monotonic() - t0
        cpu = sum(h.cpu() - c for h, c in zip(hubs, cpu0))
        node = sum(g.cpu_seconds() - c for g, c in zip(gens, node0))
        rcpu = redis_cpu(r) - rcpu0
        l1 = load.stats()
        stats = [g.stats() for g in gens]
        rss = sum(h.rss() for h in hubs)
        admitted = sum(h.clients() for h in hubs)
    finally:
        for g in gens:
            g.close()
    deliveries = sum(s["messages"] for s in stats)
    connected = sum(s["connected"] for s in stats)  # the probes included
    probe_stats = stats[-1]
    stats = stats[:-1] or stats
    mem = r.info("memory")
    c = {
        "printers": len(ids),
        "hubs": len(hubs),
        "n": n,
        "clients": connected,
        "node_processes": len(gens),
        "seconds": seconds,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / seconds,
        "hub_cpu_cores": cpu / seconds,
        "deliveries_per_hub_core_s": deliveries / cpu if cpu > 0 else None,
        "hub_rss": rss,
        "hub_rss_per_client": (rss - base_rss) / max(1, connected),
        "latency_ms": pct_merge(stats, "latency_ms"),
        "probe_latency_ms": probe_stats["latency_ms"],
        "probes": probes,
        "bytes_per_client_s": sum(s["bytes_read"] for s in stats + [probe_stats])
        / max(1, connected)
        / seconds,
        "node_cpu_cores": node / seconds,
        "redis_cpu_cores": rcpu / seconds,
        "redis_used_memory": mem["used_memory"],
        "writes_per_s": (l1["written"] - l0["written"]) / seconds,
        "load_cpu_cores": (l1["cpu_s"] - l0["cpu_s"]) / seconds,
        "write_errors": l1["errors"] - l0["errors"],
        "resyncs": sum(s["resyncs"] for s in stats),
        "hub_clients": admitted,
        "disconnects": merge_counts([s.get("disconnects") or {} for s in stats]),
        "expected_deliveries_per_s": n * min(PER_CLIENT, len(ids)) * 3.5,
    }
    lat = c["latency_ms"]
    log(
        f"farm {len(ids)} printers x {n} clients, {len(hubs)} hub(s): "
        f"{c['deliveries_per_s']:.0f} deliveries/s, hubs {c['hub_cpu_cores']:.2f} core, "
        f"{fmt(c['deliveries_per_hub_core_s'], 0)}/core-s, p50 {fmt(lat['p50'])} "
        f"p99 {fmt(lat['p99'])} ms, {c['hub_rss_per_client'] / 1024:.0f} KiB/client"
    )
    return c
