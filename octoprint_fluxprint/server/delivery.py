"""Delivery: the rooms' ``Sink``. An ordered outbox (durable events wait for their
commit, and everything after them waits too), the per-client outbound budget, and
the fan-out that encodes each broadcast once and writes the same frame to every
websocket with nothing queued (``wsframes.send_direct``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

from socketio import packet as sio_packet

try:  # the kernel send queue is measured where the platform allows it
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None  # type: ignore[assignment]

from ..core import schema as S
from ..core.budget import Action, Budgets, Limits
from ..core.metrics import Durations
from ..core.replay import DURABLE_EVENTS, ReplaySession
from . import wsframes
from .clock import to_loop_time
from .sessions import Sessions
from .shared_deflate import SharedStreams

_logger = logging.getLogger(__name__)

BUDGET_TICK_MS = 500
_OWN: Any = object()  # emit's log: the delivery's own (the plugin's single log)


@dataclass
class Outgoing:
    """One emission waiting its turn: durable events wait for their commit, and
    everything after them waits too, so each client sees seq in emission order."""

    event: str
    payload: dict
    room: Optional[str] = None  # a room, or
    sid: Optional[str] = None  # one client
    ready: bool = True
    feed: str = ""  # the printer's feed (server/feeds.py): whose replay sessions
    skip: Optional[set[str]] = None  # not for these: see skip_queued


class Delivery:
    def __init__(self, sio: Any, sessions: Sessions):
        self.sio = sio
        self.sessions = sessions
        self.loop: Any = None  # tornado IOLoop, from the host
        # store.eventlog.EventLog (or anything with its append), or None
        self.eventlog: Any = None
        self.next_seq: Optional[Callable[[], int]] = None
        # (sid, feed key) -> the replay under way for that client and printer
        self.replaying: dict[tuple[str, str], ReplaySession] = {}
        self.budgets = Budgets(Limits(), time.monotonic)
        self._kernel_queued: dict[str, int] = {}  # eio sid -> unsent bytes in the kernel
        self._outbox: deque[Outgoing] = deque()
        self._budget_timer: Any = None
        self.direct_writes = 0  # broadcast frames written straight to a websocket
        self.queued_writes = 0  # ... and put on engine.io's queue
        self.fanout = Durations()  # per broadcast: emit to the last client's write
        self.seam_duplicates = 0  # durable events a replay had sent already: dropped
        # what went out (Prometheus, server/prom.py): messages and encoded bytes, and
        # the resumes (server/resume.py counts those)
        self.messages_out = 0
        self.bytes_out = 0
        self.replays = 0
        self.replayed_events = 0
        self.resyncs = 0
        # deflate_shared: one compressor per cohort (clients in the same rooms)
        self.shared = SharedStreams(time.monotonic)
        self._rooms_of: dict[str, set[str]] = {}
        self._on_stream: set[str] = set()  # sids whose websocket takes shared frames
        self.shared_mode = False  # deflate_shared is or was the mode (engine)

    def start(self, loop: Any) -> None:
        from tornado.ioloop import PeriodicCallback

        self.loop = loop
        self._budget_timer = PeriodicCallback(self._budget_tick, BUDGET_TICK_MS)
        loop.add_callback(self._budget_timer.start)

    def stop(self) -> None:
        if self._budget_timer is not None:
            self._budget_timer.stop()

    def forget(self, sid: str, eio_sid: Optional[str]) -> None:
        for key in [k for k in self.replaying if k[0] == sid]:
            self.replaying.pop(key, None)
        self.budgets.remove(sid)
        self.shared.leave(sid)
        self._rooms_of.pop(sid, None)
        self._on_stream.discard(sid)
        if eio_sid:
            self._kernel_queued.pop(eio_sid, None)

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

    def send_to(self, sid: str, event: str, payload: dict) -> None:
        """One message to one client, in order with the broadcasts."""
        self._enqueue(Outgoing(event, payload, sid=sid))

    def enter_room(self, sid: str, room: str) -> None:
        self.sio.manager.basic_enter_room(sid, S.NAMESPACE, room)
        self._rooms_of.setdefault(sid, set()).add(room)
        self._new_cohort(sid)

    def leave_room(self, sid: str, room: str) -> None:
        self.sio.manager.basic_leave_room(sid, S.NAMESPACE, room)
        self._rooms_of.get(sid, set()).discard(room)
        self._new_cohort(sid)

    def _new_cohort(self, sid: str) -> None:
        # other rooms, another stream: pending there until its next sync point
        if sid in self._on_stream:
            self.shared.join(sid, frozenset(self._rooms_of.get(sid, ())))

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        return asyncio.get_running_loop().call_at(to_loop_time(when), callback)

    def cancel(self, handle: Any) -> None:
        handle.cancel()

    # ~~ the ordered outbox

    def skip_queued(self, sid: str, feed: str) -> None:
        """Right before ``sid``'s fresh status for ``feed`` is queued (its join, or
        its replay's end): the printer's telemetry still waiting behind a durable
        event's commit predates it, and must not reach the client ahead of it
        (replay, then status, then live; issue 22). Durable events still go."""
        for item in self._outbox:
            if item.room is not None and item.feed == feed:
                if item.event not in DURABLE_EVENTS:
                    item.skip = item.skip or set()
                    item.skip.add(sid)

    def _enqueue(self, item: Outgoing) -> None:
        if not self._outbox and item.ready:
            self._deliver(item)
        else:
            self._outbox.append(item)

    def _durable(self, item: Outgoing) -> None:
        item.ready = True
        while self._outbox and self._outbox[0].ready:
            self._deliver(self._outbox.popleft())

    def _deliver(self, item: Outgoing) -> None:
        if item.sid is not None:
            self.send_one(item.sid, item.event, item.payload)
            return
        started, started_cpu = time.perf_counter(), time.thread_time()
        participants = list(self.sio.manager.get_participants(S.NAMESPACE, item.room))
        if not participants:
            return
        durable = item.event in DURABLE_EVENTS
        seq = item.payload.get("seq", 0)
        targets: list[str] = []
        streamed: list[tuple[str, str]] = []  # (sid, eio sid) on a shared stream
        drops: list[tuple[str, str]] = []
        clients = self.sessions.clients
        on_stream = self._on_stream
        skip = item.skip or ()
        for sid, eio_sid in participants:
            if sid in skip:  # emitted before the client's status (skip_queued)
                if sid in on_stream:
                    self.shared.diverge(sid)
                continue
            session = self.replaying.get((sid, item.feed))
            if session is not None:
                if not session.live:
                    # replaying: durable events are buffered and sent after the
                    # pages, the rest is skipped (a fresh status follows)
                    if durable:
                        session.offer_live((seq, item.event, item.payload))
                    if sid in on_stream:
                        self.shared.diverge(sid)  # it gets this later, on its own
                    continue
                if durable and not session.offer_live((seq, item.event, item.payload)):
                    # the replay sent it already: its row was read after the commit
                    # and before this, its on_durable hop, reached the loop
                    self.seam_duplicates += 1
                    if sid in on_stream:
                        self.shared.diverge(sid)
                    continue
            messages, nbytes = self._measure(eio_sid)
            verdict = self.budgets.offer(
                sid, item.event, item.payload, durable, messages, nbytes
            )
            if verdict.action is Action.SEND:
                info = clients.get(sid)
                if info is not None:
                    info.messages += 1
                # only where deflate_shared can be: no per-client check otherwise
                if (self.shared_mode or on_stream) and self._shared_ws(sid, eio_sid):
                    streamed.append((sid, eio_sid))
                else:
                    targets.append(eio_sid)
            else:
                if sid in on_stream:
                    self.shared.diverge(sid)  # held or dropped: off its stream
                if verdict.action is Action.DISCONNECT:
                    drops.append((sid, verdict.reason or "too slow"))
        if targets or streamed:
            # encoded once per broadcast, whatever the number of clients
            encoded = self.sio.packet_class(
                sio_packet.EVENT, namespace=S.NAMESPACE, data=[item.event, item.payload]
            ).encode()
            # one frame for all: UTF-8 (and deflate, where negotiated) done once
            pkt = wsframes.broadcast_packet(encoded)
            count = len(targets) + len(streamed)
            self.messages_out += count
            self.bytes_out += count * len(encoded)
            if streamed:
                targets.extend(self._send_streamed(streamed, encoded, pkt))
            self._send_all(targets, pkt)
            self.fanout.record(
                time.perf_counter() - started,
                len(targets) + len(streamed),
                time.thread_time() - started_cpu,
            )
        for sid, reason in drops:
            # over budget: the transport closes, the client comes back and resumes
            asyncio.ensure_future(self.sessions.close_transport(sid, reason))

    def _shared_ws(self, sid: str, eio_sid: str) -> bool:
        """Whether the client takes deflate_shared frames now: an upgraded websocket
        that negotiated it. The first time it does, it joins its cohort's stream
        (pending: its inflater has seen none of the stream's history)."""
        sock = self.sio.eio.sockets.get(eio_sid)
        handler = self.sessions.ws_handlers.get(eio_sid)
        eligible = (
            sock is not None
            and sock.upgraded
            and not sock.upgrading
            and wsframes.is_shared(handler)
        )
        if eligible and sid not in self._on_stream:
            self._on_stream.add(sid)
            self.shared.join(sid, frozenset(self._rooms_of.get(sid, ())))
        elif not eligible and sid in self._on_stream:
            self._on_stream.discard(sid)
            self.shared.leave(sid)
        return eligible

    def _send_streamed(
        self, streamed: list[tuple[str, str]], encoded: str, pkt: Any
    ) -> list[str]:
        """Writes one broadcast to the deflate_shared clients: once compressed per
        cohort for those synced to its stream. Returns the eio sids of the others
        (pending a sync point), which get the frame compressed on its own."""
        data = pkt.encode().utf8()
        by_cohort: dict[frozenset, list[str]] = {}
        eio_of = {}
        for sid, eio_sid in streamed:
            eio_of[sid] = eio_sid
            cohort = self.shared.cohort_of.get(sid)
            by_cohort.setdefault(cohort, []).append(sid)
        alone: list[str] = []
        for cohort, sids in by_cohort.items():
            plan = self.shared.plan(cohort, data, sids)
            if plan.synced and plan.shared is not None:
                shared = wsframes.broadcast_packet(encoded, shared=plan.shared)
                self._send_all([eio_of[sid] for sid in plan.synced], shared)
            alone.extend(eio_of[sid] for sid in plan.alone)
        return alone

    def send_one(self, sid: str, event: str, payload: dict) -> None:
        """One event to one client, through the same ordered path as broadcasts."""
        eio_sid = self.sessions.eio_sid(sid)
        if not eio_sid:
            return
        info = self.sessions.clients.get(sid)
        if info is not None:
            info.messages += 1
        encoded = self.sio.packet_class(
            sio_packet.EVENT, namespace=S.NAMESPACE, data=[event, payload]
        ).encode()
        self.messages_out += 1
        self.bytes_out += len(encoded)
        # private: on a deflate_shared websocket it must stay out of the stream
        self._send_all([eio_sid], wsframes.broadcast_packet(encoded, private=True))

    def _send_all(self, eio_sids: list[str], pkt: Any) -> None:
        """Synchronous, so consecutive broadcasts reach every client in order: a
        websocket client with nothing queued gets the frame written at once
        (``wsframes.send_direct``), any other one gets it on engine.io's queue."""
        sockets = self.sio.eio.sockets
        handlers = self.sessions.ws_handlers
        for eio_sid in eio_sids:
            sock = sockets.get(eio_sid)
            if sock is None or sock.closed:
                continue  # closed meanwhile
            if wsframes.send_direct(sock, handlers.get(eio_sid), pkt):
                self.direct_writes += 1
                continue
            # what AsyncSocket.send does, minus its ping check (engine.io's service
            # task does that) and without an await
            sock.queue.put_nowait(pkt)
            self.queued_writes += 1

    # ~~ the outbound budget

    def _measure(self, eio_sid: str, refresh: bool = False) -> tuple[int, int]:
        """What is queued for a client: engine.io packets (long-polling clients wait
        here for their next GET) and bytes not yet taken by the peer: tornado's write
        buffer plus the kernel's send queue (refreshed each budget tick, since on
        loopback the kernel buffer alone holds megabytes)."""
        socket = self.sio.eio.sockets.get(eio_sid)
        messages = socket.queue.qsize() if socket is not None else 0
        nbytes = 0
        handler = self.sessions.ws_handlers.get(eio_sid)
        if handler is not None:
            stream = getattr(getattr(handler, "ws_connection", None), "stream", None)
            buffer = getattr(stream, "_write_buffer", None)
            if buffer is not None:
                nbytes = len(buffer)
            if refresh:
                self._kernel_queued[eio_sid] = _unsent_bytes(stream)
            nbytes += self._kernel_queued.get(eio_sid, 0)
        return messages, nbytes

    def _budget_tick(self) -> None:
        clients = self.sessions.clients
        if not clients:
            return
        eio_of = {}
        for sid in clients:
            try:
                eio_of[sid] = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
            except Exception:
                continue
        send, drops = self.budgets.poll(
            lambda sid: self._measure(eio_of.get(sid) or "", refresh=True), list(eio_of)
        )
        for sid, held in send.items():
            for event, payload in held:
                # held telemetry goes out now with a fresh seq, so the client still
                # sees seq increase
                self._enqueue(Outgoing(event, self._restamp(payload), sid=sid))
        for sid, reason in drops.items():
            # the whole connection goes, so its write buffers are freed at once; the
            # client reconnects by itself and resumes
            asyncio.ensure_future(self.sessions.close_transport(sid, reason))

    def _restamp(self, payload: dict) -> dict:
        if self.next_seq is None:
            return payload
        return {**payload, "seq": self.next_seq()}

    def counters(self) -> dict:
        return {
            "messages_out": self.messages_out,
            "bytes_out": self.bytes_out,
            "replays": self.replays,
            "replayed_events": self.replayed_events,
            "resyncs": self.resyncs,
        }

    def fanout_stats(self) -> dict:
        return {
            **self.fanout.as_dict(),
            "direct_writes": self.direct_writes,
            "queued_writes": self.queued_writes,
            "shared_deflate": self.shared.stats(),
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
