"""The farm with batched dashboards (issue 23): one ``fluxprint-hub`` with the
``redis`` source in front of synthetic plugins writing to a real ``redis-server``
(bench/farmload.py: temperature 1/s, progress 2/s, a status keyframe every 2 s, a
durable event every 10 s per printer), and lean Socket.IO 4 clients
(bench/loadgen.mjs, up to 500 per Node process) that subscribe with
``{batch: ms}``: each watching ``k`` printers (round-robin over the farm), or all of
them (the wall display). ``@0`` cells are single-event clients, for comparison.

Per cell: latency per item from the synthetic write (its wall time rides in
``trace.emit_ns``) to the client, worst Node process's p99; clients connected;
frames and items (printer updates) delivered per second, and per second of the
hub's CPU; durable events received against what the load wrote for the printers
each client watches; hub RSS per client (with the clients minus without); and the
cores of each part: the hub, the Node clients, the load writer, Redis.

    .venv/bin/python -m bench.farmbatch            200 printers: 2000 x 10 @250,
                                                   500 x all @250, 500 x 10 @0
                                                   (bench/results/farmbatch.json and
                                                   its section of docs/benchmarks.md)
    .venv/bin/python -m bench.farmbatch --smoke    20 printers, small cells (CI)
    .venv/bin/python -m bench.farmbatch --cells 200:2000x10@250,200:500xall@250
    .venv/bin/python -m bench.farmbatch --report   the section from the JSON
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from typing import Any, Optional

import yaml

from .farmcell import redis_cpu
from .farmprocs import DURABLE_EVERY, Hub, Load, RedisServer
from .loadgen import LoadGen
from .run import ROOT, log, machine
from .streamreport import write_section as _write_section

JSON_OUT = os.path.join(ROOT, "bench", "results", "farmbatch.json")
MD = os.path.join(ROOT, "docs", "benchmarks.md")
BEGIN, END = "<!-- farmbatch:begin -->", "<!-- farmbatch:end -->"
CLIENTS_PER_NODE = 500
MEASURE_EVERY = 10  # of a cell's clients, these parse (latency, durable events)
GROW_S = 120.0
DEFAULT_CELLS = "200:2000x10@250,200:500xall@250,200:500x10@0"
SMOKE_CELLS = "20:40x5@250,20:20xall@250"
CELL = re.compile(r"^(\d+):(\d+)x(\d+|all)@(\d+)$")
GOALS = {"p99_ms": {250: 400.0}, "wall_p99_ms": 500.0, "per_core": 1_000_000.0}
RSS_GOAL = 64 * 1024


def parse_cells(spec: str) -> list[dict]:
    cells = []
    for part in spec.split(","):
        m = CELL.match(part.strip())
        if m is None:
            raise SystemExit(f"bad cell {part!r}: printers:clientsxk@batch_ms")
        printers, n, k, batch = m.groups()
        cells.append(
            {
                "printers": int(printers),
                "n": int(n),
                "per_client": None if k == "all" else int(k),
                "batch": int(batch),
            }
        )
    return cells


def batching(hub: Hub, ms: int) -> None:
    """The hub's trusted clients batched from their connect (a dashboard token's
    profile would do it): their statuses on connect come in one batch."""
    if not ms:
        return
    with open(hub.path) as f:
        cfg = yaml.safe_load(f)
    cfg["auth"]["trusted"] = {"profile": "farm", "printers": ["*"]}
    cfg["profiles"] = {"farm": {"batch": ms}}
    with open(hub.path, "w") as f:
        yaml.safe_dump(cfg, f)


def open_gens(hub: Hub, ids: list[str], cell: dict) -> list[LoadGen]:
    n = cell["n"]
    procs = max(1, math.ceil(n / CLIENTS_PER_NODE))
    opts: dict[str, Any] = {
        "path": "/socket.io/",
        "lean": True,
        "batch": 100,
        # every client inflates what it gets; 1 in MEASURE_EVERY parses it too
        "measureEvery": MEASURE_EVERY if n >= 10 * MEASURE_EVERY else 1,
    }
    if cell["batch"]:
        opts["subscribe"] = {"batch": cell["batch"]}
    gens = []
    for k in range(procs):
        share = n // procs + (1 if k < n % procs else 0)
        extra = {}
        if cell["per_client"] is not None:
            # round-robin over the farm, each process starting where the last ended
            start = sum(n // procs + (1 if j < n % procs else 0) for j in range(k))
            pool = ids[(start * cell["per_client"]) % len(ids) :] + ids
            extra = {"pool": pool[: len(ids)], "perClient": cell["per_client"]}
        gen = LoadGen("fluxprint", hub.url, **opts, **extra)
        gen.send("grow", n=share)
        gens.append(gen)
    return gens


def one_cell(hub: Hub, r: Any, load: Load, ids: list[str], cell: dict, window: float):
    base_rss = hub.rss()
    gens = open_gens(hub, ids, cell)
    try:
        grown = [g.read("grown", GROW_S + 60) for g in gens]
        time.sleep(3 + cell["n"] / 1000)
        for g in gens:
            g.window_start()
        cpu0, node0 = hub.cpu(), [g.cpu_seconds() for g in gens]
        rcpu0, l0 = redis_cpu(r), load.stats()
        t0 = time.monotonic()
        time.sleep(window)
        seconds = time.monotonic() - t0
        cpu = hub.cpu() - cpu0
        node = sum(g.cpu_seconds() - c for g, c in zip(gens, node0))
        rcpu, l1 = redis_cpu(r) - rcpu0, load.stats()
        rss = hub.rss()
        stats = [g.window_end() for g in gens]
    finally:
        for g in gens:
            g.close()
    connected = sum(s["clients"] for s in stats)
    measured = sum(s.get("measured", s["clients"]) for s in stats)
    items = sum(s["updates"] for s in stats)
    frames = sum(s["messages"] for s in stats)
    durable = sum(
        sum(v for e, v in s["events"].items() if e.startswith("printer:job_"))
        for s in stats
    )
    watched = cell["per_client"] or len(ids)
    c = {
        **cell,
        "clients": connected,
        "connect_failed": sum(g["failed"] for g in grown),
        "grow_s": max(g["seconds"] for g in grown),
        "node_processes": len(gens),
        "seconds": seconds,
        "frames_per_s": frames / seconds,
        "items_per_s": items / seconds,
        "hub_cores": cpu / seconds,
        "items_per_hub_core_s": items / cpu if cpu > 0 else None,
        "hub_rss": rss,
        "hub_rss_per_client": (rss - base_rss) / max(1, connected),
        "latency_ms": worst([s["emit_latency_ms"] for s in stats]),
        "durable_received": durable,
        "durable_expected": measured * watched * seconds / DURABLE_EVERY,
        "measured_clients": measured,
        "node_cores": node / seconds,
        "load_cores": (l1["cpu_s"] - l0["cpu_s"]) / seconds,
        "redis_cores": rcpu / seconds,
        "errors": sum(s["errors"] for s in stats),
    }
    lat = c["latency_ms"]
    log(
        f"farmbatch {cell['printers']} printers, {connected}/{cell['n']} clients x "
        f"{cell['per_client'] or 'all'} @{cell['batch']} ms: {c['items_per_s']:.0f} "
        f"items/s in {c['frames_per_s']:.0f} frames/s, hub {c['hub_cores']:.2f} core "
        f"({fmt(c['items_per_hub_core_s'], 0)} items/core-s), p50 {fmt(lat['p50'])} "
        f"p99 {fmt(lat['p99'])} ms, {c['hub_rss_per_client'] / 1024:.1f} KiB/client, "
        f"Node {c['node_cores']:.2f} cores"
    )
    return c


def worst(parts: list[dict]) -> dict:
    """Latency over Node processes: the count-weighted p50, the worst p99."""
    parts = [p for p in parts if p.get("count")]
    if not parts:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    n = sum(p["count"] for p in parts)
    return {
        "count": n,
        "p50": sum(p["p50"] * p["count"] for p in parts) / n,
        "p99": max(p["p99"] for p in parts),
        "max": max(p["max"] for p in parts),
    }


def run(cells: list[dict], window: float) -> dict:
    results: dict[str, Any] = {
        "meta": {
            "window_s": window,
            "durable_every_s": DURABLE_EVERY,
            "clients_per_node": CLIENTS_PER_NODE,
            "machine": machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "cells": [],
    }
    with tempfile.TemporaryDirectory(prefix="fluxprint-farmbatch-") as work:
        redis = RedisServer(os.path.join(work, "redis"))
        redis.start()
        r = redis.client()
        try:
            for printers in sorted({c["printers"] for c in cells}):
                r.flushall()
                load = Load(redis.url, printers)
                try:
                    time.sleep(1)
                    for cell in cells:
                        if cell["printers"] != printers:
                            continue
                        hub = Hub(work, redis.url)  # fresh: its RSS is the cell's
                        batching(hub, cell["batch"])
                        try:
                            hub.start(printers)
                            time.sleep(2)
                            results["cells"].append(
                                one_cell(hub, r, load, load.ids, cell, window)
                            )
                        finally:
                            hub.close()
                finally:
                    load.close()
        finally:
            redis.stop()
    return results


def fmt(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def markdown(results: dict) -> str:
    meta = results["meta"]
    m = meta.get("machine", {})
    L = [BEGIN, "", "## The farm, batched: ticks for many-printer dashboards\n"]
    L.append(
        f"`python -m bench.farmbatch`, {meta.get('started', '?')}, "
        f"{m.get('cores', '?')} cores ({m.get('cpu', '?')}). One `fluxprint-hub` "
        "(redis source) in front of synthetic plugins writing to a real Redis "
        "(bench/farmload.py: temperature 1/s, progress 2/s, a status keyframe every "
        f"2 s, a durable event every {meta['durable_every_s']:g} s per printer); lean "
        "Socket.IO 4 clients (bench/loadgen.mjs, permessage-deflate, up to "
        f"{meta['clients_per_node']} per Node process) subscribed with `{{batch: ms}}`, "
        "each watching k printers round-robin, or all. Latency is per item, from the "
        "synthetic write (`trace.emit_ns`) to the client (the worst Node process's "
        "p99); items are printer updates delivered (a batch's items, or single "
        "events), per second and per second of the hub's CPU; durable is received "
        "against what the load wrote for the printers each client watches (a "
        "window's edges make it approximate; counted by the clients that parse: 1 "
        f"in {MEASURE_EVERY} in cells of {10 * MEASURE_EVERY} clients or more, the "
        "others inflate every frame and count a batch's items without parsing it, so "
        "one Node core measures more clients); RSS per client is the hub's RSS with "
        "the clients minus without. Everything shares this machine: the cores each "
        f"part used are beside each cell. Windows of {meta['window_s']:g} s.\n"
    )
    head = [
        "printers",
        "clients",
        "watching",
        "batch ms",
        "p50 ms",
        "p99 ms",
        "frames/s",
        "items/s",
        "hub cores",
        "items per hub core-s",
        "durable received / written",
        "hub KiB/client",
        "Node cores",
        "load cores",
        "Redis cores",
    ]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for c in results["cells"]:
        lat = c["latency_ms"]
        row = [
            c["printers"],
            f"{c['clients']}/{c['n']}",
            c["per_client"] or "all",
            c["batch"] or "single",
            fmt(lat["p50"]),
            fmt(lat["p99"]),
            fmt(c["frames_per_s"], 0),
            fmt(c["items_per_s"], 0),
            fmt(c["hub_cores"], 2),
            fmt(c["items_per_hub_core_s"], 0),
            f"{c['durable_received']:,} / {c['durable_expected']:,.0f}",
            fmt(c["hub_rss_per_client"] / 1024),
            fmt(c["node_cores"], 2),
            fmt(c["load_cores"], 2),
            fmt(c["redis_cores"], 3),
        ]
        L.append("| " + " | ".join(str(x) for x in row) + " |")
    L.append("")
    L.append(END)
    return "\n".join(L)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--cells", default=DEFAULT_CELLS)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--out", default=JSON_OUT)
    p.add_argument("--md", default=MD)
    p.add_argument("--report", action="store_true", help="the section from the JSON")
    args = p.parse_args(argv)
    if args.report:
        with open(args.out) as f:
            _write_section(args.md, markdown(json.load(f)), BEGIN, END)
        return 0
    cells = parse_cells(SMOKE_CELLS if args.smoke else args.cells)
    results = run(cells, 3.0 if args.smoke else args.window)
    results["meta"]["smoke"] = args.smoke
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    _write_section(args.md, markdown(results), BEGIN, END)
    log(f"wrote {args.out} and the farmbatch section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
