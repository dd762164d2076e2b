"""The pure parts of the farm publisher (store/publisher.py): the bounded hand-over
queue between the loop and the publisher thread, the ring that finds the live
stream's ``MINID``, and the merge of a back-fill from the SQLite log with what is
queued. No Redis here; clocks are passed in.

The queue holds two deques, telemetry and durable events, each in seq order (the
loop is the only producer and stamps seqs in increasing order), so taking the
lowest seq is comparing two heads, and dropping the oldest telemetry on overflow is
one ``popleft``. Durable events are dropped only when no telemetry is left to drop;
each such drop raises ``lost_durable`` so the publisher back-fills them from the
SQLite log, which holds them anyway.

Durable means committed: a durable event is put *pending* (the loop hands it over
at emit) and becomes ready once the SQLite log has committed its seq (``commit``,
from the log's writer thread). The publisher takes only ready items, lowest seq
first, so nothing at or above a pending durable event reaches Redis before its
commit, and the live stream still gets strictly increasing seqs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Callable, Optional

from ..core.replay import DURABLE_EVENTS
from ..core.streams import LIVE_RETENTION_S


@dataclass
class Item:
    seq: int
    event: str
    payload: dict
    durable: bool
    at: float = 0.0  # monotonic time it was queued (the lag of the oldest item)
    pending: bool = False  # waits for the log's commit of its seq


def make_item(event: str, payload: dict, at: float = 0.0, pending: bool = False) -> Item:
    durable = event in DURABLE_EVENTS
    return Item(int(payload["seq"]), event, payload, durable, at, pending and durable)


class FarmQueue:
    """Bounded, thread-safe: ``put`` (the loop) never blocks, ``pop_many`` (the
    publisher thread) takes the lowest seqs first, up to the first durable event the
    log has not committed; ``peek``/``pop`` (the back-fill's merge) take the lowest
    seq whatever it waits for."""

    def __init__(self, maxlen: int, clock: Callable[[], float] = time.monotonic):
        self.maxlen = max(1, int(maxlen))
        self.clock = clock
        self._telemetry: deque[Item] = deque()
        self._durable: deque[Item] = deque()
        self._cond = threading.Condition(threading.Lock())
        self.put_count = 0
        self.dropped = 0  # telemetry and durable events dropped on overflow
        self.dropped_durable = 0
        # a durable event was dropped: the publisher back-fills from the log
        self.lost_durable = False
        self.committed = 0  # the highest seq the log has committed

    def __len__(self) -> int:
        return len(self._telemetry) + len(self._durable)

    def put(self, event: str, payload: dict, pending: bool = False) -> None:
        """``pending``: a durable event the log has not committed yet (``commit``)."""
        item = make_item(event, payload, self.clock(), pending)
        with self._cond:
            if len(self) >= self.maxlen:
                self._drop_one()
            (self._durable if item.durable else self._telemetry).append(item)
            self.put_count += 1
            self._cond.notify()

    def _drop_one(self) -> None:
        # caller holds the lock: the oldest telemetry first
        if self._telemetry:
            self._telemetry.popleft()
        else:
            self._durable.popleft()
            self.dropped_durable += 1
            self.lost_durable = True
        self.dropped += 1

    def commit(self, seq: int) -> None:
        """The log committed every durable event up to ``seq`` (its writer thread,
        in seq order): those waiting go out."""
        with self._cond:
            if seq > self.committed:
                self.committed = seq
                self._cond.notify()

    def _head(self) -> Optional[deque[Item]]:
        t, d = self._telemetry, self._durable
        if t and d:
            return t if t[0].seq < d[0].seq else d
        return t or d or None

    def _ready_head(self) -> Optional[deque[Item]]:
        head = self._head()
        if head is None:
            return None
        item = head[0]
        return head if not item.pending or item.seq <= self.committed else None

    def ready(self) -> bool:
        with self._cond:
            return self._ready_head() is not None

    def peek(self) -> Optional[Item]:
        with self._cond:
            head = self._head()
            return head[0] if head else None

    def pop(self) -> Optional[Item]:
        with self._cond:
            head = self._head()
            return head.popleft() if head else None

    def pop_many(self, limit: int) -> list[Item]:
        out: list[Item] = []
        with self._cond:
            while len(out) < limit:
                head = self._ready_head()
                if head is None:
                    break
                out.append(head.popleft())
        return out

    def push_front(self, items: list[Item]) -> None:
        """Items taken but not known to be written (the connection broke): back at
        the front, in their order, so the next attempt re-sends them (idempotent)."""
        with self._cond:
            for item in reversed(items):
                (self._durable if item.durable else self._telemetry).appendleft(item)
            while len(self) > self.maxlen:
                # the oldest telemetry goes, as on put
                self._drop_one()

    def wait(self, timeout: float) -> bool:
        """Waits up to ``timeout`` for something to publish (not waiting for a
        commit); True if there is. Any put, commit or ``wake`` ends the wait."""
        with self._cond:
            if self._ready_head() is not None:
                return True
            self._cond.wait(timeout)
            return self._ready_head() is not None

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def take_lost_durable(self) -> bool:
        with self._cond:
            lost, self.lost_durable = self.lost_durable, False
            return lost

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest queued item has waited (0 when empty)."""
        with self._cond:
            ats = [q[0].at for q in (self._telemetry, self._durable) if q]
        return max(0.0, now - min(ats)) if ats else 0.0


class MinidRing:
    """(monotonic, seq) samples of what went to the live stream, at most one per
    ``step`` seconds: the live stream's ``MINID`` is the seq published about
    ``retention`` seconds ago."""

    def __init__(self, retention: float = LIVE_RETENTION_S, step: float = 1.0):
        self.retention = retention
        self.step = step
        self._ring: deque[tuple[float, int]] = deque()

    def note(self, now: float, seq: int) -> None:
        ring = self._ring
        if not ring or now - ring[-1][0] >= self.step:
            ring.append((now, seq))

    def minid(self, now: float) -> Optional[int]:
        """The seq to trim below (None: nothing is old enough yet)."""
        ring, cutoff = self._ring, now - self.retention
        found: Optional[int] = None
        while ring and ring[0][0] <= cutoff:
            found = ring.popleft()[1]
        if found is not None:
            # keep the answer for the next call: MINID only grows
            ring.appendleft((cutoff, found))
        return found

    def __len__(self) -> int:
        return len(self._ring)


def merge(backfill: Iterable[Item], queue: FarmQueue) -> Iterator[Item]:
    """The back-fill (durable events from the log, ascending) merged by seq with the
    queue's head: each item queued with a lower seq comes before it, one with the
    same seq is the same event and goes once. What is queued above the back-fill's
    last seq stays queued (the normal drain takes it)."""
    for item in backfill:
        while True:
            head = queue.peek()
            if head is None or head.seq > item.seq:
                break
            queue.pop()
            if head.seq < item.seq:
                yield head
        yield item
