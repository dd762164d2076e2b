"""The Socket.IO transport: a python-socketio ``AsyncServer`` in tornado mode, served
on OctoPrint's own port through the ``octoprint.server.http.routes`` hook.

This is the only module that touches socketio, engineio or tornado. It implements
the hub's ``Sink`` and hands work from OctoPrint's threads to the IOLoop.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import socketio

try:  # the kernel send queue is measured where the platform allows it
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None  # type: ignore[assignment]
from socketio import packet as sio_packet
from socketio.exceptions import ConnectionRefusedError

from . import auth as A
from . import ratelimit as RL
from . import schema as S
from . import wire, wsframes
from .budget import Action, Budgets, Limits
from .compression import compression_options
from .eventlog import EventLog, rows_payloads
from .handover import Handover
from .hub import Hub
from .logthrottle import LogThrottle
from .metrics import Durations
from .replay import DURABLE_EVENTS, Plan, ReplaySession, parse_since, plan_resume

_logger = logging.getLogger(__name__)

# python-engineio's default is 1 MB; nothing a client legitimately sends is near this
MAX_HTTP_BUFFER_SIZE = 64 * 1024
REPLAY_PAGE = 500
BUDGET_TICK_MS = 500


@dataclass
class Outgoing:
    """One emission waiting its turn: durable events wait for their commit, and
    everything after them waits too, so each client sees seq in emission order."""

    event: str
    payload: dict
    room: Optional[str] = None  # a room, or
    sid: Optional[str] = None  # one client
    ready: bool = True


@dataclass
class ClientInfo:
    sid: str
    user: str
    remote: str
    since: float
    messages: int = 0
    extra: dict = field(default_factory=dict)
    # security: client->server rate limiter, and what the client authenticated
    # with (re-checked by the plugin's sweep; never logged)
    limiter: Optional[RL.RateLimiter] = field(default=None, repr=False)
    credential: Any = field(default=None, repr=False)


@dataclass
class SecurityStats:
    """Counters for the detailed health view (no keys, no session ids)."""

    refused: dict = field(default_factory=dict)  # reason -> count
    closed: dict = field(default_factory=dict)  # reason -> count
    malformed: int = 0
    rate_limited: int = 0
    reaped: int = 0  # engine.io sessions that never joined the namespace
    busy: int = 0  # handshakes refused because of too many engine.io sessions

    @staticmethod
    def bump(table: dict, key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def as_dict(self) -> dict:
        return {
            "refused": dict(self.refused),
            "closed": dict(self.closed),
            "malformed": self.malformed,
            "rate_limited": self.rate_limited,
            "reaped": self.reaped,
            "busy": self.busy,
        }


HANDSHAKE_TIMEOUT = 10.0  # s an engine.io session may stay without joining
MAX_CONNECT_ATTEMPTS = 3  # refused Socket.IO CONNECTs per engine.io session


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


REFUSAL_LOG_WINDOW = 60.0  # seconds between two log lines for one address and reason

Authenticator = Callable[[Any, Mapping[str, Any]], Any]


class Transport:
    """Owns the AsyncServer, its tornado handler and the thread hand-over."""

    def __init__(self, authenticate: Authenticator):
        self._authenticate = authenticate
        self.limits = RL.Limits()  # from the settings (plugin: _apply_security)
        self.allowed_origins: list[str] = []  # normalized, beside OctoPrint's own
        self.stats = SecurityStats()
        self._pending: dict[str, float] = {}  # eio sid -> first seen without joining
        self._attempts: dict[str, int] = {}  # eio sid -> refused CONNECTs
        self.sio = socketio.AsyncServer(
            async_mode="tornado",
            # Origins are judged at the Socket.IO connect (auth.origin_allowed), so a
            # refused page reads "origin not allowed" in its connect_error: engine.io
            # lets every handshake through, and the handler below sends CORS headers
            # for allowed origins only (a refused page cannot read a polling reply).
            cors_allowed_origins=lambda origin, environ=None: True,
            max_http_buffer_size=self.limits.max_message_bytes,
            namespaces=[S.NAMESPACE],  # no unauthenticated default namespace "/"
            logger=False,
            engineio_logger=False,
        )
        # every Engine.IO message passes our checks before python-socketio's parser
        self._sio_message = self.sio._handle_eio_message
        self.sio.eio.on("message", self._guard_message)
        self.compression = "off"  # websocket permessage-deflate mode, from the settings
        self.loop: Any = None  # tornado IOLoop, captured in on_startup
        self.hub: Optional[Hub] = None
        self.eventlog: Optional[EventLog] = None
        self.next_seq: Optional[Callable[[], int]] = None
        self.last_seq: Callable[[], int] = lambda: 0
        self.history: Callable[[], list] = list
        self.clients: dict[str, ClientInfo] = {}
        self.replaying: dict[str, ReplaySession] = {}
        self.budgets = Budgets(Limits(), time.monotonic)
        self.ws_handlers: dict[str, Any] = {}  # eio sid -> tornado websocket handler
        self._kernel_queued: dict[str, int] = {}  # eio sid -> unsent bytes in the kernel
        self._outbox: deque[Outgoing] = deque()
        self._budget_timer: Any = None
        self._handover: Optional[Handover] = None  # from OctoPrint's threads
        self.direct_writes = 0  # broadcast frames written straight to a websocket
        self.queued_writes = 0  # ... and put on engine.io's queue
        self.fanout = Durations()  # per broadcast: emit to the last client's write
        self._refusals_logged = LogThrottle(REFUSAL_LOG_WINDOW, time.monotonic)
        self._register()

    # ~~ wiring

    def attach(
        self,
        loop: Any,
        hub: Hub,
        eventlog: Optional[EventLog] = None,
        last_seq: Optional[Callable[[], int]] = None,
        history: Optional[Callable[[], list]] = None,
    ) -> None:
        self.loop = loop
        self._handover = Handover(loop.asyncio_loop.call_soon_threadsafe)
        self.hub = hub
        self.eventlog = eventlog
        self.next_seq = hub.next_seq
        if last_seq is not None:
            self.last_seq = last_seq
        if history is not None:
            self.history = history
        from tornado.ioloop import PeriodicCallback

        self._budget_timer = PeriodicCallback(self._budget_tick, BUDGET_TICK_MS)
        loop.add_callback(self._budget_timer.start)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Thread-safe, O(1): run ``fn(*args)`` on the IOLoop, in order."""
        handover = self._handover
        if handover is not None:
            handover.submit(fn, *args)

    def route(self) -> tuple[str, type, dict]:
        return (r"/socket.io/.*", self._handler_class(), {})

    def _handler_class(self) -> type:
        base = socketio.get_tornado_handler(self.sio)
        transport = self

        class FluxPrintHandler(wsframes.FramesHandlerMixin, base):  # type: ignore[misc, valid-type]
            async def open(self, *args, **kwargs):
                # a polling client upgrading names its engine.io sid in the query;
                # the write buffer of this handler is what the outbound budget measures
                eio_sid = self.get_query_argument("sid", None)
                if eio_sid:
                    transport.ws_handlers[eio_sid] = self
                await super().open(*args, **kwargs)

            def get_compression_options(self):
                # engineio always offers permessage-deflate at tornado's defaults
                # (~256 KiB of zlib state per connection); the setting decides
                return compression_options(transport.compression)

            # ~~ security: cheap refusals before engine.io sees a request

            def check_origin(self, origin):
                # judged at the Socket.IO connect, where the refusal has a message
                return True

            @property
            def max_message_size(self):
                # tornado closes a websocket (1009) whose message is larger
                return transport.limits.max_message_bytes

            def set_header(self, name, value):
                # CORS answers for OctoPrint's own origin and the allowed ones only
                if name == "Access-Control-Allow-Origin" and not transport.cors_ok(
                    self.request
                ):
                    return
                super().set_header(name, value)

            async def get(self, *args, **kwargs):
                if not self.get_query_argument("sid", None) and transport.busy():
                    transport.stats.busy += 1
                    self.set_status(503)
                    self.finish("too many connections")
                    return
                await super().get(*args, **kwargs)

            async def post(self, *args, **kwargs):
                error = wire.check_polling_body(
                    self.request.body, transport.limits.max_message_bytes
                )
                if error:
                    transport.stats.malformed += 1
                    eio_sid = self.get_query_argument("sid", None)
                    if eio_sid and eio_sid in transport.sio.eio.sockets:
                        await transport._close_eio(eio_sid)
                    self.set_status(400)
                    self.finish(error)
                    return
                await super().post(*args, **kwargs)

            async def on_message(self, message):
                error = wire.check_eio_text(message, transport.limits.max_message_bytes)
                if error is None and not transport.frame_ok(self):
                    error = "rate limited"
                if error:
                    transport.stats.malformed += 1
                    self.close(1008, error)
                    return
                await super().on_message(message)

        return FluxPrintHandler

    # ~~ security (runs on the loop)

    def set_security(self, limits: RL.Limits, allowed_origins: list[str]) -> None:
        """New settings apply at once, to connected clients too."""
        self.limits = limits
        self.allowed_origins = list(allowed_origins)
        self.sio.eio.max_http_buffer_size = limits.max_message_bytes
        for info in self.clients.values():
            if info.limiter is not None:
                info.limiter.reconfigure(limits.rate)

    def cors_ok(self, request: Any) -> bool:
        origin = request.headers.get("Origin")
        if not origin:
            return False
        environ = {
            "HTTP_ORIGIN": origin,
            "HTTP_HOST": request.headers.get("Host"),
            "HTTP_X_FORWARDED_HOST": request.headers.get("X-Forwarded-Host"),
            "HTTP_X_FORWARDED_PROTO": request.headers.get("X-Forwarded-Proto"),
            "wsgi.url_scheme": request.protocol,
        }
        return A.origin_allowed(environ, self.allowed_origins)

    def busy(self) -> bool:
        """Too many engine.io sessions (joined or not) to accept another handshake."""
        cap = 2 * self.limits.max_connections + 16
        return len(self.sio.eio.sockets) >= cap

    def frame_ok(self, handler: Any) -> bool:
        """A coarse per-websocket frame budget (engine.io pings, pongs and messages)
        ahead of the per-client event bucket: several times the event rate."""
        bucket = getattr(handler, "_fluxprint_frames", None)
        if bucket is None:
            rate = self.limits.rate
            # roomier than the event bucket plus its refusal window, so a flooding
            # client is cut off by the event limiter, which says why
            bucket = handler._fluxprint_frames = RL.TokenBucket(
                2 * (rate.burst + rate.disconnect_after) + 64,
                4 * rate.per_second + 32,
                time.monotonic,
            )
        return bucket.take()

    async def _guard_message(self, eio_sid: str, data: Any) -> None:
        """Every Engine.IO message, before python-socketio parses and dispatches it:
        text only, a CONNECT/DISCONNECT/EVENT of our namespace, decodable, an event
        ``[name, ...]``. Anything else closes the engine.io session, without a
        traceback in the log."""
        error = None
        pkt = None
        if not isinstance(data, str):
            error = wire.BINARY
        else:
            try:
                pkt = self.sio.packet_class(encoded_packet=data)
            except (ValueError, TypeError, RecursionError, IndexError):
                error = wire.BAD_SIO
        if pkt is not None:
            namespace = pkt.namespace or "/"
            joined = self.sio.manager.sid_from_eio_sid(eio_sid, S.NAMESPACE)
            if pkt.packet_type == sio_packet.CONNECT:
                attempts = self._attempts.get(eio_sid, 0)
                if namespace != S.NAMESPACE or joined is not None:
                    error = wire.BAD_SIO
                elif pkt.data is not None and not isinstance(pkt.data, dict):
                    error = wire.BAD_SIO
                elif attempts >= MAX_CONNECT_ATTEMPTS:
                    error = A.TOO_MANY
                else:
                    self._attempts[eio_sid] = attempts + 1
            elif pkt.packet_type == sio_packet.EVENT:
                if namespace != S.NAMESPACE or joined is None:
                    error = wire.BAD_SIO
                else:
                    error = wire.check_event_data(pkt.data)
            elif pkt.packet_type != sio_packet.DISCONNECT:
                error = wire.BAD_SIO
        if error:
            self.stats.malformed += 1
            _logger.debug("Closing engine.io session %s: %s", eio_sid, error)
            sid = self.sio.manager.sid_from_eio_sid(eio_sid, S.NAMESPACE)
            if sid is not None and sid in self.clients:
                await self.close_client(sid, error)  # says why, leaves the namespace
            await self._close_eio(eio_sid)
            return
        try:
            await self._sio_message(eio_sid, data)
        except Exception:
            _logger.exception("Socket.IO message handler failed")

    async def reap(self, now: float) -> int:
        """Closes engine.io sessions that have not joined the namespace within
        HANDSHAKE_TIMEOUT (called by the plugin's sweep)."""
        manager = self.sio.manager
        sockets = self.sio.eio.sockets
        for eio_sid in list(self._pending):
            if eio_sid not in sockets:
                self._pending.pop(eio_sid, None)
        for eio_sid in list(self._attempts):
            if eio_sid not in sockets:
                self._attempts.pop(eio_sid, None)
        stale = []
        for eio_sid in list(sockets):
            if manager.sid_from_eio_sid(eio_sid, S.NAMESPACE) is not None:
                self._pending.pop(eio_sid, None)
                continue
            first = self._pending.setdefault(eio_sid, now)
            if now - first >= HANDSHAKE_TIMEOUT:
                stale.append(eio_sid)
        for eio_sid in stale:
            self._pending.pop(eio_sid, None)
            self.stats.reaped += 1
            await self._close_eio(eio_sid)
        return len(stale)

    async def drop(self, sid: str, reason: str) -> None:
        """Disconnects a client whose credentials no longer hold, that floods or that
        stays over its outbound budget, saying why, and closes its engine.io session
        too."""
        if sid not in self.clients:
            return  # already on its way out (a verdict per broadcast may repeat)
        self.stats.bump(self.stats.closed, reason)
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        await self.close_client(sid, reason)
        if eio_sid:
            await self._close_eio(eio_sid)

    async def _close_eio(self, eio_sid: str) -> None:
        """Ends an engine.io session and its websocket: engine.io only sends a CLOSE
        packet, and a hostile client would keep the TCP connection until the ping
        timeout. The CLOSE is queued behind printer:closing."""
        handlers = {
            self.ws_handlers.get(eio_sid),
            (self.sio.environ.get(eio_sid) or {}).get("tornado.handler"),
        }
        socket = self.sio.eio.sockets.get(eio_sid)
        try:
            if socket is not None:
                # not eio.disconnect(): it waits for the packet queue to drain, which
                # a polling client that never polls again never does
                await socket.close(wait=False)
        except Exception:
            _logger.debug("Closing engine.io session %s failed", eio_sid, exc_info=True)
        self.sio.eio.sockets.pop(eio_sid, None)
        for handler in handlers:
            if getattr(handler, "ws_connection", None) is not None:
                asyncio.get_running_loop().call_later(0.2, handler.close, 1008)

    def security_stats(self) -> dict:
        per_user: dict[str, int] = {}
        for info in self.clients.values():
            per_user[info.user] = per_user.get(info.user, 0) + 1
        return {
            **self.stats.as_dict(),
            "engineio_sessions": len(self.sio.eio.sockets),
            "clients_per_user": per_user,
        }

    def fanout_stats(self) -> dict:
        return {
            **self.fanout.as_dict(),
            "direct_writes": self.direct_writes,
            "queued_writes": self.queued_writes,
        }

    def body_size(self) -> tuple[str, str, int]:
        return ("POST", r"/socket.io/.*", MAX_HTTP_BUFFER_SIZE)

    # ~~ Sink for the hub (runs on the loop)

    def emit(self, event: str, payload: dict, room: str) -> None:
        item = Outgoing(event, payload, room=room)
        if event in DURABLE_EVENTS and self.eventlog is not None:
            # written to the log before it goes out; on_durable runs on the writer
            # thread after the commit (or after a failed write: it still goes out)
            item.ready = False
            loop = self.loop
            self.eventlog.append(
                payload["seq"],
                event,
                payload,
                payload["ts"],
                on_durable=lambda: loop.add_callback(self._durable, item),
            )
        self._enqueue(item)

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
            self._send_one(item.sid, item.event, item.payload)
            return
        started = time.perf_counter()
        participants = list(self.sio.manager.get_participants(S.NAMESPACE, item.room))
        if not participants:
            return
        durable = item.event in DURABLE_EVENTS
        seq = item.payload.get("seq", 0)
        targets: list[str] = []
        drops: list[tuple[str, str]] = []
        for sid, eio_sid in participants:
            session = self.replaying.get(sid)
            if session is not None:
                if durable:
                    session.offer_live((seq, item.event, item.payload))
                continue
            messages, nbytes = self._measure(eio_sid)
            verdict = self.budgets.offer(
                sid, item.event, item.payload, durable, messages, nbytes
            )
            if verdict.action is Action.SEND:
                targets.append(eio_sid)
                info = self.clients.get(sid)
                if info is not None:
                    info.messages += 1
            elif verdict.action is Action.DISCONNECT:
                drops.append((sid, verdict.reason or "too slow"))
        if targets:
            # encoded once per broadcast, whatever the number of clients
            encoded = self.sio.packet_class(
                sio_packet.EVENT, namespace=S.NAMESPACE, data=[item.event, item.payload]
            ).encode()
            # one frame for all: UTF-8 (and deflate, where negotiated) done once
            pkt = wsframes.broadcast_packet(encoded)
            self._send_all(targets, pkt)
            self.fanout.record(time.perf_counter() - started, len(targets))
        for sid, reason in drops:
            asyncio.ensure_future(self.drop(sid, reason))

    def _measure(self, eio_sid: str, refresh: bool = False) -> tuple[int, int]:
        """What is queued for a client: engine.io packets (long-polling clients wait
        here for their next GET) and bytes not yet taken by the peer: tornado's write
        buffer plus the kernel's send queue (refreshed each budget tick, since on
        loopback the kernel buffer alone holds megabytes)."""
        socket = self.sio.eio.sockets.get(eio_sid)
        messages = socket.queue.qsize() if socket is not None else 0
        nbytes = 0
        handler = self.ws_handlers.get(eio_sid)
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
        if not self.clients:
            return
        eio_of = {}
        for sid in self.clients:
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
            # the whole connection goes, so its write buffers are freed at once
            asyncio.ensure_future(self.drop(sid, reason))

    def _restamp(self, payload: dict) -> dict:
        if self.next_seq is None:
            return payload
        return {**payload, "seq": self.next_seq()}

    def _send_all(self, eio_sids: list[str], pkt: Any) -> None:
        """Synchronous, so consecutive broadcasts reach every client in order: a
        websocket client with nothing queued gets the frame written at once
        (``wsframes.send_direct``), any other one gets it on engine.io's queue."""
        sockets = self.sio.eio.sockets
        handlers = self.ws_handlers
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

    def send_to(self, sid: str, event: str, payload: dict) -> None:
        """One message to one client, in order with the broadcasts."""
        self._enqueue(Outgoing(event, payload, sid=sid))

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
        limited = self._rate_limited
        self.sio.on("connect", self._on_connect, namespace=ns)
        self.sio.on("disconnect", self._on_disconnect, namespace=ns)
        self.sio.on("printer:subscribe", limited(self._on_subscribe), namespace=ns)
        self.sio.on("printer:unsubscribe", limited(self._on_unsubscribe), namespace=ns)
        self.sio.on(
            "printer:request_status", limited(self._on_request_status), namespace=ns
        )
        self.sio.on("*", limited(self._on_unknown, catch_all=True), namespace=ns)

    def _rate_limited(
        self, handler: Callable[..., Any], catch_all: bool = False
    ) -> Callable[..., Any]:
        """Every client->server event passes the client's token bucket first, and
        takes at most one argument (the payload)."""

        async def limited(*args: Any) -> Any:
            sid = args[1] if catch_all else args[0]
            info = self.clients.get(sid)
            if info is not None and info.limiter is not None:
                verdict = info.limiter.check()
                if verdict != RL.RateLimiter.OK:
                    self.stats.rate_limited += 1
                    if verdict == RL.RateLimiter.DISCONNECT:
                        asyncio.ensure_future(self.drop(sid, "rate limited"))
                    return {"ok": False, "error": "rate limited"}
            payload = args[2:] if catch_all else args[1:]
            if len(payload) > 1:
                return {"ok": False, "error": "too many arguments"}
            return await handler(*args)

        return limited

    async def _on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        remote = remote_address(environ)
        if self.hub is None:
            raise ConnectionRefusedError("server is starting")
        reason = None
        if not A.origin_allowed(environ, self.allowed_origins):
            reason = A.ORIGIN  # before credentials: a cookie from a foreign page
        elif len(self.clients) >= self.limits.max_connections:
            reason = A.TOO_MANY
        else:
            decision = self._authenticate(auth, environ)
            reason = decision.reason
        if reason is None:
            user = decision.user.get_id() if hasattr(decision.user, "get_id") else "?"
            mine = sum(1 for info in self.clients.values() if info.user == user)
            if mine >= self.limits.max_connections_per_user:
                reason = A.TOO_MANY
        since = None
        if reason is None:
            try:
                since = parse_since(
                    auth.get("last_seq") if isinstance(auth, Mapping) else None
                )
            except ValueError as exc:
                reason = str(exc)
        if reason is not None:
            self.stats.bump(self.stats.refused, reason)
            held = self._refusals_logged.check((remote, reason))
            if held is not None:  # the same refusal: one line a minute per address
                more = f" ({held} more since the last such line)" if held else ""
                _logger.info("Refused a client from %s: %s%s", remote, reason, more)
            raise ConnectionRefusedError(reason)
        self.clients[sid] = ClientInfo(
            sid=sid,
            user=user,
            remote=remote,
            since=time.time(),
            limiter=RL.RateLimiter(self.limits.rate, time.monotonic),
            credential=decision.credential,
        )
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        self._attempts.pop(eio_sid, None)
        self.clients[sid].extra["resume_from"] = since
        handler = environ.get("tornado.handler")
        if eio_sid and getattr(handler, "ws_connection", None) is not None:
            self.ws_handlers[eio_sid] = handler  # a websocket from the start
        _logger.info("Client %s connected from %s as %s", sid, remote, user)
        asyncio.get_running_loop().call_soon(self._after_connect, sid, 0)

    def _after_connect(self, sid: str, attempt: int) -> None:
        # runs once python-socketio has sent the CONNECT packet, so the first
        # status cannot overtake it
        info = self.clients.get(sid)
        if info is None or self.hub is None:
            return
        if not self.sio.manager.is_connected(sid, S.NAMESPACE):
            if attempt < 100:
                asyncio.get_running_loop().call_later(
                    0.01, self._after_connect, sid, attempt + 1
                )
            return
        self.budgets.add(sid)
        since = info.extra.get("resume_from")
        if since is not None and self.eventlog is not None:
            asyncio.ensure_future(self._resume(sid, since, join=True))
            return
        status = self.hub.add_client(sid)
        self._enqueue(Outgoing(S.EV_STATUS, status, sid=sid))

    async def _resume(self, sid: str, since: int, join: bool) -> None:
        """Replays the durable events after ``since``, then a fresh status, then
        live (see replay.py for why the seam neither loses nor repeats)."""
        assert self.eventlog is not None and self.hub is not None
        log = self.eventlog
        if plan_resume(since, log.horizon(), self.last_seq()) is Plan.RESYNC:
            self._send_one(
                sid,
                S.EV_RESYNC,
                self.hub.stamp(
                    {
                        "requested": since,
                        "oldestSeq": log.oldest_seq(),
                        "lastSeq": log.last_seq(),
                    }
                ),
            )
        else:
            session = self.replaying[sid] = ReplaySession(since)
            loop = asyncio.get_running_loop()
            try:
                while True:
                    rows = await loop.run_in_executor(
                        None, log.read_since, session.cursor, REPLAY_PAGE
                    )
                    if sid not in self.clients:
                        return
                    for _seq, event, payload in session.take_page(rows_payloads(rows)):
                        self._send_one(sid, event, payload)
                    if len(rows) < REPLAY_PAGE:
                        break
                for _seq, event, payload in session.finish():
                    self._send_one(sid, event, payload)
            finally:
                self.replaying.pop(sid, None)
            if session.overflow:
                await self.close_client(sid, "replay overflow, reconnect to resume")
                return
        if sid not in self.clients:
            return
        if join:
            messages = [(S.EV_STATUS, self.hub.add_client(sid))]
        else:
            messages = self.hub.after_replay(sid)
        for event, payload in messages:
            # behind any durable event still waiting for its commit
            self._enqueue(Outgoing(event, payload, sid=sid))

    def _send_one(self, sid: str, event: str, payload: dict) -> None:
        """One event to one client, through the same ordered path as broadcasts."""
        try:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        except Exception:
            eio_sid = None
        if not eio_sid:
            return
        info = self.clients.get(sid)
        if info is not None:
            info.messages += 1
        encoded = self.sio.packet_class(
            sio_packet.EVENT, namespace=S.NAMESPACE, data=[event, payload]
        ).encode()
        self._send_all([eio_sid], wsframes.broadcast_packet(encoded))

    async def close_client(self, sid: str, reason: str) -> None:
        """Tells the client why, then disconnects it."""
        if sid not in self.clients:
            return
        _logger.info("Disconnecting client %s: %s", sid, reason)
        payload = self.hub.stamp({"reason": reason}) if self.hub else {"reason": reason}
        try:
            await self.sio.emit(S.EV_CLOSING, payload, to=sid, namespace=S.NAMESPACE)
            await self.sio.disconnect(sid, namespace=S.NAMESPACE)
        except Exception:
            _logger.debug("Disconnecting %s failed", sid, exc_info=True)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        info = self.clients.pop(sid, None)
        self.replaying.pop(sid, None)
        self.budgets.remove(sid)
        try:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        except Exception:
            eio_sid = None
        if eio_sid:
            self.ws_handlers.pop(eio_sid, None)
            self._kernel_queued.pop(eio_sid, None)
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
        ack: dict[str, Any] = {"ok": True, **self.hub.subscribe(sid, request)}
        if request.history:
            ack["history"] = self.hub.history(self.history(), request.history)
        if request.since is not None:
            if self.eventlog is None:
                return {"ok": False, "error": "no event log"}
            # the ack goes first; then the replay, a fresh status, and live again
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(
                    self._resume(sid, request.since, join=False)
                )
            )
        return ack

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
        """Says goodbye to every client (OctoPrint is shutting down)."""
        if self._budget_timer is not None:
            self._budget_timer.stop()
        await asyncio.gather(
            *(self.close_client(sid, reason) for sid in list(self.clients)),
            return_exceptions=True,
        )
        await asyncio.sleep(0.2)  # let the websockets flush their last frames

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


def _to_loop_time(when: float) -> float:
    # hub deadlines are time.monotonic(); asyncio's loop.time() is monotonic too,
    # but convert explicitly in case a loop uses another clock
    loop = asyncio.get_running_loop()
    return loop.time() + (when - time.monotonic())
