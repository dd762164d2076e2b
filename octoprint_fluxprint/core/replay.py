"""Resume: which durable events a returning client gets, and the seam between the
replay read from the event log and the live events emitted meanwhile. Pure.

The protocol, for one client presenting ``since`` (the last seq it processed):

1. ``plan_resume(since, horizon, issued)``: RESYNC when events after ``since`` may be
   gone (``since < horizon``) or ``since`` lies in the future (``since > issued``, a
   log from another install); otherwise REPLAY.
2. On the loop, *before* starting the read, create ``ReplaySession(since)`` and from
   then on hand every durable event the loop emits to ``session.offer_live`` instead
   of sending it to this client (it answers whether to send it now).
3. Read pages off the loop (``EventLog.read_since(cursor, limit)``) and pass each to
   ``session.take_page(rows)``: send what it returns. Repeat with
   ``session.cursor`` until a page is shorter than ``limit``.
4. ``session.finish()`` returns the live events buffered during the read that the
   pages did not already hold; send them, then the fresh status, then go live
   (``offer_live`` now answers True for anything newer than the cursor).

Why nothing is missed or repeated: the log commits in seq order and ``on_durable``
fires after the commit, so every durable event is either committed before the read
(and in the pages) or has its live emission after step 2 (and is buffered), or both
(then it is dropped from the buffer: seq <= cursor). A buffered event can never have
a seq below a paged one without being in the pages, because a commit holds every
lower seq too.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Optional, Union

# the events written to the log before they are emitted, and replayed on resume
DURABLE_EVENTS = frozenset(
    {
        "printer:job_started",
        "printer:job_paused",
        "printer:job_resumed",
        "printer:job_complete",
        "printer:job_failed",
        "printer:connection",
    }
)

# (seq, event, payload): rows from the log and buffered live events alike
Item = tuple[int, str, Any]


class Plan(enum.Enum):
    REPLAY = "replay"
    RESYNC = "resync"


def plan_resume(since: int, horizon: int, issued: int) -> Plan:
    """``horizon``: events at or below it may be gone (``EventLog.horizon()``);
    ``issued``: the last seq the allocator handed out (``SeqAllocator.last``)."""
    if since < horizon or since > issued:
        return Plan.RESYNC
    return Plan.REPLAY


def parse_since(value: Any) -> Optional[int]:
    """A client's ``last_seq``/``since``: a non-negative int (bools and floats are
    refused), or None when absent. Raises ValueError when present but invalid."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("last_seq must be a non-negative integer")
    if value > 2**63 - 1:
        raise ValueError("last_seq is out of range")
    return value


MAX_CURSORS = 1000
MAX_PRINTER_ID = 64


def parse_cursors(value: Any) -> Optional[Union[int, dict[str, int]]]:
    """A client's ``last_seq`` at connect: one cursor (an int, for one printer) or one
    per printer (``{printerId: seq}``, at a hub), or None when absent. Raises
    ValueError when present but invalid."""
    if not isinstance(value, dict):
        return parse_since(value)
    if len(value) > MAX_CURSORS:
        raise ValueError("last_seq has too many printers")
    out: dict[str, int] = {}
    for key, seq in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_PRINTER_ID:
            raise ValueError("last_seq keys must be printer ids")
        parsed = parse_since(seq)
        if parsed is None:
            raise ValueError("last_seq must be a non-negative integer")
        out[key] = parsed
    return out


def merge_seam(since: int, replayed: Iterable[Item], live: Iterable[Item]) -> list[Item]:
    """The exact sequence to send: replayed rows then buffered live events, each seq
    once, ascending, all > ``since``."""
    session = ReplaySession(since)
    out = session.take_page(replayed)
    for item in live:
        session.offer_live(item)
    out.extend(session.finish())
    return out


class ReplaySession:
    """One client's replay: lives on the loop, from before the first read until the
    buffered live events are flushed. Memory is bounded by the durable events
    emitted during the read (a handful; ``max_buffer`` guards the rest)."""

    def __init__(self, since: int, max_buffer: int = 10_000):
        self.since = since
        self.cursor = since  # highest seq sent (or to be sent) to the client
        self.live = False
        self.max_buffer = max_buffer
        self.overflow = False  # the buffer hit max_buffer: resync the client instead
        self._buffer: dict[int, Item] = {}
        self.replayed = 0
        self.duplicates = 0

    def take_page(self, rows: Iterable[Item]) -> list[Item]:
        """A page read from the log: the rows to send, ascending, without those
        already sent."""
        out: list[Item] = []
        for item in sorted(rows, key=lambda r: r[0]):
            if item[0] <= self.cursor:
                self.duplicates += 1
                continue
            out.append(item)
            self.cursor = item[0]
        self.replayed += len(out)
        return out

    def offer_live(self, item: Item) -> bool:
        """A durable event the loop is emitting. While replaying, buffers it and
        answers False (do not send now); once live, answers whether to send it (not
        if the replay already sent it)."""
        seq = item[0]
        if self.live:
            if seq <= self.cursor:
                self.duplicates += 1
                return False
            self.cursor = seq
            return True
        if seq > self.cursor and seq not in self._buffer:
            if len(self._buffer) >= self.max_buffer:
                self.overflow = True
            else:
                self._buffer[seq] = item
        else:
            self.duplicates += 1
        return False

    def finish(self) -> list[Item]:
        """Ends the replay: the buffered events the pages did not hold, ascending.
        From now on the session is live."""
        out = [self._buffer[s] for s in sorted(self._buffer) if s > self.cursor]
        self.duplicates += len(self._buffer) - len(out)
        self._buffer.clear()
        if out:
            self.cursor = out[-1][0]
        self.live = True
        return out
