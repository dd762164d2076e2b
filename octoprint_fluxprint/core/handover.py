"""Hand-over of work from OctoPrint's threads to the IOLoop, cheap for the caller.

The comm thread (``on_printer_add_temperature``), the state-monitor thread and the
event thread each hand their payload to the loop. A plain ``add_callback`` per call
writes to the loop's self-pipe every time (a syscall, plus tornado's wrapping): here
a call is a ``deque.append``, and the loop is woken only when no wake-up is pending
already, so a burst of calls costs one wake-up and one loop iteration.

No lock: ``deque.append``/``popleft`` are atomic, and the consumer clears the flag
*before* it drains, so an item appended after the drain's last ``popleft`` always
finds the flag cleared and schedules a new drain.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

_logger = logging.getLogger(__name__)


class Handover:
    def __init__(self, wake: Callable[[Callable[[], None]], Any]):
        # wake(drain) must make the consumer thread call drain() soon; thread-safe
        self._wake = wake
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._pending = False
        self.wakeups = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Any thread; O(1)."""
        self._items.append((fn, args))
        if not self._pending:
            self._pending = True
            self.wakeups += 1
            try:
                self._wake(self.drain)
            except RuntimeError:  # the loop is closed: OctoPrint is shutting down
                self._pending = False

    def drain(self) -> int:
        """The consumer thread: runs what was handed over, in order."""
        self._pending = False
        items = self._items
        done = 0
        while items:
            fn, args = items.popleft()
            done += 1
            try:
                fn(*args)
            except Exception:
                _logger.exception("Error in %r", fn)
        return done

    def __len__(self) -> int:
        return len(self._items)
