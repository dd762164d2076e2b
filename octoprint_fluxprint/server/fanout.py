"""The fan-out: one frame, built and compressed once, written to many clients with
one ``send()`` each.

Each client of a cohort (server/cohorts.py) keeps a ``Link``: its engine.io socket,
its websocket and the TCP socket under it, and how its frames are written, found
once when its websocket is up instead of per message. Per message and client what
is left is a few attribute checks and the write:

- nothing queued anywhere for it (engine.io's queue, tornado's write buffer) and
  under its budget (core/budget.py, ``clear``): the frame goes straight to the
  kernel (``socket.send``), the rest of a partial send to tornado's buffer;
- otherwise the old path: the budget decides (hold telemetry, disconnect), and the
  packet takes engine.io's queue (polling, upgrading, something queued) or tornado's
  buffer, so a client's frames stay in order.

``deflate_shared`` clients (server/shared_deflate.py) get the cohort's stream frame
when they have every earlier frame of it (``CohortStream``), the message compressed
on its own otherwise, until the stream's next sync point.
"""

from __future__ import annotations

from typing import Any, Optional

from tornado.iostream import IOStream

from . import wsframes
from .shared_deflate import CohortStream

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
        self.direct_writes = 0
        self.queued_writes = 0

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
        if stream is None or stream._write_buffer._size or stream._write_futures:
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
        pkt: Any,
        encoded: str,
        stream: Optional[CohortStream],
        now: float,
    ) -> int:
        """One message to ``members`` (their links found, their budgets passed):
        the stream's frame to the synced deflate_shared ones, the message on its own
        to the others. Returns how many writes were made."""
        text = pkt.encode()
        shared_pkt = shared_frame = None
        if stream is not None:
            on_stream = [m for m in members if m.link.mode == SHARED]
            body = stream.body(text.utf8(), on_stream, now) if on_stream else None
            if body is not None:
                shared_pkt = wsframes.broadcast_packet(encoded, shared=body, like=text)
                shared_frame = shared_pkt.encode().shared
        written = 0
        write = self.write
        for m in members:
            link = m.link
            mode = link.mode
            if mode == SHARED:
                if shared_pkt is not None and m.shared_ok:
                    ok = write(link, shared_pkt, shared_frame)
                else:
                    ok = write(link, pkt, text.frame(True))
            elif mode == FRAMES:
                ok = write(link, pkt, text.frame(link.deflate))
            else:
                ok = write(link, pkt, None)
            if ok:
                written += 1
                m.info.messages += 1
        return written

    def write_private(self, link: Link, pkt: Any) -> bool:
        """A message for this client only: never on a deflate_shared stream (RSV1
        clear there), in order with its broadcasts."""
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
        if link.mode == QUEUE or sock.queue._unfinished_tasks or frame is None:
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
        conn = link.conn
        if conn.client_terminated or conn.server_terminated:
            return False
        stream = link.stream
        if stream._closed:
            return False
        if stream._write_buffer._size or stream._write_futures or stream._connecting:
            stream.write(frame)  # behind what tornado holds
        else:
            try:
                sent = link.raw.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                return False  # tornado's next write runs into it and closes
            if sent < len(frame):
                stream.write(memoryview(frame)[sent:])
        self.direct_writes += 1
        return True
