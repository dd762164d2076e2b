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

- ``uncork(conn)`` writes what the fan-out (server/fanout.py) corked for a
  connection during a loop turn: one ``send()`` on the socket when tornado holds
  nothing for it, skipping engine.io's per-socket queue and writer task and
  tornado's write buffer and per-write future; ``write_message`` uncorks first, so
  what engine.io writes later (acks, pings) stays behind it.

tornado's private ``WebSocketProtocol13`` attributes ``_compressor``, ``stream``,
``_message_bytes_out``/``_wire_bytes_out`` and ``IOStream._write_buffer``/
``_write_futures`` are used, each checked, falling back to tornado's own path when
they are missing.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from typing import Any, Optional

from engineio import packet as eio_packet
from tornado.iostream import IOStream

from ..core import compression

_OPCODE_TEXT = 0x1
_RSV1 = 0x40


class FrameText(str):
    """An encoded Engine.IO packet that caches its wire forms. ``private``: a
    message for one client, never compressed on a ``deflate_shared`` connection
    (it must stay out of the client's inflater window). ``shared``: the frame of a
    ``deflate_shared`` stream, for the clients synced to it."""

    _utf8: bytes
    _deflated: bytes
    private = False
    shared: Optional[bytes] = None

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

    def frame(self, deflate: bool) -> bytes:
        """The whole websocket frame, header included: a server's frames are not
        masked, so every client gets exactly these bytes."""
        cache = self.__dict__.setdefault("_frames", {})
        try:
            return cache[deflate]
        except KeyError:
            body = self.deflated() if deflate else self.utf8()
            cache[deflate] = _header(len(body), deflate) + body
            return cache[deflate]


def shared_frame(body: bytes) -> bytes:
    """A deflate_shared stream's frame for ``body`` (RSV1 set, header included)."""
    return _header(len(body), True) + body


def _header(length: int, deflate: bool) -> bytes:
    first = 0x80 | _OPCODE_TEXT | (_RSV1 if deflate else 0)  # FIN, text
    if length < 126:
        return struct.pack("!BB", first, length)
    if length <= 0xFFFF:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


class BroadcastPacket(eio_packet.Packet):
    private = False
    shared: Optional[bytes] = None

    def encode(self, b64: bool = False) -> Any:
        if self.encode_cache is None:
            text = FrameText(super().encode(b64))
            text.private = self.private
            if self.shared is not None:
                text.shared = _header(len(self.shared), True) + self.shared
            self.encode_cache = text
        return self.encode_cache


def broadcast_packet(
    encoded: str,
    private: bool = False,
    shared: Optional[bytes] = None,
    like: Optional[FrameText] = None,
) -> eio_packet.Packet:
    """The Engine.IO MESSAGE packet for one Socket.IO packet sent to many clients
    (``private``: to one; ``shared``: a deflate_shared stream's body for it;
    ``like``: the same message's frame text, whose cached forms it reuses)."""
    pkt = BroadcastPacket(eio_packet.MESSAGE, encoded)
    pkt.private = private
    pkt.shared = shared
    if like is not None:
        text = pkt.encode()
        for name in ("_utf8", "_deflated", "_frames"):
            if name in like.__dict__:
                setattr(text, name, like.__dict__[name])
    return pkt


def frame_for(conn: Any, message: FrameText) -> Optional[bytes]:
    """The bytes to write for ``message`` on ``conn``, or None: tornado's path."""
    if getattr(conn, "_fp_shared", False):
        if message.shared is not None:
            return message.shared
        return message.frame(not message.private)
    mode = shared_deflate(conn)
    return None if mode is None else message.frame(mode)


def is_shared(handler: Any) -> bool:
    """Whether the client's websocket deflates with a deflate_shared stream."""
    conn = getattr(handler, "ws_connection", None)
    return bool(getattr(conn, "_fp_shared", False)) and not conn.is_closing()


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
    _fp_shared = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        options = self.get_compression_options()  # type: ignore[attr-defined]
        self._fp_no_context_takeover = compression.wants_no_context_takeover(options)
        self._fp_shared = compression.wants_shared(options)
        await super().get(*args, **kwargs)  # type: ignore[misc]

    def set_header(self, name: str, value: Any) -> None:
        # tornado answers a permessage-deflate offer by echoing it (and its header
        # parser drops valueless parameters such as *_no_context_takeover): when the
        # mode asks for it, agree on no context takeover both ways instead, and
        # rebuild the connection's (de)compressors to match
        wanted = self._fp_no_context_takeover or self._fp_shared
        if wanted and name.lower() == "sec-websocket-extensions":
            from tornado import httputil

            conn = getattr(self, "ws_connection", None)
            create = getattr(conn, "_create_compressors", None)
            ext, agreed = httputil._parse_header(str(value))
            if ext == "permessage-deflate" and create is not None:
                agreed = dict(agreed)
                # a client that insists on server_no_context_takeover gets frames
                # compressed one by one (deflate_no_context_takeover) instead
                shared = self._fp_shared and "server_no_context_takeover" not in agreed
                if not shared:
                    agreed["server_no_context_takeover"] = None
                agreed["client_no_context_takeover"] = None
                create("server", agreed, getattr(conn, "_compression_options", None))
                if shared:
                    # tornado would keep a zlib state per connection and compress
                    # every message with it: without one, what it writes goes out
                    # uncompressed (RSV1 clear), and the shared frames come from the
                    # cohort's stream (server/shared_deflate.py)
                    conn._compressor = None
                    conn._fp_shared = True
                value = httputil._encode_header(ext, agreed)
        super().set_header(name, value)  # type: ignore[misc]

    def write_message(self, message: Any, binary: bool = False) -> Any:
        conn = getattr(self, "ws_connection", None)
        if conn is not None and getattr(conn, "_fp_corked", None):
            uncork(conn)  # what the fan-out corked goes before this
        if isinstance(message, FrameText) and not binary:
            if conn is not None and getattr(conn, "stream", None) is not None:
                frame = None if conn.is_closing() else frame_for(conn, message)
                if frame is not None:
                    return _write(conn, message, frame)
        return super().write_message(message, binary=binary)  # type: ignore[misc]


def _write_cached(conn: Any, message: FrameText, frame: bytes) -> Any:
    """Counts and writes the cached frame: one ``send()`` when tornado holds nothing
    for the stream, tornado's buffer otherwise. Returns tornado's write future, or
    None when the frame went straight to the kernel (a partial send's rest is
    tornado's; a closed stream's error is marked retrieved by tornado itself)."""
    if hasattr(conn, "_wire_bytes_out"):  # tornado's counters
        conn._message_bytes_out += len(message.utf8())
        conn._wire_bytes_out += len(frame)
    stream = conn.stream
    if _send_now(stream, frame):
        return None
    return stream.write(frame)


def _write(conn: Any, message: FrameText, frame: bytes) -> Any:
    """``write_message``'s contract: a future that fails with WebSocketClosedError."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    try:
        fut = _write_cached(conn, message, frame)
    except StreamClosedError:
        raise WebSocketClosedError() from None
    if fut is None:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def wrapper() -> None:
        try:
            await fut
        except StreamClosedError:
            raise WebSocketClosedError() from None

    return asyncio.ensure_future(wrapper())


def uncork(conn: Any) -> bool:
    """Writes the frames the fan-out corked for a connection (server/fanout.py):
    one ``send()`` for all of them when tornado holds nothing, tornado's buffer for
    the rest. False: nothing was corked, or the stream is closed."""
    frames = conn._fp_corked
    conn._fp_corked = None
    stream = getattr(conn, "stream", None)
    if not frames or stream is None or stream.closed():
        return False
    data = frames[0] if len(frames) == 1 else b"".join(frames)
    if not _send_now(stream, data):
        try:
            stream.write(data)
        except Exception:  # closed meanwhile: tornado's own path notices
            return False
    return True


def _send_now(stream: Any, frame: bytes) -> bool:
    """One ``send()`` straight to the socket when tornado has nothing buffered for
    it (so order is kept), skipping its write buffer and per-write future; what the
    kernel does not take at once goes to tornado's buffer. Plain TCP streams only
    (tornado's SSL stream has its own buffering). False: use ``stream.write``."""
    if (
        type(stream) is not IOStream
        or stream.closed()
        or getattr(stream, "_connecting", True)
        or len(getattr(stream, "_write_buffer", (1,)))
        or getattr(stream, "_write_futures", (1,))
    ):
        return False
    sock = stream.socket
    try:
        sent = sock.send(frame)
    except BlockingIOError:
        sent = 0
    except OSError:
        return False  # tornado's write runs into the same error and closes
    if sent < len(frame):
        stream.write(memoryview(frame)[sent:])
    return True
