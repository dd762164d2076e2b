"""A redis-fed printer's replay source (``server/feeds.Feed`` with ``read_async``
and ``catch_up``): the durable events after a client's cursor from the hub's
in-memory cache (``core.mirror.EventMirror``, the last ``cache_events`` durable
events this hub relayed) when the cursor is within it, otherwise from Redis
(``XRANGE <p>:<id>:durable (<cursor>-0 <floor>-0``), on the loop.

The seq-order rule: a page never holds an event above what this hub relayed when
the page is processed (Redis is read only up to the cache's floor, and the cache
holds only what was relayed); anything above comes live, since the client is in the
printer's rooms already. So each client's seq per printer strictly increases.

``horizon()`` is what Redis's durable stream no longer holds (its first entry - 1,
refreshed by the source with the registry poll, and on demand before a resync), or
the cache's floor when the cache reaches further back: a cursor older than both
gets ``printer:resync``, as at the plugin.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from ...core.mirror import EventMirror, Row

CATCH_UP_S = 3.0  # how long a cursor above what this hub relayed waits for it


class RedisReplay:
    def __init__(self, source: Any, printer_id: str, cache: EventMirror, state: Any):
        self.source = source
        self.pid = printer_id
        self.cache = cache
        self.state = state  # core.relay.RelayedPrinter: last_seq is the relayed top
        self.oldest: Optional[int] = None  # Redis's first durable entry (None: empty)
        self.from_cache = 0  # rows served from the cache ...
        self.from_redis = 0  # ... and read from Redis
        self.redis_reads = 0
        self._waiters: list[tuple[int, asyncio.Future]] = []

    # ~~ the log interface (core/replay.plan_resume, the resync body)

    def horizon(self) -> int:
        redis_horizon = self.oldest - 1 if self.oldest is not None else 0
        return min(redis_horizon, self.cache.horizon())

    def oldest_seq(self) -> Optional[int]:
        if self.oldest is not None:
            return self.oldest
        return self.cache.oldest_seq()

    def last_seq(self) -> int:
        return self.state.last_seq

    def read_since(self, seq: int, limit: int = 1000) -> list[Row]:
        return self.cache.read_since(seq, limit)  # the cache only (no I/O)

    # ~~ Feed.read_async

    async def read_async(self, cursor: int, limit: int) -> list[Row]:
        rows: list[Row] = []
        while len(rows) < limit:
            floor = self.cache.horizon()  # the cache holds every event above it
            if cursor >= floor:
                page = self.cache.read_since(cursor, limit - len(rows))
                self.from_cache += len(page)
                rows.extend(page)
                return rows
            want = limit - len(rows)
            self.redis_reads += 1
            raw = await self.source.read_durable(self.pid, cursor, floor, want)
            # capped at the relayed top as it is now (the floor is at or below it)
            top = min(floor, self.state.last_seq)
            page = [r for r in raw if cursor < r.seq <= top]
            self.from_redis += len(page)
            rows.extend(page)
            # a short read: Redis holds nothing more up to the floor, the cache
            # from there
            cursor = raw[-1].seq if len(raw) == want else floor
        return rows

    # ~~ Feed.catch_up

    async def catch_up(self, since: int) -> None:
        if since > self.state.last_seq:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((since, future))
            try:
                await asyncio.wait_for(future, CATCH_UP_S)
            except asyncio.TimeoutError:
                pass
            finally:
                self._waiters = [w for w in self._waiters if w[1] is not future]
        if since < self.cache.horizon():
            # Redis will be read (or the client resynced): what it retains now, not
            # as of the last poll (one round trip; a cursor in the cache needs none)
            await self.source.refresh_oldest([self.pid])

    def relayed(self, top: int) -> None:
        """The hub relayed up to ``top`` (cheap when nobody waits)."""
        if not self._waiters:
            return
        for since, future in self._waiters:
            if since <= top and not future.done():
                future.set_result(None)

    def stats(self) -> dict:
        return {
            "from_cache": self.from_cache,
            "from_redis": self.from_redis,
            "redis_reads": self.redis_reads,
            "oldest": self.oldest,
        }
