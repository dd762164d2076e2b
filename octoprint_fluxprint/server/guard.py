"""The guard: who may connect (origins, caps, the host's authenticator), what may
reach python-socketio's parser (wire checks), how fast clients may talk (rate
limits), and reaping engine.io sessions that never join. Refuses; never delivers.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

from socketio import packet as sio_packet

from ..core import auth as A
from ..core import ratelimit as RL
from ..core import schema as S
from ..core.logthrottle import LogThrottle
from ..core.replay import parse_cursors
from . import wire
from .clock import remote_address
from .sessions import Sessions

_logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0  # s an engine.io session may stay without joining
MAX_CONNECT_ATTEMPTS = 3  # refused Socket.IO CONNECTs per engine.io session
REFUSAL_LOG_WINDOW = 60.0  # seconds between two log lines for one address and reason

Authenticator = Callable[[Any, Mapping[str, Any]], Any]

# whether the client event being handled asked for an ack: python-socketio runs each
# handler in a task created while this is set, and a task keeps the context it was
# created in, so the handler reads its own event's value
ACK_WANTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fluxprint_ack_wanted", default=True
)


@dataclass
class Admission:
    """The guard's verdict on a Socket.IO CONNECT."""

    reason: Optional[str] = None  # refused, and why
    user: str = "?"
    credential: Any = None
    since: Any = None  # auth.last_seq, to resume from: an int, or {printerId: seq}
    remote: str = "?"
    # from the host's user (the hub's tokens and trusted networks): the printers it
    # may see (None: all) and its profile's status keyframe period (None: default)
    scope: Optional[frozenset] = None
    keyframe: Optional[float] = None
    batch: Optional[int] = None  # its profile's printer:batch tick (ms), if any


class Guard:
    def __init__(self, sio: Any, sessions: Sessions, authenticate: Authenticator):
        self.sio = sio
        self.sessions = sessions
        self.stats = sessions.stats
        self._authenticate = authenticate
        self.limits = RL.Limits()  # from the host's settings
        self.allowed_origins: list[str] = []  # normalized, beside the host's own
        self._pending: dict[str, float] = {}  # eio sid -> first seen without joining
        self._attempts: dict[str, int] = {}  # eio sid -> refused CONNECTs
        self._refusals_logged = LogThrottle(REFUSAL_LOG_WINDOW, time.monotonic)
        # every Engine.IO message passes our checks before python-socketio's parser
        self._sio_message = sio._handle_eio_message
        sio.eio.on("message", self.guard_message)

    # ~~ settings

    def set_security(self, limits: RL.Limits, allowed_origins: list[str]) -> None:
        """New settings apply at once, to connected clients too."""
        self.limits = limits
        self.allowed_origins = list(allowed_origins)
        self.sio.eio.max_http_buffer_size = limits.max_message_bytes
        for info in self.sessions.clients.values():
            if info.limiter is not None:
                info.limiter.reconfigure(limits.rate)

    # ~~ HTTP and websocket level (called by the tornado handler)

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

    # ~~ Engine.IO level

    async def guard_message(self, eio_sid: str, data: Any) -> None:
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
            error = self._check_packet(eio_sid, pkt)
        if error:
            self.stats.malformed += 1
            _logger.debug("Closing engine.io session %s: %s", eio_sid, error)
            sid = self.sio.manager.sid_from_eio_sid(eio_sid, S.NAMESPACE)
            if sid is not None and sid in self.sessions.clients:
                await self.sessions.close_client(sid, error)  # says why, leaves
            await self.sessions.close_eio(eio_sid)
            return
        if pkt is not None and pkt.packet_type == sio_packet.EVENT:
            ACK_WANTED.set(pkt.id is not None)
        try:
            await self._sio_message(eio_sid, data)
        except Exception:
            _logger.exception("Socket.IO message handler failed")

    def _check_packet(self, eio_sid: str, pkt: Any) -> Optional[str]:
        namespace = pkt.namespace or "/"
        joined = self.sio.manager.sid_from_eio_sid(eio_sid, S.NAMESPACE)
        if pkt.packet_type == sio_packet.CONNECT:
            attempts = self._attempts.get(eio_sid, 0)
            if namespace != S.NAMESPACE or joined is not None:
                return wire.BAD_SIO
            if pkt.data is not None and not isinstance(pkt.data, dict):
                return wire.BAD_SIO
            if attempts >= MAX_CONNECT_ATTEMPTS:
                return A.TOO_MANY
            self._attempts[eio_sid] = attempts + 1
            return None
        if pkt.packet_type == sio_packet.EVENT:
            if namespace != S.NAMESPACE or joined is None:
                return wire.BAD_SIO
            return wire.check_event_data(pkt.data)
        if pkt.packet_type != sio_packet.DISCONNECT:
            return wire.BAD_SIO
        return None

    async def reap(self, now: float) -> int:
        """Closes engine.io sessions that have not joined the namespace within
        HANDSHAKE_TIMEOUT (called by the host's sweep)."""
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
            await self.sessions.close_eio(eio_sid)
        return len(stale)

    # ~~ Socket.IO level

    def admit(self, environ: Mapping[str, Any], auth: Any) -> Admission:
        """Origin, caps, credentials and the resume cursor of a CONNECT."""
        verdict = Admission(remote=remote_address(environ))
        clients = self.sessions.clients
        decision = None
        if not A.origin_allowed(environ, self.allowed_origins):
            verdict.reason = A.ORIGIN  # before credentials: a cookie from a foreign page
        elif len(clients) >= self.limits.max_connections:
            verdict.reason = A.TOO_MANY
        else:
            decision = self._authenticate(auth, environ)
            verdict.reason = decision.reason
        if verdict.reason is None and decision is not None:
            user = decision.user
            verdict.user = user.get_id() if hasattr(user, "get_id") else "?"
            verdict.credential = decision.credential
            scope = getattr(user, "printers", None)
            verdict.scope = None if scope is None else frozenset(scope)
            verdict.keyframe = getattr(user, "keyframe", None)
            verdict.batch = getattr(user, "batch", None)
            mine = sum(1 for info in clients.values() if info.user == verdict.user)
            if mine >= self.limits.max_connections_per_user:
                verdict.reason = A.TOO_MANY
        if verdict.reason is None:
            try:
                verdict.since = parse_cursors(
                    auth.get("last_seq") if isinstance(auth, Mapping) else None
                )
            except ValueError as exc:
                verdict.reason = str(exc)
        if verdict.reason is not None:
            self.refused(verdict.remote, verdict.reason)
        return verdict

    def refused(self, remote: str, reason: str) -> None:
        """Counts a refused CONNECT and logs it (one line a minute per address and
        reason)."""
        self.stats.bump(self.stats.refused, reason)
        held = self._refusals_logged.check((remote, reason))
        if held is not None:
            more = f" ({held} more since the last such line)" if held else ""
            _logger.info("Refused a client from %s: %s%s", remote, reason, more)

    def joined(self, eio_sid: Optional[str]) -> None:
        self._attempts.pop(eio_sid, None)

    def limiter(self) -> RL.RateLimiter:
        return RL.RateLimiter(self.limits.rate, time.monotonic)

    def rate_limited(
        self, handler: Callable[..., Any], catch_all: bool = False
    ) -> Callable[..., Any]:
        """Every client->server event passes the client's token bucket first, and
        takes at most one argument (the payload)."""

        async def limited(*args: Any) -> Any:
            sid = args[1] if catch_all else args[0]
            info = self.sessions.clients.get(sid)
            if info is not None and info.limiter is not None:
                verdict = info.limiter.check()
                if verdict != RL.RateLimiter.OK:
                    self.stats.rate_limited += 1
                    if verdict == RL.RateLimiter.DISCONNECT:
                        asyncio.ensure_future(self.sessions.drop(sid, "rate limited"))
                    return {"ok": False, "error": "rate limited"}
            payload = args[2:] if catch_all else args[1:]
            if len(payload) > 1:
                return {"ok": False, "error": "too many arguments"}
            return await handler(*args)

        return limited

    def stats_dict(self) -> dict:
        return {
            **self.stats.as_dict(),
            "engineio_sessions": len(self.sio.eio.sockets),
            "clients_per_user": self.sessions.per_user(),
        }
