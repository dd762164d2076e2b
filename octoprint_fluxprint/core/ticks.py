"""Batch ticks (``printer:subscribe {batch: ms}``): what one tick holds, when a tick
goes out, and what a client that cannot take a tick keeps. Pure; the clock is the
caller's.

A tick holds, in the order the messages happened:

- for each printer, its newest status, temperature and progress: a newer one
  replaces an older one of the same tick (deltas are merged, ``delta.compose``, so
  none of their changes is lost) and takes its place at the end, after everything
  older; so per printer the items stay in seq order;
- every other message (durable events, resyncs) as it came, never coalesced.

A client whose socket lags skips ticks: what they held is merged into the client's
own buffer by the same rules (newest telemetry, every durable event), and goes out
as one batch when the socket is clear again (``Backlog``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Optional

from .delta import compose
from .schema import EV_PROGRESS, EV_STATUS, EV_TEMPERATURE

# the events a newer one of the same printer replaces within a tick
NEWEST_WINS = frozenset({EV_STATUS, EV_TEMPERATURE, EV_PROGRESS})
# a tick's items at most; more wait for the next tick (a replay of thousands of
# durable events goes out over several ticks, never as one huge frame)
MAX_ITEMS = 2000


class Item:
    """One message in a tick: its printer's feed key, the event, the payload and
    (once encoded) the payload's JSON, shared by every tick that holds it."""

    __slots__ = ("event", "feed", "json", "payload")

    def __init__(self, feed: str, event: str, payload: Any, json: Optional[str] = None):
        self.feed = feed
        self.event = event
        self.payload = payload
        self.json = json

    def __repr__(self) -> str:
        return f"Item({self.feed!r}, {self.event!r}, seq={self.seq})"

    @property
    def seq(self) -> Any:
        return self.payload.get("seq") if isinstance(self.payload, dict) else None


class TickBuffer:
    """A tick's items (or a lagging client's backlog), in arrival order."""

    __slots__ = ("_items", "_where", "coalesced", "kept")

    def __init__(self) -> None:
        self._items: list[Optional[Item]] = []
        self._where: dict[tuple[str, str], int] = {}  # (feed, event) -> its index
        self.kept = 0  # items that are never coalesced (durable events, resyncs)
        self.coalesced = 0  # telemetry replaced by a newer one

    def __len__(self) -> int:
        return len(self._items) - self._holes()

    def __bool__(self) -> bool:
        return bool(self._where) or self.kept > 0

    def _holes(self) -> int:
        return len(self._items) - len(self._where) - self.kept

    def add(self, item: Item) -> None:
        if item.event not in NEWEST_WINS:
            self._items.append(item)
            self.kept += 1
            return
        key = (item.feed, item.event)
        at = self._where.get(key)
        if at is not None:
            older = self._items[at]
            self._items[at] = None
            self.coalesced += 1
            assert older is not None
            merged = compose(older.payload, item.payload)
            if merged is not item.payload:  # deltas merged: a new payload
                item = Item(item.feed, item.event, merged)
        self._where[key] = len(self._items)
        self._items.append(item)

    def extend(self, items: Iterable[Item]) -> None:
        for item in items:
            self.add(item)

    def items(self) -> list[Item]:
        return [i for i in self._items if i is not None]

    def take(self, limit: int = MAX_ITEMS) -> list[Item]:
        """The first ``limit`` items, removed; the rest stay, in order."""
        out = self.items()
        if len(out) <= limit:
            self.clear()
            return out
        rest = out[limit:]
        self.clear()
        self.extend(rest)
        return out[:limit]

    def drop(self, keep: Callable[[Item], bool]) -> int:
        """Removes the items ``keep`` refuses; returns how many."""
        items = self.items()
        kept = [i for i in items if keep(i)]
        if len(kept) != len(items):
            self.clear()
            self.extend(kept)
        return len(items) - len(kept)

    def clear(self) -> None:
        self._items = []
        self._where = {}
        self.kept = 0


# after a quiet tick, the first message waits this share of a tick for what comes
# with it (messages arrive in bursts: a printer's status, temperature and progress
# together, a Redis read of many printers' entries)
GATHER = 0.1


class Ticker:
    """When a cohort's tick goes out: at most once per ``period`` seconds. A
    message after a quiet tick goes a tenth of a tick after it arrived (with what
    came meanwhile), later ones when a whole tick has passed since the last one
    went out."""

    __slots__ = ("armed", "last", "period")

    def __init__(self, period: float):
        self.period = period
        self.last: Optional[float] = None  # when the last tick went out
        self.armed = False

    def arm(self, now: float) -> Optional[float]:
        """A message arrived: when to run the tick (None: a timer is armed)."""
        if self.armed:
            return None
        self.armed = True
        soon = now + self.period * GATHER
        if self.last is None:
            return soon
        return max(soon, self.last + self.period)

    def fired(self, now: float) -> None:
        self.armed = False
        self.last = now


def batch_json(ts: int, parts: Iterable[tuple[str, str]]) -> str:
    """The JSON of ``printer:batch {ts, items}`` from (event, payload JSON) pairs
    encoded already (each payload encoded once, whichever ticks hold it)."""
    items = ",".join(f'["{event}",{payload}]' for event, payload in parts)
    return f'{{"ts":{int(ts)},"items":[{items}]}}'
