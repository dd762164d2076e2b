"""The settings panel's live view: who has it open, when to push, what to push.

Pure logic (no octoprint, socketio or tornado imports); the clock is passed in.
The glue in ``__init__`` calls :meth:`PanelFeed.tick` once a second on the IOLoop
and sends what it returns as an OctoPrint plugin message.

Viewers hold a lease: the page announces itself when the FluxPrint tab is shown,
renews while it stays shown and says goodbye when it is hidden. A page that goes
away without a goodbye (closed tab, lost network) expires after ``LEASE``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Optional

LEASE = 30.0  # seconds a viewer stays "open" without a renewal
MIN_PUSH_INTERVAL = 1.0  # at most one push a second
RATE_WINDOW = 5.0  # events per second, averaged over this many seconds
MAX_VIEWERS = 64  # tokens are client-chosen: bound the table
MAX_TOKEN = 64

ROW_KEYS = ("id", "user", "remote", "transport", "since", "messages")


class Viewers:
    """Open panels, by a token each page picks, with leases."""

    def __init__(self, lease: float = LEASE):
        self.lease = lease
        self._until: dict[str, float] = {}

    def open(self, token: str, now: float) -> bool:
        """Marks ``token`` open; True when nobody had the panel open before."""
        self.expire(now)
        was_empty = not self._until
        if token not in self._until and len(self._until) >= MAX_VIEWERS:
            oldest = min(self._until, key=self._until.__getitem__)
            del self._until[oldest]
        self._until[token] = now + self.lease
        return was_empty

    def close(self, token: str, now: float) -> None:
        self._until.pop(token, None)
        self.expire(now)

    def expire(self, now: float) -> None:
        for token in [t for t, until in self._until.items() if until <= now]:
            del self._until[token]

    def any(self, now: float) -> bool:
        self.expire(now)
        return bool(self._until)

    def __len__(self) -> int:
        return len(self._until)


def valid_token(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_TOKEN:
        return None
    if not all(c.isalnum() or c in "-_" for c in value):
        return None
    return value


class Rate:
    """Events per second from a monotonically growing counter."""

    def __init__(self, window: float = RATE_WINDOW):
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, count: int) -> float:
        samples = self._samples
        if samples and count < samples[-1][1]:
            samples.clear()  # the counter was reset
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        first_t, first_n = samples[0]
        span = now - first_t
        if span <= 0:
            return 0.0
        return (count - first_n) / span

    def reset(self) -> None:
        self._samples.clear()


def client_rows(table: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The live table's rows: the transport's client table, trimmed to what the
    panel shows, oldest connection first."""
    rows = []
    for entry in table:
        row = {key: entry.get(key) for key in ROW_KEYS}
        channels = entry.get("channels")
        row["channels"] = list(channels) if isinstance(channels, (list, tuple)) else []
        intervals = entry.get("intervals")
        row["intervals"] = dict(intervals) if isinstance(intervals, Mapping) else {}
        rows.append(row)
    rows.sort(key=lambda r: (r.get("since") or 0, str(r.get("id"))))
    return rows


def health(
    last_temperature_ms: Optional[int],
    connection: Mapping[str, Any],
    events_per_second: float,
    now_ms: int,
) -> dict:
    age = None
    if last_temperature_ms is not None:
        age = max(0.0, round((now_ms - last_temperature_ms) / 1000.0, 1))
    return {
        "last_temperature_age": age,
        "printer_connected": connection.get("state") == "connected",
        "connection": connection.get("state"),
        "events_per_second": round(events_per_second, 2),
    }


class PanelFeed:
    """Decides when the panel gets an update and builds it.

    ``tick`` returns the message to send, or None: nothing is pushed while nobody
    has the panel open, and never twice within ``MIN_PUSH_INTERVAL``.
    """

    def __init__(self, lease: float = LEASE, min_interval: float = MIN_PUSH_INTERVAL):
        self.viewers = Viewers(lease)
        self.min_interval = min_interval
        self.rate = Rate()
        self._last_push: Optional[float] = None

    def open(self, token: str, now: float) -> bool:
        first = self.viewers.open(token, now)
        if first:
            self.rate.reset()
        return first

    def close(self, token: str, now: float) -> None:
        self.viewers.close(token, now)

    def active(self, now: float) -> bool:
        return self.viewers.any(now)

    def due(self, now: float) -> bool:
        if not self.viewers.any(now):
            return False
        return (
            self._last_push is None or now - self._last_push >= self.min_interval - 1e-6
        )

    def tick(
        self,
        now: float,
        now_ms: int,
        table: Iterable[Mapping[str, Any]],
        emitted: int,
        last_temperature_ms: Optional[int],
        connection: Mapping[str, Any],
    ) -> Optional[dict]:
        eps = self.rate.add(now, emitted)
        if not self.due(now):
            return None
        self._last_push = now
        return {
            "type": "panel",
            "ts": now_ms,
            "clients": client_rows(table),
            "health": health(last_temperature_ms, connection, eps, now_ms),
        }
