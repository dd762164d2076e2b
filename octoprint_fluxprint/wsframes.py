"""Broadcast websocket frames built once, written to every client as the same bytes.

The transport encodes one Engine.IO packet per broadcast; engine.io then hands that
packet's string to each client's tornado handler, which would UTF-8 encode it again
and, with permessage-deflate, compress it again, per client. Here:

- ``broadcast_packet(encoded)`` makes the Engine.IO MESSAGE packet whose encoded
  form is a ``FrameText``: a ``str`` that lazily caches its UTF-8 bytes and its raw
  deflate body (compressed once, no context takeover).
- ``FramesHandlerMixin`` goes on the tornado handler. It negotiates
  ``server_no_context_takeover; client_no_context_takeover`` when the compression
  options ask for it (``compression.DEFLATE_NO_CONTEXT_TAKEOVER``) and, in
  ``write_message``, writes a ``FrameText`` straight as a websocket frame: the cached
  deflate body where the connection deflates without context takeover at the shared
  parameters, the cached UTF-8 bytes where it does not compress. Anything else
  (per-client ``deflate``, other window sizes, plain strings) goes through tornado.

Only tornado's private ``WebSocketProtocol13`` attributes ``_compressor``,
``_write_frame`` and ``_message_bytes_out`` are used, each checked, falling back to
tornado's own path when they are missing.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any, Optional

from engineio import packet as eio_packet

from . import compression

_OPCODE_TEXT = 0x1
_RSV1 = 0x40


class FrameText(str):
    """An encoded Engine.IO packet that caches its wire forms."""

    _utf8: bytes
    _deflated: bytes

    def utf8(self) -> bytes:
        try:
            return self._utf8
        except AttributeError:
            self._utf8 = self.encode("utf-8")
            return self._utf8

    def deflated(self) -> bytes:
        """The permessage-deflate body (RFC 7692 7.2.1), no context takeover."""
        try:
            return self._deflated
        except AttributeError:
            c = zlib.compressobj(
                compression.LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, compression.MEM_LEVEL
            )
            body = c.compress(self.utf8()) + c.flush(zlib.Z_SYNC_FLUSH)
            self._deflated = body[:-4]  # drop the 00 00 ff ff tail
            return self._deflated


class BroadcastPacket(eio_packet.Packet):
    def encode(self, b64: bool = False) -> Any:
        if self.encode_cache is None:
            self.encode_cache = FrameText(super().encode(b64))
        return self.encode_cache


def broadcast_packet(encoded: str) -> eio_packet.Packet:
    """The Engine.IO MESSAGE packet for one Socket.IO packet sent to many clients."""
    return BroadcastPacket(eio_packet.MESSAGE, encoded)


def shared_deflate(connection: Any) -> Optional[bool]:
    """True: deflates without context takeover at the shared parameters; False:
    does not compress; None: anything else (let tornado do it)."""
    compressor = getattr(connection, "_compressor", None)
    if compressor is None:
        return False
    if (
        getattr(compressor, "_compressor", True) is None  # not persistent
        and getattr(compressor, "_max_wbits", None) == zlib.MAX_WBITS
        and getattr(compressor, "_compression_level", None) == compression.LEVEL
        and getattr(compressor, "_mem_level", None) == compression.MEM_LEVEL
    ):
        return True
    return None


class FramesHandlerMixin:
    """Put first in the bases of the tornado ``WebSocketHandler`` subclass."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        compression.shared_frames_ready = True

    _fp_no_context_takeover = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        self._fp_no_context_takeover = compression.wants_no_context_takeover(
            self.get_compression_options()  # type: ignore[attr-defined]
        )
        await super().get(*args, **kwargs)  # type: ignore[misc]

    def set_header(self, name: str, value: Any) -> None:
        # tornado answers a permessage-deflate offer by echoing it (and its header
        # parser drops valueless parameters such as *_no_context_takeover): when the
        # mode asks for it, agree on no context takeover both ways instead, and
        # rebuild the connection's (de)compressors to match
        if self._fp_no_context_takeover and name.lower() == "sec-websocket-extensions":
            from tornado import httputil

            conn = getattr(self, "ws_connection", None)
            create = getattr(conn, "_create_compressors", None)
            ext, agreed = httputil._parse_header(str(value))
            if ext == "permessage-deflate" and create is not None:
                agreed = dict(agreed)
                agreed["server_no_context_takeover"] = None
                agreed["client_no_context_takeover"] = None
                create("server", agreed, getattr(conn, "_compression_options", None))
                value = httputil._encode_header(ext, agreed)
        super().set_header(name, value)  # type: ignore[misc]

    def write_message(self, message: Any, binary: bool = False) -> Any:
        if isinstance(message, FrameText) and not binary:
            conn = getattr(self, "ws_connection", None)
            write_frame = getattr(conn, "_write_frame", None)
            if conn is not None and write_frame is not None and not conn.is_closing():
                mode = shared_deflate(conn)
                if mode is not None:
                    return _write(conn, message, mode)
        return super().write_message(message, binary=binary)  # type: ignore[misc]


def _write(conn: Any, message: FrameText, deflate: bool) -> Any:
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    data = message.utf8()
    if hasattr(conn, "_message_bytes_out"):
        conn._message_bytes_out += len(data)
    try:
        if deflate:
            fut = conn._write_frame(True, _OPCODE_TEXT, message.deflated(), flags=_RSV1)
        else:
            fut = conn._write_frame(True, _OPCODE_TEXT, data)
    except StreamClosedError:
        raise WebSocketClosedError() from None

    async def wrapper() -> None:
        try:
            await fut
        except StreamClosedError:
            raise WebSocketClosedError() from None

    return asyncio.ensure_future(wrapper())


def send_direct(sio: Any, eio_sid: str, pkt: Any) -> bool:
    """Writes ``pkt`` to a websocket client at once, skipping engine.io's per-socket
    queue and writer task (an ``asyncio.wait_for`` per message per client), when
    nothing is queued before it, so order is kept. False: use ``send_packet``.

    Only for clients whose first request was the websocket itself (FluxStudio's
    ``transports: ["websocket"]``): python-socketio keeps that request's environ,
    whose ``tornado.handler`` is then the websocket handler."""
    eio = sio.eio
    sock = eio.sockets.get(eio_sid)
    if sock is None or sock.closed or not sock.upgraded or not sock.queue.empty():
        return False
    environ = sio.environ.get(eio_sid)
    handler = environ.get("tornado.handler") if environ else None
    conn = getattr(handler, "ws_connection", None)
    if conn is None or conn.is_closing():
        return False
    try:
        handler.write_message(pkt.encode())
    except Exception:
        return False
    return True
