"""Ratios and goals from the raw results (pure; used by run.py and report.py)."""

from __future__ import annotations

from typing import Any, Optional

from octoprint_fluxprint.core import compression

GOALS_P99 = {100: 25.0, 500: 25.0, 1000: 50.0}


def _cells(block: Optional[dict]) -> dict[int, dict]:
    if not block:
        return {}
    return {c["n"]: c for c in block.get("cells", []) if "error" not in c}


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def reference_mode(results: dict) -> str:
    sweep = results.get("sweep", {})
    if compression.DEFAULT_MODE in sweep:
        return compression.DEFAULT_MODE
    return next(iter(sweep), "off")


def analyse(results: dict) -> dict:
    mode = reference_mode(results)
    flux = _cells(results.get("sweep", {}).get(mode))
    alts = results.get("alternatives", {})
    sockjs = _cells(alts.get("sockjs"))
    rest = _cells(alts.get("rest"))
    per_n = []
    for n, c in sorted(flux.items()):
        row: dict[str, Any] = {"n": n}
        for name, other in (("sockjs", sockjs.get(n)), ("rest", rest.get(n))):
            if other is None:
                continue
            row[name] = {
                "cpu_per_client_minute": _ratio(
                    c["cpu_net_ms_per_client_minute"],
                    other["cpu_net_ms_per_client_minute"],
                ),
                "cpu_per_update": _ratio(
                    c["cpu_net_ms_per_update"], other["cpu_net_ms_per_update"]
                ),
                "cpu_gross": _ratio(c["cpu_s"], other["cpu_s"]),
                "bytes_per_client_minute": _ratio(
                    c["bytes_per_client_minute"], other["bytes_per_client_minute"]
                ),
                "latency_p50": _ratio(c["latency_ms"]["p50"], other["latency_ms"]["p50"]),
                "latency_p99": _ratio(c["latency_ms"]["p99"], other["latency_ms"]["p99"]),
            }
        per_n.append(row)

    bw = results.get("bandwidth", {})
    bw_ratios: dict[str, dict] = {}
    bw_ratios_delta: dict[str, dict] = {}
    for state in ("idle", "printing"):
        entries = bw.get(state, {})
        for key, target in ((mode, bw_ratios), (f"{mode}+delta", bw_ratios_delta)):
            ours = entries.get(f"fluxprint:{key}")
            if not ours:
                continue
            target[state] = {
                other: _ratio(
                    ours["bytes_per_client_minute"],
                    entries[other]["bytes_per_client_minute"],
                )
                for other in ("sockjs", "rest")
                if other in entries
            }

    over = results.get("print_overhead", {})
    overhead = {}
    disabled = _mean(over.get("disabled"))
    for key in over:
        if key.startswith("enabled_") and isinstance(over[key], list):
            overhead[key] = _ratio(_mean(over[key]), disabled)

    goals = []

    def goal(
        name: str, value: Optional[float], target: float, unit: str, le: bool = True
    ):
        met = None if value is None else (value <= target if le else value >= target)
        goals.append(
            {"goal": name, "value": value, "target": target, "unit": unit, "met": met}
        )

    for n, target in GOALS_P99.items():
        c = flux.get(n)
        goal(f"p99 latency at {n} clients", c and c["latency_ms"]["p99"], target, "ms")
    for row in per_n:
        if "sockjs" in row and row["n"] >= 10:
            goal(
                f"CPU per client-minute vs SockJS at {row['n']} clients",
                row["sockjs"]["cpu_per_client_minute"],
                0.2,
                "ratio",
            )
    c = flux.get(500)
    goal(
        "OctoPrint CPU at 500 clients (net of the printing baseline)",
        c and c["cpu_net_core_fraction"],
        0.25,
        "cores",
    )
    goal(
        "OctoPrint CPU at 500 clients (gross, printing included)",
        c and c["cpu_core_fraction"],
        0.25,
        "cores",
    )
    for ratios, form in ((bw_ratios, "full objects"), (bw_ratios_delta, "delta opt-in")):
        for state in ("printing", "idle"):
            r = ratios.get(state, {})
            for other, label, target in (
                ("sockjs", "SockJS", 0.1),
                ("rest", "1 s REST polling", 0.05),
            ):
                goal(
                    f"bytes per client-minute vs {label} ({state}, default intervals, "
                    f"{form})",
                    r.get(other),
                    target,
                    "ratio",
                )
    big = max(flux) if flux else None
    goal(
        f"RSS per connected client (at {big} clients)",
        flux[big]["rss_per_client"] / 1024 if big else None,
        64.0,
        "KiB",
    )
    loaded = [k for k in overhead if k != "enabled_0"]
    if loaded:
        r = overhead[loaded[0]]
        goal(
            f"print-time overhead with {loaded[0][8:]} clients",
            None if r is None else r - 1,
            0.02,
            "fraction",
        )
    cb = results.get("callback", {})
    goal("comm-thread callback p99", cb.get("p99_us"), 20.0, "µs")
    return {
        "reference_mode": mode,
        "ratios_per_n": per_n,
        "bandwidth_ratios": bw_ratios,
        "bandwidth_ratios_delta": bw_ratios_delta,
        "print_time_ratios": overhead,
        "goals": goals,
    }


def _mean(values: Any) -> Optional[float]:
    if not values:
        return None
    return sum(values) / len(values)
