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
from .redis_parts import Groups, as_bytes, is_status, seq_or_zero, snapshot_of, text
from .redis_replay import RedisReplay

_logger = logging.getLogger(__name__)

POLL_S = 2.0  # the registry (and the durable streams' first entries) re-read
READ_COUNT = 500  # entries per stream per XREAD
BOOT_SCAN = 32  # entries read back from a new printer's top to find its status
BOOT_SCAN_MAX = 2000
BOOT_CHUNK = 100  # new printers per pipelined round trip
PREFILL = 100  # durable events read into a new printer's cache (at most)
DOWN = (RedisError, OSError, asyncio.TimeoutError)
STOP_S = 2.0
RECONNECT_CAP_S = 5.0  # Redis back: durable flow within seconds


class _Printer:
    def __init__(self, pid: str, cursor: int):
        self.pid = pid
        self.cursor = cursor  # the highest live entry read (the XREAD last ID)
        self.linked = False  # the hub was told the link is up
        self.offline_told = False
        self.last_seen = 0  # the registry's lastSeen last read (the plugin's clock)


class RedisSource:
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
            if pid not in self.printers:
                new.append((pid, record))
        if new:
            await self._bootstrap(new)
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
        """Each new printer's snapshot: back from its live top to the latest status
        (one pipelined round trip per ``BOOT_CHUNK`` printers), relayed from there."""
        for start in range(0, len(new), BOOT_CHUNK):
            await self._bootstrap_some(new[start : start + BOOT_CHUNK])

    async def _bootstrap_some(self, new: list[tuple[str, dict]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for pid, _record in new:
            pipe.xrevrange(ST.live_key(self.prefix, pid), "+", "-", count=BOOT_SCAN)
        found = await pipe.execute()
        plans = []
        for (pid, record), entries in zip(new, found):
            if entries and not any(is_status(f) for _i, f in entries):
                more = await self.redis.xrevrange(
                    ST.live_key(self.prefix, pid), "+", "-", count=BOOT_SCAN_MAX
                )
                entries = more or entries
            plans.append((pid, record, *snapshot_of(entries)))
        # the cache starts with the newest durable events before the snapshot, so a
        # client resuming from the recent past is served from memory at once
        prefill = min(self.rc.cache_events, PREFILL)
        history: list[list] = [[] for _ in plans]
        if prefill:
            pipe = self.redis.pipeline(transaction=False)
            for pid, _record, _snap, start, _top in plans:
                key = ST.durable_key(self.prefix, pid)
                pipe.xrevrange(key, ST.after(start), "-", count=prefill)
            found = await pipe.execute()
            history = [self._rows(pid, reversed(f)) for (pid, *_), f in zip(plans, found)]
        for (pid, record, snapshot, start, top), rows in zip(plans, history):
            self._add(pid, record, snapshot, start, top, rows)

    def _add(
        self, pid: str, record: dict, snapshot: list, start: int, top: int, rows: list
    ) -> None:
        printer = self.printers[pid] = _Printer(pid, start)
        self.events.on_printer(pid, record, start, rows)
        for entry_id, fields in reversed(snapshot):
            self._entry(printer, entry_id, fields, group=0)
        printer.cursor = max(printer.cursor, top)
        group = self.groups.add(pid)
        self._keys[ST.live_key(self.prefix, pid).encode()] = pid
        _logger.info(
            "Printer %s registered (%s %s), relaying after seq %s",
            pid,
            record.get("name"),
            record.get("version"),
            start,
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

    # ~~ the readers

    def _ensure_reader(self, group: int) -> None:
        while len(self._readers) <= group:
            index = len(self._readers)
            self._readers.append(asyncio.ensure_future(self._read_loop(index)))

    async def _read_loop(self, group: int) -> None:
        backoff = Backoff(cap=RECONNECT_CAP_S)
        announce = ST.announce_key(self.prefix)
        while True:
            pids = self.groups.groups[group]
            streams = {
                ST.live_key(self.prefix, p): ST.after(self.printers[p].cursor)
                for p in pids
            }
            if group == 0:
                streams[announce] = self._announce or "0-0"
            if not streams:
                await asyncio.sleep(POLL_S)
                continue
            try:
                found = await self.redis.xread(
                    streams, count=READ_COUNT, block=self.rc.block_ms
                )
            except asyncio.CancelledError:
                raise
            except DOWN as exc:
                self._down(exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            self.reads += 1
            backoff.attempts = 0
            self._up()
            for key, entries in found or []:
                if text(key) == announce:
                    self._announce = text(entries[-1][0])
                    self._wake.set()  # a printer registered: read the registry now
                    continue
                printer = self.printers.get(self._keys.get(as_bytes(key), ""))
                if printer is None:
                    continue
                for entry_id, fields in entries:
                    self._entry(printer, entry_id, fields, group)

    def _entry(self, printer: _Printer, entry_id: Any, fields: Any, group: int) -> None:
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
        self.events.on_message(printer.pid, entry.event, entry.payload)

    def _skip(self, key: Any, why: str) -> None:
        self.skipped += 1
        held = self.throttle.check(key)
        if held is not None:
            _logger.warning("Skipped %s: %s (%d more like it held back)", key, why, held)
