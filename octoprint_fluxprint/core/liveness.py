"""Whether a printer's feed is online, stale or offline. Pure, with the clock
passed in.

- online: the link to its OctoPrint is up and a message came over it within
  ``stale_after`` (the hub asks the plugin for status keyframes, so a healthy feed
  is never silent that long). A link coming up is not a message: a printer is
  online only once something flows from it again (the redis source's link is Redis,
  which may be back well before the printer's publisher is);
- stale: the link is up but nothing came yet or lately, or it just went down and
  no reconnect has failed yet;
- offline: never connected, a reconnect failed, or down for ``offline_after``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

ONLINE = "online"
STALE = "stale"
OFFLINE = "offline"


@dataclass
class Liveness:
    stale_after: float = 5.0
    offline_after: float = 10.0
    link_up: bool = False
    last_message: Optional[float] = None
    down_since: Optional[float] = None
    failed: bool = True  # no link yet: offline

    def message(self, now: float) -> None:
        self.last_message = now

    def up(self, now: float) -> None:
        """The link is up; what came before it went down does not count."""
        self.link_up = True
        self.failed = False
        self.down_since = None

    def down(self, now: float) -> None:
        if self.link_up:
            self.down_since = now
        self.link_up = False
        self.last_message = None

    def connect_failed(self, now: float) -> None:
        self.failed = True
        if self.down_since is None:
            self.down_since = now

    def state(self, now: float) -> str:
        if self.link_up:
            if (
                self.last_message is not None
                and now - self.last_message < self.stale_after
            ):
                return ONLINE
            return STALE
        if self.failed or self.down_since is None:
            return OFFLINE
        return OFFLINE if now - self.down_since >= self.offline_after else STALE


def registry_online(record: Mapping[str, Any], now_ms: int, offline_after: float) -> bool:
    """Whether a printer's registry record (``core.streams.registry_record``) says
    it is there: not marked offline by its plugin, and seen within ``offline_after``
    (the plugin refreshes ``lastSeen`` every ``streams.HEARTBEAT_S``)."""
    if record.get("state") == OFFLINE:
        return False
    seen = record.get("lastSeen")
    if isinstance(seen, bool) or not isinstance(seen, int):
        return False
    return now_ms - seen < offline_after * 1000
