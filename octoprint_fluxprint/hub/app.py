"""The hub process: the engine on its own tornado server, one ``RelayedPrinter``
and mirror per printer (configured, or registered in Redis at runtime), fed by the
source; ``/health`` and ``/metrics`` beside it, and ``printer:printers`` whenever a
printer's liveness changes or a printer appears."""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any, Optional

import tornado.web
from tornado.httpserver import HTTPServer

from ..core import ratelimit as RL
from ..core import schema as S
from ..core.liveness import Liveness
from ..core.mirror import EventMirror, Row
from ..core.relay import RelayedPrinter
from ..server.clock import Clock
from ..server.engine import MAX_HTTP_BUFFER_SIZE, Engine
from ..server.feeds import Feed
from ..server.prom import registry_for, render
from . import page, rest
from .config import HubConfig
from .expiry import TokenExpiry
from .metrics import HubCollector
from .sources import make_source
from .startup import Prepared, prepare
from .tls import TlsHTTPServer

_logger = logging.getLogger("fluxprint.hub")

EV_PRINTERS = S.EV_PRINTERS
try:
    VERSION = importlib.metadata.version("OctoPrint-FluxPrint")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree
    VERSION = "unknown"
TICK_MS = 500


class PrinterSlot:
    """What the hub holds for one printer."""

    def __init__(self, hub: Hub, pid: str):
        self.id = pid
        redis = hub.cfg.source == "redis"
        # redis: a cache of the last cache_events durable events (Redis has the rest)
        self.mirror = EventMirror(hub.cfg.redis.cache_events) if redis else EventMirror()
        self.state = RelayedPrinter(hub.engine.feed_sink(pid, self.mirror), Clock(), pid)
        self.state.ask_status = lambda: hub.source and hub.source.request_status(pid)
        self.ready = asyncio.Event()
        self.liveness = Liveness(hub.cfg.stale_after, hub.cfg.offline_after)
        self.feed = Feed(
            key=pid,
            state=self.state,
            log=self.mirror,
            issued=lambda: self.state.last_seq,
            blocking_log=False,
            ready=self.ready,
        )
        self.replay: Any = None
        if redis:
            replay = self.replay = hub.source.replay_log(pid, self.mirror, self.state)
            self.feed.log = replay
            self.feed.read_async = replay.read_async
            self.feed.catch_up = replay.catch_up
        self.record: dict = {}  # the redis registry's record
        self.shown = ""  # the liveness state clients were last told

    def describe(self, now: float) -> dict:
        status = self.state.status
        connection = (status or {}).get("connection") or {}
        return {
            "id": self.id,
            "state": self.liveness.state(now),
            "connection": connection.get("state"),
            "lastSeq": self.state.last_seq,
            "synced": self.ready.is_set(),
        }


class Hub:
    def __init__(self, cfg: HubConfig, prepared: Optional[Prepared] = None):
        self.cfg = cfg
        # the config's files (TLS pair, CA bundles, JWT key), read before serving
        self.prepared = prepared or prepare(cfg)
        self.identity = self.prepared.identity
        self.engine = Engine(authenticate=self.identity.authenticate)
        self.expiry = TokenExpiry(self.engine)
        self.engine.namespace.multi = True
        self.engine.namespace.feeds_appear = cfg.source == "redis"
        self.engine.compression = cfg.listen.compression
        self.engine.namespace.on_joined = self._joined
        self.slots: dict[str, PrinterSlot] = {}
        self.source: Any = None
        self.server: Any = None
        self.stopped = asyncio.Event()
        self._seq = itertools.count(int(time.time() * 1000))
        self._tasks: list[Any] = []
        self._tick_due = False

    # ~~ lifecycle

    async def start(self, loop: Any) -> None:
        engine = self.engine
        engine.start(loop, stamp=self._stamp)
        limits = RL.Limits(
            max_connections=self.cfg.limits.max_connections,
            max_connections_per_user=self.cfg.limits.max_connections_per_user,
        )
        engine.set_security(limits, self.cfg.auth.allowed_origins)
        cfg = self.cfg
        self.source = make_source(
            cfg.source, cfg.printers, self, cfg, tls=self.prepared.client_tls
        )
        if cfg.source == "redis":
            source = self.source
            engine.namespace.starting = lambda: not source.ready()
            engine.namespace.dynamic = cfg.dynamic
        for printer in cfg.printers:
            slot = self.slots[printer.id] = PrinterSlot(self, printer.id)
            engine.add_feed(slot.feed)
        listen = cfg.listen
        self.metrics = registry_for(engine, f"hub:{listen.port}")
        self.metrics.register(HubCollector(self))
        app = tornado.web.Application(
            [
                (r"/health", HealthHandler, {"hub": self}),
                (r"/metrics", MetricsHandler, {"hub": self}),
                engine.route(listen.path),
                *rest.routes(self),  # the REST fallback and the live page
                *page.routes(self, VERSION),
            ]
        )
        self.server = listen_on(app, listen, self.prepared.server_tls)
        await self.source.start()
        from tornado.ioloop import PeriodicCallback

        self._tasks = [
            PeriodicCallback(self._tick, TICK_MS),
            PeriodicCallback(self._reap, 5000),
        ]
        for task in self._tasks:
            task.start()
        _logger.info(
            "FluxPrint hub on %s://%s:%s (path %s), %d printer(s) via %s",
            "https" if listen.tls else "http",
            listen.host,
            listen.port,
            listen.path,
            len(self.slots),
            self.cfg.source,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.stop()
        _logger.info("Hub stopping: closing %d client(s)", self.engine.client_count())
        if self.server is not None:
            self.server.stop()
        if self.engine.clients:
            await self.engine.close_all("shutdown")
        if self.source is not None:
            await self.source.stop()
        self.stopped.set()

    def _stamp(self, body: dict) -> dict:
        return {**body, "seq": next(self._seq), "ts": Clock.wall_ms(), "printer": "hub"}

    async def _reap(self) -> None:
        self.expiry.sweep()
        await self.engine.reap(time.monotonic())

    def _joined(self, sid: str) -> None:
        self._send_printers(sid)
        self.expiry.watch(sid)  # a JWT's client: closed when its token expires

    # ~~ SourceEvents (on the loop)

    def cursor(self, printer_id: str) -> int:
        return self.slots[printer_id].state.last_seq

    def on_link(self, printer_id: str, up: bool) -> None:
        slot = self.slots[printer_id]
        now = time.monotonic()
        slot.liveness.up(now) if up else slot.liveness.down(now)
        self._tick_soon()

    def on_heartbeat(self, printer_id: str) -> None:
        slot = self.slots.get(printer_id)
        if slot is not None:
            slot.liveness.message(time.monotonic())

    def on_connect_failed(self, printer_id: str, reason: str) -> None:
        slot = self.slots[printer_id]
        slot.liveness.connect_failed(time.monotonic())
        _logger.debug("Printer %s: connect failed (%s)", printer_id, reason)
        self._tick_soon()

    def on_message(
        self, printer_id: str, event: str, payload: Any, live: bool = True
    ) -> None:
        slot = self.slots[printer_id]
        if live:  # not a snapshot read back: the printer is there
            slot.liveness.message(time.monotonic())
        slot.state.on_payload(event, payload)
        if slot.replay is not None:
            slot.replay.relayed(slot.state.last_seq)

    def on_printer(
        self, printer_id: str, record: dict, after: int, history: Sequence[Row] = ()
    ) -> None:
        slot = self.slots.get(printer_id)
        if slot is None:
            slot = self.slots[printer_id] = PrinterSlot(self, printer_id)
        slot.record = record
        if slot.state.last_seq:
            return
        mirror = slot.mirror
        # the cache holds the durable events before ``after`` that the source read
        # (the newest of them, ascending), then everything relayed from now
        mirror.set_horizon(history[0].seq - 1 if history else after)
        for row in history:
            mirror.append(row.seq, row.event, row.payload, row.ts)
        mirror.advance(after)

    def on_reinstalled(
        self, printer_id: str, record: dict, after: int, history: Sequence[Row] = ()
    ) -> None:
        """The printer id's plugin was reinstalled (the registry names another
        instance: its seqs started again, below what this hub relayed). Its cache
        and relayed state start over from ``after``, and each of its clients gets
        ``printer:resync`` (their cursors are the old install's), then the new
        install's next status."""
        slot = self.slots[printer_id]
        old = slot.state.last_seq
        _logger.warning(
            "Printer %s: reinstalled (instance %s), its seq went back from %s to %s;"
            " resyncing its clients",
            printer_id,
            record.get("instance"),
            old,
            after,
        )
        state = slot.state
        state.last_seq, state.status = 0, None
        state.latest.clear()
        slot.mirror.reset()
        self.on_printer(printer_id, record, after, history)
        state.last_seq = after
        if slot.replay is not None:
            slot.replay.oldest = None  # the source reads it again right after
        body = {
            "requested": old,
            "oldestSeq": slot.mirror.oldest_seq(),
            "lastSeq": after,
        }
        delivery = self.engine.delivery
        for sid in state.subs.sids():
            delivery.send_to(sid, S.EV_RESYNC, state.stamp(body))
            delivery.resyncs += 1
            state.status_later(sid)

    def on_resync(self, printer_id: str, oldest: Optional[int], last: int) -> int:
        slot = self.slots[printer_id]
        if last < slot.state.last_seq:
            # the plugin's history restarted below what the hub relayed (a new
            # install): start the mirror over
            _logger.warning("Printer %s: its seq went back; refilling", printer_id)
            slot.mirror = EventMirror()
            slot.feed.log = slot.mirror
            slot.state.sink.log = slot.mirror
            slot.state.last_seq = 0
        since = (oldest - 1) if oldest is not None else last
        since = max(since, slot.state.last_seq)
        slot.mirror.set_horizon(since)
        _logger.info(
            "Printer %s: resync from the plugin, resuming after %s", printer_id, since
        )
        return since

    def on_synced(self, printer_id: str) -> None:
        slot = self.slots[printer_id]
        if not slot.ready.is_set():
            _logger.info(
                "Printer %s: mirror filled (%d durable events)",
                printer_id,
                slot.mirror.count(),
            )
        slot.ready.set()
        namespace = self.engine.namespace
        if printer_id not in namespace.feeds:
            # appeared at runtime: served now, and joined by every client that may
            # see it and did not choose its printers; printer:printers follows
            self.engine.add_feed(slot.feed)
            joined = namespace.join_new_feed(printer_id)
            _logger.info(
                "Printer %s: served (%d client(s) joined)", printer_id, len(joined)
            )
            if self.engine.clients:
                self._tick_soon()  # printer:printers now (else at the next tick)

    # ~~ printer:printers

    def printers_for(
        self, sid: str, now: float, described: Optional[dict] = None
    ) -> dict:
        keys = self.engine.namespace.visible(sid)
        if described is None:
            described = {k: self.slots[k].describe(now) for k in keys if k in self.slots}
        return {
            "printers": [described[k] for k in keys if k in described],
            "ts": Clock.wall_ms(),
        }

    def _send_printers(self, sid: str) -> None:
        self.engine.delivery.send_to(
            sid, EV_PRINTERS, self.printers_for(sid, time.monotonic())
        )

    def _tick_soon(self) -> None:
        """One ``_tick`` for every change made in this turn of the loop: Redis going
        down takes every printer's link at once, and a tick per printer would tell
        every client the whole list once per printer (printers x clients lists of
        every printer: 25 s of loop at 100 printers and 500 clients)."""
        if not self._tick_due:
            self._tick_due = True
            asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self._tick_due = False
        now = time.monotonic()
        changed = set()
        for pid, slot in self.slots.items():
            state = slot.liveness.state(now)
            if state != slot.shown:
                if slot.shown:
                    _logger.info("Printer %s: %s -> %s", pid, slot.shown, state)
                slot.shown = state
                changed.add(pid)
        if not changed:
            return
        described = {pid: slot.describe(now) for pid, slot in self.slots.items()}
        send_to = self.engine.delivery.send_to
        for sid in list(self.engine.clients):
            visible = self.engine.namespace.visible(sid)
            if not changed.isdisjoint(visible):
                send_to(sid, EV_PRINTERS, self.printers_for(sid, now, described))

    def health(self) -> dict:
        now = time.monotonic()
        out = {
            "status": "ok",
            "version": VERSION,
            "socketio": {"clients": self.engine.client_count()},
            "printers": {
                pid: slot.liveness.state(now) for pid, slot in self.slots.items()
            },
        }
        if self.cfg.source == "redis" and self.source is not None:
            out["redis"] = self.source.stats()
        return out


def listen_on(app: tornado.web.Application, listen: Any, tls_context: Any) -> Any:
    """The HTTP server on the listen port: https:// and wss:// with a TLS context
    (hub/tls.py), http:// and ws:// without."""
    options = {"max_body_size": MAX_HTTP_BUFFER_SIZE + 1024}
    if tls_context is not None:
        server = TlsHTTPServer(app, tls_context=tls_context, **options)
    else:
        server = HTTPServer(app, **options)
    server.listen(listen.port, address=listen.host)
    return server


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def get(self) -> None:
        body, content_type = render(self.hub.metrics)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.write(body)


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, hub: Hub) -> None:
        self.hub = hub

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(self.hub.health())
