"""``python -m bench.profile [N] [seconds] [mode]``: py-spy samples of OctoPrint's
process while N FluxPrint clients receive the sweep load (temperature interval 0,
printing), aggregated into where the loop thread's time goes.

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

from .loadgen import LoadGen
from .run import ROOT, SWEEP_INTERVALS, gcode_file, log, server, settle

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
    pyspy = shutil.which("py-spy") or os.path.join(
        os.path.dirname(sys.executable), "py-spy"
    )
    out_dir = os.path.join(ROOT, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    folded = os.path.join(out_dir, f"profile-{n}-{mode}.folded")
    workdir = tempfile.mkdtemp(prefix="fluxprint-profile-")
    try:
        with server(workdir, "profile", trace=True) as srv:
            srv.settings(websocket_compression=mode, **SWEEP_INTERVALS)
            srv.upload("p.gcode", gcode_file(20000))
            srv.ensure_printing("p.gcode")
            gen = LoadGen("fluxprint", srv.url, apikey=srv.keys["viewer"])
            try:
                gen.grow(n)
                settle(3)
                log(f"py-spy on pid {srv.pid} for {seconds}s with {n} clients ({mode})")
                subprocess.run(
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
                    check=True,
                    capture_output=True,
                )
            finally:
                gen.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(folded, n, mode, seconds, out_dir)
    return 0


def report(folded: str, n: int, mode: str, seconds: float, out_dir: str) -> str:
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
    with open(os.path.join(out_dir, f"profile-{n}-{mode}.txt"), "w") as f:
        f.write(text)
    print(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
