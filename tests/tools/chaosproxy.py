"""A TCP proxy for tests that breaks connections on purpose. Loopback only.

Runs its own asyncio loop in a background thread, so synchronous tests drive it:

    proxy = ChaosProxy(("127.0.0.1", octo.port)).start()
    client connects to proxy.url ...
    proxy.cut_all()                 # abort every live connection (RST both ways)
    proxy.refuse_for(2.0)           # new connections are reset at once for 2 s
    proxy.stall()/proxy.unstall()   # stop forwarding server->client (a stuck reader)
    proxy.start_random_cuts(0.3, 1.5, seed=7) ... proxy.stop_random_cuts()
    proxy.cuts, proxy.accepted, proxy.server_closed
    proxy.stop()

Backpressure passes through: when one side cannot take more, the proxy stops reading
the other, so a stalled client backs the server up for real.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional

__all__ = ["ChaosProxy"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Side(asyncio.Protocol):
    """One TCP leg; forwards what it reads to its peer leg."""

    def __init__(self, pair: _Pair, name: str):
        self.pair = pair
        self.name = name  # "client" or "server"
        self.transport: Optional[asyncio.Transport] = None
        self.peer: Optional[_Side] = None
        self.pending: list[bytes] = []  # read before the peer connected
        self.paused_by_peer = False
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pair.bytes[self.name] += len(data)
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
            return
        peer.transport.write(data)

    # the peer's writes back up: stop reading here (and so back up our sender)
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.paused_by_peer = True
            self.pair.apply_reading(self.peer)

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.paused_by_peer = False
            self.pair.apply_reading(self.peer)

    def eof_received(self) -> bool:
        self.pair.closing(self)
        if self.peer is not None and self.peer.transport is not None:
            if self.peer.transport.can_write_eof():
                self.peer.transport.write_eof()
        return True  # keep the other direction open until both ends are done

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.closed = True
        self.pair.lost(self)


class _Pair:
    def __init__(self, proxy: ChaosProxy, ident: int):
        self.proxy = proxy
        self.ident = ident
        self.client = _Side(self, "client")
        self.server = _Side(self, "server")
        self.client.peer = self.server
        self.server.peer = self.client
        self.bytes = {"client": 0, "server": 0}
        self.cut = False
        self.first_closer: Optional[str] = None

    def apply_reading(self, side: _Side) -> None:
        t = side.transport
        if t is None or t.is_closing():
            return
        stalled = side.name == "server" and self.proxy._stalled
        if side.paused_by_peer or stalled:
            t.pause_reading()
        else:
            t.resume_reading()

    def closing(self, side: _Side) -> None:
        if self.first_closer is None and not self.cut:
            self.first_closer = side.name
            if side.name == "server":
                self.proxy.server_closed += 1

    def lost(self, side: _Side) -> None:
        self.closing(side)
        peer = side.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            peer.transport.close()  # orderly: flush what is buffered
        if self.client.closed and (self.server.closed or self.server.transport is None):
            self.proxy._pairs.pop(self.ident, None)

    def abort(self) -> None:
        self.cut = True
        for side in (self.client, self.server):
            if side.transport is not None:
                _set_linger_zero(side.transport)
                side.transport.abort()
        self.proxy._pairs.pop(self.ident, None)


def _set_linger_zero(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        except OSError:
            pass


class ChaosProxy:
    def __init__(
        self,
        target: tuple[str, int],
        listen: tuple[str, int] = ("127.0.0.1", 0),
        server_rcvbuf: Optional[int] = None,
    ):
        """``server_rcvbuf``: a small receive buffer on the server-facing socket makes
        a stall back the server up sooner (bytes; None: the kernel's default)."""
        if not _is_loopback(target[0]) or not _is_loopback(listen[0]):
            raise ValueError("ChaosProxy only proxies loopback to loopback")
        self.target = target
        self.listen = listen
        self.server_rcvbuf = server_rcvbuf
        self.port = 0
        self.cuts = 0  # connections aborted by cut_all or random cuts
        self.cut_events = 0  # cut_all calls that hit at least one connection
        self.accepted = 0
        self.refused = 0
        self.server_closed = 0  # connections the server closed first
        self.upstream_failures = 0
        self._pairs: dict[int, _Pair] = {}
        self._ids = 0
        self._refuse_until = 0.0
        self._stalled = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._random_task: Optional[asyncio.Task] = None
        self.on_cut: Optional[Callable[[int], None]] = None

    # ~~ life cycle (any thread)

    @property
    def url(self) -> str:
        return f"http://{self.listen[0]}:{self.port}"

    def start(self) -> ChaosProxy:
        ready: Future = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="chaosproxy", daemon=True
        )
        self._thread.start()
        ready.result(10)
        return self

    def _run(self, ready: Future) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                loop.create_server(self._accept, self.listen[0], self.listen[1])
            )
        except BaseException as exc:
            ready.set_exception(exc)
            return
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set_result(None)
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._random_task is not None:
                self._random_task.cancel()
            if self._server is not None:
                self._server.close()
            for pair in list(self._pairs.values()):
                pair.abort()

        self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self._loop is not None, "proxy not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ~~ chaos (any thread)

    @property
    def active(self) -> int:
        return len(self._pairs)

    def cut_all(self) -> int:
        """Aborts every live connection (RST to both ends); returns how many."""

        async def cut() -> int:
            return self._cut_now()

        return self._call(cut())

    def _cut_now(self) -> int:
        pairs = list(self._pairs.values())
        for pair in pairs:
            pair.abort()
        self.cuts += len(pairs)
        if pairs:
            self.cut_events += 1
            if self.on_cut is not None:
                self.on_cut(len(pairs))
        return len(pairs)

    def refuse_for(self, seconds: float) -> None:
        """New connections are reset as soon as accepted, for ``seconds``."""

        async def set_() -> None:
            loop = asyncio.get_running_loop()
            self._refuse_until = max(self._refuse_until, loop.time() + seconds)

        self._call(set_())

    def stall(self) -> None:
        """Stops reading from the server side: the clients get nothing more, and the
        server's sends back up as if the clients had stopped reading."""
        self._set_stall(True)

    def unstall(self) -> None:
        self._set_stall(False)

    def _set_stall(self, value: bool) -> None:
        async def set_() -> None:
            self._stalled = value
            for pair in list(self._pairs.values()):
                pair.apply_reading(pair.server)

        self._call(set_())

    def start_random_cuts(
        self,
        min_interval: float,
        max_interval: float,
        seed: Optional[int] = None,
        refuse: float = 0.0,
    ) -> None:
        """Cuts all connections at random moments (uniform gaps between
        ``min_interval`` and ``max_interval``); optionally refuses new connections
        for ``refuse`` seconds after each cut. Only counts cuts that hit something."""
        rng = random.Random(seed)

        async def chaos() -> None:
            loop = asyncio.get_running_loop()
            while True:
                await asyncio.sleep(rng.uniform(min_interval, max_interval))
                if self._cut_now() and refuse:
                    self._refuse_until = loop.time() + refuse

        async def start() -> None:
            if self._random_task is not None:
                self._random_task.cancel()
            self._random_task = asyncio.ensure_future(chaos())

        self._call(start())

    def stop_random_cuts(self) -> None:
        async def stop() -> None:
            if self._random_task is not None:
                self._random_task.cancel()
                self._random_task = None

        self._call(stop())

    # ~~ connections (the proxy's loop)

    def _accept(self) -> asyncio.Protocol:
        self._ids += 1
        pair = _Pair(self, self._ids)
        loop = asyncio.get_running_loop()
        if loop.time() < self._refuse_until:
            self.refused += 1
            return _Refuse()
        self.accepted += 1
        self._pairs[pair.ident] = pair
        asyncio.ensure_future(self._connect_upstream(pair))
        return pair.client

    async def _connect_upstream(self, pair: _Pair) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if self.server_rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.server_rcvbuf)
        try:
            await loop.sock_connect(sock, self.target)
            await loop.create_connection(lambda: pair.server, sock=sock)
        except OSError:
            sock.close()
            self.upstream_failures += 1
            pair.abort()
            return
        if pair.cut or pair.client.closed:
            pair.abort()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending, pair.client.pending = pair.client.pending, []
        for data in pending:
            pair.server.transport.write(data)  # type: ignore[union-attr]
        pair.apply_reading(pair.server)


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        _set_linger_zero(transport)
        transport.abort()
