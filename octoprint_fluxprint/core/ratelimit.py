"""Limits on what a client may cost: a token bucket per client on client→server
messages, a window of refusals after which a client is cut off, connection caps in
total and per user, and the clamping of the settings that configure them.

Pure: no octoprint, socketio or tornado; time comes from an injected clock
(``time.monotonic`` in production). Every operation is O(1) (the refusal window is
a deque bounded by ``disconnect_after``), so all of it runs on the IOLoop.

Why not OctoPrint's ``limits`` (Flask-Limiter's library): its in-memory storage keys
counters by strings in a shared table, expires them from a background timer thread
and reads the wall clock; a bucket that lives in the client's own record dies with
the client, needs no lock on the loop, and tests with a fake clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

REFUSAL_WINDOW = 10.0  # seconds over which refusals count towards disconnect_after


@dataclass(frozen=True)
class RateConfig:
    burst: int = 20  # messages a client may send at once
    per_second: float = 5.0  # sustained messages per second
    disconnect_after: int = 50  # refused messages within REFUSAL_WINDOW s: cut off

    def as_dict(self) -> dict[str, Any]:
        return {
            "burst": self.burst,
            "per_second": self.per_second,
            "disconnect_after": self.disconnect_after,
        }


@dataclass(frozen=True)
class Limits:
    max_connections: int = 100
    max_connections_per_user: int = 20
    max_message_bytes: int = 16384
    rate: RateConfig = RateConfig()


# bounds of the settings (clamped on save and on load)
BOUNDS = {
    "max_connections": (1, 10000),
    "max_connections_per_user": (1, 10000),
    "max_message_bytes": (1024, 64 * 1024),  # ceiling: the route's HTTP body size
    "burst": (1, 10000),
    "per_second": (0.01, 10000.0),
    "disconnect_after": (1, 100000),
}


def _finite(value: Any) -> Optional[float]:
    """A finite number from a settings value, or None (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def clamp_int(value: Any, fallback: int, lo: int, hi: int) -> int:
    number = _finite(value)
    return fallback if number is None else int(min(hi, max(lo, round(number))))


def clamp_float(value: Any, fallback: float, lo: float, hi: float) -> float:
    number = _finite(value)
    return fallback if number is None else float(min(hi, max(lo, number)))


def rate_config(value: Any, fallback: RateConfig = RateConfig()) -> RateConfig:
    data = value if isinstance(value, Mapping) else {}
    return RateConfig(
        burst=clamp_int(data.get("burst"), fallback.burst, *BOUNDS["burst"]),
        per_second=clamp_float(
            data.get("per_second"), fallback.per_second, *BOUNDS["per_second"]
        ),
        disconnect_after=clamp_int(
            data.get("disconnect_after"),
            fallback.disconnect_after,
            *BOUNDS["disconnect_after"],
        ),
    )


def limits_from_settings(values: Mapping[str, Any]) -> Limits:
    """Settings (possibly hand-edited config.yaml) to valid limits; bad values fall
    back to the defaults."""
    d = Limits()
    total = clamp_int(
        values.get("max_connections"), d.max_connections, *BOUNDS["max_connections"]
    )
    return Limits(
        max_connections=total,
        max_connections_per_user=clamp_int(
            values.get("max_connections_per_user"),
            d.max_connections_per_user,
            *BOUNDS["max_connections_per_user"],
        ),
        max_message_bytes=clamp_int(
            values.get("max_message_bytes"),
            d.max_message_bytes,
            *BOUNDS["max_message_bytes"],
        ),
        rate=rate_config(values.get("rate_limit")),
    )


class TokenBucket:
    """``burst`` tokens, refilled at ``per_second``; one token per message."""

    __slots__ = ("burst", "per_second", "tokens", "stamp", "_clock")

    def __init__(self, burst: int, per_second: float, clock: Callable[[], float]):
        self.burst = float(burst)
        self.per_second = float(per_second)
        self._clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self._clock()
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.per_second)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """One client's limiter: ``check()`` answers "ok", "limited" or "disconnect"."""

    OK = "ok"
    LIMITED = "limited"
    DISCONNECT = "disconnect"

    __slots__ = ("config", "bucket", "refused", "total_refused", "_clock", "_window")

    def __init__(self, config: RateConfig, clock: Callable[[], float]):
        self.config = config
        self._clock = clock
        self.bucket = TokenBucket(config.burst, config.per_second, clock)
        self.refused: deque[float] = deque()
        self.total_refused = 0
        self._window = REFUSAL_WINDOW

    def check(self) -> str:
        if self.bucket.take():
            return self.OK
        now = self._clock()
        self.total_refused += 1
        refused = self.refused
        refused.append(now)
        while refused and refused[0] <= now - self._window:
            refused.popleft()
        if len(refused) > self.config.disconnect_after:
            return self.DISCONNECT
        while len(refused) > self.config.disconnect_after + 1:  # stay bounded
            refused.popleft()
        return self.LIMITED

    def reconfigure(self, config: RateConfig) -> None:
        """New settings apply to connected clients; the current level is kept."""
        if config == self.config:
            return
        tokens = min(self.bucket.tokens, float(config.burst))
        self.config = config
        self.bucket = TokenBucket(config.burst, config.per_second, self._clock)
        self.bucket.tokens = tokens


def admit(limits: Limits, total: int, for_user: int) -> bool:
    """May one more client connect, given ``total`` connected and ``for_user`` of
    them this user's?"""
    return total < limits.max_connections and for_user < limits.max_connections_per_user
