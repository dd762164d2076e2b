"""CI smoke for the bench's farm mode: ``python -m bench.farm --smoke`` (a real
redis-server, 10 synthetic printers, 20 Node dashboards on 1 and then 2 redis-source
hubs, a hub kill and a Redis kill -9) and the JSON is complete and sane. No timing
asserts: smoke figures mean nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_farm_smoke(tmp_path):
    out, md = tmp_path / "farm.json", tmp_path / "benchmarks.md"
    md.write_text("# report\n\n<!-- hub:begin -->\nkept\n<!-- hub:end -->\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.farm",
            "--smoke",
            "--out",
            str(out),
            "--md",
            str(md),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    assert results["meta"]["smoke"] is True
    cells = results["cells"]
    assert [(c["printers"], c["hubs"], c["n"]) for c in cells] == [
        (10, 1, 20),
        (10, 2, 20),
    ]
    for c in cells:
        assert c["clients"] == 20 and c["resyncs"] == 0, c
        assert c["deliveries"] > 0 and c["hub_cpu_cores"] >= 0
        assert c["latency_ms"]["count"] > 0 and c["latency_ms"]["p99"] is not None
        assert c["probes"] > 0 and c["probe_latency_ms"]["count"] > 0
        assert c["writes_per_s"] > 0 and c["redis_used_memory"] > 0
        assert c["bytes_per_client_s"] > 0
    rec = results["recovery"]
    assert rec["reattached"] >= rec["moved"] > 0, rec
    assert rec["reattach_ms"]["p95"] is not None
    assert rec["redis_back_durable_ms"] is not None, rec  # durable flow came back
    eb = results["entry_bytes"]
    assert eb["live_entry_bytes"] > 0 and eb["durable_entry_bytes"] > 0
    proj = results["projection"]
    assert proj["printers"] == 1000 and proj["redis_bytes"] > proj["redis_live_bytes"] > 0
    assert results["fdm_monster_model"]["rows"][0]["browser_bytes_per_s"] > 0
    text = md.read_text()
    assert "<!-- farm:begin -->" in text and "kept" in text  # the other section stays
    print(proc.stderr[-1500:])
