"""Sequence numbers that strictly increase, are never reused and keep increasing
across restarts.

Numbers are handed out from a block whose upper bound is persisted *before* any
number in it is used. On start the allocator resumes above the persisted bound, so a
crash can skip numbers but never repeat one; the clock plays no part (a Raspberry Pi
without a real-time clock boots with the wrong time). The next block is reserved by a
background thread when half of the current one is used, so ``next()`` never waits on
the disk in practice; only if a whole half-block is used before the write lands does
it write inline. Imports neither octoprint nor socketio.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from typing import Any, Callable, Optional

DEFAULT_BLOCK = 100_000

_logger = logging.getLogger(__name__)


class FileBound:
    """Persists the reserved upper bound in a small JSON file, atomically."""

    def __init__(self, path: str):
        self.path = path

    def load(self) -> int:
        try:
            with open(self.path, encoding="utf-8") as f:
                value = json.load(f).get("reserved", 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, AttributeError) as exc:
            raise RuntimeError(f"sequence file {self.path} is unreadable: {exc}") from exc
        if not isinstance(value, int) or value < 0:
            raise RuntimeError(f"sequence file {self.path} holds no valid bound")
        return value

    def store(self, value: int) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".seq-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"reserved": value}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


class SeqAllocator:
    def __init__(
        self,
        store: FileBound,
        block: int = DEFAULT_BLOCK,
        spawn: Optional[Callable[[Callable[[], None]], None]] = None,
    ):
        if block < 2:
            raise ValueError("block must be at least 2")
        self._store = store
        self._block = block
        self._lock = threading.Lock()  # guards _next, _limit, _reserving
        self._store_lock = (
            threading.Lock()
        )  # serialises writes; never held with _lock waited on
        self._spawn = spawn or _spawn_thread
        start = store.load()
        self._persisted = start
        self._next = start + 1
        self._limit = self._persist(start + block)
        self._reserving = False

    def _persist(self, target: int) -> int:
        # bounds only ever grow on disk, whichever writer finishes last
        with self._store_lock:
            value = max(target, self._persisted)
            self._store.store(value)
            self._persisted = value
            return value

    @property
    def last(self) -> int:
        """The last number handed out (0 before the first)."""
        with self._lock:
            return self._next - 1

    @property
    def reserved(self) -> int:
        with self._lock:
            return self._limit

    def next(self) -> int:
        reserve = None
        with self._lock:
            if self._next > self._limit:
                # the background reservation has not landed: reserve inline (rare)
                self._limit = self._persist(self._next + self._block - 1)
            value = self._next
            self._next += 1
            if not self._reserving and self._limit - value < self._block // 2:
                self._reserving = True
                reserve = self._limit + self._block
        if reserve is not None:
            self._spawn(lambda: self._reserve(reserve))
        return value

    def _reserve(self, target: int) -> None:
        try:
            target = self._persist(target)
        except Exception:
            _logger.exception("Could not reserve sequence numbers up to %d", target)
            with self._lock:
                self._reserving = False
            return
        with self._lock:
            if target > self._limit:
                self._limit = target
            self._reserving = False


def _spawn_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="fluxprint-seq", daemon=True).start()


class FloorBound:
    """Wraps ``FileBound`` so the allocator never starts below what the event log
    already holds (for instance if seq.json was lost): ``load()`` returns the larger
    of the file's bound and ``log.last_seq()``."""

    def __init__(self, inner: Any, log: Any):
        self.inner = inner
        self.log = log

    def load(self) -> int:
        try:
            value = self.inner.load()
        except RuntimeError:
            _logger.exception("Sequence bound unreadable; continuing from the event log")
            value = 0
        return max(value, self.log.last_seq())

    def store(self, value: int) -> None:
        self.inner.store(value)
