"""The seam between the engine and the printers it serves: one ``Feed`` per printer.

The plugin is a registry of one feed (key ``""``, rooms named as they always were);
the hub has one per configured printer, keyed by the printer id, whose rooms are
prefixed with that id (``FeedSink``), so two printers' ``status@1`` rooms never
mix. A room's subscribers are cohorts (server/cohorts.py), never clients. Each feed brings its own replay source:
the plugin's SQLite log, or the hub's in-memory mirror of the plugin's log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

ROOM_SEP = "|"


@dataclass
class Feed:
    key: str  # the registry key: "" in the plugin, the printer id in the hub
    state: Any  # core.rooms.Rooms (core.printer.PrinterState, core.relay.RelayedPrinter)
    # durable events to replay: horizon(), oldest_seq(), last_seq(), read_since(seq, n)
    log: Any = None
    issued: Callable[[], int] = lambda: 0  # the last seq the printer handed out
    history: Callable[[], list] = list  # OctoPrint's temperature history (plugin)
    blocking_log: bool = True  # read_since touches the disk: run it off the loop
    # set once the replay source is complete (the hub's mirror after its fill);
    # None: always
    ready: Optional[asyncio.Event] = field(default=None, repr=False)
    # an asynchronous replay source on the loop (the hub's redis feed): pages of
    # rows (seq, event, payload) after a cursor, none above what the feed relayed
    read_async: Optional[Callable[[int, int], Awaitable[list]]] = field(
        default=None, repr=False
    )
    # awaited before a resume is planned: the feed catches up (bounded) with a
    # cursor above what it relayed (a client from a hub slightly ahead)
    catch_up: Optional[Callable[[int], Awaitable[None]]] = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The printer id clients see (the plugin's may change in the settings)."""
        return self.state.printer_id


class FeedSink:
    """A printer's ``core.rooms.Sink`` on the shared delivery: its rooms prefixed
    with its key, its durable events appended to its own log."""

    def __init__(self, delivery: Any, key: str, log: Any):
        self.delivery = delivery
        self.key = key
        self.prefix = key + ROOM_SEP
        self.log = log

    def emit(self, event: str, payload: dict, room: str) -> None:
        self.delivery.emit(
            event, payload, self.prefix + room, feed=self.key, log=self.log
        )

    def send_to(self, sid: str, event: str, payload: dict) -> None:
        self.delivery.send_to(sid, event, payload, feed=self.key)

    def enter_room(self, sid: str, room: str) -> None:
        self.delivery.enter_room(sid, self.prefix + room)

    def leave_room(self, sid: str, room: str) -> None:
        self.delivery.leave_room(sid, self.prefix + room)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        return self.delivery.call_at(when, callback)

    def cancel(self, handle: Any) -> None:
        self.delivery.cancel(handle)
