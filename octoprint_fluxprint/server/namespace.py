"""The ``/ws/printing`` namespace handlers: connect (through the guard), resume,
subscribe, unsubscribe, request_status, disconnect. Handles events; delivery and
the guard do the sending and the refusing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

from socketio.exceptions import ConnectionRefusedError

from ..core import schema as S
from ..core.replay import Plan, ReplaySession, plan_resume
from .delivery import Delivery
from .guard import ACK_WANTED, Guard
from .sessions import ClientInfo, Sessions

_logger = logging.getLogger(__name__)

REPLAY_PAGE = 500


class Namespace:
    def __init__(self, sio: Any, sessions: Sessions, guard: Guard, delivery: Delivery):
        self.sio = sio
        self.sessions = sessions
        self.guard = guard
        self.delivery = delivery
        # from the host (attach): the printer's rooms and state, its event log
        self.printer: Any = None  # core.printer.PrinterState
        self.eventlog: Any = None  # store.eventlog.EventLog
        self.last_seq: Callable[[], int] = lambda: 0
        self.history: Callable[[], list] = list
        self._register()

    def _register(self) -> None:
        ns = S.NAMESPACE
        limited = self.guard.rate_limited
        on = self.sio.on
        on("connect", self._on_connect, namespace=ns)
        on("disconnect", self._on_disconnect, namespace=ns)
        on("printer:subscribe", limited(self._on_subscribe), namespace=ns)
        on("printer:unsubscribe", limited(self._on_unsubscribe), namespace=ns)
        on("printer:request_status", limited(self._on_request_status), namespace=ns)
        on("*", limited(self._on_unknown, catch_all=True), namespace=ns)

    # ~~ connect and resume

    async def _on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        if self.printer is None:
            raise ConnectionRefusedError("server is starting")
        verdict = self.guard.admit(environ, auth)
        if verdict.reason is not None:
            raise ConnectionRefusedError(verdict.reason)
        info = self.sessions.clients[sid] = ClientInfo(
            sid=sid,
            user=verdict.user,
            remote=verdict.remote,
            since=time.time(),
            limiter=self.guard.limiter(),
            credential=verdict.credential,
        )
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        self.guard.joined(eio_sid)
        info.extra["resume_from"] = verdict.since
        handler = environ.get("tornado.handler")
        if eio_sid and getattr(handler, "ws_connection", None) is not None:
            self.sessions.ws_handlers[eio_sid] = handler  # a websocket from the start
        _logger.info("Client %s connected from %s as %s", sid, info.remote, info.user)
        asyncio.get_running_loop().call_soon(self._after_connect, sid, 0)

    def _after_connect(self, sid: str, attempt: int) -> None:
        # runs once python-socketio has sent the CONNECT packet, so the first
        # status cannot overtake it
        info = self.sessions.clients.get(sid)
        if info is None or self.printer is None:
            return
        if not self.sio.manager.is_connected(sid, S.NAMESPACE):
            if attempt < 100:
                asyncio.get_running_loop().call_later(
                    0.01, self._after_connect, sid, attempt + 1
                )
            return
        self.delivery.budgets.add(sid)
        since = info.extra.get("resume_from")
        if since is not None and self.eventlog is not None:
            asyncio.ensure_future(self._resume(sid, since, join=True))
            return
        status = self.printer.add_client(sid)
        self.delivery.send_to(sid, S.EV_STATUS, status)

    async def _resume(self, sid: str, since: int, join: bool) -> None:
        """Replays the durable events after ``since``, then a fresh status, then
        live (see core/replay.py for why the seam neither loses nor repeats)."""
        assert self.eventlog is not None and self.printer is not None
        log = self.eventlog
        send_one = self.delivery.send_one
        clients = self.sessions.clients
        if plan_resume(since, log.horizon(), self.last_seq()) is Plan.RESYNC:
            body = {
                "requested": since,
                "oldestSeq": log.oldest_seq(),
                "lastSeq": log.last_seq(),
            }
            send_one(sid, S.EV_RESYNC, self.printer.stamp(body))
        else:
            session = self.delivery.replaying[sid] = ReplaySession(since)
            loop = asyncio.get_running_loop()
            try:
                while True:
                    rows = await loop.run_in_executor(
                        None, log.read_since, session.cursor, REPLAY_PAGE
                    )
                    if sid not in clients:
                        return
                    for _seq, event, payload in session.take_page(
                        (row.seq, row.event, row.payload) for row in rows
                    ):
                        send_one(sid, event, payload)
                    if len(rows) < REPLAY_PAGE:
                        break
                for _seq, event, payload in session.finish():
                    send_one(sid, event, payload)
            finally:
                self.delivery.replaying.pop(sid, None)
            if session.overflow:
                await self.sessions.close_transport(
                    sid, "replay overflow, reconnect to resume"
                )
                return
        if sid not in clients:
            return
        if join:
            messages = [(S.EV_STATUS, self.printer.add_client(sid))]
        else:
            messages = self.printer.after_replay(sid)
        for event, payload in messages:
            # behind any durable event still waiting for its commit
            self.delivery.send_to(sid, event, payload)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        info = self.sessions.clients.pop(sid, None)
        eio_sid = self.sessions.eio_sid(sid)
        self.delivery.forget(sid, eio_sid)
        if eio_sid:
            self.sessions.ws_handlers.pop(eio_sid, None)
        if self.printer is not None:
            self.printer.remove_client(sid)
        if info is not None:
            _logger.info("Client %s from %s disconnected (%s)", sid, info.remote, reason)

    # ~~ client requests

    def _ready(self, sid: str) -> Optional[dict]:
        if self.printer is None or sid not in self.printer.subs:
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
        ack: dict[str, Any] = {"ok": True, **self.printer.subscribe(sid, request)}
        if request.history:
            ack["history"] = self.printer.history(self.history(), request.history)
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
        return {"ok": True, **self.printer.unsubscribe(sid, request)}

    async def _on_request_status(self, sid: str, data: Any = None) -> dict:
        err = self._ready(sid)
        if err:
            return err
        if data not in (None, {}):
            return {"ok": False, "error": "printer:request_status takes no payload"}
        status = self.printer.status_payload()
        if not ACK_WANTED.get():
            # asked without an ack (FluxStudio's relay): the answer is an event
            self.delivery.send_to(sid, S.EV_STATUS, status)
        return {"ok": True, "status": status}

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict:
        return {"ok": False, "error": "unknown event"}
