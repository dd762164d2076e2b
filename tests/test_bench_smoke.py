"""CI smoke for the benchmark suite (issue #6): runs ``python -m bench --smoke``
(N = 10, a few seconds per measurement, one OctoPrint plus one with FluxPrint
disabled) and checks that the JSON is complete and its numbers are sane. No timing
asserts: the figures of a smoke run mean nothing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    md = tmp_path / "benchmarks.md"
    img = tmp_path / "img"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--out",
            str(out),
            "--md",
            str(md),
            "--img",
            str(img),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())

    meta = results["meta"]
    assert meta["smoke"] is True
    assert meta["machine"]["cores"] >= 1

    assert set(results["sweep"]) == set(meta["modes"])
    for mode, block in results["sweep"].items():
        assert block["baseline"]["cpu_s"] >= 0
        (cell,) = block["cells"]
        assert cell["n"] == 10 and cell["clients"] == 10, (mode, cell)
        assert cell["messages"] > 0 and cell["errors"] == 0
        assert cell["events"].get("printer:temperature", 0) > 0
        lat = cell["latency_ms"]
        assert lat["count"] > 0
        assert 0 <= lat["p50"] <= lat["p99"] <= lat["max"] < 10_000
        assert cell["cpu_s"] >= 0 and cell["rss"] > 0
        assert cell["bytes_read"] > 0 and _finite(cell["bytes_per_client_minute"])
        assert cell["gc"]["0"]["runs"] >= 0 and "2" in cell["gc"]  # bench.octolaunch

    for name in ("sockjs", "rest"):
        (cell,) = results["alternatives"][name]["cells"]
        assert cell["clients"] == 10 and cell["updates"] > 0, (name, cell)
        assert cell["latency_ms"]["count"] > 0
        assert cell["bytes_read"] > 0

    bw = results["bandwidth"]
    for state in ("idle", "printing"):
        names = set(bw[state])
        assert {"sockjs", "rest"} <= names
        assert {f"fluxprint:{m}" for m in meta["modes"]} <= names
        assert {f"fluxprint:{m}+delta" for m in meta["modes"]} <= names
        for name, entry in bw[state].items():
            assert entry["clients"] == 10
            # an idle printer at a steady temperature sends delta clients nothing
            idle_delta = state == "idle" and name.endswith("+delta")
            assert entry["bytes_read"] >= 0 if idle_delta else entry["bytes_read"] > 0

    over = results["print_overhead"]
    for key in ("disabled", "enabled_0", f"enabled_{over['clients']}"):
        assert over[key] and all(0 < t < 600 for t in over[key]), (key, over[key])

    cb = results["callback"]
    assert cb["calls"] > 0 and 0 < cb["p50_us"] <= cb["p99_us"] <= cb["max_us"]

    summary = results["summary"]
    assert summary["goals"] and all("met" in g for g in summary["goals"])
    assert summary["ratios_per_n"][0]["sockjs"]["bytes_per_client_minute"] > 0

    text = md.read_text()
    assert "# FluxPrint benchmarks" in text and "## Goals" in text
    assert (img / "bench-latency.png").stat().st_size > 0
    assert (img / "bench-cpu.png").stat().st_size > 0
