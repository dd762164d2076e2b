"""Where the redis source starts relaying a printer it has not relayed yet (it
appeared in the registry, or its plugin was reinstalled under the same id): its
live stream read backwards to the latest status (``XREVRANGE … COUNT 32``, then up
to 2,000), and the newest durable events before that for the hub's cache. One
pipelined round trip per ``BOOT_CHUNK`` printers, on the hub's loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from ...core import streams as ST
from ...core.mirror import Row
from .redis_parts import is_status, snapshot_of

BOOT_SCAN = 32  # entries read back from a new printer's top to find its status
BOOT_SCAN_MAX = 2000
BOOT_CHUNK = 100  # new printers per pipelined round trip
PREFILL = 100  # durable events read into a new printer's cache (at most)


@dataclass
class Start:
    pid: str
    record: dict
    snapshot: list  # the entries from the latest status up, newest first
    after: int  # relayed from after this seq
    top: int  # the live stream's top
    history: list[Row] = field(default_factory=list)  # the cache's start, ascending


async def starts(
    redis: Any,
    prefix: str,
    new: Sequence[tuple[str, dict]],
    cache_events: int,
    rows: Callable[[str, Any], list[Row]],
) -> list[Start]:
    """Each printer's start; ``rows(pid, entries)`` decodes durable entries."""
    out: list[Start] = []
    for first in range(0, len(new), BOOT_CHUNK):
        out += await _some(
            redis, prefix, new[first : first + BOOT_CHUNK], cache_events, rows
        )
    return out


async def _some(
    redis: Any,
    prefix: str,
    new: Sequence[tuple[str, dict]],
    cache_events: int,
    rows: Callable[[str, Any], list[Row]],
) -> list[Start]:
    pipe = redis.pipeline(transaction=False)
    for pid, _record in new:
        pipe.xrevrange(ST.live_key(prefix, pid), "+", "-", count=BOOT_SCAN)
    found = await pipe.execute()
    plans: list[Start] = []
    for (pid, record), entries in zip(new, found):
        if entries and not any(is_status(f) for _i, f in entries):
            more = await redis.xrevrange(
                ST.live_key(prefix, pid), "+", "-", count=BOOT_SCAN_MAX
            )
            entries = more or entries
        plans.append(Start(pid, record, *snapshot_of(entries)))
    # the cache starts with the newest durable events before the snapshot, so a
    # client resuming from the recent past is served from memory at once
    prefill = min(cache_events, PREFILL)
    if prefill:
        pipe = redis.pipeline(transaction=False)
        for plan in plans:
            key = ST.durable_key(prefix, plan.pid)
            pipe.xrevrange(key, ST.after(plan.after), "-", count=prefill)
        found = await pipe.execute()
        for plan, got in zip(plans, found):
            plan.history = rows(plan.pid, reversed(got))
    return plans
