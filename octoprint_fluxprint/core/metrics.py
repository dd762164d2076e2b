"""Fan-out timing: how long one broadcast takes on the IOLoop, from the hub's emit
to the last client's frame handed to the kernel, and the loop thread's CPU time over
the same span (wall time well above it: the thread waited, for the GIL or for a
core). Pure and bounded; shown in ``/plugin/fluxprint/health?detail=1`` (the
benchmarks read it to tell the server's share of the latency from the clients')."""

from __future__ import annotations

from collections import deque


class Durations:
    def __init__(self, keep: int = 1024):
        self.count = 0  # broadcasts timed
        self.writes = 0  # client writes they made
        self.total_s = 0.0
        self.max_s = 0.0
        self.recent: deque[float] = deque(maxlen=keep)  # seconds, newest last
        self.recent_cpu: deque[float] = deque(maxlen=keep)  # thread CPU seconds
        self.total_cpu_s = 0.0

    def record(self, seconds: float, writes: int, cpu_seconds: float = 0.0) -> None:
        self.count += 1
        self.total_cpu_s += cpu_seconds
        self.recent_cpu.append(cpu_seconds)
        self.writes += writes
        self.total_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds
        self.recent.append(seconds)

    def as_dict(self) -> dict:
        return {
            "broadcasts": self.count,
            "writes": self.writes,
            "total_ms": round(self.total_s * 1000, 3),
            "max_ms": round(self.max_s * 1000, 3),
            "recent_ms": [round(s * 1000, 3) for s in self.recent],
            "total_cpu_ms": round(self.total_cpu_s * 1000, 3),
            "recent_cpu_ms": [round(s * 1000, 3) for s in self.recent_cpu],
        }
