"""The hub's own Prometheus metrics, beside the engine's (``server/prom.py``):
printers by state, and for the redis source its link, reads, lag and where replays
came from. Read when scraped, on the loop (tornado serves ``/metrics`` there)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..core.liveness import OFFLINE, ONLINE, STALE


class HubCollector:
    def __init__(self, hub: Any):
        self.hub = hub

    def collect(self) -> Iterator[Any]:
        hub = self.hub
        host = f"hub:{hub.cfg.listen.port}"
        now = time.monotonic()
        counts = {ONLINE: 0, STALE: 0, OFFLINE: 0}
        for slot in hub.slots.values():
            state = slot.liveness.state(now)
            counts[state] = counts.get(state, 0) + 1
        printers = GaugeMetricFamily(
            "fluxprint_printers",
            "Printers the hub serves, by state",
            labels=["host", "state"],
        )
        for state, count in sorted(counts.items()):
            printers.add_metric([host, state], count)
        yield printers
        if hub.cfg.source != "redis" or hub.source is None:
            return
        stats = hub.source.stats()
        up = GaugeMetricFamily(
            "fluxprint_redis_up", "Whether Redis answers", labels=["host"]
        )
        up.add_metric([host], 1 if stats["up"] else 0)
        yield up
        lag = GaugeMetricFamily(
            "fluxprint_redis_lag_seconds",
            "Now minus the ts of the last entry relayed (the worst reader)",
            labels=["host"],
        )
        lag.add_metric([host], stats["lag_s"])
        yield lag
        for name, key, doc in (
            ("fluxprint_redis_reads", "reads", "Blocking XREADs answered"),
            ("fluxprint_redis_reconnects", "reconnects", "Times Redis went away"),
            ("fluxprint_redis_skipped", "skipped", "Malformed entries skipped"),
        ):
            metric = CounterMetricFamily(name, doc, labels=["host"])
            metric.add_metric([host], stats[key])
            yield metric
        rows = CounterMetricFamily(
            "fluxprint_replay_rows",
            "Durable events replayed, by where they came from",
            labels=["host", "source"],
        )
        rows.add_metric([host, "cache"], stats["replay_from_cache"])
        rows.add_metric([host, "redis"], stats["replay_from_redis"])
        yield rows
        readers = GaugeMetricFamily(
            "fluxprint_redis_readers", "Blocking XREAD tasks", labels=["host"]
        )
        readers.add_metric([host], stats["readers"])
        yield readers
