"""The client's REST fallback: while the socket is down, the same object as
``printer:status`` from ``GET /api/plugin/fluxprint`` every few seconds."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

import requests

REST_PATH = "/api/plugin/fluxprint"

_logger = logging.getLogger(__name__)


class RestFallback:
    def __init__(
        self,
        url: str,
        apikey: str,
        interval: float,
        session: requests.Session,
        connected: threading.Event,
        closed: threading.Event,
        on_status: Callable[[dict], None],
    ):
        self.url = url
        self.apikey = apikey
        self.interval = interval
        self._http = session
        self._connected = connected
        self._closed = closed
        self._on_status = on_status
        self.thread: Optional[threading.Thread] = None

    def fetch(self, timeout: float = 10.0) -> dict:
        r = self._http.get(
            self.url + REST_PATH, headers={"X-Api-Key": self.apikey}, timeout=timeout
        )
        r.raise_for_status()
        return r.json()

    def start(self) -> None:
        """Polls until the socket is back or the client closes (idempotent)."""
        if not self.interval or self._closed.is_set():
            return
        if self.thread is not None and self.thread.is_alive():
            return
        self.thread = threading.Thread(
            target=self._loop, name="fluxprint-client-rest", daemon=True
        )
        self.thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set() and not self._connected.is_set():
            try:
                status = self.fetch(timeout=min(10.0, self.interval * 2))
            except (requests.RequestException, ValueError) as exc:
                _logger.debug("FluxPrint client: REST fallback failed: %s", exc)
            else:
                if self._connected.is_set():
                    break  # the socket is back: its status wins
                self._on_status(status)
            self._closed.wait(self.interval)
