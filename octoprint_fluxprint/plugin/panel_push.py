"""The settings panel's live view: the clients table and health, pushed as plugin
messages at most once a second while someone has the FluxPrint tab open (a lease
renewed by the page), to settings admins with the FluxPrint permission only."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from .panel import PanelFeed

TICK_MS = 500


class PanelPush:
    """On the loop. ``send`` is the plugin manager's ``send_plugin_message`` bound to
    the plugin's identifier and the panel's permissions."""

    def __init__(
        self,
        engine: Any,
        send: Callable[[dict], None],
        extra: Optional[Callable[[], dict]] = None,
    ):
        self._engine = engine
        self._send = send
        # more of the panel's sections (the Redis link), merged into each push
        self._extra = extra
        self.feed = PanelFeed()
        self._timer: Any = None

    def mark(self, token: str, is_open: bool) -> None:
        now = time.monotonic()
        feed = self.feed
        if is_open:
            feed.open(token, now)
            if self._timer is None:
                from tornado.ioloop import PeriodicCallback

                self._timer = PeriodicCallback(self.tick, TICK_MS)
                self._timer.start()
            self.tick()
        else:
            feed.close(token, now)
            if not feed.active(now):
                self.stop()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def tick(self) -> None:
        # every TICK_MS while the panel is open
        now = time.monotonic()
        if not self.feed.active(now):
            self.stop()
            return
        engine = self._engine
        printer = engine.printer
        if printer is None:
            return
        message = self.feed.tick(
            now,
            time.time_ns() // 1_000_000,
            engine.client_table(),
            printer.emitted,
            printer.last_temperature_ts,
            printer.connection,
        )
        if message is not None:
            if self._extra is not None:
                message.update(self._extra())
            self._send(message)
