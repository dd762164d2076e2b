"""The ``/ws/printing`` namespace handlers: connect (through the guard), resume,
subscribe, unsubscribe, request_status, disconnect. Handles events; delivery and
the guard do the sending and the refusing.

It serves the printers in ``feeds`` (server/feeds.py): the plugin registers one,
the hub one per printer (``multi``: printers lists, per-printer cursors, scopes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

from socketio.exceptions import ConnectionRefusedError

from ..core import schema as S
from .delivery import Delivery
from .feeds import Feed
from .guard import ACK_WANTED, Guard
from .resume import REPLAY_PAGE, Resumer
from .sessions import ClientInfo, Sessions

__all__ = ["REPLAY_PAGE", "Namespace"]

_logger = logging.getLogger(__name__)


class Namespace:
    def __init__(self, sio: Any, sessions: Sessions, guard: Guard, delivery: Delivery):
        self.sio = sio
        self.sessions = sessions
        self.guard = guard
        self.delivery = delivery
        self.resumer = Resumer(sessions, delivery)
        self.feeds: dict[str, Feed] = {}  # from the host: key -> printer feed
        self.multi = False  # the hub: many printers, printer lists, cursors per printer
        # the hub's redis source: printers register at any time (a cursor for one
        # not served yet waits for it instead of refusing the client)
        self.feeds_appear = False
        # the hub: called on the loop once a client has joined (sends printer:printers)
        self.on_joined: Optional[Callable[[str], None]] = None
        # whether connects are refused with "server is starting" (the hub's redis
        # source: until its registry was read once)
        self.starting: Callable[[], bool] = lambda: not self.feeds
        # printers may appear later (the hub's redis source): a credential that sees
        # none yet is admitted and joins them as they come
        self.dynamic = False
        self._register()

    @property
    def printer(self) -> Any:
        """The single printer's state (the plugin), or None."""
        feed = next(iter(self.feeds.values()), None)
        return None if feed is None else feed.state

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

    # ~~ printers by name, and who may see which

    def _by_name(self) -> dict[str, str]:
        return {feed.name: key for key, feed in self.feeds.items()}

    def visible(self, sid: str) -> list[str]:
        """The feed keys a client may see (sorted)."""
        info = self.sessions.clients.get(sid)
        scope = None if info is None else info.extra.get("scope")
        return sorted(
            k for k, f in self.feeds.items() if scope is None or f.name in scope
        )

    def resolve_cursors(
        self, since: Any, keys: list[str], pending: Optional[dict[str, int]] = None
    ) -> dict[str, int]:
        """A cursor per feed key from an int (one printer) or ``{printerId: seq}``.
        Raises ValueError naming what is wrong. At a hub, with ``pending``, a cursor
        for a printer it does not serve (yet: a farm's printers register at any
        time) goes there by name instead, for when that printer appears."""
        if since is None:
            return {}
        if isinstance(since, int):
            if len(keys) != 1:
                raise ValueError(
                    "last_seq: give one cursor per printer ({printerId: seq})"
                )
            return {keys[0]: since}
        names = self._by_name()
        out = {}
        for name, seq in since.items():
            key = names.get(name)
            if key is None and self.feeds_appear and pending is not None:
                pending[name] = seq
                continue
            if key is None or key not in keys:
                raise ValueError(f"unknown printer in the cursors: {name}")
            out[key] = seq
        return out

    def _mine(self, sid: str) -> list[str]:
        """The feeds a client receives (joined, or joining after a replay)."""
        info = self.sessions.clients.get(sid)
        return [] if info is None else sorted(info.extra.get("feeds", ()))

    # ~~ connect and resume

    async def _on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        if self.starting():
            raise ConnectionRefusedError("server is starting")
        verdict = self.guard.admit(environ, auth)
        if verdict.reason is not None:
            raise ConnectionRefusedError(verdict.reason)
        scope = verdict.scope
        keys = sorted(
            k for k, f in self.feeds.items() if scope is None or f.name in scope
        )
        if not keys and not self.dynamic:
            self.guard.refused(verdict.remote, "no printer for this credential")
            raise ConnectionRefusedError("no printer for this credential")
        try:
            pending: dict[str, int] = {}
            cursors = self.resolve_cursors(verdict.since, keys, pending)
        except ValueError as exc:
            self.guard.refused(verdict.remote, str(exc))
            raise ConnectionRefusedError(str(exc)) from None
        info = self.sessions.clients[sid] = ClientInfo(
            sid=sid,
            user=verdict.user,
            remote=verdict.remote,
            since=time.time(),
            limiter=self.guard.limiter(),
            credential=verdict.credential,
        )
        info.extra.update(
            scope=scope,
            keyframe=verdict.keyframe,
            cursors=cursors,
            feeds=set(),
            pending_cursors=pending,
        )
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        self.guard.joined(eio_sid)
        handler = environ.get("tornado.handler")
        if eio_sid and getattr(handler, "ws_connection", None) is not None:
            self.sessions.ws_handlers[eio_sid] = handler  # a websocket from the start
        _logger.info("Client %s connected from %s as %s", sid, info.remote, info.user)
        asyncio.get_running_loop().call_soon(self._after_connect, sid, 0)

    def _after_connect(self, sid: str, attempt: int) -> None:
        # runs once python-socketio has sent the CONNECT packet, so the first
        # status cannot overtake it
        info = self.sessions.clients.get(sid)
        if info is None:
            return
        if not self.sio.manager.is_connected(sid, S.NAMESPACE):
            if attempt < 100:
                asyncio.get_running_loop().call_later(
                    0.01, self._after_connect, sid, attempt + 1
                )
            return
        self.delivery.budgets.add(sid)
        if self.on_joined is not None:
            self.on_joined(sid)
        cursors = info.extra.pop("cursors", {})
        for key in self.visible(sid):
            self._join(sid, key, cursors.get(key), None)

    def join_new_feed(self, key: str) -> list[str]:
        """A printer added at runtime (``feeds[key]`` is set): every client that may
        see it and did not choose its printers joins it now. Returns those sids."""
        joined = []
        name = self.feeds[key].name
        for sid, info in list(self.sessions.clients.items()):
            extra = info.extra
            if "cursors" in extra or extra.get("narrowed") or key in extra["feeds"]:
                continue  # still connecting (joins it then), or chose its printers
            scope = extra.get("scope")
            if scope is None or name in scope:  # visible(sid), for one feed
                since = extra.get("pending_cursors", {}).pop(name, None)
                self._join(sid, key, since, None)
                joined.append(sid)
        return joined

    def _join(
        self, sid: str, key: str, since: Optional[int], request: Optional[Any]
    ) -> None:
        """Adds a client to a printer: its status now, or after a replay."""
        feed = self.feeds[key]
        info = self.sessions.clients[sid]
        info.extra["feeds"].add(key)

        state = feed.state

        def enter() -> dict:
            status = state.add_client(sid)
            keyframe = info.extra.get("keyframe")
            if keyframe:  # the client's profile (fluxstudio: 5 s)
                state.subscribe(sid, S.SubscribeRequest(keyframe=keyframe))
            if request is not None:
                state.subscribe(sid, request)
            return status

        if since is not None and feed.log is not None:
            # in the rooms before the replay's first read; the status after it
            asyncio.ensure_future(
                self.resumer.resume(
                    sid, feed, since, lambda: state.after_replay(sid), enter
                )
            )
            return
        status = enter()
        self.delivery.skip_queued(sid, key)  # older telemetry: not before the status
        self.delivery.send_to(sid, S.EV_STATUS, status)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        info = self.sessions.clients.pop(sid, None)
        eio_sid = self.sessions.eio_sid(sid)
        self.delivery.forget(sid, eio_sid)
        if eio_sid:
            self.sessions.ws_handlers.pop(eio_sid, None)
        for feed in self.feeds.values():
            feed.state.remove_client(sid)
        if info is not None:
            _logger.info("Client %s from %s disconnected (%s)", sid, info.remote, reason)

    # ~~ client requests

    def _ready(self, sid: str) -> list[str]:
        """The feeds the client is in the rooms of and not still joining by a
        replay (empty: not ready)."""
        joining = self.resumer.joining
        return [
            k
            for k in self._mine(sid)
            if sid in self.feeds[k].state.subs and (sid, k) not in joining
        ]

    def _request(self, sid: str, model: Any, data: Any) -> tuple[list[str], Any, Any]:
        """(the feeds the client is ready in, its validated request, an error ack)."""
        joined = self._ready(sid)
        if not joined:
            return joined, None, {"ok": False, "error": "not ready"}
        try:
            return joined, S.parse_client_payload(model, data), None
        except S.ClientError as exc:
            return joined, None, {"ok": False, "error": str(exc)}

    async def _on_subscribe(self, sid: str, data: Any = None) -> dict:
        joined, request, error = self._request(sid, S.SubscribeRequest, data)
        if error:
            return error
        if self.multi and request.delta:
            return {"ok": False, "error": "delta is not available at the hub"}
        visible = self.visible(sid)
        names = self._by_name()
        mine = set(self._mine(sid))
        wanted = mine
        if request.printers is not None:
            unknown = [p for p in request.printers if names.get(p) not in visible]
            if unknown:
                return {"ok": False, "error": f"printer not allowed: {unknown[0]}"}
            wanted = {names[p] for p in request.printers}
            self.sessions.clients[sid].extra["narrowed"] = True
        try:
            cursors = self.resolve_cursors(request.since, sorted(wanted))
        except ValueError as exc:
            return {"ok": False, "error": str(exc).replace("last_seq", "since")}
        info = self.sessions.clients[sid]
        for key in sorted(mine - wanted):
            self.feeds[key].state.remove_client(sid)
            info.extra["feeds"].discard(key)
        ack: dict[str, Any] = {"ok": True}
        for key in sorted(wanted & set(joined)):
            state = self.feeds[key].state
            ack.update(state.subscribe(sid, request))
            if request.history and not self.multi:
                ack["history"] = state.history(self.feeds[key].history(), request.history)
            since = cursors.get(key)
            if since is not None:
                if self.feeds[key].log is None:
                    return {"ok": False, "error": "no event log"}
                self._resubscribe(sid, key, since)
        for key in sorted(wanted - mine):
            # the ack goes first; then the replay (or status), and live
            asyncio.get_running_loop().call_soon(
                self._join, sid, key, cursors.get(key), request
            )
        if self.multi:
            ack["printers"] = sorted(self.feeds[k].name for k in wanted)
        return ack

    def _resubscribe(self, sid: str, key: str, since: int) -> None:
        feed = self.feeds[key]
        # the ack goes first; then the replay, a fresh status, and live again
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(
                self.resumer.resume(
                    sid, feed, since, lambda: feed.state.after_replay(sid)
                )
            )
        )

    async def _on_unsubscribe(self, sid: str, data: Any = None) -> dict:
        joined, request, error = self._request(sid, S.UnsubscribeRequest, data)
        if error:
            return error
        ack: dict[str, Any] = {"ok": True}
        for key in joined:
            ack.update(self.feeds[key].state.unsubscribe(sid, request))
        return ack

    async def _on_request_status(self, sid: str, data: Any = None) -> dict:
        joined = self._ready(sid)
        if not joined:
            return {"ok": False, "error": "not ready"}
        if data not in (None, {}):
            return {"ok": False, "error": "printer:request_status takes no payload"}
        statuses = {}
        for key in joined:
            state = self.feeds[key].state
            status = statuses[self.feeds[key].name] = state.status_payload()
            if not ACK_WANTED.get():
                # asked without an ack (FluxStudio's relay): the answer is an event
                state.answer_status(sid, status)
        ack: dict[str, Any] = {"ok": True, "status": next(iter(statuses.values()))}
        if self.multi:
            ack["statuses"] = statuses
        return ack

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> dict:
        return {"ok": False, "error": "unknown event"}
