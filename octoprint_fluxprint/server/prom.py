"""Prometheus metrics for an engine (the plugin's and the hub's alike), with
``prometheus-client``: a custom collector that reads the engine's own counters when
scraped, so nothing is counted twice and nothing runs on the hot path.

Hosts add their own collectors (the hub: printers, Redis lag; the plugin: the Redis
publisher) to the same registry and serve ``render(registry)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    SummaryMetricFamily,
)


class EngineCollector:
    """Reads ``engine`` when scraped (call collect on the engine's loop, or accept
    a torn read of plain integers: they only grow)."""

    def __init__(self, engine: Any, host: str):
        self.engine = engine
        self.host = host

    def collect(self) -> Iterator[Any]:
        engine = self.engine
        labels = ["host"]
        clients = GaugeMetricFamily(
            "fluxprint_clients", "Socket.IO clients connected", labels=labels
        )
        clients.add_metric([self.host], engine.client_count())
        yield clients
        fanout = engine.fanout_stats()
        summary = SummaryMetricFamily(
            "fluxprint_fanout_seconds",
            "Time one broadcast takes on the loop, emit to the last client's write",
            labels=labels,
        )
        summary.add_metric(
            [self.host],
            count_value=fanout.get("broadcasts", 0),
            sum_value=fanout.get("total_ms", 0.0) / 1000.0,
        )
        yield summary
        counters = (
            engine.delivery.counters() if hasattr(engine.delivery, "counters") else {}
        )
        for name, doc in (
            ("messages_out", "Messages written to clients"),
            ("bytes_out", "Bytes written to clients (before websocket compression)"),
            ("replays", "Resumes answered by a replay"),
            ("replayed_events", "Durable events sent by replays"),
            ("resyncs", "Resumes answered by printer:resync"),
            ("batches_out", "printer:batch frames written to clients"),
            ("batch_items_out", "Printer updates in those batches, per client"),
        ):
            if name in counters:
                metric = CounterMetricFamily(f"fluxprint_{name}", doc, labels=labels)
                metric.add_metric([self.host], counters[name])
                yield metric
        security = engine.security_stats()
        refused = CounterMetricFamily(
            "fluxprint_refused",
            "Connections and requests refused, by reason",
            labels=[*labels, "reason"],
        )
        for reason, count in (security.get("refused") or {}).items():
            refused.add_metric([self.host, str(reason)], count)
        yield refused


def registry_for(engine: Any, host: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine, host))
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """(the text exposition, its content type)."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
