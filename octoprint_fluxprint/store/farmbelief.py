"""What the farm publisher believes Redis holds, kept on disk beside the event log:
the highest durable seq it wrote, per Redis (URL without credentials), prefix and
printer id. A restarted OctoPrint reads it back, so a Redis that came back from an
older snapshot while OctoPrint was down is detected as such (its durable top below
the belief), not taken for a fresh start.

Written by the publisher's thread only (never the loop), atomically (a temporary
file and ``os.replace``), at most every ``every`` seconds and at stop, without
fsync: a crash of OctoPrint keeps the page cache; a power loss may lose the last
second, which at worst misses a rollback of that second (the back-fill restores
it anyway: the belief only decides what is *reported*).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

_logger = logging.getLogger(__name__)

FILENAME = "redis_belief.json"
MAX_KEYS = 16  # a few Redis URLs or prefixes over the plugin's life


def redis_key(url: str, prefix: str, printer_id: str) -> str:
    """The Redis a belief is about: the URL without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    bare = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return f"{bare} {prefix} {printer_id}"


class Belief:
    def __init__(
        self,
        folder: Optional[str],
        key: str,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = os.path.join(folder, FILENAME) if folder else None
        self.key = key
        self.every = every
        self.clock = clock
        self.value = 0  # the durable top this plugin believes Redis has
        self._saved = 0
        self._next = 0.0

    def load(self) -> int:
        """The persisted belief (0 when none, or unreadable: nothing is assumed)."""
        self.value = self._saved = int(self._read().get(self.key, 0) or 0)
        return self.value

    def set(self, value: int) -> None:
        self.value = max(0, int(value))
        self.maybe_save()

    def maybe_save(self, force: bool = False) -> None:
        if self.value == self._saved or self.path is None:
            return
        now = self.clock()
        if not force and now < self._next:
            return
        self._next = now + self.every
        data = self._read()
        data.pop(self.key, None)
        data[self.key] = self.value
        while len(data) > MAX_KEYS:
            data.pop(next(iter(data)))
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
            self._saved = self.value
        except OSError as exc:
            _logger.warning("Could not keep the Redis belief in %s: %s", self.path, exc)

    def _read(self) -> dict:
        if self.path is None:
            return {}
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, int) and v >= 0}
