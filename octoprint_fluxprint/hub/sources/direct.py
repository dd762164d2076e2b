"""The ``direct`` source: one python-socketio ``AsyncClient`` per printer, to its
plugin's ``/ws/printing`` with that printer's API key (over aiohttp, the client's
transport: the ``hub`` extra brings it; an https:// OctoPrint is verified against
its ``ca`` bundle when the config names one, else the system's).

Per printer: connect with ``auth: {apikey, last_seq: cursor}`` (the plugin replays
what the hub missed, then sends a fresh status: synced); on ``printer:resync``
re-subscribe with ``since`` from what the plugin retains. A link silent for
``KEYFRAME`` s asks for a status, so a healthy feed is never silent (liveness).
After any cut, reconnect with
exponential backoff and jitter (``core.backoff``): an offline printer costs one
attempt every ~15 s, never a storm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

import socketio

from ...core import schema as S
from ...core.backoff import Backoff
from ...core.replay import DURABLE_EVENTS
from .base import SourceEvents

_logger = logging.getLogger(__name__)

KEYFRAME = 2.0  # s: a link silent this long asks the plugin for its status
CONNECT_TIMEOUT = 5.0


class _Link:
    def __init__(self, printer: Any, events: SourceEvents, tls: Optional[Any] = None):
        self.printer = printer
        self.events = events
        self.tls = tls  # an ssl.SSLContext for printers[].ca
        self.http: Any = None  # the aiohttp session that carries it
        self.backoff = Backoff()
        self.task: Optional[asyncio.Task] = None
        self.client: Optional[socketio.AsyncClient] = None
        self.closed = asyncio.Event()
        self.synced = False
        self.awaiting_since = False  # a resync was answered; wait for its replay
        self.connects = 0
        self.failures = 0
        self.last_message = 0.0  # monotonic time of the last message on the link
        self.last_failure = ""

    @property
    def pid(self) -> str:
        return self.printer.id

    def _make_client(self) -> socketio.AsyncClient:
        options: dict = {}
        if self.tls is not None:
            import aiohttp

            if self.http is None or self.http.closed:
                self.http = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=self.tls)
                )
            options["http_session"] = self.http
        client = socketio.AsyncClient(
            reconnection=False, logger=False, engineio_logger=False, **options
        )
        ns = S.NAMESPACE

        async def on_disconnect(*_args: Any) -> None:
            self.closed.set()

        async def on_any(event: str, data: Any = None) -> None:
            self._message(event, data)

        client.on("disconnect", on_disconnect, namespace=ns)
        client.on("*", on_any, namespace=ns)
        return client

    def _message(self, event: str, data: Any) -> None:
        self.last_message = time.monotonic()
        events = self.events
        if event == S.EV_RESYNC and isinstance(data, dict):
            oldest = data.get("oldestSeq")
            last = data.get("lastSeq") if isinstance(data.get("lastSeq"), int) else 0
            since = events.on_resync(
                self.pid, oldest if isinstance(oldest, int) else None, last
            )
            self.awaiting_since = True
            asyncio.ensure_future(self._subscribe_since(since))
            return
        if event == S.EV_CLOSING:
            _logger.info("Printer %s: its OctoPrint is closing the link", self.pid)
            return
        if self.awaiting_since and event not in DURABLE_EVENTS:
            return  # the status after a resync would overtake the replay's seqs
        events.on_message(self.pid, event, data)
        if event == S.EV_STATUS and not self.synced and not self.awaiting_since:
            # the plugin's fresh status comes after its replay
            self.synced = True
            events.on_synced(self.pid)
            # once the plugin is done replaying to this link (a request before
            # that is answered "not ready"): never silent for long from now on
            if self.client is not None:
                asyncio.ensure_future(self._heartbeat(self.client))

    async def _subscribe_since(self, since: int) -> None:
        client = self.client
        if client is None:
            return

        def acked(*_args: Any) -> None:
            self.awaiting_since = False  # the next status follows the replay

        try:
            await client.emit(
                "printer:subscribe",
                {"since": since},
                namespace=S.NAMESPACE,
                callback=acked,
            )
        except Exception:
            _logger.debug("Printer %s: subscribe failed", self.pid, exc_info=True)

    async def _heartbeat(self, client: socketio.AsyncClient) -> None:
        """Keeps a quiet printer's link talking: when nothing came for ``KEYFRAME``
        seconds, asks the plugin for its status (an event, on this link). Status
        keyframes cannot do this: the plugin never sends them more often than its
        status interval (5 s by default), the hub's ``stale_after``."""
        while self.client is client and not self.closed.is_set():
            await asyncio.sleep(KEYFRAME / 2)
            if time.monotonic() - self.last_message >= KEYFRAME:
                self.request_status()

    def request_status(self) -> None:
        """Asks the plugin without an ack: it answers with a printer:status event
        (a fresh seq) on this link, in order with everything else."""
        client = self.client
        if client is None or not client.connected or self.awaiting_since:
            return  # the status after the (re)connect's replay comes anyway
        asyncio.ensure_future(self._emit_request_status(client))

    async def _emit_request_status(self, client: socketio.AsyncClient) -> None:
        try:
            await client.emit("printer:request_status", namespace=S.NAMESPACE)
        except Exception:
            _logger.debug("Printer %s: request_status failed", self.pid, exc_info=True)

    async def run(self) -> None:
        printer = self.printer
        while True:
            self.closed.clear()
            self.synced = self.awaiting_since = False
            client = self.client = self._make_client()
            cursor = self.events.cursor(self.pid)
            try:
                await client.connect(
                    printer.url,
                    socketio_path=printer.path,
                    namespaces=[S.NAMESPACE],
                    transports=["websocket"],
                    auth={"apikey": printer.apikey, "last_seq": cursor},
                    wait_timeout=CONNECT_TIMEOUT,
                )
            except Exception as exc:
                self.failures += 1
                # never the key: the exception text holds the URL at most
                reason = type(exc).__name__
                self.events.on_connect_failed(self.pid, reason)
                text = _why(exc)
                if text != self.last_failure:  # once per reason, not per attempt
                    self.last_failure = text
                    _logger.warning("Printer %s: cannot connect (%s)", self.pid, text)
                await self._discard(client)
                await asyncio.sleep(self.backoff.next_delay())
                continue
            self.connects += 1
            self.last_failure = ""
            started = time.monotonic()
            _logger.info("Printer %s: linked (resuming after seq %s)", self.pid, cursor)
            self.events.on_link(self.pid, True)
            await self.closed.wait()
            self.events.on_link(self.pid, False)
            _logger.info("Printer %s: link lost", self.pid)
            await self._discard(client)
            self.backoff.connected_for(time.monotonic() - started)
            await asyncio.sleep(self.backoff.next_delay())

    async def _discard(self, client: socketio.AsyncClient) -> None:
        self.client = None
        try:
            await client.disconnect()
        except Exception:
            pass


def _why(exc: BaseException) -> str:
    """An exception and what caused it (python-socketio's "Connection error" hides
    aiohttp's reason: a refused port, a certificate that does not verify)."""
    parts: list[str] = []
    seen: Optional[BaseException] = exc
    while seen is not None and len(parts) < 8:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    why = parts[0] if len(parts) == 1 else f"{parts[0]} <- {parts[-1]}"
    return why[:500]


class DirectSource:
    def __init__(self, printers: list, events: SourceEvents, tls: Optional[dict] = None):
        tls = tls or {}
        self.links = {p.id: _Link(p, events, tls.get(p.id)) for p in printers}

    async def start(self) -> None:
        for link in self.links.values():
            link.task = asyncio.ensure_future(link.run())

    async def stop(self) -> None:
        for link in self.links.values():
            if link.task is not None:
                link.task.cancel()
        for link in self.links.values():
            if link.client is not None:
                await link._discard(link.client)
            if link.http is not None:
                await link.http.close()

    def request_status(self, printer_id: str) -> None:
        link = self.links.get(printer_id)
        if link is not None:
            link.request_status()

    def stats(self) -> dict:
        return {
            pid: {"connects": link.connects, "failures": link.failures}
            for pid, link in self.links.items()
        }
