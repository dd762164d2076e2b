"""Delivery: the rooms' ``Sink``. An ordered outbox (durable events wait for their
commit, and everything after them waits too), then each message to the cohorts in
its room (server/cohorts.py: the rooms' subscribers, each serving the clients of
one view), single messages to one client, and the per-client outbound budget.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import deque
from typing import Any, Callable, Optional

try:  # the kernel send queue is measured where the platform allows it
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None  # type: ignore[assignment]

from ..core import schema as S
from ..core.budget import Budgets, Limits
from ..core.metrics import Durations
from ..core.replay import DURABLE_EVENTS
from ..core.ticks import Item
from . import wsframes
from .clock import to_loop_time
from .cohorts import Cohorts
from .fanout import Writer, encode_event
from .members import Replays
from .sessions import Sessions

_logger = logging.getLogger(__name__)

BUDGET_TICK_MS = 500
_OWN: Any = object()  # emit's log: the delivery's own (the plugin's single log)
BATCHED = frozenset(S.BATCHED_EVENTS)  # a batched client gets these in its batches


class Outgoing:
    """One emission waiting its turn: durable events wait for their commit, and
    everything after them waits too, so each client sees seq in emission order.
    Its JSON and packet are made once, for every cohort that sends it."""

    __slots__ = (
        "_item",
        "_json",
        "_pkt",
        "encoded",
        "event",
        "feed",
        "payload",
        "ready",
        "room",
        "seq",
        "sid",
    )

    def __init__(
        self,
        event: str,
        payload: dict,
        room: Optional[str] = None,  # a room, or
        sid: Optional[str] = None,  # one client
        feed: str = "",  # the printer's feed (server/feeds.py)
        ready: bool = True,
    ):
        self.event = event
        self.payload = payload
        self.room = room
        self.sid = sid
        self.feed = feed
        self.ready = ready
        self.seq = 0  # its place in the outbox
        self._json: Optional[str] = None
        self._pkt: Any = None
        self._item: Optional[Item] = None
        self.encoded = ""

    def packet(self) -> Any:
        if self._pkt is None:
            if self._json is None:
                self._json = json.dumps(self.payload, separators=(",", ":"))
            self.encoded = encode_event(self.event, self._json)
            self._pkt = wsframes.broadcast_packet(self.encoded)
        return self._pkt

    def item(self) -> Item:
        if self._item is None:
            self._item = Item(self.feed, self.event, self.payload, self._json)
        return self._item


class Delivery:
    def __init__(self, sio: Any, sessions: Sessions):
        self.sio = sio
        self.sessions = sessions
        self.loop: Any = None  # tornado IOLoop, from the host
        # store.eventlog.EventLog (or anything with its append), or None
        self.eventlog: Any = None
        self.next_seq: Optional[Callable[[], int]] = None
        self.budgets = Budgets(Limits(), time.monotonic)
        self.fanout = Durations()  # per message or tick: to the last client's write
        self.writer = Writer(sio, sessions)
        self.cohorts = Cohorts(self.writer, self._drop)
        self.cohorts.on_fanout = self.fanout.record
        # (sid, feed key) -> the replay under way for that client and printer
        self.replaying = Replays(self.cohorts)
        self._outbox: deque[Outgoing] = deque()
        self._enqueued = self._delivered = 0
        # what waits for the outbox to be past a point: (fence, what then)
        self._due: deque[tuple[int, Callable[[], None]]] = deque()
        self._budget_timer: Any = None
        # what went out (Prometheus, server/prom.py): messages and encoded bytes
        # (the cohorts count theirs), and the resumes (server/resume.py counts those)
        self.messages_out = 0
        self.bytes_out = 0
        self.replays = 0
        self.replayed_events = 0
        self.resyncs = 0

    @property
    def seam_duplicates(self) -> int:
        """Durable events a replay had sent already: dropped."""
        return self.cohorts.seam_duplicates

    def start(self, loop: Any) -> None:
        from tornado.ioloop import PeriodicCallback

        self.loop = loop
        self._budget_timer = PeriodicCallback(self._budget_tick, BUDGET_TICK_MS)
        loop.add_callback(self._budget_timer.start)

    def stop(self) -> None:
        if self._budget_timer is not None:
            self._budget_timer.stop()

    def forget(self, sid: str) -> None:
        for key in [k for k in self.replaying if k[0] == sid]:
            self.replaying.pop(key, None)
        self.budgets.remove(sid)

    def _drop(self, sid: str, reason: str) -> None:
        # over budget: the transport closes, the client comes back and resumes
        asyncio.ensure_future(self.sessions.close_transport(sid, reason))

    # ~~ Sink for the rooms (runs on the loop)

    def emit(
        self, event: str, payload: dict, room: str, feed: str = "", log: Any = _OWN
    ) -> None:
        item = Outgoing(event, payload, room=room, feed=feed)
        eventlog = self.eventlog if log is _OWN else log
        if event in DURABLE_EVENTS and eventlog is not None:
            # written to the log before it goes out; on_durable runs on the writer
            # thread after the commit (or after a failed write: it still goes out)
            item.ready = False
            loop = self.loop
            eventlog.append(
                payload["seq"],
                event,
                payload,
                payload["ts"],
                on_durable=lambda: loop.add_callback(self._durable, item),
            )
        self._enqueue(item)

    def send_to(self, sid: str, event: str, payload: dict, feed: str = "") -> None:
        """One message to one client (or to each client of a cohort), in order
        with the broadcasts."""
        self._enqueue(Outgoing(event, payload, sid=sid, feed=feed))

    def enter_room(self, sub: str, room: str) -> None:
        self.cohorts.enter_room(sub, room)

    def leave_room(self, sub: str, room: str) -> None:
        self.cohorts.leave_room(sub, room)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        return asyncio.get_running_loop().call_at(to_loop_time(when), callback)

    def cancel(self, handle: Any) -> None:
        handle.cancel()

    # ~~ the ordered outbox

    def skip_queued(self, sid: str, feed: str) -> None:
        """Right before ``sid``'s fresh status for ``feed`` is queued (its join, or
        its replay's end): the printer's telemetry still waiting behind a durable
        event's commit predates it, and must not reach the client ahead of it
        (replay, then status, then live; issue 22). Durable events still go. The
        member gets a look per message until the outbox is past that point."""
        m = self.cohorts.members.get(sid)
        if m is None or not self._outbox:
            return
        fence = self._enqueued
        m.skip_until[feed] = fence
        if m.cohort is not None:
            m.cohort.mark(m)
        if m.lane is not None:  # batched: its own tick's telemetry predates it too
            m.lane.drop(lambda i: i.feed != feed or i.event in DURABLE_EVENTS)
        self._due.append((fence, lambda: self._unskip(m, feed, fence)))

    @staticmethod
    def _unskip(m: Any, feed: str, fence: int) -> None:
        if m.skip_until.get(feed) == fence:
            del m.skip_until[feed]
            if m.cohort is not None:
                m.cohort.settle(m)

    def _enqueue(self, item: Outgoing) -> None:
        self._enqueued += 1
        item.seq = self._enqueued
        if not self._outbox and item.ready:
            self._deliver(item)
        else:
            self._outbox.append(item)

    def _durable(self, item: Outgoing) -> None:
        item.ready = True
        while self._outbox and self._outbox[0].ready:
            self._deliver(self._outbox.popleft())

    def _deliver(self, item: Outgoing) -> None:
        self._delivered = item.seq
        if item.sid is not None:
            self._send_single(item)
        else:
            for cohort in list(self.cohorts.in_room.get(item.room or "", ())):
                cohort.offer(item)
        if self._due and self._due[0][0] <= self._delivered:
            self._run_due()

    def retire(self, key: tuple[str, str], session: Any) -> None:
        """A replay is done: its session drops seam duplicates until everything the
        outbox held when it ended has gone out (a durable event its pages held may
        still wait there for its hop), then goes."""

        def done() -> None:
            if self.replaying.get(key) is session:
                self.replaying.pop(key, None)

        self._due.append((self._enqueued, done))
        self._run_due()

    def _run_due(self) -> None:
        past = self._delivered if self._outbox else self._enqueued
        while self._due and self._due[0][0] <= past:
            self._due.popleft()[1]()

    def _send_single(self, item: Outgoing) -> None:
        cohort = self.cohorts.by_id.get(item.sid or "")
        if cohort is None:
            self.send_one(item.sid or "", item.event, item.payload, item.feed)
            return
        for m in list(cohort.members.values()):  # a cohort's own message (a delta base)
            self.send_one(m.sid, item.event, item.payload, item.feed)

    def send_one(self, sid: str, event: str, payload: dict, feed: str = "") -> None:
        """One event to one client, through the same ordered path as broadcasts.
        A batched client gets everything with a seq in its batches."""
        m = self.cohorts.members.get(sid)
        if m is None:
            return
        cohort = m.cohort
        if cohort is not None and cohort.tick is not None and event in BATCHED:
            cohort.own(m, Item(feed, event, payload))
            return
        if cohort is not None and cohort.turn:
            cohort.flush_turn()  # the loop turn's broadcasts go first
        link = self.writer.link(m)
        if link is None:
            return
        encoded = encode_event(event, json.dumps(payload, separators=(",", ":")))
        self.messages_out += 1
        self.bytes_out += len(encoded)
        synced = cohort is not None and cohort.stream.synced(m)
        if self.writer.write_private(link, encoded, synced):
            m.info.messages += 1

    # ~~ the outbound budget

    def _measure(self, sid: str) -> tuple[int, int]:
        """What is queued for a client: engine.io packets (long-polling clients wait
        here for their next GET) and bytes not yet taken by the peer: tornado's write
        buffer plus the kernel's send queue (refreshed here, each budget tick, since
        on loopback the kernel buffer alone holds megabytes)."""
        m = self.cohorts.members.get(sid)
        if m is None:
            return 0, 0
        link = self.writer.link(m)
        if link is None:
            return 0, 0
        m.kernel_queued = _unsent_bytes(link.stream or getattr(link.conn, "stream", None))
        return self.writer.measure(m, link)

    def _budget_tick(self) -> None:
        members = self.cohorts.members
        if not members:
            return
        send, drops = self.budgets.poll(self._measure, list(members))
        for sid, held in send.items():
            for event, payload in held:
                # held telemetry goes out now with a fresh seq, so the client still
                # sees seq increase
                self._enqueue(Outgoing(event, self._restamp(payload), sid=sid))
        for sid, reason in drops.items():
            # the whole connection goes, so its write buffers are freed at once; the
            # client reconnects by itself and resumes
            self._drop(sid, reason)

    def _restamp(self, payload: dict) -> dict:
        if self.next_seq is None:
            return payload
        return {**payload, "seq": self.next_seq()}

    def counters(self) -> dict:
        c = self.cohorts
        return {
            "messages_out": self.messages_out + c.messages_out,
            "bytes_out": self.bytes_out + c.bytes_out,
            "replays": self.replays,
            "replayed_events": self.replayed_events,
            "resyncs": self.resyncs,
            "batches_out": c.batches_out,
            "batch_items_out": c.batch_items_out,
        }

    def fanout_stats(self) -> dict:
        return {
            **self.fanout.as_dict(),
            "direct_writes": self.writer.direct_writes,
            "queued_writes": self.writer.queued_writes,
            "cohorts": self.cohorts.stats(),
            "shared_deflate": self.cohorts.stream_stats(),
        }


def _unsent_bytes(stream: Any) -> int:
    """Bytes in the kernel's send queue of a tornado stream (Linux: SIOCOUTQ)."""
    sock = getattr(stream, "socket", None)
    if sock is None or fcntl is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int.from_bytes(raw, sys.byteorder, signed=True)
