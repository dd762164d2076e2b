"""Compress-once broadcast frames and the direct write path (real tornado streams
on a socketpair, real asyncio queues)."""

from __future__ import annotations

import asyncio
import socket
import zlib

import pytest
from tornado.iostream import IOStream

from octoprint_fluxprint.server import wsframes


def parse_frame(data: bytes) -> tuple[int, bool, bytes, bytes]:
    """RFC 6455 5.2, server frames (unmasked): (first byte, rsv1, payload, rest)."""
    first, second = data[0], data[1]
    assert not second & 0x80, "server frames are not masked"
    length, pos = second & 0x7F, 2
    if length == 126:
        length, pos = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        length, pos = int.from_bytes(data[2:10], "big"), 10
    return first, bool(first & 0x40), data[pos : pos + length], data[pos + length :]


def inflate(body: bytes) -> bytes:
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    return d.decompress(body + b"\x00\x00\xff\xff")


@pytest.mark.parametrize("size", [10, 125, 126, 5000, 70000])
def test_frame_bytes_decode_to_the_packet(size):
    text = '42/ws/printing,["printer:status",{"x":"' + "é" * size + '"}]'
    pkt = wsframes.broadcast_packet(text[2:])
    encoded = pkt.encode()
    assert isinstance(encoded, wsframes.FrameText) and encoded == "4" + text[2:]
    first, rsv1, payload, rest = parse_frame(encoded.frame(False))
    assert first == 0x81 and not rsv1 and rest == b""
    assert payload.decode() == encoded
    first, rsv1, payload, rest = parse_frame(encoded.frame(True))
    assert first == 0xC1 and rsv1 and rest == b""
    assert inflate(payload).decode() == encoded
    assert encoded.frame(True) is encoded.frame(True)  # built once


class FakeSock:
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = self.closing = self.upgrading = False
        self.upgraded = True


class Conn:
    _compressor = None  # not compressing
    _message_bytes_out = 0
    _wire_bytes_out = 0

    def __init__(self, stream):
        self.stream = stream

    def is_closing(self):
        return self.stream.closed()


class Handler:
    def __init__(self, stream):
        self.ws_connection = Conn(stream)
        self.fallback: list = []

    def write_message(self, message, binary=False):
        self.fallback.append(message)


def test_send_direct_only_when_engineio_holds_nothing():
    async def main():
        a, b = socket.socketpair()
        stream = IOStream(a)
        handler = Handler(stream)
        sock = FakeSock()
        pkt = wsframes.broadcast_packet('2/ws/printing,["e",1]')
        # a packet waiting in engine.io's queue: this one goes behind it
        sock.queue.put_nowait("queued")
        assert not wsframes.send_direct(sock, handler, pkt)
        # taken by the writer task but not yet written (task_done not called)
        assert sock.queue.get_nowait() == "queued"
        assert not wsframes.send_direct(sock, handler, pkt)
        sock.queue.task_done()
        sock.upgrading = True
        assert not wsframes.send_direct(sock, handler, pkt)
        sock.upgrading = False
        assert wsframes.send_direct(sock, handler, pkt)
        b.setblocking(False)
        await asyncio.sleep(0)
        first, _, payload, rest = parse_frame(b.recv(1000))
        assert payload == pkt.encode().utf8() and rest == b""
        assert handler.ws_connection._wire_bytes_out == len(pkt.encode().frame(False))
        assert handler.fallback == []
        stream.close()
        assert not wsframes.send_direct(sock, handler, pkt)  # closing connection
        b.close()

    asyncio.run(main())


def test_direct_writes_keep_order_when_the_kernel_buffer_fills():
    async def main():
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stream = IOStream(a)
        sent = []
        for i in range(400):  # far more than the kernel buffers hold
            frame = wsframes.broadcast_packet(
                f'2/ws/printing,["e",{i},"{"x" * 300}"]'
            ).encode()
            sent.append(frame.utf8())
            if not wsframes._send_now(stream, frame.frame(False)):
                stream.write(frame.frame(False))
        assert len(stream._write_buffer) > 0  # tornado took the rest
        b.setblocking(False)
        got = b""
        expected = sum(len(f) + 4 for f in sent)
        for _ in range(2000):
            try:
                got += b.recv(65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
            if len(got) >= expected:
                break
        frames = []
        while got:
            _, _, payload, got = parse_frame(got)
            frames.append(payload)
        assert frames == sent
        stream.close()
        b.close()

    asyncio.run(main())
