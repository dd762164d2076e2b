"""The farm section of docs/benchmarks.md from bench/results/farm.json (bench.farm)."""

from __future__ import annotations

from typing import Any, Optional

GOALS = {
    "p99_ms": 100.0,
    "per_core": 50_000.0,
    "rss_per_client": 64 * 1024,
    "reattach_p95_ms": 2000.0,  # issue 23: at 500 clients
    "durable_back_ms": 5000.0,  # issue 23: in every run
    "redis_bytes": 1.5e9,
    "scale_ratio": 1.8,  # 2 hubs serve this many times the clients of 1
}


def fmt(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def verdict(ok: Optional[bool]) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return out


def markdown(results: dict, begin: str, end: str) -> str:
    meta = results["meta"]
    m = meta.get("machine", {})
    L = [begin, "", "## The farm: Redis Streams, hubs, many dashboards\n"]
    L.append(
        f"`python -m bench.farm{' --smoke' if meta.get('smoke') else ''}`, "
        f"{meta.get('started', '?')}, {m.get('cores', '?')} cores ({m.get('cpu', '?')}). "
        "Synthetic plugins (`bench/farmload.py`, one process, redis-py pipelines) write "
        "what N FluxPrint publishers would into a real `redis-server` (AOF everysec): "
        "temperature 1/s, progress 2/s, a status keyframe every 2 s, a durable event "
        f"every {meta.get('durable_every_s', 10):g} s per printer (live and durable in one "
        "MULTI), the registry heartbeat. 1 or 2 `fluxprint-hub` processes with the "
        "`redis` source read it; Node dashboards (`tests/farm/farm_clients.mjs`, up to "
        "500 sockets per Node process) each subscribe to "
        f"{meta.get('per_client', 10)} printers and are spread over the hubs. Latency is "
        "from the synthetic write (its wall time rides in `trace.emit_ns`) to the "
        "client, on temperature and progress; p99 is the worst Node process's. Of each "
        "cell's clients, 20 *probes* are real socket.io-client 4; the others are lean "
        "clients speaking the same Socket.IO 4 frames over a plain `ws` WebSocket with "
        "permessage-deflate (the hub cannot tell them apart), parsing only the event "
        "name and `trace.emit_ns`: socket.io-client's decoder saturates one Node core "
        "at ~15,000 messages/s, which on 2 cores would measure Node, not the hub. "
        "*deliveries/s* is received against what the load sends (clients x 10 "
        "printers x 3.5 messages/s): short of it, messages are queued or dropped "
        "somewhere (the clients' Node processes first: their cores are shown). "
        "Deliveries are messages received by all clients; per hub core is per second of "
        "the hub processes' CPU (psutil). RSS per client is the hubs' RSS with the "
        "clients minus without, per client. Everything (Redis, the load, the hubs, the "
        f"Node clients) shares this machine; windows of {meta['window_s']:g} s.\n"
    )
    rows = []
    for c in results["cells"]:
        lat = c["latency_ms"]
        rows.append(
            [
                c["printers"],
                c["hubs"],
                f"{c['clients']}/{c['n']}",
                fmt(lat.get("p50")),
                fmt(lat.get("p99")),
                fmt((c.get("probe_latency_ms") or {}).get("p50")),
                fmt((c.get("probe_latency_ms") or {}).get("p99")),
                f"{c['deliveries_per_s']:,.0f} / {c.get('expected_deliveries_per_s', 0):,.0f}",
                fmt(c["hub_cpu_cores"], 2),
                fmt(c["deliveries_per_hub_core_s"], 0),
                fmt(c["hub_rss_per_client"] / 1024, 1),
                fmt(c["bytes_per_client_s"], 0),
                fmt(c["node_cpu_cores"], 2),
                fmt(c["redis_cpu_cores"], 3),
                fmt(c["redis_used_memory"] / 2**20, 1),
            ]
        )
    L += table(
        [
            "printers",
            "hubs",
            "clients",
            "p50 ms",
            "p99 ms",
            "probe p50 ms",
            "probe p99 ms",
            "deliveries/s (sent by the load)",
            "hub cores",
            "deliveries per hub core-s",
            "hub KiB/client",
            "bytes/s per client",
            "Node cores",
            "Redis cores",
            "Redis MiB",
        ],
        rows,
    )
    L.append("")
    redis = results.get("redis", {})
    if redis:
        L.append(
            "Redis per stream (MEMORY USAGE over up to 10 printers, at the end of each farm size):\n"
        )
        L += table(
            [
                "printers",
                "used_memory MiB",
                "live entries",
                "live bytes/entry",
                "durable entries",
                "durable bytes/entry",
            ],
            [
                [
                    k,
                    fmt(v["used_memory"] / 2**20, 1),
                    v["live_entries"],
                    v["live_entry_bytes"],
                    v["durable_entries"],
                    v["durable_entry_bytes"] or "–",
                ]
                for k, v in redis.items()
            ],
        )
        L.append("")
    eb = results.get("entry_bytes")
    if eb:
        L.append(
            f"Bytes per entry at retention scale (scratch streams of {eb['live_sample']} "
            f"live and {eb['durable_sample']} durable entries with the load's payloads, "
            f"MEMORY USAGE / entries): live {eb['live_entry_bytes']} B, durable "
            f"{eb['durable_entry_bytes']} B.\n"
        )
    rec = results.get("recovery")
    if rec:
        L.append(
            f"Recovery ({rec['printers']} printers, {rec['clients']} clients on 2 hubs): "
            f"SIGKILL one hub, {rec['reattached']} of its ~{rec['moved']} clients "
            f"re-attached on the other, p50 {fmt(rec['reattach_ms']['p50'], 0)} ms, p95 "
            f"{fmt(rec['reattach_ms']['p95'], 0)} ms (clients retry after 250 ms + up to "
            f"1 s of jitter); Redis `kill -9`, {rec['redis_down_s']:g} s down, back: the "
            f"first durable event at a client {fmt(rec['redis_back_durable_ms'], 0)} ms "
            f"after Redis answered PING ({fmt(rec.get('redis_start_to_durable_ms'), 0)} ms "
            "after redis-server was started)"
            + (
                ", measured in a separate run on fresh hubs."
                if rec.get("separate_run")
                else "."
            )
            + repeats(rec)
            + "\n"
        )
    plugin = results.get("plugin", {})
    if plugin.get("available"):
        L.append(
            "The plugin's cost of publishing: two real OctoPrints printing the same file "
            f"for {plugin['seconds']:.0f} s, one publishing: {fmt(plugin['publishing_cores'] * 100, 1)} % "
            f"of a core against {fmt(plugin['not_publishing_cores'] * 100, 1)} %: "
            f"**{fmt(plugin['added_cores'] * 100, 1)} %** added (goal ≤ 2 %; one "
            "window, noisy).\n"
        )
    else:
        L.append(
            f"The plugin's cost of publishing: not measured ({plugin.get('why', '?')}).\n"
        )
    fdm = results.get("fdm_monster_model")
    if fdm:
        s = fdm.get("measured_sockjs")
        src = (
            f"measured: one real OctoPrint /sockjs socket, {fmt(s['bytes_per_s'], 0)} B/s, "
            f"{fmt(s['bytes_per_current'], 0)} B per `current`"
            if s
            else "not measured in this run: the per-printer state is the measured live "
            "entry size"
        )
        L.append(
            "FDM Monster's model beside it (one SockJS socket per OctoPrint, the whole "
            f"farm's state to every browser every 500 ms; {src}; computed from that size, "
            "not run):\n"
        )
        L += table(
            [
                "printers",
                "browsers",
                "FDM B/s per browser",
                "FDM server out B/s",
                "FluxPrint B/s per client",
            ],
            [
                [
                    r["printers"],
                    r["browsers"],
                    fmt(r["browser_bytes_per_s"], 0),
                    fmt(r["server_out_bytes_per_s"], 0),
                    fmt(r["fluxprint_bytes_per_client_s"], 0),
                ]
                for r in fdm["rows"]
            ],
        )
        L.append("")
    if results.get("scale"):
        from .farmscale import markdown as scale_md

        L += scale_md(results["scale"])
    L += goals(results)
    L.append(end)
    return "\n".join(L)


def repeats(rec: dict) -> str:
    reps = rec.get("repeats") or []
    if not reps:
        return ""
    runs = [rec, *reps]
    att = ", ".join(fmt(r["reattach_ms"]["p95"], 0) for r in runs)
    dur = ", ".join(fmt(r["redis_back_durable_ms"], 0) for r in runs)
    return (
        f" The same measurement {len(runs)} times: re-attach p95 {att} ms; Redis back "
        f"-> first durable event {dur} ms (the goals below use the worst)."
    )


def goals(results: dict) -> list[str]:
    cells = results["cells"]
    big = [
        c
        for c in cells
        if c["printers"] == max(results["meta"]["printers"])
        and c["n"] == max(results["meta"]["ns"])
    ]
    p99s = [c["latency_ms"]["p99"] for c in big]
    p99 = None if not p99s or None in p99s else max(p99s)
    collapsed = ", ".join(
        f"{c['clients']}/{c['n']} connected"
        for c in big
        if c["latency_ms"]["p99"] is None
    )
    per_core = max((c["deliveries_per_hub_core_s"] or 0 for c in cells), default=None)
    kept_up = [
        c
        for c in cells
        if c["deliveries_per_s"] >= 0.9 * c.get("expected_deliveries_per_s", 0)
    ]
    rss = max((c["hub_rss_per_client"] for c in kept_up if c["n"] >= 500), default=None)
    rec = results.get("recovery") or {}
    runs = [rec, *(rec.get("repeats") or [])] if rec else []
    reattach = max((r["reattach_ms"]["p95"] or 0 for r in runs), default=None)
    back = max((r["redis_back_durable_ms"] or 0 for r in runs), default=None)
    proj = results.get("projection") or {}
    rb = proj.get("redis_bytes")
    rt = proj.get("redis_bytes_30_days") or 0
    rl = proj.get("redis_bytes_at_log_cap")
    ratio = (results.get("scale") or {}).get("ratio")
    rows = [
        [
            "p99 at the largest cell",
            "≤ 100 ms",
            fmt(p99) if not collapsed else f"none: it collapsed ({collapsed})",
            verdict(
                False if collapsed else (None if p99 is None else p99 <= GOALS["p99_ms"])
            ),
        ],
        [
            "deliveries per hub core-s (best cell)",
            "≥ 50,000",
            fmt(per_core, 0),
            verdict(None if per_core is None else per_core >= GOALS["per_core"]),
        ],
        [
            "hub RSS per client (worst cell ≥ 500 clients that kept up)",
            "≤ 64 KiB",
            fmt(None if rss is None else rss / 1024) + " KiB",
            verdict(None if rss is None else rss <= GOALS["rss_per_client"]),
        ],
        [
            "2 hubs against 1: clients served at the same p99 (`--scale`)",
            "≥ 1.8×",
            fmt(ratio, 2) + "×",
            verdict(None if ratio is None else ratio >= GOALS["scale_ratio"]),
        ],
        [
            "re-attach p95 after a hub kill (worst run)",
            "≤ 2 s",
            fmt(reattach, 0) + " ms",
            verdict(None if reattach is None else reattach <= GOALS["reattach_p95_ms"]),
        ],
        [
            "durable flow after Redis is back (every run)",
            "≤ 5 s",
            fmt(back, 0) + " ms",
            verdict(None if back is None else back <= GOALS["durable_back_ms"]),
        ],
        [
            "Redis projected for 1,000 printers, defaults (durable stream capped at "
            f"{proj.get('durable_max', '?'):,} events)",
            "≤ 1.5 GB",
            fmt(None if rb is None else rb / 1e9, 2) + " GB",
            verdict(None if rb is None else rb <= GOALS["redis_bytes"]),
        ],
        [
            "… were Redis to hold the plugin's whole log (10,000 events each)",
            "–",
            fmt(None if rl is None else rl / 1e9, 2) + " GB",
            "",
        ],
        [
            "… 30 days of a busy printer instead (1,800 durable events each)",
            "≤ 1.5 GB",
            fmt(rt / 1e9, 2) + " GB",
            verdict(rt <= GOALS["redis_bytes"]),
        ],
    ]
    return [
        "Against the goals (targets, not asserts):\n",
        *table(["figure", "goal", "measured", ""], rows),
        "",
    ]
