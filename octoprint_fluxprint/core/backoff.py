"""Reconnect delays: exponential, capped, with jitter, reset after a connection
that held. Pure (the random source is passed in): many hubs or printers coming back
at once spread out instead of storming."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 15.0
    factor: float = 2.0
    jitter: float = 0.5  # each delay is drawn from [(1 - jitter) d, d]
    held: float = 10.0  # a connection up this long resets the attempts
    rand: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * self.factor**self.attempts)
        self.attempts = min(self.attempts + 1, 32)
        return delay * (1 - self.jitter * self.rand())

    def connected_for(self, seconds: float) -> None:
        if seconds >= self.held:
            self.attempts = 0
