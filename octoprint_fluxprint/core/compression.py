"""Websocket compression modes (the ``websocket_compression`` setting).

- ``off``: no permessage-deflate.
- ``deflate``: tornado's per-client deflate with context takeover. Best ratio, but
  about 256 KiB of zlib state per connection and one compression per client per
  message.
- ``deflate_no_context_takeover``: permessage-deflate with
  ``server_no_context_takeover; client_no_context_takeover``. No zlib state is kept
  per connection, and since every client's frame for a broadcast is then the same
  bytes, ``wsframes`` compresses a broadcast once and writes it to every client.
  This needs ``wsframes.FramesHandlerMixin`` on the tornado handler (it sets
  ``shared_frames_ready``); without it the mode does not compress (like ``off``),
  because tornado alone would fall back to per-client context takeover.
- ``deflate_shared`` (the default; docs/benchmarks.md, "Compression: default and
  why"): permessage-deflate with context takeover, compressed once
  per cohort (the clients in the same set of rooms) instead of once per client:
  ``server/shared_deflate.py``. Clients keep their inflater's window, the server
  keeps one zlib state per cohort, not per client. Per-client messages go
  uncompressed (RSV1 clear), late joiners and diverged clients catch up at sync
  points. Needs ``wsframes.FramesHandlerMixin`` too.

Pure: no tornado import.
"""

from __future__ import annotations

from typing import Optional

DEFLATE = "deflate"
DEFLATE_NO_CONTEXT_TAKEOVER = "deflate_no_context_takeover"
DEFLATE_SHARED = "deflate_shared"
MODES = ("off", DEFLATE, DEFLATE_NO_CONTEXT_TAKEOVER, DEFLATE_SHARED)
DEFAULT_MODE = DEFLATE_SHARED  # chosen from docs/benchmarks.md

# zlib parameters of the shared compressor (tornado's defaults)
LEVEL = 6
MEM_LEVEL = 8
# markers in the options dict: ask the handler to negotiate no context takeover,
# or client-side no context takeover with a server window shared per cohort
NO_CONTEXT_TAKEOVER = "fluxprint_no_context_takeover"
SHARED = "fluxprint_shared"

# set by wsframes when a handler class with FramesHandlerMixin is created
shared_frames_ready = False


def compression_options(mode: str) -> Optional[dict]:
    """What tornado's ``WebSocketHandler.get_compression_options`` should return."""
    if mode == DEFLATE:
        return {}  # tornado's defaults: level 6, mem_level 8, context takeover
    if mode in (DEFLATE_NO_CONTEXT_TAKEOVER, DEFLATE_SHARED):
        if not shared_frames_ready:
            return None
        # tornado ignores keys it does not know
        marker = NO_CONTEXT_TAKEOVER if mode == DEFLATE_NO_CONTEXT_TAKEOVER else SHARED
        return {"compression_level": LEVEL, "mem_level": MEM_LEVEL, marker: True}
    return None


def wants_no_context_takeover(options: Optional[dict]) -> bool:
    return bool(options) and bool(options.get(NO_CONTEXT_TAKEOVER))


def wants_shared(options: Optional[dict]) -> bool:
    return bool(options) and bool(options.get(SHARED))
