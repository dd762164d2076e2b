"""The ``redis`` source: the printers' messages from Redis Streams (the layout is
``core/streams.py``), with ``redis.asyncio`` on the hub's loop.

- A few blocking XREADs per hub, never one per client: printers are grouped
  ``streams_per_read`` to a reader task; each ``XREAD BLOCK block_ms`` lists every
  stream of its group with an explicit last ID (``streams.after(cursor)``; never
  ``$``), and the first group also reads ``<p>:announce``.
- The registry (``<p>:printers``) is read at start and every ``POLL_S``: new
  printers appear (``on_printer``), and liveness follows ``lastSeen``/``state``. A
  new printer's snapshot: ``XREVRANGE`` its live stream back to the latest status,
  relayed from there, then XREAD onward; the hub has a status at once.
- Redis down: every printer's link goes down (stale, then offline), reconnects back
  off (``core/backoff.py``), and reading resumes after the same cursors. A Redis
  restored from an older snapshot just has lower tops; the plugins back-fill above.
- A malformed entry is skipped with a throttled log line, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ...core import streams as ST
from ...core.backoff import Backoff
from ...core.liveness import registry_online
from ...core.logthrottle import LogThrottle
from ...core.mirror import Row
from .base import SourceEvents
from .redis_boot import Start, starts
from .redis_parts import Groups, seq_or_zero, text
from .redis_read import Reader
from .redis_replay import RedisReplay

_logger = logging.getLogger(__name__)

POLL_S = 2.0  # the registry (and the durable streams' first entries) re-read
DOWN = (RedisError, OSError, asyncio.TimeoutError)
STOP_S = 2.0
RECONNECT_CAP_S = ST.RECONNECT_CAP_S  # Redis back: durable flow within seconds


class _Printer:
    def __init__(self, pid: str, cursor: int, instance: str = ""):
        self.pid = pid
        self.instance = instance  # the plugin install's (the registry's record)
        self.epoch = 0  # bumped at a reinstall: a reader drops what it read before
        self.cursor = cursor  # the highest live entry read (the XREAD last ID)
        self.linked = False  # the hub was told the link is up
        self.offline_told = False
        self.last_seen = 0  # the registry's lastSeen last read (the plugin's clock)


class RedisSource:
    DOWN = DOWN
    reconnect_cap = RECONNECT_CAP_S

    def __init__(
        self,
        cfg: Any,
        events: SourceEvents,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ):
        self.rc = cfg.redis
        self.prefix = cfg.redis.prefix
        self.offline_after = cfg.offline_after
        self.allow = {p.id for p in cfg.printers} or None
        self.events = events
        self.wall_ms = wall_ms
        self.redis: Any = None
        self.printers: dict[str, _Printer] = {}
        self.replays: dict[str, RedisReplay] = {}  # the hub's, per printer
        self.groups = Groups(cfg.redis.streams_per_read)
        self._keys: dict[bytes, str] = {}  # live stream key -> printer id
        self._readers: list[asyncio.Task] = []
        self._poller: Optional[asyncio.Task] = None
        self._wake = asyncio.Event()  # an announce: read the registry now
        self._read_once = asyncio.Event()
        self._announce: Optional[str] = None
        self.up = False
        self.reads = 0
        self.skipped = 0
        self.reconnects = 0
        self.last_error = ""
        self.last_ts: dict[int, int] = {}  # group -> ts (ms) of its last entry relayed
        self.throttle = LogThrottle(30.0, time.monotonic)

    # ~~ Source

    async def start(self) -> None:
        self.redis = aioredis.from_url(
            self.rc.url,
            # a BLOCK longer than the default 5 s timeout would time out
            socket_timeout=self.rc.block_ms / 1000 + 5,
            socket_connect_timeout=3,
            decode_responses=False,
            # a pooled connection Redis closed meanwhile (a restart) is retried
            # once on a fresh one instead of counting as Redis down
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
            health_check_interval=POLL_S,
        )
        self._poller = asyncio.ensure_future(self._poll_loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._poller, *self._readers) if t is not None]
        for task in tasks:
            task.cancel()
        # bounded: a hub that is stopping never hangs on Redis
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_S)
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.aclose(), STOP_S)
            except (asyncio.TimeoutError, *DOWN):
                pass

    def ready(self) -> bool:
        return self._read_once.is_set()

    def request_status(self, printer_id: str) -> None:
        pass  # the plugin's status keyframes (every streams.KEYFRAME_S) answer

    def replay_log(self, printer_id: str, cache: Any, state: Any) -> RedisReplay:
        replay = self.replays[printer_id] = RedisReplay(self, printer_id, cache, state)
        return replay

    def stats(self) -> dict:
        now = self.wall_ms()
        lags = [max(0, now - ts) / 1000 for ts in self.last_ts.values() if ts]
        replays = [r.stats() for r in self.replays.values()]
        return {
            "up": self.up,
            "reads": self.reads,
            "readers": len(self._readers),
            "printers": len(self.printers),
            "skipped": self.skipped,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "lag_s": max(lags) if lags else 0.0,
            "replay_from_cache": sum(r["from_cache"] for r in replays),
            "replay_from_redis": sum(r["from_redis"] for r in replays),
            "replay_redis_reads": sum(r["redis_reads"] for r in replays),
        }

    # ~~ Redis up and down

    def _down(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self.up:
            _logger.warning("Redis is down (%s); reconnecting", self.last_error)
            self.reconnects += 1
        self.up = False
        for printer in self.printers.values():
            if printer.linked:
                printer.linked = False
                self.events.on_link(printer.pid, False)

    def _up(self) -> None:
        if not self.up:
            _logger.info("Redis is up at prefix %s", self.prefix)
        self.up = True

    # ~~ the registry

    async def _poll_loop(self) -> None:
        backoff = Backoff(cap=RECONNECT_CAP_S)
        while True:
            try:
                if self._announce is None:
                    top = await self.redis.xrevrange(
                        ST.announce_key(self.prefix), "+", "-", count=1
                    )
                    self._announce = top[0][0].decode() if top else "0-0"
                self._wake.clear()  # an announce from now on reads it again
                records = await self.redis.hgetall(ST.registry_key(self.prefix))
                self._up()
                await self._registry(records)
                await self.refresh_oldest(list(self.printers))
                if not self._read_once.is_set():
                    self._read_once.set()
                    self._ensure_reader(len(self.groups.groups) - 1)  # all groups
                    _logger.info("Registry read: %d printer(s)", len(self.printers))
                backoff.attempts = 0
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                except asyncio.TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except DOWN as exc:
                self._down(exc)
                await asyncio.sleep(backoff.next_delay())
            except Exception:  # never let the poller die
                _logger.exception("Registry poll failed")
                await asyncio.sleep(POLL_S)

    async def _registry(self, records: dict) -> None:
        now = self.wall_ms()
        new: list[tuple[str, dict]] = []
        reinstalled: list[tuple[str, dict]] = []
        seen: dict[str, dict] = {}
        for raw_id, value in records.items():
            record = ST.parse_registry(value)
            if record is None or record["id"] != text(raw_id):
                self._skip(("registry", text(raw_id)), "a malformed registry record")
                continue
            pid = record["id"]
            if self.allow is not None and pid not in self.allow:
                continue
            seen[pid] = record
            printer = self.printers.get(pid)
            if printer is None:
                new.append((pid, record))
            elif reinstalled_as(printer.instance, record):
                reinstalled.append((pid, record))
        if new:
            await self._bootstrap(new)
        for pid, record in reinstalled:
            # its seqs started again below what this hub relayed: the clients get
            # printer:resync for it, then its new history (never silence)
            self._reinstalled(pid, record)
        for pid, printer in self.printers.items():
            record = seen.get(pid)
            online = record is not None and registry_online(
                record, now, self.offline_after
            )
            if online and self.up and not printer.linked:
                printer.linked = True
                printer.offline_told = False
                self.events.on_link(pid, True)
            elif online and printer.linked and record["lastSeen"] > printer.last_seen:
                # the publisher's heartbeat moved on: its plugin is there even when
                # its live stream is quiet (an idle, disconnected printer has a
                # status only every status_interval, 5 s by default)
                self.events.on_heartbeat(pid)
            elif not online and (printer.linked or not printer.offline_told):
                printer.linked = False
                printer.offline_told = True
                self.events.on_link(pid, False)
                self.events.on_connect_failed(pid, "offline in the registry")
            if record is not None:
                printer.last_seen = max(printer.last_seen, record["lastSeen"])

    async def _bootstrap(self, new: list[tuple[str, dict]]) -> None:
        """Each printer's snapshot (redis_boot.py), relayed from there."""
        found = await starts(
            self.redis, self.prefix, new, self.rc.cache_events, self._rows
        )
        for start in found:
            self._add(start)

    def _reinstalled(self, pid: str, record: dict) -> None:
        """The printer's plugin was reinstalled: its seqs started again, below what
        this hub relayed. Its clients get printer:resync, then everything of the new
        install from its live stream's start (about a minute: the poll finds a new
        instance within seconds), never silence."""
        printer = self.printers[pid]
        printer.instance = record.get("instance") or ""
        printer.cursor = 0
        printer.epoch += 1  # a reader drops what it read of the old install
        self.events.on_reinstalled(pid, record, 0, [])

    def _add(self, start: Start) -> None:
        pid = start.pid
        instance = start.record.get("instance") or ""
        printer = self.printers[pid] = _Printer(pid, start.after, instance)
        self.events.on_printer(pid, start.record, start.after, start.history)
        for entry_id, fields in reversed(start.snapshot):
            self._entry(printer, entry_id, fields, group=0, live=False)
        printer.cursor = max(printer.cursor, start.top)
        group = self.groups.add(pid)
        self._keys[ST.live_key(self.prefix, pid).encode()] = pid
        _logger.info(
            "Printer %s registered (%s %s, instance %s), relaying after seq %s",
            pid,
            start.record.get("name"),
            start.record.get("version"),
            instance,
            start.after,
        )
        self.events.on_synced(pid)
        if self._read_once.is_set():
            self._ensure_reader(group)

    async def refresh_oldest(self, pids: list[str]) -> None:
        """Each printer's first durable entry (what Redis retains for replay)."""
        pids = [p for p in pids if p in self.printers]
        if not pids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.xrange(ST.durable_key(self.prefix, pid), "-", "+", count=1)
        try:
            found = await pipe.execute()
        except DOWN:
            return  # the poller notices; the cached value stands
        for pid, entries in zip(pids, found):
            replay = self.replays.get(pid)
            if replay is not None:
                replay.oldest = seq_or_zero(entries[0][0]) if entries else None

    async def read_durable(self, pid: str, cursor: int, upto: int, count: int) -> list:
        """Durable events in (cursor, upto], ascending, at most ``count``."""
        entries = await self.redis.xrange(
            ST.durable_key(self.prefix, pid),
            "(" + ST.after(cursor),
            ST.after(upto),
            count=count,
        )
        return self._rows(pid, entries)

    def _rows(self, pid: str, entries: Any) -> list[Row]:
        rows = []
        for entry_id, fields in entries:
            try:
                entry = ST.decode(entry_id, fields)
            except ST.StreamError as exc:
                self._skip(("durable", pid), str(exc))
                continue
            rows.append(
                Row(entry.seq, entry.event, entry.payload, entry.payload.get("ts", 0))
            )
        return rows

    # ~~ the readers (redis_read.py)

    def _ensure_reader(self, group: int) -> None:
        while len(self._readers) <= group:
            reader = Reader(self, len(self._readers))
            self._readers.append(asyncio.ensure_future(reader.run()))

    def _entry(
        self, printer: _Printer, entry_id: Any, fields: Any, group: int, live: bool = True
    ) -> None:
        """One entry relayed. ``live``: read as it came (a snapshot read back at a
        printer's start is not news of the printer being there)."""
        try:
            seq = ST.seq_of(entry_id)
        except ST.StreamError as exc:
            self._skip(("id", printer.pid), str(exc))
            return
        if seq <= self.events.cursor(printer.pid):
            return
        printer.cursor = max(printer.cursor, seq)
        try:
            entry = ST.decode(entry_id, fields)
        except ST.StreamError as exc:
            self._skip(("entry", printer.pid), str(exc))
            return
        ts = entry.payload.get("ts")
        if isinstance(ts, int):
            self.last_ts[group] = ts
        self.events.on_message(printer.pid, entry.event, entry.payload, live)

    def _skip(self, key: Any, why: str) -> None:
        self.skipped += 1
        held = self.throttle.check(key)
        if held is not None:
            _logger.warning("Skipped %s: %s (%d more like it held back)", key, why, held)


def reinstalled_as(known: str, record: dict) -> bool:
    """A registry record naming another install than the one relayed."""
    instance = record.get("instance")
    return bool(known and isinstance(instance, str) and instance and instance != known)
