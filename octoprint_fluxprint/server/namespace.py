"""The ``/ws/printing`` namespace handlers: connect (through the guard), resume,
subscribe, unsubscribe, request_status, disconnect. Handles events; delivery and
the guard do the sending and the refusing.

It serves the printers in ``feeds`` (server/feeds.py): the plugin registers one,
the hub one per printer (``multi``: printers lists, per-printer cursors, scopes).
Each client is in the cohort of its view (server/membership.py); what it asks for
moves it to another one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

from socketio.exceptions import ConnectionRefusedError

from ..core import schema as S
from ..core.views import View
from .delivery import Delivery
from .feeds import Feed
from .guard import ACK_WANTED, Guard
from .membership import Membership
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
        self.membership = Membership(delivery, self.feeds)
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
        """The feeds a client receives (entered, or entering after a replay)."""
        view = self.membership.view(sid)
        return [] if view is None else sorted(view.feeds)

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
            batch=verdict.batch,
            cursors=cursors,
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
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, S.NAMESPACE)
        cursors = info.extra.pop("cursors", {})
        keys = self.visible(sid)
        view = View.initial(keys, info.extra.get("keyframe"), info.extra.get("batch"))
        # a printer joined by a replay: nothing of it until the replay is set up
        masked = {k for k in keys if cursors.get(k) is not None and self.feeds[k].log}
        self.membership.add(sid, eio_sid, info, view, masked)
        if self.on_joined is not None:
            self.on_joined(sid)
        for key in keys:
            self._enter(sid, key, cursors.get(key))

    def join_new_feed(self, key: str) -> list[str]:
        """A printer added at runtime (``feeds[key]`` is set): every client that may
        see it and did not choose its printers joins it now. Returns those sids."""
        joined = []
        name = self.feeds[key].name
        for sid, info in list(self.sessions.clients.items()):
            extra = info.extra
            view = self.membership.view(sid)
            if "cursors" in extra or extra.get("narrowed") or view is None:
                continue  # still connecting (joins it then), or chose its printers
            scope = extra.get("scope")
            if key not in view.feeds and (scope is None or name in scope):
                since = extra.get("pending_cursors", {}).pop(name, None)
                self.membership.mask(sid, {key})
                self.membership.move(sid, view.with_feeds(view.feeds | {key}))
                self._enter(sid, key, since)
                joined.append(sid)
        return joined

    def _enter(self, sid: str, key: str, since: Optional[int]) -> None:
        """A client enters a printer it joins (in its view, masked): its status now,
        or its replay first (it gets the printer's messages from the replay's
        start)."""
        feed = self.feeds.get(key)
        membership = self.membership
        if feed is None or sid not in self.sessions.clients:
            return
        state = feed.state
        if since is not None and feed.log is not None:
            asyncio.ensure_future(
                self.resumer.resume(
                    sid,
                    feed,
                    since,
                    lambda: state.after_replay(sid),
                    lambda: membership.unmask(sid, key),
                )
            )
            return
        membership.unmask(sid, key)
        self.delivery.skip_queued(sid, key)  # older telemetry: not before the status
        for event, payload in state.joined(self.delivery.cohorts.subscriber_of(sid)):
            self.delivery.send_to(sid, event, payload, feed=key)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        info = self.sessions.clients.pop(sid, None)
        eio_sid = self.sessions.eio_sid(sid)
        view = self.membership.view(sid)
        self.delivery.forget(sid)
        self.membership.leave(sid)
        if eio_sid:
            self.sessions.ws_handlers.pop(eio_sid, None)
        for key in sorted(view.feeds) if view is not None else ():
            if key in self.feeds:
                self.feeds[key].state.remove_client(sid)  # a status it waited for
        if info is not None:
            _logger.info("Client %s from %s disconnected (%s)", sid, info.remote, reason)

    # ~~ client requests

    def _ready(self, sid: str) -> list[str]:
        """The feeds the client is in the rooms of and not still joining by a
        replay (empty: not ready)."""
        joining = self.resumer.joining
        m = self.membership.member(sid)
        masked = () if m is None else m.masked
        return [k for k in self._mine(sid) if k not in masked and (sid, k) not in joining]

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
        try:
            cursors = self.resolve_cursors(request.since, sorted(wanted))
        except ValueError as exc:
            return {"ok": False, "error": str(exc).replace("last_seq", "since")}
        if any(self.feeds[k].log is None for k in cursors if k in joined):
            return {"ok": False, "error": "no event log"}
        view = self.membership.view(sid)
        assert view is not None
        if request.printers is not None:
            self.sessions.clients[sid].extra["narrowed"] = True
        for key in sorted(mine - wanted):
            self.delivery.replaying.pop((sid, key), None)
            self.feeds[key].state.remove_client(sid)  # a status it waited for
        # printers added: nothing of them until they are entered, after the ack
        self.membership.mask(sid, wanted - mine)
        view = view.subscribed(request).with_feeds(wanted)
        self.membership.move(sid, view)
        sub = self.delivery.cohorts.subscriber_of(sid)
        ack: dict[str, Any] = {"ok": True}
        for key in sorted(wanted & set(joined)):
            state = self.feeds[key].state
            ack.update(state.describe(sub))
            if request.history and not self.multi:
                ack["history"] = state.history(self.feeds[key].history(), request.history)
            since = cursors.get(key)
            if since is not None:
                self._resubscribe(sid, key, since)
        for key in sorted(wanted - mine):
            # the ack goes first; then the replay (or status), and live
            asyncio.get_running_loop().call_soon(self._enter, sid, key, cursors.get(key))
        ack["batch"] = view.batch
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
        view = self.membership.view(sid)
        assert view is not None
        self.membership.move(sid, view.unsubscribed(request))
        sub = self.delivery.cohorts.subscriber_of(sid)
        ack: dict[str, Any] = {"ok": True}
        for key in joined:
            ack.update(self.feeds[key].state.describe(sub))
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
