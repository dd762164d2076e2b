"""bench.farm's models from the measured figures: FDM Monster's traffic for the same
farms and the projection to 1,000 printers and 10,000 clients."""

from __future__ import annotations

from typing import Optional

from octoprint_fluxprint.core import streams

from .farmprocs import PER_CLIENT


def fdm_model(cells: list[dict], sockjs: Optional[dict], state_bytes: int) -> dict:
    """FDM Monster's traffic for the same farms: the server holds one SockJS socket
    per OctoPrint and sends the whole farm's state to every browser every 500 ms."""
    per_printer = (sockjs or {}).get("bytes_per_current") or state_bytes
    rows = []
    for c in cells:
        rows.append(
            {
                "printers": c["printers"],
                "browsers": c["n"],
                "server_in_bytes_per_s": c["printers"]
                * ((sockjs or {}).get("bytes_per_s") or 0),
                "browser_bytes_per_s": 2 * c["printers"] * per_printer,
                "server_out_bytes_per_s": 2 * c["printers"] * per_printer * c["n"],
                "fluxprint_bytes_per_client_s": c["bytes_per_client_s"],
            }
        )
    return {
        "per_printer_state_bytes": per_printer,
        "measured_sockjs": sockjs,
        "rows": rows,
    }


def projection(results: dict) -> dict:
    """1,000 printers and 10,000 clients from the measured figures."""
    eb = results["entry_bytes"]
    live_rate = 1.0 + 2.0 + 1 / streams.KEYFRAME_S  # temperature, progress, status
    # durable events retained per printer: the default cap of the durable stream
    # (redis.durable_max), the plugin's log cap (10,000: what Redis held before the
    # stream had a cap of its own), and a busy farm printer's 30 days (12 prints a
    # day x 5 durable events each)
    worst = streams.projected_bytes(
        1000,
        live_rate,
        eb["live_entry_bytes"],
        streams.DURABLE_MAX,
        eb["durable_entry_bytes"],
    )
    at_log_cap = streams.projected_bytes(
        1000, live_rate, eb["live_entry_bytes"], 10_000, eb["durable_entry_bytes"]
    )
    typical = streams.projected_bytes(
        1000, live_rate, eb["live_entry_bytes"], 1_800, eb["durable_entry_bytes"]
    )
    live_only = streams.projected_bytes(1000, live_rate, eb["live_entry_bytes"], 0, 0)
    # the cells that kept up (received >= 90 % of what the load sent): an overloaded
    # cell's figure is the machine's collapse, not the hub's rate
    per_core = sorted(
        c["deliveries_per_hub_core_s"]
        for c in steady(results["cells"])
        if c["deliveries_per_hub_core_s"]
    )
    rate = per_core[len(per_core) // 2] if per_core else None
    deliveries = 10_000 * PER_CLIENT * live_rate
    rss = [c["hub_rss_per_client"] for c in steady(results["cells"]) if c["n"] >= 500]
    return {
        "printers": 1000,
        "clients": 10_000,
        "live_rate_hz": live_rate,
        "redis_bytes": worst,
        "durable_max": streams.DURABLE_MAX,
        "redis_bytes_at_log_cap": at_log_cap,
        "redis_bytes_30_days": typical,
        "redis_live_bytes": live_only,
        "entry_bytes": eb,
        "deliveries_per_s": deliveries,
        "deliveries_per_hub_core_s": rate,
        "hub_cores": deliveries / rate if rate else None,
        "hub_rss_per_client": max(rss) if rss else None,
        "bytes_per_client_s": max(
            (c["bytes_per_client_s"] for c in results["cells"]), default=None
        ),
    }


def steady(cells: list[dict]) -> list[dict]:
    return [
        c
        for c in cells
        if c["deliveries_per_s"] >= 0.9 * c.get("expected_deliveries_per_s", 0)
    ]
