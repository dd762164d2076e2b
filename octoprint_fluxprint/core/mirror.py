"""The hub's mirror of one plugin's durable events: bounded, in memory, in seq
order, with the same reading interface as ``store.eventlog.EventLog`` so replay and
resync at the hub run the plugin's own code. Pure.

The plugin's log is the truth; the mirror is refilled from it after a hub restart
(the source resumes from the mirror's ``last_seq``, or from the plugin's oldest
event when the plugin answers with a resync).
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any, Callable, NamedTuple, Optional

DEFAULT_MAX_EVENTS = 10_000  # what the plugin's log keeps by default


class Row(NamedTuple):
    seq: int
    event: str
    payload: Any
    ts: int


class EventMirror:
    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS):
        self.max_events = max_events
        self._rows: deque[Row] = deque()
        self._seqs: deque[int] = deque()
        self._horizon = 0  # events at or below it may be missing
        self._last = 0

    def append(
        self,
        seq: int,
        event: str,
        payload: Any,
        ts: int,
        on_durable: Optional[Callable[[], None]] = None,
    ) -> bool:
        """Adds an event above the top; one at or below it is ignored (False).
        ``on_durable`` runs at once either way (there is no disk)."""
        added = seq > self._last
        if added:
            self._rows.append(Row(seq, event, payload, ts))
            self._seqs.append(seq)
            self._last = seq
            while len(self._rows) > self.max_events:
                dropped = self._rows.popleft()
                self._seqs.popleft()
                self._horizon = max(self._horizon, dropped.seq)
        if on_durable is not None:
            on_durable()
        return added

    def reset(self) -> None:
        """Empty, as new (the plugin's seqs started again: a reinstall)."""
        self._rows.clear()
        self._seqs.clear()
        self._horizon = self._last = 0

    def set_horizon(self, seq: int) -> None:
        """What the plugin no longer has (its resync's oldestSeq - 1): a client
        behind it gets a resync from the hub too."""
        self._horizon = max(self._horizon, seq)
        self._last = max(self._last, seq)

    def advance(self, seq: int) -> None:
        """Nothing durable lies between the top and ``seq`` (the hub's redis source
        filled the cache up to where it starts relaying): the top moves to it."""
        self._last = max(self._last, seq)

    def read_since(self, seq: int, limit: int = 1000) -> list[Row]:
        start = bisect.bisect_right(self._seqs, seq)
        return [self._rows[i] for i in range(start, min(start + limit, len(self._rows)))]

    def oldest_seq(self) -> Optional[int]:
        return self._seqs[0] if self._seqs else None

    def last_seq(self) -> int:
        return self._last

    def horizon(self) -> int:
        return self._horizon

    def count(self) -> int:
        return len(self._rows)
