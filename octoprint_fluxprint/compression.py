"""Websocket compression modes (the ``websocket_compression`` setting).

tornado's permessage-deflate keeps about 256 KiB of zlib state per connection at its
defaults, so compression is a setting, and off by default. Pure: no tornado import.
"""

from __future__ import annotations

from typing import Optional

MODES = ("off", "deflate")
DEFAULT_MODE = "off"


def compression_options(mode: str) -> Optional[dict]:
    """What tornado's ``WebSocketHandler.get_compression_options`` should return."""
    if mode == "deflate":
        return {}  # tornado's defaults: level 6, mem_level 8, context takeover
    return None
