"""Deflate with context takeover, done once per cohort instead of once per client
(the ``deflate_shared`` compression mode).

The clients of a cohort (server/cohorts.py: one view, core/views.py) receive the
same sequence of broadcast frames, so one compressor that keeps its window (RFC
7692 context takeover) can serve them all: each client's inflater holds exactly
the history the compressor holds. The rules that keep that true:

- A cohort's stream is one ``zlib`` compressor. A client is *synced* to it when it
  got every frame since the stream's last *sync point* (a fresh compressor, so
  nothing after it refers to data before it); only synced clients get the stream's
  frames.
- Everything else (acks, the status on connect, replay, held telemetry, engine.io
  pings) goes out with RSV1 clear, which RFC 7692 keeps out of the client's
  inflater; or, for a broadcast to a client that is not synced, compressed on its
  own (no reference to earlier data).
- A client that misses one of its stream's frames (over budget, replaying, a tick
  of its own, written another way) is not synced any more, until the next sync
  point.
- Sync points come only when a client waits for one, at most every
  ``sync_interval`` seconds while others are synced (each one costs the ratio a
  fresh window), at once when none is.

Pure: zlib and the standard library only (``tests/unit/server/test_shared_deflate.py``
replays random joins, leaves, skipped frames and per-client messages through real
zlib inflaters).
"""

from __future__ import annotations

import zlib
from typing import Any, Optional

TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; RFC 7692 drops it


class CohortStream:
    """A cohort's deflate stream with context takeover. A client is *synced* when
    it has every frame since the stream's last sync point (``gen``, ``seen``);
    one that missed a frame gets messages compressed on their own until the next
    sync point, which comes at most every ``sync_interval`` seconds while others
    are synced, at once when none is."""

    __slots__ = (
        "_compressor",
        "frames",
        "gen",
        "last_sync",
        "n",
        "sync_interval",
        "syncs",
    )

    def __init__(self, sync_interval: float = 2.0):
        self.sync_interval = sync_interval
        self.gen = 0  # sync points so far (0: none yet)
        self.n = 0  # frames since the last sync point
        self.last_sync = float("-inf")
        self._compressor: Any = None
        self.syncs = 0
        self.frames = 0

    def synced(self, member: Any) -> bool:
        return member.gen == self.gen and member.seen == self.n and self.gen > 0

    def body(self, data: bytes, members: list, now: float) -> Optional[bytes]:
        """The stream's frame body for ``data`` if any of ``members`` (the
        deflate_shared clients getting this message) can take it: those get
        ``shared_ok`` set, the others get the message compressed on its own."""
        bodies = self.bodies([data], members, now)
        return None if bodies is None else bodies[0]

    def bodies(self, datas: list, members: list, now: float) -> Optional[list]:
        """The stream's frame bodies for consecutive messages that all of
        ``members`` get (one loop turn's): ``shared_ok`` for those that can take
        them all; None when none can."""
        gen, n = self.gen, self.n
        waiting = synced = 0
        for m in members:
            if m.gen == gen and m.seen == n and gen:
                synced += 1
            else:
                waiting += 1
        if waiting and (not synced or now - self.last_sync >= self.sync_interval):
            self._compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
            self.gen = gen = gen + 1
            self.n = n = 0
            self.last_sync = now
            self.syncs += 1
            for m in members:
                m.gen, m.seen = gen, 0
            synced = len(members)
        if not synced:
            for m in members:
                m.shared_ok = False
            return None
        c = self._compressor
        out = []
        for data in datas:
            body = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
            out.append(body[: -len(TAIL)] if body.endswith(TAIL) else body)
        end = n + len(datas)
        self.n = end
        self.frames += len(datas)
        for m in members:
            ok = m.shared_ok = m.gen == gen and m.seen == n
            if ok:
                m.seen = end
        return out
