"""Who is connected, and how a connection ends: the client table, the websocket of
each engine.io session, and closing a client (saying why first).

The guard, delivery and the namespace handlers all share one ``Sessions``; it
depends on none of them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..core import ratelimit as RL
from ..core import schema as S

_logger = logging.getLogger(__name__)

# websocket close codes (RFC 6455)
GOING_AWAY = 1001  # come back: shutdown, over budget
POLICY_VIOLATION = 1008  # refused: malformed, revoked, flooding


@dataclass
class ClientInfo:
    sid: str
    user: str
    remote: str
    since: float
    messages: int = 0
    extra: dict = field(default_factory=dict)
    # security: client->server rate limiter, and what the client authenticated
    # with (re-checked by the host's sweep; never logged)
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


class Sessions:
    """The clients of the namespace and their engine.io sessions (on the loop)."""

    def __init__(self, sio: Any):
        self.sio = sio
        self.clients: dict[str, ClientInfo] = {}
        self.ws_handlers: dict[str, Any] = {}  # eio sid -> tornado websocket handler
        self.stats = SecurityStats()
        # a message of the server's own (closing), stamped by the printer state
        self.stamp: Callable[[dict], dict] = lambda body: body

    def eio_sid(self, sid: str) -> Optional[str]:
        try:
            return self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        except Exception:
            return None

    async def close_client(self, sid: str, reason: str) -> None:
        """Tells the client why, then disconnects it at the Socket.IO level: for
        clients that must not come back (socket.io-client does not reconnect after
        an ``io server disconnect``)."""
        if sid not in self.clients:
            return
        _logger.info("Disconnecting client %s: %s", sid, reason)
        payload = self.stamp({"reason": reason})
        try:
            await self.sio.emit(S.EV_CLOSING, payload, to=sid, namespace=S.NAMESPACE)
            await self.sio.disconnect(sid, namespace=S.NAMESPACE)
        except Exception:
            _logger.debug("Disconnecting %s failed", sid, exc_info=True)

    async def close_transport(self, sid: str, reason: str) -> None:
        """Tells the client why, then closes its transport, not its Socket.IO
        session: every standard client reconnects by itself (``transport close``)
        and resumes. For a shutdown, a client over its outbound budget, a replay
        overflow."""
        info = self.clients.get(sid)
        if info is None or info.extra.get("closing"):
            return  # already on its way out (a verdict per broadcast may repeat)
        info.extra["closing"] = True
        self.stats.bump(self.stats.closed, reason)
        eio_sid = self.eio_sid(sid)
        _logger.info("Closing the connection of client %s: %s", sid, reason)
        try:
            await self.sio.emit(
                S.EV_CLOSING,
                self.stamp({"reason": reason}),
                to=sid,
                namespace=S.NAMESPACE,
            )
        except Exception:
            _logger.debug("Telling %s why failed", sid, exc_info=True)
        if eio_sid:
            # no engine.io CLOSE packet either: python-engineio's client takes one as
            # a server disconnect and does not reconnect; a transport that just
            # ends is what every client reconnects after
            await self.close_eio(eio_sid, code=GOING_AWAY, abort=True)

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
            await self.close_eio(eio_sid)

    async def close_eio(
        self, eio_sid: str, code: int = POLICY_VIOLATION, abort: bool = False
    ) -> None:
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
                await socket.close(wait=False, abort=abort)
        except Exception:
            _logger.debug("Closing engine.io session %s failed", eio_sid, exc_info=True)
        self.sio.eio.sockets.pop(eio_sid, None)
        for handler in handlers:
            if getattr(handler, "ws_connection", None) is not None:
                asyncio.get_running_loop().call_later(0.2, handler.close, code)

    def per_user(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for info in self.clients.values():
            counts[info.user] = counts.get(info.user, 0) + 1
        return counts
