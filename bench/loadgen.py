"""Python side of bench/loadgen.mjs: one Node process per load."""

from __future__ import annotations

import json
import os
import resource
import selectors
import shutil
import subprocess
import time
from typing import Any, Callable, Optional

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "loadgen.mjs")


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class LoadGen:
    """``trace``: where latencies come from when payloads carry no trace
    (FLUXPRINT_TRACE=table): a callable giving the server's trace rows above a seq
    and the top seq, ``(rows, top)``."""

    def __init__(
        self,
        mode: str,
        url: str,
        trace: Optional[Callable[[int], tuple[list, int]]] = None,
        **opts: Any,
    ):
        self.trace = trace
        self._trace_top = 0
        if trace is not None:
            opts["traceTable"] = True
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed for the load generator")
        config = dict(opts, mode=mode, url=url)
        self.mode = mode
        self.proc = subprocess.Popen(
            [node, SCRIPT, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            preexec_fn=_raise_nofile,
        )
        self.ps = psutil.Process(self.proc.pid)
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.read("ready", 30)
        self.clients = 0

    def send(self, op: str, **kw: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(dict(kw, op=op)) + "\n")
        self.proc.stdin.flush()

    def read(self, want: str, timeout: float) -> dict:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"load generator ({self.mode}): no {want!r}")
            if not self._sel.select(left):
                continue
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"load generator ({self.mode}) exited")
            msg = json.loads(line)
            if msg.get("type") == want:
                return msg

    def grow(self, n: int, timeout: float = 300) -> dict:
        self.send("grow", n=n)
        msg = self.read("grown", timeout)
        self.clients = msg["connected"]
        return msg

    def window_start(self) -> None:
        if self.trace is not None:
            _, self._trace_top = self.trace(self._trace_top)
        self.send("window_start")
        self.read("window_started", 30)

    def window_end(self) -> dict:
        if self.trace is not None:
            rows, self._trace_top = self.trace(self._trace_top)
            self.send("window_end", trace=rows)
            return self.read("window", 60)
        self.send("window_end")
        return self.read("window", 60)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("close")
                self.proc.wait(15)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
        self._sel.close()


class Window:
    """Measures OctoPrint's CPU and the generators over the same interval."""

    def __init__(self, octoprint_pid: int, gens: list[LoadGen]):
        self.op = psutil.Process(octoprint_pid)
        self.gens = gens

    def _cpu(self) -> float:
        t = self.op.cpu_times()
        return t.user + t.system

    def measure(self, seconds: float) -> dict:
        for g in self.gens:
            g.window_start()
        cpu0 = self._cpu()
        gen0 = [g.cpu_seconds() for g in self.gens]
        t0 = time.monotonic()
        time.sleep(seconds)
        cpu1 = self._cpu()
        elapsed = time.monotonic() - t0
        gen1 = [g.cpu_seconds() for g in self.gens]
        results = [g.window_end() for g in self.gens]
        rss = self.op.memory_info().rss
        return {
            "seconds": elapsed,
            "cpu_s": cpu1 - cpu0,
            "rss": rss,
            "generators": [
                dict(r, generator_cpu_s=b - a) for r, a, b in zip(results, gen0, gen1)
            ],
        }


def idle_window(octoprint_pid: int, seconds: float) -> dict:
    return Window(octoprint_pid, []).measure(seconds)


def ok(r: Optional[dict]) -> bool:
    return bool(r) and r.get("clients", 0) > 0
