"""A Python client for FluxPrint's Socket.IO feed, for Python users and our tests.

    from octoprint_fluxprint.client import FluxPrintClient

    client = FluxPrintClient("http://octopi.local", apikey="...")
    client.on("printer:job_complete", lambda payload: print("done", payload["file"]))
    client.on("printer:temperature", lambda payload: ...)
    client.start()            # connects in the background, reconnects by itself
    ...
    client.status             # the newest printer:status (live, or from REST)
    client.last_seq           # the last durable event handled; persist it if you like
    client.close()

What it does for you:

- authenticates with the API key (``auth: {apikey, last_seq}``);
- tracks ``last_seq``, the seq of the last *durable* event (job_started, job_paused,
  job_resumed, job_complete, job_failed, connection) it handled, and presents it on
  every (re)connect, so the server replays whatever it missed;
- calls each durable event's handlers exactly once: a durable event with a seq at or
  below ``last_seq`` (a replay overlap) is dropped and counted in ``duplicates``;
- on ``printer:resync`` (it was away longer than the server keeps events) calls the
  ``printer:resync`` handlers, moves ``last_seq`` to the server's ``lastSeq`` and
  carries on with the fresh ``printer:status`` that follows;
- while disconnected, polls ``GET /api/plugin/fluxprint`` (the same object as
  ``printer:status``) and calls the ``printer:status`` handlers with it, so
  ``status`` stays current; ``status_source`` says "socket" or "rest".

Handlers run one at a time on the client's own thread; keep them short. Special
names: ``connect`` (no argument), ``disconnect`` (reason), ``printer:closing``
(the server's reason before it disconnects us), ``*`` (every event: name, payload).

Uses python-socketio's ``socketio.Client`` and ``requests`` (both ship with
OctoPrint); one fresh ``socketio.Client`` per connection attempt, with our own
reconnection loop (python-socketio does not reconnect after a server-side
disconnect, which is exactly when a slow client should come back and resume).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

import requests
import socketio

from ..core import schema as S
from ..core.replay import DURABLE_EVENTS
from .rest import REST_PATH, RestFallback

NAMESPACE = S.NAMESPACE
SOCKETIO_PATH = S.SOCKETIO_PATH
EV_STATUS = S.EV_STATUS
EV_RESYNC = S.EV_RESYNC
EV_CLOSING = S.EV_CLOSING
# how long close() waits for python-engineio's disconnect (see close())
CLOSE_WAIT = 2.0
__all__ = ["REST_PATH", "FluxPrintClient"]

_logger = logging.getLogger(__name__)

Handler = Callable[..., Any]


class FluxPrintClient:
    """Connects, resumes, and falls back to REST. See the module docstring.

    :param url: OctoPrint's base URL, e.g. ``http://127.0.0.1:5000``
    :param apikey: an API key (user or application key) with the STATUS permission
    :param last_seq: resume from here (e.g. persisted from a previous run); None: take
        the feed from now on without replay
    :param transports: ``["websocket"]`` (default) or ``["polling", "websocket"]``
    :param reconnect_delay: first delay between attempts; doubles up to
        ``reconnect_delay_max``
    :param rest_interval: seconds between REST polls while disconnected (0: no REST
        fallback)
    :param record: keep every received (event, payload) in ``records`` (tests)
    """

    def __init__(
        self,
        url: str,
        apikey: str,
        last_seq: Optional[int] = None,
        transports: Optional[list[str]] = None,
        reconnect_delay: float = 0.5,
        reconnect_delay_max: float = 10.0,
        rest_interval: float = 5.0,
        connect_timeout: float = 10.0,
        record: bool = False,
        session: Optional[requests.Session] = None,
    ):
        self.url = url.rstrip("/")
        self.apikey = apikey
        self.transports = transports or ["websocket"]
        self.reconnect_delay = reconnect_delay
        self.reconnect_delay_max = reconnect_delay_max
        self.connect_timeout = connect_timeout
        self.record = record
        self.records: list[tuple[str, Any]] = []

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._handlers: dict[str, list[Handler]] = {}
        self._last_seq = last_seq
        self.status: Optional[dict] = None
        self.status_source: Optional[str] = None
        self.duplicates = 0  # durable events dropped because seq <= last_seq
        self.resyncs = 0
        self.connects = 0
        self.disconnect_reasons: list[str] = []
        self.closing_reasons: list[str] = []
        self.connect_errors: list[str] = []
        self.rest_polls = 0

        self._sio: Optional[socketio.Client] = None
        self._connected = threading.Event()
        self._gone = threading.Event()  # the current connection ended
        self._closed = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._rest = RestFallback(
            self.url,
            apikey,
            rest_interval,
            session or requests.Session(),
            self._connected,
            self._closed,
            self._rest_status,
        )

    # ~~ handlers

    def on(self, event: str, handler: Handler) -> FluxPrintClient:
        """Adds a handler for ``event`` (see the module docstring for special names)."""
        with self._lock:
            self._handlers.setdefault(event, []).append(handler)
        return self

    def _dispatch(self, event: str, *args: Any) -> None:
        with self._lock:
            specific = list(self._handlers.get(event, ()))
            wildcard = (
                []
                if event in ("connect", "disconnect")
                else list(self._handlers.get("*", ()))
            )
        calls = [(h, args) for h in specific] + [(h, (event, *args)) for h in wildcard]
        for handler, call_args in calls:
            try:
                handler(*call_args)
            except Exception:
                _logger.exception("FluxPrint client: handler for %s failed", event)

    # ~~ state

    @property
    def last_seq(self) -> Optional[int]:
        """The seq of the last durable event handled (None: none yet)."""
        with self._lock:
            return self._last_seq

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _auth(self) -> dict:
        auth: dict[str, Any] = {"apikey": self.apikey}
        last = self.last_seq
        if last is not None:
            auth["last_seq"] = last
        return auth

    # ~~ life cycle

    def start(
        self, wait: bool = True, timeout: Optional[float] = None
    ) -> FluxPrintClient:
        """Starts connecting in the background; with ``wait``, returns once connected
        (raises TimeoutError after ``timeout``, default ``connect_timeout``)."""
        if self._thread is None:
            self._closed.clear()
            self._thread = threading.Thread(
                target=self._supervise, name="fluxprint-client", daemon=True
            )
            self._thread.start()
        if wait:
            self.wait_connected(timeout if timeout is not None else self.connect_timeout)
        return self

    def wait_connected(self, timeout: float = 10.0) -> None:
        if not self._connected.wait(timeout):
            raise TimeoutError(
                f"not connected after {timeout}s (errors: {self.connect_errors[-3:]})"
            )

    def close(self) -> None:
        """Disconnects and stops reconnecting and polling."""
        self._closed.set()
        self._gone.set()
        sio = self._sio
        if sio is not None:
            # python-engineio 4.15's disconnect() queues the close packet, then joins
            # its read loop: over long-polling that loop sits in a GET the server
            # answers at its next ping (25 s), and if the write loop took the close
            # packet and its end marker before disconnect() set the state it checks,
            # the close waits for that too. The close is on its way either way:
            # wait for it a bounded time, never a ping period.
            closer = threading.Thread(
                target=self._disconnect, args=(sio,), name="fluxprint-close", daemon=True
            )
            closer.start()
            closer.join(CLOSE_WAIT)
        for t in (self._thread, self._rest.thread):
            if t is not None and t is not threading.current_thread():
                t.join(5)
        self._thread = None

    @staticmethod
    def _disconnect(sio: Any) -> None:
        try:
            sio.disconnect()
        except Exception:
            pass

    def __enter__(self) -> FluxPrintClient:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _supervise(self) -> None:
        delay = self.reconnect_delay
        while not self._closed.is_set():
            self._gone.clear()
            sio = self._make_sio()
            self._sio = sio
            try:
                sio.connect(
                    self.url,
                    namespaces=[NAMESPACE],
                    socketio_path=SOCKETIO_PATH,
                    auth=self._auth,  # called on each attempt: the current last_seq
                    transports=self.transports,
                    wait_timeout=self.connect_timeout,
                )
            except Exception as exc:  # refused, unreachable, timed out
                with self._lock:
                    self.connect_errors.append(str(exc))
                self._rest.start()
                self._closed.wait(delay)
                delay = min(delay * 2, self.reconnect_delay_max)
                continue
            delay = self.reconnect_delay
            self._gone.wait()
            try:
                sio.disconnect()
            except Exception:
                pass
            if not self._closed.is_set():
                self._rest.start()
                self._closed.wait(self.reconnect_delay)
        self._connected.clear()

    def _make_sio(self) -> socketio.Client:
        sio = socketio.Client(reconnection=False)

        def on_connect() -> None:
            with self._lock:
                self.connects += 1
            self._connected.set()
            self._dispatch("connect")

        def on_connect_error(data: Any = None) -> None:
            message = data.get("message") if isinstance(data, dict) else str(data)
            with self._lock:
                self.connect_errors.append(str(message))

        def on_disconnect(reason: Any = None) -> None:
            if sio is not self._sio:
                return
            self._connected.clear()
            with self._cond:
                self.disconnect_reasons.append(str(reason))
                self._cond.notify_all()
            self._gone.set()
            self._dispatch("disconnect", str(reason))

        def on_any(event: str, data: Any = None) -> None:
            if sio is self._sio:
                self._handle(event, data)

        sio.on("connect", on_connect, namespace=NAMESPACE)
        sio.on("connect_error", on_connect_error, namespace=NAMESPACE)
        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on("*", on_any, namespace=NAMESPACE)
        return sio

    # ~~ events

    def _handle(self, event: str, data: Any) -> None:
        if event in DURABLE_EVENTS and isinstance(data, dict):
            seq = data.get("seq")
            with self._cond:
                if (
                    isinstance(seq, int)
                    and self._last_seq is not None
                    and seq <= self._last_seq
                ):
                    self.duplicates += 1
                    return
                if isinstance(seq, int):
                    self._last_seq = seq
                self._note(event, data)
        elif event == EV_RESYNC:
            with self._cond:
                self.resyncs += 1
                last = data.get("lastSeq") if isinstance(data, dict) else None
                if isinstance(last, int) and not isinstance(last, bool):
                    self._last_seq = last
                self._note(event, data)
        elif event == EV_STATUS:
            with self._cond:
                self.status = data
                self.status_source = "socket"
                self._note(event, data)
        else:
            with self._cond:
                if event == EV_CLOSING and isinstance(data, dict):
                    self.closing_reasons.append(str(data.get("reason")))
                self._note(event, data)
        self._dispatch(event, data)

    def _note(self, event: str, data: Any) -> None:
        # caller holds the lock
        if self.record:
            self.records.append((event, data))
        self._cond.notify_all()

    # ~~ requests

    def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        sio = self._sio
        if sio is None or not self.connected:
            raise ConnectionError("not connected")
        if data is None:
            return sio.call(event, namespace=NAMESPACE, timeout=timeout)
        return sio.call(event, data, namespace=NAMESPACE, timeout=timeout)

    def subscribe(
        self,
        channels: Optional[list[str]] = None,
        intervals: Optional[dict[str, float]] = None,
        since: Optional[int] = None,
        history: Optional[float] = None,
        timeout: float = 10.0,
    ) -> Any:
        """``printer:subscribe``. ``since``: replay durable events after this seq
        (``True``: after ``last_seq``); ``history``: minutes of temperature history
        wanted in the acknowledgement."""
        data: dict[str, Any] = {}
        if channels is not None:
            data["channels"] = channels
        if intervals is not None:
            data["intervals"] = intervals
        if since is True:
            since = self.last_seq
        if since is not None:
            data["since"] = since
        if history is not None:
            data["history"] = history
        return self.call("printer:subscribe", data, timeout)

    def request_status(self, timeout: float = 10.0) -> Any:
        return self.call("printer:request_status", None, timeout)

    def fetch_status(self, timeout: float = 10.0) -> dict:
        """GET /api/plugin/fluxprint: the same object as ``printer:status``."""
        return self._rest.fetch(timeout)

    def _rest_status(self, status: dict) -> None:
        # the REST fallback's thread, while the socket is down
        with self._cond:
            self.rest_polls += 1
            self.status = status
            self.status_source = "rest"
            self._cond.notify_all()
        self._dispatch(EV_STATUS, status)

    # ~~ waiting (tests and scripts)

    def wait_for(
        self,
        predicate: Callable[[FluxPrintClient], Any],
        timeout: float = 15.0,
    ) -> Any:
        """Waits until ``predicate(self)`` is truthy (checked whenever something
        arrives); returns its value or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self._cond.wait(min(left, 0.5))

    def durable(self) -> list[dict]:
        """Durable payloads handled, in order (needs ``record=True``)."""
        with self._lock:
            return [d for e, d in self.records if e in DURABLE_EVENTS]
