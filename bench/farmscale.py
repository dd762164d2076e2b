"""bench.farm --scale: do hubs add up? The same farm (P synthetic printers) served
by 1 hub and then by 2, at growing client counts, each cell measured as the main
run measures it (bench.farmcell.one_cell: latency, hub and Node CPU). Per hub
count, the most clients that all connected and got their messages within the p99
target; the figure is the ratio, 2 hubs against 1 (goal ≥ 1.8 at the same p99).

On a machine where the Node clients and the hubs share the cores, a cell's p99 is
often the clients' own queue: each cell shows the Node processes' cores beside the
hubs' (``node_cpu_cores``), and a cell whose Node processes used about a core each
measures Node, not the hub.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Optional

from .farmcell import one_cell
from .farmprocs import Hub, Load, RedisServer
from .run import log


def served(cells: list[dict], p99_ms: float) -> Optional[int]:
    """The most clients of a hub count's cells that all connected within p99."""
    ok = [
        c["n"]
        for c in cells
        if c["clients"] >= c["n"]
        and c["latency_ms"]["p99"] is not None
        and c["latency_ms"]["p99"] <= p99_ms
    ]
    return max(ok) if ok else None


def scale(printers: int, ns: list[int], window: float, p99_ms: float) -> dict:
    out: dict[str, Any] = {"printers": printers, "ns": ns, "p99_ms": p99_ms, "cells": []}
    with tempfile.TemporaryDirectory(prefix="fluxprint-farmscale-") as work:
        redis = RedisServer(os.path.join(work, "redis"))
        redis.start()
        r = redis.client()
        load = Load(redis.url, printers)
        try:
            time.sleep(1)
            for h in (1, 2):
                hubs = [Hub(work, redis.url) for _ in range(h)]
                try:
                    for hub in hubs:
                        hub.start(printers)
                    for n in ns:
                        cell = one_cell(hubs, r, load, load.ids, n, window)
                        out["cells"].append(cell)
                        if cell["latency_ms"]["p99"] is None or (
                            cell["latency_ms"]["p99"] > 4 * p99_ms
                        ):
                            break  # far past the target: larger cells say no more
                finally:
                    for hub in hubs:
                        hub.close()
        finally:
            load.close()
            redis.stop()
    one = served([c for c in out["cells"] if c["hubs"] == 1], p99_ms)
    two = served([c for c in out["cells"] if c["hubs"] == 2], p99_ms)
    out["served"] = {"1": one, "2": two}
    out["ratio"] = (two / one) if one and two else None
    log(f"scale: {printers} printers, p99 <= {p99_ms} ms: 1 hub {one}, 2 hubs {two}")
    return out


def markdown(sc: dict) -> list[str]:
    from .farmreport import fmt, table

    rows = [
        [
            c["hubs"],
            f"{c['clients']}/{c['n']}",
            fmt(c["latency_ms"]["p50"]),
            fmt(c["latency_ms"]["p99"]),
            fmt(c["probe_latency_ms"]["p99"]),
            f"{c['deliveries_per_s']:,.0f} / {c['expected_deliveries_per_s']:,.0f}",
            fmt(c["hub_cpu_cores"], 2),
            fmt(c["node_cpu_cores"], 2),
            fmt(c.get("load_cpu_cores"), 2),
            fmt(c["redis_cpu_cores"], 3),
        ]
        for c in sc["cells"]
    ]
    return [
        f"Do hubs add up (`--scale`): {sc['printers']} printers, clients each watching "
        f"10, 1 hub then 2; served = the most clients all connected with p99 ≤ "
        f"{sc['p99_ms']:g} ms: 1 hub {sc['served']['1']}, 2 hubs {sc['served']['2']}, "
        f"ratio {fmt(sc['ratio'], 2)} (goal ≥ 1.8).\n",
        *table(
            [
                "hubs",
                "clients",
                "p50 ms",
                "p99 ms",
                "probe p99 ms",
                "deliveries/s (sent)",
                "hub cores",
                "Node cores",
                "load cores",
                "Redis cores",
            ],
            rows,
        ),
        "",
    ]
