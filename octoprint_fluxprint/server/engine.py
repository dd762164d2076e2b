"""The Socket.IO engine: a python-socketio ``AsyncServer`` in tornado mode that
serves the ``/ws/printing`` namespace. Host-agnostic: the host (the OctoPrint
plugin, or the standalone hub) gives it an authenticator, the printer's rooms and
state, an event log and its loop, and mounts ``route()`` wherever it serves HTTP.

The engine only wires its parts together: ``guard`` refuses, ``delivery`` sends,
``namespace`` handles the client's events, ``sessions`` knows who is connected.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable, Optional

import socketio

from ..core import ratelimit as RL
from ..core import schema as S
from ..core.handover import Handover
from .delivery import Delivery
from .feeds import Feed, FeedSink
from .guard import Authenticator, Guard
from .namespace import Namespace
from .sessions import ClientInfo, Sessions
from .tornado_handler import handler_class

# python-engineio's default is 1 MB; nothing a client legitimately sends is near this
MAX_HTTP_BUFFER_SIZE = 64 * 1024


class Engine:
    def __init__(self, authenticate: Authenticator):
        self.sio = socketio.AsyncServer(
            async_mode="tornado",
            # Origins are judged at the Socket.IO connect (auth.origin_allowed), so a
            # refused page reads "origin not allowed" in its connect_error: engine.io
            # lets every handshake through, and the handler sends CORS headers for
            # allowed origins only (a refused page cannot read a polling reply).
            cors_allowed_origins=lambda origin, environ=None: True,
            max_http_buffer_size=RL.Limits().max_message_bytes,
            namespaces=[S.NAMESPACE],  # no unauthenticated default namespace "/"
            logger=False,
            engineio_logger=False,
        )
        self.sessions = Sessions(self.sio)
        self.guard = Guard(self.sio, self.sessions, authenticate)
        self.delivery = Delivery(self.sio, self.sessions)
        self.namespace = Namespace(self.sio, self.sessions, self.guard, self.delivery)
        self._mode = "off"  # websocket permessage-deflate mode, from the settings
        self.loop: Any = None  # tornado IOLoop, captured by the host on its main thread
        self.printer: Any = None  # core.printer.PrinterState
        self._handover: Optional[Handover] = None  # from the host's other threads

    # ~~ wiring

    def attach(
        self,
        loop: Any,
        printer: Any,
        eventlog: Any = None,
        last_seq: Optional[Callable[[], int]] = None,
        history: Optional[Callable[[], list]] = None,
    ) -> None:
        """One printer (the plugin): its state, sinking into the delivery directly,
        and its event log."""
        self.printer = printer
        self.sessions.stamp = printer.stamp
        self.delivery.eventlog = eventlog
        self.delivery.next_seq = printer.next_seq
        self.add_feed(
            Feed(
                key="",
                state=printer,
                log=eventlog,
                issued=last_seq or (lambda: 0),
                history=history or list,
            )
        )
        self.start(loop)

    def start(self, loop: Any, stamp: Optional[Callable[[dict], dict]] = None) -> None:
        """Many printers (the hub): ``add_feed`` each, before or after this."""
        self.loop = loop
        self._handover = Handover(loop.asyncio_loop.call_soon_threadsafe)
        if stamp is not None:
            self.sessions.stamp = stamp
        self.delivery.start(loop)

    def add_feed(self, feed: Feed) -> None:
        # the printer's rooms see a client's cohort, never the client
        feed.state.subscriber_of = self.delivery.cohorts.subscriber_of
        self.namespace.feeds[feed.key] = feed

    def feed_sink(self, key: str, log: Any) -> FeedSink:
        """The ``core.rooms.Sink`` for a printer of a many-printer host."""
        return FeedSink(self.delivery, key, log)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Thread-safe, O(1): run ``fn(*args)`` on the IOLoop, in order."""
        handover = self._handover
        if handover is not None:
            handover.submit(fn, *args)

    def route(self, path: str = "/socket.io/") -> tuple[str, type, dict]:
        """The handler for engine.io's path, relative to where the host mounts it
        (OctoPrint prefixes the plugin's routes; the hub mounts it at the root)."""
        handler = handler_class(self.sio, self.guard, self.sessions, self._compression)
        return (re.escape(path.rstrip("/")) + "/.*", handler, {})

    def _compression(self) -> str:
        return self._mode

    @property
    def compression(self) -> str:
        return self._mode

    @compression.setter
    def compression(self, mode: str) -> None:
        # for new connections: each keeps what it negotiated (server/fanout.py)
        self._mode = mode

    def body_size(self) -> tuple[str, str, int]:
        return ("POST", r"/socket.io/.*", MAX_HTTP_BUFFER_SIZE)

    # ~~ what the host asks (on the loop)

    @property
    def clients(self) -> dict[str, ClientInfo]:
        return self.sessions.clients

    @property
    def budgets(self) -> Any:
        return self.delivery.budgets

    def set_security(self, limits: RL.Limits, allowed_origins: list[str]) -> None:
        self.guard.set_security(limits, allowed_origins)

    async def drop(self, sid: str, reason: str) -> None:
        await self.sessions.drop(sid, reason)

    async def reap(self, now: float) -> int:
        return await self.guard.reap(now)

    async def close_all(self, reason: str) -> None:
        """Says goodbye to every client (the host is shutting down); they reconnect
        by themselves once it is back."""
        self.delivery.stop()
        await asyncio.gather(
            *(self.sessions.close_transport(sid, reason) for sid in list(self.clients)),
            return_exceptions=True,
        )
        await asyncio.sleep(0.2)  # let the websockets flush their last frames

    # ~~ introspection

    def client_count(self) -> int:
        return len(self.clients)

    def client_table(self) -> list[dict]:
        out = []
        for sid, info in list(self.clients.items()):
            try:
                transport = self.sio.transport(sid, namespace=S.NAMESPACE)
            except Exception:
                transport = "?"
            row = {
                "id": sid,
                "user": info.user,
                "remote": info.remote,
                "transport": transport,
                "since": info.since,
                "messages": info.messages,
            }
            sub = self.delivery.cohorts.subscriber_of(sid)
            if self.printer is not None and sub in self.printer.subs:
                row.update(self.printer.describe(sub))
                row["batch"] = self.delivery.cohorts.by_id[sub].view.batch
            out.append(row)
        return out

    def security_stats(self) -> dict:
        return self.guard.stats_dict()

    def fanout_stats(self) -> dict:
        return self.delivery.fanout_stats()
