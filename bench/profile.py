"""``python -m bench.profile [N] [seconds] [mode] [sweep|slow|stream]``: py-spy samples
of OctoPrint's process while N FluxPrint clients receive a load, aggregated into
where each thread's time goes.

- ``sweep`` (default): the sweep load (temperature interval 0, printing).
- ``slow``: the same with the Virtual Printer at its default pace, to set the
  stream's effect apart.
- ``stream``: bench.stream's regime (the Virtual Printer streaming short moves as
  fast as it can, default intervals, trace table). The clients' latencies and
  OctoPrint's GC collections are measured over the same window as the samples, so
  the tail can be set against where the time went.

OctoPrint and the load generator are pinned to different cores
(``FLUXPRINT_BENCH_PIN=0``: not), as in bench.stream.

Needs py-spy (``pip install py-spy``) and permission to ptrace the child (root, or
kernel.yama.ptrace_scope=0). Writes bench/results/profile-N.txt (collapsed stacks
are in profile-N.folded).
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Optional

from .loadgen import LoadGen, Window
from .run import (
    DEFAULT_INTERVALS,
    PRINTER_CONFIG,
    ROOT,
    SWEEP_INTERVALS,
    fanout_delta,
    gc_delta,
    gcode_file,
    log,
    pin_apart,
    server,
    settle,
)

BUCKETS = [
    # (label, substring of a frame "function (file)"), first match from the leaf up:
    # each sample goes to the library whose code was running
    ("socket send() syscall (direct write: wsframes._send_now)", "_send_now ("),
    ("socket send() syscall (tornado: IOStream.write_to_fd)", "write_to_fd"),
    ("engineio: per-socket queue + writer task", "engineio/"),
    ("tornado websocket framing", "tornado/websocket.py"),
    ("tornado iostream buffers and futures", "tornado/iostream.py"),
    ("FluxPrint wsframes (direct write, frame cache)", "wsframes.py"),
    ("FluxPrint delivery (budget checks, fan-out loop)", "delivery.py"),
    ("FluxPrint rooms, printer state, schema, coalescing", "octoprint_fluxprint"),
    ("python-socketio", "socketio/"),
    ("json", "json/"),
    ("asyncio event loop machinery", "asyncio/"),
]


def classify(stack: list[str]) -> str:
    """The library of the innermost frame that matches a bucket (self time)."""
    leaf = stack[-1] if stack else ""
    if "select" in leaf and "selectors.py" in leaf:
        return "event loop: waiting in epoll"
    for frame in reversed(stack):
        for label, needle in BUCKETS:
            if needle in frame:
                return label
    return "other"


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    mode = sys.argv[3] if len(sys.argv) > 3 else "off"
    regime = sys.argv[4] if len(sys.argv) > 4 else "sweep"
    if regime not in ("sweep", "stream", "slow"):
        print(f"regime must be sweep, stream or slow, not {regime!r}", file=sys.stderr)
        return 2
    pyspy = shutil.which("py-spy") or os.path.join(
        os.path.dirname(sys.executable), "py-spy"
    )
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    stem = f"profile-{n}-{mode}" + ("" if regime == "sweep" else f"-{regime}")
    folded = os.path.join(out_dir, f"{stem}.folded")
    workdir = tempfile.mkdtemp(prefix="fluxprint-profile-")
    measured: dict[str, Any] = {}
    try:
        if regime in ("stream", "slow"):
            from .stream import STREAM_CONFIG

            ctx = server(
                workdir,
                "profile",
                trace="table",
                fluxprint=DEFAULT_INTERVALS,
                # slow: the Virtual Printer at its default pace, for comparison
                config=STREAM_CONFIG if regime == "stream" else PRINTER_CONFIG,
            )
        else:
            ctx = server(workdir, "profile", trace=True)
        with ctx as srv:
            if regime != "sweep":
                srv.settings(websocket_compression=mode)
                srv.upload("p.gcode", gcode_file(200000))
            else:
                srv.settings(websocket_compression=mode, **SWEEP_INTERVALS)
                srv.upload("p.gcode", gcode_file(20000))
            srv.ensure_printing("p.gcode")
            gen = LoadGen(
                "fluxprint",
                srv.url,
                apikey=srv.keys["viewer"],
                trace=None if regime == "sweep" else srv.trace_rows,
            )
            try:
                gen.grow(n)
                if os.environ.get("FLUXPRINT_BENCH_PIN", "1") == "1":
                    measured["pinned"] = pin_apart(srv.pid, gen.proc.pid)
                settle(3)
                log(f"py-spy on pid {srv.pid} for {seconds}s with {n} clients ({mode})")
                spy = subprocess.Popen(
                    [
                        pyspy,
                        "record",
                        "-p",
                        str(srv.pid),
                        "-d",
                        str(int(seconds)),
                        "-r",
                        "200",
                        "-f",
                        "raw",
                        "-o",
                        folded,
                        "--threads",
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                gc0, fan0 = srv.gc_stats(), srv.fanout()
                gen_cpu0 = gen.cpu_seconds()
                w = Window(srv.pid, [gen]).measure(max(1.0, seconds - 1))
                measured |= {
                    "gc": gc_delta(gc0, srv.gc_stats()),
                    "fanout_ms": fanout_delta(fan0, srv.fanout()),
                    "cpu_core_fraction": w["cpu_s"] / w["seconds"],
                    "generator_cpu_core_fraction": (gen.cpu_seconds() - gen_cpu0)
                    / w["seconds"],
                    **{
                        k: w["generators"][0].get(k)
                        for k in (
                            "latency_by_event_ms",
                            "emit_latency_ms",
                            "wire_latency_ms",
                            "clients",
                        )
                    },
                }
                _, err = spy.communicate(timeout=seconds + 60)
                if spy.returncode:
                    raise RuntimeError(f"py-spy failed: {err.decode()[-500:]}")
            finally:
                gen.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(folded, n, mode, seconds, out_dir, stem, measured)
    return 0


def _ms(d: Optional[dict]) -> str:
    if not d:
        return "-"
    return "p50 {} / p99 {} / max {} ms".format(
        *(("-" if d.get(k) is None else f"{d[k]:.1f}") for k in ("p50", "p99", "max"))
    )


def report(
    folded: str,
    n: int,
    mode: str,
    seconds: float,
    out_dir: str,
    stem: Optional[str] = None,
    measured: Optional[dict] = None,
) -> str:
    per_thread: dict[str, collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    with open(folded) as f:
        for line in f:
            stack_text, _, count = line.rstrip().rpartition(" ")
            frames = stack_text.split(";")
            thread = frames[0]
            per_thread[thread][classify(frames[1:])] += int(count)
    lines = [f"py-spy, {n} clients, compression {mode}, {seconds:.0f} s at 200 Hz\n"]
    if measured:
        lines.append(f"OctoPrint CPU {measured.get('cpu_core_fraction', 0):.2f} core")
        for event, d in sorted((measured.get("latency_by_event_ms") or {}).items()):
            lines.append(f"callback->client {event}: {_ms(d)}")
        lines.append(f"emit->client: {_ms(measured.get('emit_latency_ms'))}")
        lines.append(f"emit->client socket: {_ms(measured.get('wire_latency_ms'))}")
        lines.append(
            "server fan-out, emit->last frame to the kernel: "
            f"{_ms(measured.get('fanout_ms'))}"
        )
        fan = measured.get("fanout_ms") or {}
        lines.append(
            "  its loop-thread CPU: "
            + _ms({k: fan.get(f"cpu_{k}") for k in ("p50", "p99", "max")})
        )
        lines.append(f"pinned apart (OctoPrint, generator): {measured.get('pinned')}")
        lines.append(
            "load generator CPU "
            f"{measured.get('generator_cpu_core_fraction', 0):.2f} core"
        )
        for g, d in sorted((measured.get("gc") or {}).items()):
            if isinstance(d, dict) and "runs" in d:
                lines.append(
                    f"gc gen {g}: {d['runs']} runs, {d['total_ms']:.1f} ms, "
                    f"{d['over_10ms']} over 10 ms"
                )
        lines.append("")
    for thread, counter in sorted(
        per_thread.items(), key=lambda kv: -sum(kv[1].values())
    ):
        total = sum(counter.values())
        if total < 50:
            continue
        lines.append(f"{thread}: {total} samples")
        for label, count in counter.most_common():
            lines.append(f"  {count / total * 100:5.1f} %  {label}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, f"{stem or f'profile-{n}-{mode}'}.txt"), "w") as f:
        f.write(text)
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
