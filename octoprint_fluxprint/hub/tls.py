"""TLS at the hub: https:// and wss:// on the listen port (``listen.tls``), and the
direct source's trust in an https:// OctoPrint (``printers[].ca``).

The certificate and key are read once, at startup (``server_context``): a file
that cannot be read, holds no PEM certificate or key, is encrypted or does not
match is refused with the config key it came from (``ConfigError``; the CLI exits
2). ``TlsHTTPServer`` looks at a connection's first byte before the handshake: a
TLS ClientHello gets the handshake, anything else (``http://``, ``ws://``) is
answered with a plain ``400`` that says to use https://, then closed, instead of a
reset the client cannot explain.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
import time
from typing import Any

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError

from ..core.logthrottle import LogThrottle
from .config import ConfigError, ListenTLS

_logger = logging.getLogger(__name__)

FIRST_BYTE_S = 10.0  # s a new connection may stay silent
HANDSHAKE_S = 10.0
TLS_HANDSHAKE = 0x16  # the content type of a TLS record that opens a handshake
PLAIN_REQUEST_MAX = 16 * 1024
PLAIN_ANSWER = b"This port of the FluxPrint hub speaks TLS: use https:// (and wss://).\n"
PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


class _Encrypted(Exception):
    pass


def _no_password() -> bytes:
    raise _Encrypted()  # ssl would otherwise ask on the terminal


def _read(where: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None


def server_context(tls: ListenTLS) -> ssl.SSLContext:
    """The hub's server context from ``listen.tls`` (blocking file reads: startup
    only)."""
    cert = _read("listen.tls.cert", tls.cert)
    _read("listen.tls.key", tls.key)
    blocks = PEM_CERT.findall(cert)
    try:
        if not blocks:
            raise ssl.SSLError("no PEM certificate")
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=b"\n".join(blocks).decode("ascii")
        )
    except (ssl.SSLError, ValueError):
        raise ConfigError(
            f"listen.tls.cert: {tls.cert} holds no PEM certificate"
        ) from None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(tls.cert, tls.key, password=_no_password)
    except _Encrypted:
        raise ConfigError(
            f"listen.tls.key: {tls.key} is encrypted; give the hub an unencrypted"
            " key, readable by its user only"
        ) from None
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise ConfigError(
                f"listen.tls.key: {tls.key} does not match the certificate in"
                " listen.tls.cert"
            ) from None
        raise ConfigError(
            f"listen.tls.key: {tls.key} holds no usable PEM private key"
            f" ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"listen.tls: cannot load the pair: {exc}") from None
    return ctx


def client_context(where: str, cafile: str) -> ssl.SSLContext:
    """Trust for an https:// OctoPrint (its CA bundle, PEM; startup only)."""
    data = _read(where, cafile)
    blocks = PEM_CERT.findall(data)
    try:
        if not blocks:
            raise ssl.SSLError("no PEM certificate")
        return ssl.create_default_context(cadata=b"\n".join(blocks).decode("ascii"))
    except (ssl.SSLError, ValueError):
        raise ConfigError(f"{where}: {cafile} holds no PEM certificate") from None


class TlsHTTPServer(HTTPServer):
    """tornado's HTTPServer, TLS only, telling a plain-text client so in plain
    text."""

    def initialize(self, *args: Any, tls_context: ssl.SSLContext, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.tls_context = tls_context
        self._plain_logged = LogThrottle(60.0, time.monotonic)
        self._sniffing: set[asyncio.Task] = set()  # the loop keeps weak references

    def start_request(self, server_conn: Any, request_conn: Any) -> Any:
        return _Https(super().start_request(server_conn, request_conn))

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        task = asyncio.ensure_future(self._sniff(stream, address))
        self._sniffing.add(task)
        task.add_done_callback(self._sniffing.discard)

    async def _sniff(self, stream: IOStream, address: tuple) -> None:
        try:
            first = await asyncio.wait_for(_peek(stream), FIRST_BYTE_S)
        except (asyncio.TimeoutError, OSError):
            first = b""
        if not first:
            stream.close()
            return
        if first[0] != TLS_HANDSHAKE:
            await self._plain(stream, address)
            return
        try:
            tls_stream = await asyncio.wait_for(
                stream.start_tls(True, self.tls_context), HANDSHAKE_S
            )
        except Exception as exc:  # a failed handshake: the client says why
            _logger.debug("TLS handshake with %s failed: %s", address[0], exc)
            stream.close()
            return
        super().handle_stream(tls_stream, address)

    async def _plain(self, stream: IOStream, address: tuple) -> None:
        held = self._plain_logged.check(address[0])
        if held is not None:
            _logger.info(
                "A plain-text request from %s on the TLS port: answered 400%s",
                address[0],
                f" ({held} more since the last such line)" if held else "",
            )
        try:
            # read the request first: closing on unread data resets the connection
            # before the client reads the answer
            await asyncio.wait_for(
                stream.read_until(b"\r\n\r\n", max_bytes=PLAIN_REQUEST_MAX), FIRST_BYTE_S
            )
            head = (
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(PLAIN_ANSWER)}\r\nConnection: close\r\n\r\n"
            )
            await stream.write(head.encode() + PLAIN_ANSWER)
        except (asyncio.TimeoutError, StreamClosedError, OSError):
            pass
        finally:
            stream.close()


class _Https(httputil.HTTPMessageDelegate):
    """Every request on this server came over TLS: say so the way engine.io reads
    it (its environ's ``wsgi.url_scheme`` is ``X-Forwarded-Proto`` or ``http``), so
    a browser page from the hub's own https:// origin is its own origin. Set, never
    appended: a client's own header cannot say otherwise."""

    def __init__(self, delegate: httputil.HTTPMessageDelegate):
        self.delegate = delegate

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> Any:
        headers["X-Forwarded-Proto"] = "https"
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


async def _peek(stream: IOStream) -> bytes:
    """The first byte the peer sent, left in the socket for the TLS handshake."""
    loop = IOLoop.current()
    readable: asyncio.Future = asyncio.get_running_loop().create_future()

    def ready(_fd: Any, _events: int) -> None:
        if not readable.done():
            readable.set_result(None)

    sock = stream.socket
    loop.add_handler(sock, ready, IOLoop.READ)
    try:
        await readable
    finally:
        loop.remove_handler(sock)
    return sock.recv(1, socket.MSG_PEEK)
