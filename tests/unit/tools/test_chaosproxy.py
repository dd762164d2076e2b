"""The chaos proxy against a local echo server."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from tests.tools.chaosproxy import ChaosProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            if data.startswith(b"BYE"):
                sock.close()  # the server closes first
                return
            if data.startswith(b"FLOOD"):
                self.server.flood_result = self._flood(sock)
                return
            sock.sendall(data)

    def _flood(self, sock):
        sock.settimeout(0.5)
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:
                sent += sock.send(b"x" * 65536)
        except (socket.timeout, OSError):
            return ("blocked", sent)
        return ("done", sent)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    flood_result = None


@pytest.fixture
def echo():
    server = Server(("127.0.0.1", 0), Echo)
    t = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo):
    p = ChaosProxy(("127.0.0.1", echo.server_address[1]), server_rcvbuf=4096).start()
    yield p
    p.stop()


def connect(proxy) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    return s


def roundtrip(s: socket.socket, data: bytes = b"hello") -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def wait_until(pred, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_forwards_both_ways(proxy):
    with connect(proxy) as s:
        assert roundtrip(s) == b"hello"
        assert roundtrip(s, b"x" * 200_000) == b"x" * 200_000
    assert proxy.accepted == 1


def test_cut_all_resets_every_connection_and_counts(proxy):
    a, b = connect(proxy), connect(proxy)
    assert roundtrip(a) == b"hello" and roundtrip(b) == b"hello"
    assert wait_until(lambda: proxy.active == 2)
    assert proxy.cut_all() == 2
    for s in (a, b):
        with pytest.raises((ConnectionResetError, BrokenPipeError, ConnectionError)):
            s.sendall(b"more")
            data = s.recv(10)
            if data == b"":
                raise ConnectionResetError("eof")
        s.close()
    assert proxy.cuts == 2 and proxy.cut_events == 1 and proxy.active == 0
    assert proxy.cut_all() == 0 and proxy.cut_events == 1
    with connect(proxy) as s:  # new connections work again
        assert roundtrip(s) == b"hello"


def test_refuse_for(proxy):
    proxy.refuse_for(0.3)
    # under load the reset can come before connect() returns: that is a refusal too
    with pytest.raises((ConnectionResetError, ConnectionError)):
        with connect(proxy) as s:
            s.sendall(b"x")
            if s.recv(10) == b"":
                raise ConnectionResetError("eof")
    assert proxy.refused >= 1
    time.sleep(0.35)
    with connect(proxy) as s:
        assert roundtrip(s) == b"hello"


def test_stall_holds_server_data_and_backs_the_server_up(proxy, echo):
    with connect(proxy) as s:
        assert roundtrip(s) == b"hello"
        proxy.stall()
        s.sendall(b"ping")
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(10)
        s.settimeout(2)
        proxy.unstall()
        assert s.recv(10) == b"ping"
        # the server floods a stalled client: its sends block instead of the proxy
        # buffering everything
        proxy.stall()
        s.sendall(b"FLOOD")
        assert wait_until(lambda: echo.flood_result is not None, 5)
        kind, sent = echo.flood_result
        assert kind == "blocked" and sent < 16 * 1024 * 1024
        proxy.unstall()


def test_server_close_is_counted_and_passed_on(proxy):
    with connect(proxy) as s:
        s.sendall(b"BYE")
        assert s.recv(10) == b""
    assert wait_until(lambda: proxy.server_closed == 1)
    assert proxy.cuts == 0


def test_random_cuts(proxy):
    stop = threading.Event()
    failures = []

    def client():
        while not stop.is_set():
            try:
                with connect(proxy) as s:
                    while not stop.is_set():
                        if roundtrip(s) != b"hello":
                            break
            except OSError as exc:
                failures.append(exc)

    t = threading.Thread(target=client)
    t.start()
    proxy.start_random_cuts(0.01, 0.03, seed=3)
    assert wait_until(lambda: proxy.cut_events >= 10, 5)
    proxy.stop_random_cuts()
    stop.set()
    t.join(5)
    n = proxy.cut_events
    time.sleep(0.1)
    assert proxy.cut_events == n  # stopped
    assert proxy.cuts >= 10


def test_upstream_down(echo):
    port = echo.server_address[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    with ChaosProxy(("127.0.0.1", dead)) as p:
        try:
            with connect(p) as s:
                s.settimeout(2)
                try:
                    assert s.recv(10) == b""
                except ConnectionResetError:
                    pass
        except ConnectionResetError:
            pass  # reset before connect() returned: the client is cut off either way
        assert wait_until(lambda: p.upstream_failures == 1)
    assert port


@pytest.mark.parametrize(
    "target,listen",
    [
        (("10.0.0.1", 80), ("127.0.0.1", 0)),
        (("127.0.0.1", 80), ("0.0.0.0", 0)),
        (("example.com", 80), ("127.0.0.1", 0)),
    ],
)
def test_loopback_only(target, listen):
    with pytest.raises(ValueError):
        ChaosProxy(target, listen)
