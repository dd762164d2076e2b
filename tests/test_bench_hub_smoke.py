"""CI smoke for the bench's hub mode: ``python -m bench.hub --smoke`` (1 and 3
printers x 10 clients, single events and 250 ms batches, 3 s windows, one real
OctoPrint and a synthetic plugin) and the JSON is complete and sane. No timing
asserts: smoke figures mean nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_hub_smoke(tmp_path):
    out, md = tmp_path / "hub.json", tmp_path / "benchmarks.md"
    md.write_text("# report\n\n<!-- stream:begin -->\nkept\n<!-- stream:end -->\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.hub",
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
    assert [(c["printers"], c["n"], c["batch"]) for c in cells] == [
        (1, 10, 0),
        (1, 10, 250),
        (3, 10, 0),
        (3, 10, 250),
    ]
    for c in cells:
        assert c["clients"] == 10 and c["errors"] == 0, c
        assert c["deliveries"] > 0 and c["hub_cpu_core_fraction"] >= 0
        assert c["via_hub_emit_ms"]["count"] > 0 and c["direct_emit_ms"]["count"] > 0
        assert c["hub_added_p99_ms"] is not None
    assert cells[2]["deliveries"] > cells[0]["deliveries"]  # three printers' worth
    assert cells[1]["frames_per_s"] <= cells[1]["deliveries_per_s"]  # batches
    text = md.read_text()
    assert "<!-- hub:begin -->" in text and "kept" in text  # the other section stays
    print(proc.stderr[-1500:])
