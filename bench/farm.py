"""The farm mode: synthetic plugins writing to Redis (bench/farmload.py: what N
FluxPrint publishers write, core/streams.py's layout), optionally real OctoPrints
publishing beside them, feeding 1 and 2 ``fluxprint-hub`` processes with the
``redis`` source, and Node dashboards (tests/farm/farm_clients.mjs, many sockets
per Node process) each subscribed to 10 printers, spread over the hubs.

Per cell (printers x clients x hubs): synthetic-write -> client latency p50/p99
(the write's wall time rides in the payload's ``trace.emit_ns``), deliveries/s and
per hub core (psutil CPU of the hub processes), hub RSS per client, Redis memory
(INFO memory, MEMORY USAGE per stream) and CPU (INFO cpu), bytes per client. Once
per run: recovery (hub SIGKILL -> its clients re-attached on the other hub; Redis
kill -9 and back -> durable flow at the clients), the plugin's added CPU for
publishing (two real OctoPrints printing, one publishing, one not), and FDM
Monster's model (one SockJS socket per OctoPrint + the whole farm's state to every
browser every 500 ms) from the real SockJS payload measured in the same run.

    .venv/bin/python -m bench.farm            full run (~15 min): bench/results/farm.json
                                              and the farm section of docs/benchmarks.md
    .venv/bin/python -m bench.farm --smoke    10 printers x 20 clients, 1 and 2 hubs (CI)
    .venv/bin/python -m bench.farm --report   the section from the JSON
    .venv/bin/python -m bench.farm --recovery 100,500 --recovery-runs 5
                                              only the recovery, 5 times on fresh hubs
                                              (every run's durable flow counts)
    .venv/bin/python -m bench.farm --scale 200 --scale-ns 250,500,1000,1500 --p99 400
                                              1 hub, then 2, at growing client counts:
                                              the most clients within the p99, the ratio
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Optional

from octoprint_fluxprint.core import streams

from .farmcell import entry_bytes, one_cell, stream_usage
from .farmmodel import fdm_model, projection
from .farmprocs import DURABLE_EVERY, PER_CLIENT, Hub, Load, RedisServer
from .farmreal import plugin_cost
from .farmrecovery import recovery, recovery_only
from .run import ROOT, log, machine
from .streamreport import write_section as _write_section

JSON_OUT = os.path.join(ROOT, "bench", "results", "farm.json")
MD = os.path.join(ROOT, "docs", "benchmarks.md")
BEGIN, END = "<!-- farm:begin -->", "<!-- farm:end -->"


def run(
    printer_counts: list[int],
    ns: list[int],
    hub_counts: list[int],
    window: float,
    real: bool,
    recovery_at: tuple[int, int],
    two_hub_printers: tuple[int, ...] = (),
) -> dict:
    results: dict[str, Any] = {
        "meta": {
            "printers": printer_counts,
            "ns": ns,
            "hubs": hub_counts,
            "two_hub_printers": list(two_hub_printers),
            "window_s": window,
            "per_client": PER_CLIENT,
            "durable_every_s": DURABLE_EVERY,
            "machine": machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "cells": [],
    }
    with tempfile.TemporaryDirectory(prefix="fluxprint-farmbench-") as work:
        redis = RedisServer(os.path.join(work, "redis"))
        redis.start()
        r = redis.client()
        try:
            for count in printer_counts:
                r.flushall()
                load = Load(redis.url, count)
                try:
                    time.sleep(1)
                    for h in hub_counts:
                        if h > 1 and count not in two_hub_printers:
                            continue
                        hubs = [Hub(work, redis.url) for _ in range(h)]
                        try:
                            for hub in hubs:
                                hub.start(count)
                            for n in ns:
                                results["cells"].append(
                                    one_cell(hubs, r, load, load.ids, n, window)
                                )
                            if (count, h) == (recovery_at[0], 2):
                                results["recovery"] = recovery(
                                    work, redis, hubs, load.ids, recovery_at[1]
                                )
                        finally:
                            for hub in hubs:
                                hub.close()
                    results.setdefault("redis", {})[str(count)] = {
                        "used_memory": r.info("memory")["used_memory"],
                        **stream_usage(r, streams.DEFAULT_PREFIX, load.ids),
                    }
                finally:
                    load.close()
            results["entry_bytes"] = entry_bytes(r)
            results["plugin"] = (
                plugin_cost(work, redis.url, window)
                if real
                else {"available": False, "why": "not run (--no-real)"}
            )
        finally:
            redis.stop()
    results["fdm_monster_model"] = fdm_model(
        [c for c in results["cells"] if c["hubs"] == 1],
        results["plugin"].get("sockjs"),
        results["entry_bytes"]["live_entry_bytes"],
    )
    results["projection"] = projection(results)
    return results


def load_or_empty(path: str) -> dict:
    """The JSON of an earlier run, or an empty one (a partial run stands alone)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return {"meta": {"partial": True}, "cells": []}


def markdown(results: dict) -> str:
    from .farmreport import markdown as md

    return md(results, BEGIN, END)


def write_section(md_path: str, section: str) -> None:
    _write_section(md_path, section, BEGIN, END)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--printers", default="10,100,200")
    p.add_argument("--ns", default="500,2000")
    p.add_argument("--hubs", default="1,2")
    p.add_argument(
        "--two-hub-printers", default="200", help="printer counts also run on 2 hubs"
    )
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--no-real", action="store_true", help="no real OctoPrints")
    p.add_argument("--out", default=JSON_OUT)
    p.add_argument("--md", default=MD)
    p.add_argument("--report", action="store_true", help="the section from the JSON")
    p.add_argument(
        "--recovery",
        metavar="PRINTERS,CLIENTS",
        help="only the recovery, on fresh hubs, into the existing --out JSON",
    )
    p.add_argument("--recovery-runs", type=int, default=1, help="with --recovery")
    p.add_argument(
        "--scale",
        type=int,
        metavar="PRINTERS",
        help="only 1 hub against 2, into the existing --out JSON",
    )
    p.add_argument("--scale-ns", default="250,500,1000,1500,2000")
    p.add_argument("--p99", type=float, default=400.0, help="with --scale (ms)")
    args = p.parse_args(argv)
    if args.scale:
        from .farmscale import scale

        results = load_or_empty(args.out)
        ns = [int(x) for x in args.scale_ns.split(",")]
        results["scale"] = scale(args.scale, ns, args.window, args.p99)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        if results.get("cells"):
            write_section(args.md, markdown(results))
        return 0
    if args.recovery:
        printers, n = (int(x) for x in args.recovery.split(","))
        results = load_or_empty(args.out)
        runs = [recovery_only(printers, n) for _ in range(max(1, args.recovery_runs))]
        results["recovery"] = dict(runs[0], separate_run=True, repeats=runs[1:])
        if results.get("entry_bytes"):
            results["projection"] = projection(results)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        if results.get("cells"):
            write_section(args.md, markdown(results))
        return 0
    if args.report:
        with open(args.out) as f:
            write_section(args.md, markdown(json.load(f)))
        return 0
    if args.smoke:
        counts, ns, hubs, window = [10], [20], [1, 2], 3.0
        recovery_at, real, two = (10, 20), False, (10,)
    else:
        counts = [int(x) for x in args.printers.split(",")]
        ns = [int(x) for x in args.ns.split(",")]
        hubs = [int(x) for x in args.hubs.split(",")]
        window = args.window
        two = tuple(int(x) for x in args.two_hub_printers.split(","))
        recovery_at, real = (max(two), min(ns)), not args.no_real
    results = run(counts, ns, hubs, window, real, recovery_at, two)
    results["meta"]["smoke"] = args.smoke
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    write_section(args.md, markdown(results))
    log(f"wrote {args.out} and the farm section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
