"""At most one log line per key and window, so a client that retries a refused
connection in a loop cannot flood octoprint.log. Pure: the clock is passed in, and
the table is bounded (an attacker with many addresses only recycles it)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Callable, Optional


class LogThrottle:
    def __init__(
        self, window: float, clock: Callable[[], float], max_keys: int = 1024
    ) -> None:
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[Hashable, tuple[float, int]] = {}  # key -> (logged at, held)

    def check(self, key: Hashable) -> Optional[int]:
        """None: do not log this one. A number: log it, saying that many like it
        were held back since the last line for this key."""
        now = self.clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            self._seen[key] = (entry[0], entry[1] + 1)
            return None
        held = entry[1] if entry is not None else 0
        self._seen.pop(key, None)
        self._seen[key] = (now, 0)  # newest last
        if len(self._seen) > self.max_keys:
            self._prune(now)
        return held

    def _prune(self, now: float) -> None:
        stale = [k for k, (at, _) in self._seen.items() if now - at >= self.window]
        for k in stale:
            del self._seen[k]
        while len(self._seen) > self.max_keys:  # all recent: drop the oldest
            del self._seen[next(iter(self._seen))]

    def __len__(self) -> int:
        return len(self._seen)
