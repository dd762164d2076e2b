"""The fan-out: one frame, built and compressed once, written to many clients with
one ``send()`` each, or fewer.

Each client of a cohort (server/cohorts.py) keeps a ``Link``: its engine.io socket,
its websocket and the TCP socket under it, and how its frames are written, found
once when its websocket is up instead of per message. Per message and client what
is left is a few attribute checks and the write:

- nothing queued anywhere for it (engine.io's queue, tornado's write buffer) and
  under its budget (core/budget.py, ``clear``): the frame is *corked*: it goes
  straight to the kernel at the end of the loop turn (``socket.send``), with every
  other frame the client got in the same turn (a busy loop handles several
  messages per turn: one system call for all of them, each still its own
  websocket frame); the rest of a partial send goes to tornado's buffer, and any
  other write to the client sends the corked frames first (``wsframes.uncork``);
- otherwise the old path: the budget decides (hold telemetry, disconnect), and the
  packet takes engine.io's queue (polling, upgrading, something queued) or tornado's
  buffer, so a client's frames stay in order.

``deflate_shared`` clients (server/shared_deflate.py) get the cohort's stream frame
when they have every earlier frame of it (``CohortStream``), the message compressed
on its own otherwise, until the stream's next sync point.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable, Optional

from tornado.iostream import IOStream

from ..core import schema as S
from ..core.ticks import Item
from . import wsframes
from .shared_deflate import CohortStream

_logger = logging.getLogger(__name__)

QUEUE, SHARED, FRAMES, TORNADO = range(4)  # how a client's frames are written


class Link:
    """How to reach one client; found again until its websocket is up."""

    __slots__ = ("conn", "deflate", "handler", "mode", "raw", "sock", "stream")

    def __init__(self, sock: Any, handler: Any):
        self.sock = sock
        self.handler = handler
        self.mode = QUEUE
        self.conn = self.stream = self.raw = None
        self.deflate = False
        conn = getattr(handler, "ws_connection", None)
        if handler is None or conn is None or not sock.upgraded or sock.upgrading:
            return  # polling, or not upgraded yet: engine.io's queue
        self.conn = conn
        if getattr(conn, "_fp_shared", False):
            self.mode, self.deflate = SHARED, True
        else:
            cached = wsframes.shared_deflate(conn)
            if cached is None:
                self.mode = TORNADO  # per-client deflate: tornado compresses
                return
            self.mode, self.deflate = FRAMES, cached
        stream = getattr(conn, "stream", None)
        if type(stream) is IOStream and hasattr(stream, "_write_buffer"):
            self.stream = stream
            self.raw = stream.socket
            # every frame is a whole message, written once: no Nagle delay (a small
            # frame would wait for the peer's delayed ACK of the one before)
            stream.set_nodelay(True)
            conn._fp_corked = None
        else:
            self.mode = TORNADO  # TLS or an unknown stream: tornado writes

    def unsent(self) -> int:
        """Bytes tornado holds for the client (0 for engine.io's queue)."""
        stream = self.stream
        if stream is None:
            stream = getattr(self.conn, "stream", None)
        buffer = getattr(stream, "_write_buffer", None)
        return len(buffer) if buffer is not None else 0


class Writer:
    """Writes frames to clients; counts what it did."""

    def __init__(self, sio: Any, sessions: Any):
        self.sio = sio
        self.sessions = sessions
        self.direct_writes = 0  # frames to the kernel without engine.io's queue
        self.queued_writes = 0
        self.sends = 0  # system calls that wrote corked frames
        self.pace_until = 0.0  # perf_counter: no turn's messages before (uncork)
        self._corked: list[Any] = []  # connections with corked frames

    def link(self, member: Any) -> Optional[Link]:
        """The client's link, found once its websocket is up (None: gone)."""
        link = member.link
        if link is not None and link.mode != QUEUE:
            return link
        sock = self.sio.eio.sockets.get(member.eio_sid)
        if sock is None:
            return None
        link = member.link = Link(sock, self.sessions.ws_handlers.get(member.eio_sid))
        return link

    def clear(self, member: Any, link: Link) -> bool:
        """Nothing queued for the client and under its budget: the fast path."""
        sock = link.sock
        if sock.closed or sock.closing or sock.queue._unfinished_tasks:
            return False
        stream = link.stream
        if stream is None or stream._closed:
            return False
        if stream._write_buffer._size or stream._write_futures:
            return False
        return member.budget.clear(0, member.kernel_queued)

    def measure(self, member: Any, link: Optional[Link]) -> tuple[int, int]:
        """(engine.io packets queued, bytes unsent) for the budget."""
        if link is None:
            return 0, 0
        return link.sock.queue.qsize(), link.unsent() + member.kernel_queued

    def send(
        self,
        members: list,
        outs: list,
        stream: Optional[CohortStream],
        now: float,
        gate: Callable[[Any, Link, Any], bool] = lambda m, link, out: True,
    ) -> int:
        """Messages ``outs`` (each with ``packet()`` and ``encoded``), in order, to
        ``members``: a client that is clear gets them all in one write (corked, one
        system call a loop turn), the stream's frames if it is synced to the
        cohort's deflate_shared stream, each message compressed on its own if not.
        A client with something queued or over its budget gets them one by one,
        each through ``gate`` (its budget: whether it gets that one now). Returns
        the messages written, summed over the clients."""
        fast: list = []  # clear: corked straight away
        slow: list = []  # one by one through write(): engine.io's queue, tornado's
        for m in members:
            link = m.link
            if link is None or link.mode == QUEUE:
                link = self.link(m)
                if link is None:
                    continue  # gone
            st = link.stream
            if st is not None and st._closed:
                continue  # gone: its disconnect is on its way (tornado dropped
                # the stream's buffers)
            b = m.budget
            if (
                st is not None
                and not st._write_buffer._size
                and not st._write_futures
                and not link.sock.queue._unfinished_tasks
                and b.over_since is None
                and not b.held
                and b.disconnect_reason is None
                and m.kernel_queued <= b.limits.max_bytes
            ):
                fast.append(m)
            else:
                slow.append(m)
        pkts = [o.packet() for o in outs]
        texts = [p.encode() for p in pkts]
        k = len(outs)
        written = 0
        if fast:
            shared = None
            if stream is not None:
                on_stream = [m for m in fast if m.link.mode == SHARED]
                if on_stream:
                    bodies = stream.bodies([t.utf8() for t in texts], on_stream, now)
                    if bodies is not None:
                        shared = b"".join(wsframes.shared_frame(b) for b in bodies)
            alone = {}  # deflate or not -> the messages' own frames, joined
            corked = self._corked
            armed = bool(corked)
            for m in fast:
                link = m.link
                sock, conn = link.sock, link.conn
                if sock.closed or sock.closing or conn.server_terminated:
                    continue
                if link.mode == SHARED and shared is not None and m.shared_ok:
                    data = shared
                else:
                    flag = link.deflate
                    data = alone.get(flag)
                    if data is None:
                        data = alone[flag] = b"".join(t.frame(flag) for t in texts)
                pending = conn._fp_corked
                if pending is None:
                    conn._fp_corked = [data]
                    corked.append(conn)
                else:
                    pending.append(data)
                m.info.messages += k
                written += k
            if corked and not armed:
                asyncio.get_running_loop().call_soon(self.uncork)
            self.direct_writes += written
        write = self.write
        for m in slow:
            link = m.link
            for pkt, text, out in zip(pkts, texts, outs):
                if not gate(m, link, out):
                    continue
                if link.mode == SHARED:
                    ok = write(link, pkt, text.frame(True))
                elif link.mode == FRAMES:
                    ok = write(link, pkt, text.frame(link.deflate))
                else:
                    ok = write(link, pkt, None)
                if ok:
                    written += 1
                    m.info.messages += 1
        return written

    def write_private(self, link: Link, encoded: str, synced: bool = True) -> bool:
        """A message for this client only, in order with its broadcasts. On a
        deflate_shared websocket it stays off the stream: with RSV1 clear while the
        client is synced to it; compressed on its own while it is not (it waits for
        the stream's next sync point anyway: its statuses on connect, a replay)."""
        if link.mode == SHARED and not synced:
            pkt = wsframes.broadcast_packet(encoded)
            return self.write(link, pkt, pkt.encode().frame(True))
        pkt = wsframes.broadcast_packet(encoded, True)
        text = pkt.encode()
        if link.mode == SHARED:
            return self.write(link, pkt, text.frame(False))
        if link.mode == FRAMES:
            return self.write(link, pkt, text.frame(link.deflate))
        return self.write(link, pkt, None)

    def write(self, link: Link, pkt: Any, frame: Optional[bytes]) -> bool:
        """One frame to one client, in order with what it has queued. ``frame``:
        the bytes for a websocket of the cached-frame kinds (SHARED, FRAMES)."""
        sock = link.sock
        if sock.closed or sock.closing:
            return False
        conn = link.conn
        if link.mode == QUEUE or sock.queue._unfinished_tasks or frame is None:
            if conn is not None and getattr(conn, "_fp_corked", None):
                wsframes.uncork(conn)  # before anything written another way
            if link.mode == TORNADO and not sock.queue._unfinished_tasks:
                try:
                    link.handler.write_message(pkt.encode())
                    self.direct_writes += 1
                    return True
                except Exception:  # closed meanwhile: engine.io notices
                    return False
            sock.queue.put_nowait(pkt)  # what AsyncSocket.send does, minus its await
            self.queued_writes += 1
            return True
        if conn.client_terminated or conn.server_terminated:
            return False
        stream = link.stream
        if stream._closed:
            return False
        corked = conn._fp_corked
        if corked is not None:
            corked.append(frame)
        elif stream._write_buffer._size or stream._write_futures or stream._connecting:
            stream.write(frame)  # behind what tornado holds
        else:
            conn._fp_corked = [frame]
            if not self._corked:
                asyncio.get_running_loop().call_soon(self.uncork)
            self._corked.append(conn)
        self.direct_writes += 1
        return True

    def uncork(self) -> None:
        """The end of the loop turn: every corked frame to the kernel, one system
        call per client. Writing takes the loop for as long again before the next
        turn's messages go (``pace_until``): a burst of messages arriving one by one
        goes out in a few writes per client, not one each, and the loop stays free
        for half the time whatever the load (at a few clients, microseconds)."""
        started = time.perf_counter()
        corked, self._corked = self._corked, []
        for conn in corked:
            try:
                if wsframes.uncork(conn):
                    self.sends += 1
            except Exception:  # one socket's failure must not hold the others
                _logger.exception("Writing corked frames failed")
        ended = time.perf_counter()
        self.pace_until = ended + (ended - started)


def encode_event(event: str, payload_json: str) -> str:
    """The Socket.IO EVENT packet, as python-socketio encodes it."""
    return f'2{S.NAMESPACE},["{event}",{payload_json}]'


def item_json(item: Item) -> str:
    if item.json is None:
        item.json = json.dumps(item.payload, separators=(",", ":"))
    return item.json


class Built:
    """A message built here (a batch), as ``Writer.send`` takes it."""

    __slots__ = ("_pkt", "encoded")

    def __init__(self, encoded: str):
        self.encoded = encoded
        self._pkt = wsframes.broadcast_packet(encoded)

    def packet(self) -> Any:
        return self._pkt
