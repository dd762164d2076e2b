"""Deflate with context takeover, done once per cohort instead of once per client
(the ``deflate_shared`` compression mode).

Clients in the same set of rooms receive the same sequence of broadcast frames, so
one compressor that keeps its window (RFC 7692 context takeover) can serve them all:
each client's inflater holds exactly the history the compressor holds. The rules
that keep that true:

- A *cohort* is one set of rooms; its stream is one ``zlib`` compressor. A client
  belongs to at most one cohort (its current rooms) and starts *pending*.
- Only broadcast frames of the client's cohort are compressed for it. Everything
  else (acks, replay, the status on connect, held telemetry, engine.io pings) goes
  out with RSV1 clear, which RFC 7692 keeps out of the client's inflater.
- A pending client cannot follow the stream's history yet: it gets the broadcast
  compressed on its own (no reference to earlier data; the cached per-message body),
  and joins the stream at the next *sync point*, where the stream starts a fresh
  compressor. Nothing after a sync point refers to data before it, so whatever the
  client's inflater saw before does not matter.
- A synced client that misses one of its cohort's frames (over budget, replaying,
  written another way) is *diverged*: pending again, until the next sync point.
- Sync points come only when someone is pending, at most every ``sync_interval``
  seconds while others are synced (each one costs the ratio a fresh window), at once
  when nobody is.

Pure: zlib and the standard library only (``tests/unit/server/test_shared_deflate.py``
replays random join, leave, skip and per-client interleavings through real zlib
inflaters).
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; RFC 7692 drops it


def _compressor(level: int, mem_level: int) -> Any:
    return zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, mem_level)


@dataclass
class Stream:
    compressor: Any
    synced: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    last_sync: float = float("-inf")
    frames: int = 0  # since the last sync point
    syncs: int = 0


@dataclass
class Plan:
    """One broadcast: the shared body and who gets it, and who gets the message
    compressed on its own."""

    shared: Optional[bytes] = None  # the permessage-deflate body, tail dropped
    synced: list[str] = field(default_factory=list)
    alone: list[str] = field(default_factory=list)


class SharedStreams:
    def __init__(
        self,
        clock: Callable[[], float],
        sync_interval: float = 2.0,
        level: int = 6,
        mem_level: int = 8,
    ):
        self.clock = clock
        self.sync_interval = sync_interval
        self.level = level
        self.mem_level = mem_level
        self.streams: dict[Hashable, Stream] = {}
        self.cohort_of: dict[str, Hashable] = {}
        self.diverged = 0  # clients that missed a frame of their stream

    # ~~ membership (call on every change of a client's rooms)

    def join(self, client: str, cohort: Hashable) -> None:
        """``client`` is now in ``cohort`` (its set of rooms); pending until the
        next sync point. Joining the cohort it is in already changes nothing."""
        if self.cohort_of.get(client) == cohort:
            return
        self.leave(client)
        stream = self.streams.get(cohort)
        if stream is None:
            stream = self.streams[cohort] = Stream(
                _compressor(self.level, self.mem_level)
            )
        stream.pending.add(client)
        self.cohort_of[client] = cohort

    def leave(self, client: str) -> None:
        cohort = self.cohort_of.pop(client, None)
        if cohort is None:
            return
        stream = self.streams[cohort]
        stream.synced.discard(client)
        stream.pending.discard(client)
        if not stream.synced and not stream.pending:
            del self.streams[cohort]

    def diverge(self, client: str) -> None:
        """``client`` missed a frame of its stream: off it until the next sync."""
        cohort = self.cohort_of.get(client)
        if cohort is None:
            return
        stream = self.streams[cohort]
        if client in stream.synced:
            stream.synced.discard(client)
            stream.pending.add(client)
            self.diverged += 1

    def is_synced(self, client: str) -> bool:
        cohort = self.cohort_of.get(client)
        return cohort is not None and client in self.streams[cohort].synced

    # ~~ one broadcast

    def plan(self, cohort: Hashable, data: bytes, targets: Iterable[str]) -> Plan:
        """The frames of one broadcast to the ``targets`` of one cohort. Synced
        members that are not targets missed this frame and diverge."""
        plan = Plan()
        stream = self.streams.get(cohort)
        targets = set(targets)
        if stream is None:
            plan.alone = sorted(targets)
            return plan
        for client in list(stream.synced - targets):
            self.diverge(client)
        if stream.pending & targets:
            now = self.clock()
            if not stream.synced or now - stream.last_sync >= self.sync_interval:
                # a sync point: a fresh window, so the pending can join
                stream.compressor = _compressor(self.level, self.mem_level)
                stream.synced |= stream.pending & targets
                stream.pending -= targets
                stream.last_sync = now
                stream.frames = 0
                stream.syncs += 1
        plan.alone = sorted(
            (stream.pending & targets) | (targets - stream.synced - stream.pending)
        )
        plan.synced = sorted(stream.synced)
        if plan.synced:
            c = stream.compressor
            body = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
            plan.shared = body[: -len(TAIL)] if body.endswith(TAIL) else body
            stream.frames += 1
        return plan

    def stats(self) -> dict:
        return {
            "streams": len(self.streams),
            "synced": sum(len(s.synced) for s in self.streams.values()),
            "pending": sum(len(s.pending) for s in self.streams.values()),
            "syncs": sum(s.syncs for s in self.streams.values()),
            "diverged": self.diverged,
        }
