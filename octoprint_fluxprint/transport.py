"""The Socket.IO transport: a python-socketio ``AsyncServer`` in tornado mode, served
on OctoPrint's own port through the ``octoprint.server.http.routes`` hook.

This is the only module that touches socketio, engineio or tornado. It implements
the hub's ``Sink`` and hands work from OctoPrint's threads to the IOLoop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet
from socketio.exceptions import ConnectionRefusedError

from . import schema as S
from .compression import compression_options
from .hub import Hub

_logger = logging.getLogger(__name__)

# python-engineio's default is 1 MB; nothing a client legitimately sends is near this
MAX_HTTP_BUFFER_SIZE = 64 * 1024


@dataclass
class ClientInfo:
    sid: str
    user: str
    remote: str
    since: float
    messages: int = 0
    extra: dict = field(default_factory=dict)


class Clock:
    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    @staticmethod
    def wall_ms() -> int:
        return time.time_ns() // 1_000_000

    @staticmethod
    def wall_ns() -> int:
        return time.time_ns()


def remote_address(environ: Mapping[str, Any]) -> str:
    """The real peer: engineio's tornado driver puts 127.0.0.1 into REMOTE_ADDR."""
    handler = environ.get("tornado.handler")
    request = getattr(handler, "request", None)
    remote = getattr(request, "remote_ip", None)
    return remote or environ.get("REMOTE_ADDR") or "?"


Authenticator = Callable[[Any, Mapping[str, Any]], Any]


class Transport:
    """Owns the AsyncServer, its tornado handler and the thread hand-over."""

    def __init__(self, authenticate: Authenticator):
        self._authenticate = authenticate
        self.sio = socketio.AsyncServer(
            async_mode="tornado",
            cors_allowed_origins=None,  # same origin only for browsers
            max_http_buffer_size=MAX_HTTP_BUFFER_SIZE,
            logger=False,
            engineio_logger=False,
        )
        self.compression = "off"  # websocket permessage-deflate mode, from the settings
        self.loop: Any = None  # tornado IOLoop, captured in on_startup
        self.hub: Optional[Hub] = None
        self.clients: dict[str, ClientInfo] = {}
        self._register()

    # ~~ wiring

    def attach(self, loop: Any, hub: Hub) -> None:
        self.loop = loop
        self.hub = hub

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Thread-safe, O(1): run ``fn(*args)`` on the IOLoop."""
        loop = self.loop
        if loop is not None:
            loop.add_callback(fn, *args)

    def route(self) -> tuple[str, type, dict]:
        return (r"/socket.io/.*", self._handler_class(), {})

    def _handler_class(self) -> type:
        base = socketio.get_tornado_handler(self.sio)
        transport = self

        class FluxPrintHandler(base):  # type: ignore[misc, valid-type]
            def get_compression_options(self):
                # engineio always offers permessage-deflate at tornado's defaults
                # (~256 KiB of zlib state per connection); the setting decides
                return compression_options(transport.compression)

        return FluxPrintHandler

    def body_size(self) -> tuple[str, str, int]:
        return ("POST", r"/socket.io/.*", MAX_HTTP_BUFFER_SIZE)

    # ~~ Sink for the hub (runs on the loop)

    def emit(self, event: str, payload: dict, room: str) -> None:
        participants = [
            eio_sid
            for _sid, eio_sid in self.sio.manager.get_participants(S.NAMESPACE, room)
        ]
        if not participants:
            return
        # encoded once per broadcast, whatever the number of clients
        encoded = self.sio.packet_class(
            sio_packet.EVENT, namespace=S.NAMESPACE, data=[event, payload]
        ).encode()
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        for sid, _ in self.sio.manager.get_participants(S.NAMESPACE, room):
            info = self.clients.get(sid)
            if info is not None:
                info.messages += 1
        asyncio.ensure_future(self._send_all(participants, pkt))

    async def _send_all(self, eio_sids: list[str], pkt: Any) -> None:
        send = self.sio.eio.send_packet
        for eio_sid in eio_sids:
            try:
                await send(eio_sid, pkt)
            except Exception:  # a socket that closed meanwhile
                _logger.debug("Dropped a packet for closed socket", exc_info=True)

    def enter_room(self, sid: str, room: str) -> None:
        self.sio.manager.basic_enter_room(sid, S.NAMESPACE, room)

    def leave_room(self, sid: str, room: str) -> None:
        self.sio.manager.basic_leave_room(sid, S.NAMESPACE, room)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        return asyncio.get_running_loop().call_at(_to_loop_time(when), callback)

    def cancel(self, handle: Any) -> None:
        handle.cancel()

    # ~~ Socket.IO handlers

    def _register(self) -> None:
        ns = S.NAMESPACE
        self.sio.on("connect", self._on_connect, namespace=ns)
        self.sio.on("disconnect", self._on_disconnect, namespace=ns)
        self.sio.on("printer:subscribe", self._on_subscribe, namespace=ns)
        self.sio.on("printer:unsubscribe", self._on_unsubscribe, namespace=ns)
        self.sio.on("printer:request_status", self._on_request_status, namespace=ns)
        self.sio.on("*", self._on_unknown, namespace=ns)

    async def _on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        remote = remote_address(environ)
        if self.hub is None:
            raise ConnectionRefusedError("server is starting")
        decision = self._authenticate(auth, environ)
        if not decision.ok:
            _logger.info("Refused a client from %s: %s", remote, decision.reason)
            raise ConnectionRefusedError(decision.reason)
        user = decision.user.get_id() if hasattr(decision.user, "get_id") else "?"
        self.clients[sid] = ClientInfo(
            sid=sid, user=user, remote=remote, since=time.time()
        )
        _logger.info("Client %s connected from %s as %s", sid, remote, user)
        asyncio.get_running_loop().call_soon(self._after_connect, sid, 0)

    def _after_connect(self, sid: str, attempt: int) -> None:
        # runs once python-socketio has sent the CONNECT packet, so the first
        # status cannot overtake it
        if sid not in self.clients or self.hub is None:
            return
        if not self.sio.manager.is_connected(sid, S.NAMESPACE):
            if attempt < 100:
                asyncio.get_running_loop().call_later(
                    0.01, self._after_connect, sid, attempt + 1
                )
            return
        status = self.hub.add_client(sid)
        self._send_to(sid, S.EV_STATUS, status)

    def _send_to(self, sid: str, event: str, payload: dict) -> None:
        info = self.clients.get(sid)
        if info is not None:
            info.messages += 1
        asyncio.ensure_future(
            self.sio.emit(event, payload, to=sid, namespace=S.NAMESPACE)
        )

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        info = self.clients.pop(sid, None)
        if self.hub is not None:
            self.hub.remove_client(sid)
        if info is not None:
            _logger.info("Client %s from %s disconnected (%s)", sid, info.remote, reason)

    def _ready(self, sid: str) -> Optional[dict]:
        if self.hub is None or sid not in self.hub.subs:
            return {"ok": False, "error": "not ready"}
        return None

    async def _on_subscribe(self, sid: str, data: Any = None) -> dict:
        err = self._ready(sid)
        if err:
            return err
        try:
            request = S.parse_client_payload(S.SubscribeRequest, data)
        except S.ClientError as exc:
            return {"ok": False, "error": str(exc)}
        assert self.hub is not None
        return {"ok": True, **self.hub.subscribe(sid, request)}

    async def _on_unsubscribe(self, sid: str, data: Any = None) -> dict:
        err = self._ready(sid)
        if err:
            return err
        try:
            request = S.parse_client_payload(S.UnsubscribeRequest, data)
        except S.ClientError as exc:
            return {"ok": False, "error": str(exc)}
        assert self.hub is not None
        return {"ok": True, **self.hub.unsubscribe(sid, request)}

    async def _on_request_status(self, sid: str, data: Any = None) -> dict:
        err = self._ready(sid)
        if err:
            return err
        if data not in (None, {}):
            return {"ok": False, "error": "printer:request_status takes no payload"}
        assert self.hub is not None
        return {"ok": True, "status": self.hub.status_payload()}

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict:
        return {"ok": False, "error": "unknown event"}

    # ~~ life cycle

    async def close_all(self, reason: str) -> None:
        for sid in list(self.clients):
            try:
                await self.sio.disconnect(sid, namespace=S.NAMESPACE)
            except Exception:
                _logger.debug("disconnect failed", exc_info=True)

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
            if self.hub is not None and sid in self.hub.subs:
                row.update(self.hub.describe(sid))
            out.append(row)
        return out


def _to_loop_time(when: float) -> float:
    # hub deadlines are time.monotonic(); asyncio's loop.time() is monotonic too,
    # but convert explicitly in case a loop uses another clock
    loop = asyncio.get_running_loop()
    return loop.time() + (when - time.monotonic())
