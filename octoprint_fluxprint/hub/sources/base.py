"""The source interface. A source delivers, on the hub's loop, each printer's
messages as the plugin emitted them, in the plugin's seq order, resuming from the
hub's cursor after any cut; the hub does everything else (relaying, the mirror,
liveness, the clients).

The ``redis`` source (issue 14) reads the same messages from Redis Streams with
explicit last IDs derived from the same cursor; it calls the same callbacks, plus
``on_printer`` when a printer registers, and gives each printer a replay source of
its own (``replay_log``) that reads Redis asynchronously.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Protocol


class SourceEvents(Protocol):
    """What the hub gives a source (all called on the hub's loop)."""

    def cursor(self, printer_id: str) -> int:
        """The highest seq the hub has relayed for the printer (resume after it)."""
        ...

    def on_link(self, printer_id: str, up: bool) -> None: ...

    def on_connect_failed(self, printer_id: str, reason: str) -> None: ...

    def on_heartbeat(self, printer_id: str) -> None:
        """The printer's plugin is alive (its registry heartbeat moved on), though
        nothing may have come on its stream lately."""
        ...

    def on_message(
        self, printer_id: str, event: str, payload: Any, live: bool = True
    ) -> None:
        """One message, in the plugin's seq order. ``live`` False: read back (a
        snapshot at a printer's start), no sign that the printer is there now."""
        ...

    def on_resync(self, printer_id: str, oldest: Optional[int], last: int) -> int:
        """The cursor is older than the printer retains (or from another install):
        the hub adjusts its mirror and returns the seq to resume after."""
        ...

    def on_synced(self, printer_id: str) -> None:
        """Every durable event the printer retains up to now has been delivered
        (the redis source: the printer's snapshot is relayed; it is served now)."""
        ...

    def on_printer(
        self, printer_id: str, record: dict, after: int, history: Sequence[Any] = ()
    ) -> None:
        """A printer appeared (the redis source's registry or announce): the hub
        makes room for it; relaying starts after seq ``after``. ``history``: the
        newest durable events at or below ``after`` (``core.mirror.Row``,
        ascending, all of them in their range) to start the cache with."""
        ...

    def on_reinstalled(
        self, printer_id: str, record: dict, after: int, history: Sequence[Any] = ()
    ) -> None:
        """The printer's plugin was reinstalled (the redis registry names another
        instance; its seqs started again): the hub starts the printer over as in
        ``on_printer`` and sends its clients ``printer:resync``."""
        ...


class Source(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def request_status(self, printer_id: str) -> None:
        """Have the printer's next status come soon (the hub owes clients one). A
        source that cannot ask does nothing: the plugin's status keyframes, which
        every source must carry, answer within a few seconds."""
        ...

    def stats(self) -> dict: ...

    # optional (the redis source): replay_log(printer_id, cache, state) -> a replay
    # source for server/feeds.Feed with read_async and catch_up; ready() -> whether
    # the printers are known (connects are refused with "server is starting" until)
