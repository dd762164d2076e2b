"""Python side of tests/farm/farm_clients.mjs: many socket.io-client 4 dashboards of
a farm of hubs in one Node process, each with a cursor per printer and a list of
hub URLs it moves along when a hub fails. Used by tests/farm and bench.farm."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
import time
from typing import Any, Callable, Optional

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "farm", "farm_clients.mjs")
Line = dict[str, Any]


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class FarmClients:
    def __init__(self, urls: list[str], log_path: Optional[str] = None, **opts: Any):
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is needed for the farm's clients")
        self.opts = dict(opts, urls=urls)
        self.lines: list[Line] = []
        self._cond = threading.Condition()
        self._log = open(log_path or os.devnull, "w")
        self.proc = subprocess.Popen(
            [node, SCRIPT, json.dumps(self.opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            preexec_fn=_raise_nofile,
        )
        self.ps = psutil.Process(self.proc.pid)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(lambda m: m["type"] == "ready", 30)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._log.write(line)
            except ValueError:
                pass
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.lines.append(msg)
                self._cond.notify_all()

    def send(self, op: str, **kw: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(dict(kw, op=op)) + "\n")
        self.proc.stdin.flush()

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def since(self, after: int = 0) -> list[Line]:
        with self._cond:
            return list(self.lines[after:])

    def wait_for(
        self, pred: Callable[[Line], Any], timeout: float, after: int = 0
    ) -> Line:
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = after
            while True:
                for m in self.lines[seen:]:
                    if pred(m):
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = [
                        json.dumps(m)[:200]
                        for m in self.lines[max(after, len(self.lines) - 12) :]
                    ]
                    exited = self.proc.poll()
                    raise TimeoutError(
                        f"farm clients: not in {timeout}s (node exit {exited}); the"
                        " lines since: " + "\n".join(tail)
                    )
                self._cond.wait(min(left, 0.5))

    def request(self, op: str, answer: str, timeout: float = 60, **kw: Any) -> Line:
        mark = self.mark()
        self.send(op, **kw)
        return self.wait_for(lambda m: m["type"] == answer, timeout, mark)

    def grow(self, n: int, timeout: float = 300) -> Line:
        return self.request("grow", "grown", timeout, n=n)

    def window_start(self, durable_after_ms: float = 0) -> None:
        """A new window; its ``first_durable_t`` is the first durable event written
        (its ``ts``) at or after ``durable_after_ms``."""
        self.request("window_start", "window_started", durable_after=durable_after_ms)

    def stats(self) -> Line:
        return self.request("stats", "stats")

    def durable(self) -> list[tuple[int, str, int, str]]:
        """(client, printer, seq, event) of every durable event received."""
        return [
            (m["c"], m["printer"], m["seq"], m["event"])
            for m in self.since()
            if m["type"] == "durable"
        ]

    def resyncs(self, after: int = 0) -> list[Line]:
        return [m for m in self.since(after) if m["type"] == "resync"]

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("close")
                self.proc.wait(15)
            except Exception:  # noqa: BLE001 - a hung node is killed
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)
        self._log.close()
