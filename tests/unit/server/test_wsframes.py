"""Compress-once broadcast frames and the fan-out's corked writes (real tornado
streams on a socketpair, real asyncio queues)."""

from __future__ import annotations

import asyncio
import socket
import time
import zlib
from types import SimpleNamespace

import pytest
from tornado.iostream import IOStream

from octoprint_fluxprint.core.budget import ClientBudget, Limits
from octoprint_fluxprint.server import wsframes
from octoprint_fluxprint.server.fanout import Writer
from octoprint_fluxprint.server.members import Member


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
    client_terminated = server_terminated = False

    def __init__(self, stream):
        self.stream = stream

    def is_closing(self):
        return self.stream.closed()


class Handler:
    def __init__(self, stream):
        self.ws_connection = Conn(stream)


class Out:
    """What server/fanout.py's Writer.send takes: a message's packet, built once."""

    def __init__(self, i: int):
        self.encoded = f'2/ws/printing,["e",{i}]'
        self._pkt = wsframes.broadcast_packet(self.encoded)

    def packet(self):
        return self._pkt


def test_the_writer_corks_a_turn_into_one_send_and_keeps_order_with_the_queue():
    async def main():
        a, b = socket.socketpair()
        b.setblocking(False)
        stream = IOStream(a)
        sock, handler = FakeSock(), Handler(stream)
        sio = SimpleNamespace(eio=SimpleNamespace(sockets={"e1": sock}))
        writer = Writer(sio, SimpleNamespace(ws_handlers={"e1": handler}))
        member = Member(
            "c1",
            "e1",
            SimpleNamespace(messages=0),
            ClientBudget(Limits(), time.monotonic),
        )
        gate_calls = []

        def gate(m, link, out):
            gate_calls.append(out.encoded)
            return True

        # a packet waiting in engine.io's queue: the message goes behind it
        sock.queue.put_nowait("ack")
        assert writer.send([member], [Out(0)], None, 0.0, gate) == 1
        assert gate_calls == [Out(0).encoded] and sock.queue.qsize() == 2
        assert sock.queue.get_nowait() == "ack" and sock.queue.get_nowait() is not None
        sock.queue.task_done()
        sock.queue.task_done()
        # clear: three messages corked, one send() at the end of the loop turn
        assert writer.send([member], [Out(1), Out(2)], None, 0.0, gate) == 2
        assert writer.send([member], [Out(3)], None, 0.0, gate) == 1
        with pytest.raises(BlockingIOError):
            b.recv(1000)  # nothing yet: corked
        await asyncio.sleep(0)
        got = b.recv(10000)
        payloads = []
        while got:
            _first, _rsv1, payload, got = parse_frame(got)
            payloads.append(payload.decode())
        assert payloads == ["4" + Out(i).encoded for i in (1, 2, 3)]
        assert writer.sends == 1 and member.info.messages == 4 and len(gate_calls) == 1
        # corked frames go before anything written another way
        writer.send([member], [Out(4)], None, 0.0, gate)
        sock.queue.put_nowait("ack")
        writer.send([member], [Out(5)], None, 0.0, gate)  # the queue: uncorks first
        _first, _rsv1, payload, rest = parse_frame(b.recv(10000))
        assert payload.decode() == "4" + Out(4).encoded and rest == b""
        stream.close()
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


def test_a_closed_client_in_the_list_does_not_stop_the_others():
    """tornado drops a closed stream's write buffer (None) before the client's
    disconnect reaches the namespace: the fan-out skips it, the others get the
    message (it once raised, and the cohort's turn was lost)."""

    async def main():
        pairs = [socket.socketpair() for _ in range(2)]
        streams = [IOStream(a) for a, _b in pairs]
        socks = {f"e{i}": FakeSock() for i in range(2)}
        handlers = {f"e{i}": Handler(st) for i, st in enumerate(streams)}
        sio = SimpleNamespace(eio=SimpleNamespace(sockets=socks))
        writer = Writer(sio, SimpleNamespace(ws_handlers=handlers))
        members = [
            Member(
                f"c{i}",
                f"e{i}",
                SimpleNamespace(messages=0),
                ClientBudget(Limits(), time.monotonic),
            )
            for i in range(2)
        ]
        assert writer.send(members, [Out(0)], None, 0.0) == 2  # links found
        await asyncio.sleep(0)
        streams[0].close()
        assert streams[0]._write_buffer is None
        assert writer.send(members, [Out(1)], None, 0.0) == 1
        await asyncio.sleep(0)
        b = pairs[1][1]
        b.setblocking(False)
        got = b.recv(10000)
        payloads = []
        while got:
            _first, _rsv1, payload, got = parse_frame(got)
            payloads.append(payload.decode())
        assert payloads == ["4" + Out(0).encoded, "4" + Out(1).encoded]
        for _a, bb in pairs:
            bb.close()
        streams[1].close()

    asyncio.run(main())
