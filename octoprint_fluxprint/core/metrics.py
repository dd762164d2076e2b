"""Fan-out timing: how long one broadcast takes on the IOLoop, from the hub's emit
to the last client's frame handed to the kernel. Pure and bounded; shown in
``/plugin/fluxprint/health?detail=1`` (the benchmarks read it to tell the server's
share of the latency from the clients')."""

from __future__ import annotations

from collections import deque


class Durations:
    def __init__(self, keep: int = 1024):
        self.count = 0  # broadcasts timed
        self.writes = 0  # client writes they made
        self.total_s = 0.0
        self.max_s = 0.0
        self.recent: deque[float] = deque(maxlen=keep)  # seconds, newest last

    def record(self, seconds: float, writes: int) -> None:
        self.count += 1
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
        }
