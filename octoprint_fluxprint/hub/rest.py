"""The hub's REST fallback: what a client reads while its socket is down (the npm
client's ``polling`` state), with the payloads of the socket and the hub's auth.

Routes, beside the Socket.IO path (``<base>`` is ``listen.path`` without its last
segment: empty for the default ``/socket.io/``); the plugin serves the same under
``/plugin/fluxprint`` (``plugin/rest.py``):

====================================================  =============================
``GET <base>/api/printers``                           ``printer:printers``' payload
``GET <base>/api/printers/<id>/status``               ``printer:status``' payload
``GET <base>/api/printers/<id>/events?since=N``       durable events after seq N:
``&limit=M`` (1-1000, default 500)                    ``{printer, events: [[event,
                                                      payload], ...], more, resync}``
====================================================  =============================

``resync`` is null, or the body of ``printer:resync`` when N is older than what the
hub holds (then ``events`` is empty: rebuild from the status). Credentials as at the
socket: a hub token or JWT as ``Authorization: Bearer <token>`` or ``X-Api-Key``, or
none from a trusted network. A browser page from another origin needs it listed in
``auth.allowed_origins`` (CORS). Errors are ``{"error": "..."}`` with 400, 401, 403,
404 or 503. Everything runs on the loop without blocking: the direct source's
events come from the in-memory mirror, the redis source's through ``read_async``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import tornado.web

from ..core import restapi

if TYPE_CHECKING:
    from .app import Hub

_logger = logging.getLogger("fluxprint.hub.rest")

BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)
PRINTER = r"([A-Za-z0-9][A-Za-z0-9._-]{0,63})"


def rest_base(path: str) -> str:
    """``/socket.io/`` -> ``""``; ``/farm/socket.io/`` -> ``/farm``: the REST routes
    live beside the Socket.IO path (the npm client derives the same)."""
    trimmed = path.rstrip("/")
    return trimmed[: trimmed.rfind("/")] if "/" in trimmed else ""


def routes(hub: Hub) -> list[tuple]:
    if not hub.cfg.web.rest:
        return []
    base = re.escape(rest_base(hub.cfg.listen.path))
    args = {"hub": hub}
    return [
        (rf"{base}/api/printers", PrintersHandler, args),
        (rf"{base}/api/printers/{PRINTER}/status", StatusHandler, args),
        (rf"{base}/api/printers/{PRINTER}/events", EventsHandler, args),
    ]


class _Base(tornado.web.RequestHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = getattr(kwargs.get("exc_info", (None, None))[1], "log_message", None)
        self.finish({"error": reason or self._reason})

    def fail(self, status: int, message: str) -> None:
        raise tornado.web.HTTPError(status, message)

    def prepare(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin:
            if not self.hub.engine.guard.cors_ok(self.request):
                self.fail(403, "origin not allowed")
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Vary", "Origin")

    def options(self, *args: str) -> None:
        # a CORS preflight (prepare refused foreign origins already)
        self.set_header("Access-Control-Allow-Methods", "GET, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Authorization, X-Api-Key")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)

    def user(self) -> Any:
        """The hub's own decision (``HubIdentity.authenticate``), as at a connect."""
        auth = None
        match = BEARER.match(self.request.headers.get("Authorization", ""))
        if match:
            auth = {"token": match.group(1)}
        environ = {"tornado.handler": self}
        key = self.request.headers.get("X-Api-Key")
        if key:
            environ["HTTP_X_API_KEY"] = key
        decision = self.hub.identity.authenticate(auth, environ)
        if decision.reason is not None:
            self.set_header("WWW-Authenticate", 'Bearer realm="fluxprint-hub"')
            self.fail(401, decision.reason)
        return decision.user

    def visible(self, user: Any) -> list[str]:
        """Served printers (a redis printer once its cache is filled) in the scope."""
        scope = getattr(user, "printers", None)
        feeds = self.hub.engine.namespace.feeds
        return sorted(
            pid
            for pid in self.hub.slots
            if pid in feeds and (scope is None or pid in scope)
        )

    def slot(self, printer: str) -> Any:
        if printer not in self.visible(self.user()):
            # unknown and not allowed look the same: no probing for printer ids
            self.fail(404, f"no such printer: {printer}")
        return self.hub.slots[printer]

    def send(self, body: dict) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, separators=(",", ":")))


class PrintersHandler(_Base):
    def get(self) -> None:
        now = time.monotonic()
        slots = self.hub.slots
        self.send(
            {
                "printers": [slots[p].describe(now) for p in self.visible(self.user())],
                "ts": int(time.time() * 1000),
            }
        )


class StatusHandler(_Base):
    def get(self, printer: str) -> None:
        self.send(self.slot(printer).state.status_payload())


class EventsHandler(_Base):
    async def get(self, printer: str) -> None:
        slot = self.slot(printer)
        try:
            since, limit = restapi.events_args(
                self.get_query_argument("since", None),
                self.get_query_argument("limit", None),
            )
        except restapi.BadArgument as exc:
            self.fail(400, str(exc))
        feed = slot.feed
        if feed.ready is not None and not feed.ready.is_set():
            self.set_header("Retry-After", "2")
            self.fail(503, f"printer {printer}: the hub is still filling its events")
        try:
            if feed.catch_up is not None:
                await feed.catch_up(since)  # a cursor from a hub slightly ahead
            body = await read_events(feed, printer, since, limit)
        except tornado.web.HTTPError:
            raise
        except Exception:  # the replay source is away (Redis down)
            _logger.warning("REST events for %s failed", printer, exc_info=True)
            self.set_header("Retry-After", "5")
            self.fail(503, f"printer {printer}: events unavailable, retry")
        self.send(body)


async def read_events(feed: Any, printer: str, since: int, limit: int) -> dict:
    """The events page for a cursor, planned as a resume is, read without blocking
    the loop (the mirror in memory, or Redis through ``read_async``)."""
    resync = restapi.resync_body(since, feed.log, feed.issued())
    if resync is not None:
        return restapi.events_page(printer, [], limit, resync)
    if feed.read_async is not None:
        rows = await feed.read_async(since, limit + 1)
    else:
        rows = feed.log.read_since(since, limit + 1)
    return restapi.events_page(printer, rows, limit)
