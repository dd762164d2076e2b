"""The farm publisher's identity in Redis (store/publisher.py calls it on its own
thread): the registry record (the heartbeat, "offline" at a clean stop), the
announce, and whose streams the ones under this printer id are.

A printer id whose registry record names another ``instance`` (a reinstall with a
new log, whose seqs start again) or, with no record, whose durable stream holds seqs
above any this plugin's log ever had, belongs to another install: its streams are
replaced by this one's, in one ``MULTI`` with this install's record, so a hub sees
the new instance and the new streams together and resyncs its clients.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import redis

from ..core import streams

_logger = logging.getLogger(__name__)


class Registration:
    def __init__(
        self,
        prefix: str,
        printer_id: str,
        name: str,
        version: str,
        instance: str,
        eventlog: Any,
        wall_ms: Callable[[], int],
    ):
        self.prefix = prefix
        self.printer_id = printer_id
        self.name = name
        self.version = version
        self.instance = instance
        self.eventlog = eventlog
        self.wall_ms = wall_ms
        self.key = streams.registry_key(prefix)
        self.live = streams.live_key(prefix, printer_id)
        self.durable = streams.durable_key(prefix, printer_id)

    def record(self, last_seq: int, state: str = "online") -> str:
        return streams.registry_record(
            self.printer_id,
            self.name,
            self.version,
            self.instance,
            self.wall_ms(),
            last_seq,
            state,
        )

    def heartbeat(
        self, client: redis.Redis, last_seq: int, state: str = "online"
    ) -> None:
        """The registry record, and the durable stream trimmed to the log's oldest."""
        pipe = client.pipeline(transaction=False)
        pipe.hset(self.key, self.printer_id, self.record(last_seq, state))
        oldest = self.eventlog.oldest_seq() if self.eventlog is not None else None
        if oldest:
            pipe.xtrim(self.durable, minid=streams.entry_id(oldest), approximate=False)
        pipe.execute()

    def announce(self, client: redis.Redis) -> None:
        client.xadd(
            streams.announce_key(self.prefix),
            {"id": self.printer_id},
            maxlen=streams.ANNOUNCE_MAXLEN,
            approximate=True,
        )

    def durable_top(self, client: redis.Redis) -> int:
        last = client.xrevrange(self.durable, "+", "-", count=1)
        return streams.seq_of(last[0][0]) if last else 0

    def foreign(self, client: redis.Redis, top: int) -> bool:
        """Whether the streams under this printer id are another install's."""
        record = streams.parse_registry(client.hget(self.key, self.printer_id) or b"")
        if record is not None:
            other = record.get("instance")
            return bool(other and self.instance and other != self.instance)
        last = self.eventlog.last_seq() if self.eventlog is not None else None
        return bool(top and last is not None and top > last)

    def take_over(self, client: redis.Redis) -> None:
        _logger.warning(
            "Redis: printer id %r was published by another install; its streams are"
            " replaced by this one's (instance %s)",
            self.printer_id,
            self.instance,
        )
        pipe = client.pipeline(transaction=True)
        pipe.delete(self.live, self.durable)
        pipe.hset(self.key, self.printer_id, self.record(0))
        pipe.execute()
