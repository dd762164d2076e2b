"""Where the hub's printer data comes from. One interface (``base.Source``), like
socket.io's adapter seam: ``direct`` (one Socket.IO client per printer, the
embedded default) and ``redis`` (Redis Streams, issue 14)."""

from __future__ import annotations

from typing import Any, Optional

from .base import Source, SourceEvents


def make_source(
    kind: str,
    printers: list,
    events: SourceEvents,
    cfg: Any = None,
    tls: Optional[dict] = None,
) -> Source:
    if kind == "direct":
        from .direct import DirectSource

        # tls: an SSL context per printer with a CA bundle (printers[].ca)
        return DirectSource(printers, events, tls)
    if kind == "redis":
        from .redis import RedisSource

        return RedisSource(cfg, events)
    raise ValueError(f"unknown source {kind!r}")


__all__: list[Any] = ["Source", "SourceEvents", "make_source"]
