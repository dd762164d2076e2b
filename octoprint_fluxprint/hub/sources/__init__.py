"""Where the hub's printer data comes from. One interface (``base.Source``), like
socket.io's adapter seam: ``direct`` (one Socket.IO client per printer, the
embedded default) now, ``redis`` (Redis Streams, issue 14) beside it later."""

from __future__ import annotations

from typing import Any

from .base import Source, SourceEvents


def make_source(kind: str, printers: list, events: SourceEvents) -> Source:
    if kind == "direct":
        from .direct import DirectSource

        return DirectSource(printers, events)
    raise ValueError(f"unknown source {kind!r}")


__all__: list[Any] = ["Source", "SourceEvents", "make_source"]
