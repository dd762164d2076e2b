"""Websocket compression modes (the ``websocket_compression`` setting).

- ``off``: no permessage-deflate.
- ``deflate``: tornado's per-client deflate with context takeover. Best ratio, but
  about 256 KiB of zlib state per connection and one compression per client per
  message.
- ``deflate_no_context_takeover`` (the default; see docs/benchmarks.md for why):
  permessage-deflate with
  ``server_no_context_takeover; client_no_context_takeover``. No zlib state is kept
  per connection, and since every client's frame for a broadcast is then the same
  bytes, ``wsframes`` compresses a broadcast once and writes it to every client.
  This needs ``wsframes.FramesHandlerMixin`` on the tornado handler (it sets
  ``shared_frames_ready``); without it the mode does not compress (like ``off``),
  because tornado alone would fall back to per-client context takeover.

Pure: no tornado import.
"""

from __future__ import annotations

from typing import Optional

DEFLATE = "deflate"
DEFLATE_NO_CONTEXT_TAKEOVER = "deflate_no_context_takeover"
MODES = ("off", DEFLATE, DEFLATE_NO_CONTEXT_TAKEOVER)
DEFAULT_MODE = DEFLATE_NO_CONTEXT_TAKEOVER  # chosen from docs/benchmarks.md

# zlib parameters of the shared compressor (tornado's defaults)
LEVEL = 6
MEM_LEVEL = 8
# marker in the options dict: ask the handler to negotiate no context takeover
NO_CONTEXT_TAKEOVER = "fluxprint_no_context_takeover"

# set by wsframes when a handler class with FramesHandlerMixin is created
shared_frames_ready = False


def compression_options(mode: str) -> Optional[dict]:
    """What tornado's ``WebSocketHandler.get_compression_options`` should return."""
    if mode == DEFLATE:
        return {}  # tornado's defaults: level 6, mem_level 8, context takeover
    if mode == DEFLATE_NO_CONTEXT_TAKEOVER:
        if not shared_frames_ready:
            return None
        # tornado ignores keys it does not know
        return {
            "compression_level": LEVEL,
            "mem_level": MEM_LEVEL,
            NO_CONTEXT_TAKEOVER: True,
        }
    return None


def wants_no_context_takeover(options: Optional[dict]) -> bool:
    return bool(options) and bool(options.get(NO_CONTEXT_TAKEOVER))
