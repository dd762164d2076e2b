"""Raw Engine.IO / Socket.IO v5 clients for the hostile suite: a websocket
(websocket-client) and long-polling (requests), speaking the wire format by hand so
tests can send what no well-behaved library would."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Optional

import requests
import websocket

PATH = "/plugin/fluxprint/socket.io/"
NS = "/ws/printing"


def connect_packet(apikey: Optional[str]) -> str:
    auth = {"apikey": apikey} if apikey else {}
    return f"40{NS},{json.dumps(auth)}"


class RawWS:
    def __init__(self, port: int, timeout: float = 5.0, origin: Optional[str] = None):
        kwargs: dict[str, Any] = {"timeout": timeout}
        if origin:
            kwargs["origin"] = origin
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{PATH}?EIO=4&transport=websocket", **kwargs
        )
        opened = self.ws.recv()
        assert opened.startswith("0{"), opened

    def send(self, frame: Any) -> None:
        if isinstance(frame, tuple):  # ("text", raw bytes): a text frame, not UTF-8
            self.ws.send(frame[1], opcode=websocket.ABNF.OPCODE_TEXT)
        elif isinstance(frame, (bytes, bytearray)):
            self.ws.send_binary(bytes(frame))
        else:
            self.ws.send(frame)

    def recv(self) -> Optional[str]:
        """The next text frame, answering pings; None when the server closed."""
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except (websocket.WebSocketConnectionClosedException, OSError):
                return None
            except websocket.WebSocketTimeoutException:
                return ""
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return None
            text = data.decode("utf-8", "replace")
            if text == "2":
                self.ws.send("3")
                continue
            return text

    def join(self, apikey: Optional[str]) -> str:
        """Sends CONNECT; returns the server's answer ('40...' or '44...')."""
        self.send(connect_packet(apikey))
        while True:
            reply = self.recv()
            if reply is None or reply == "" or reply.startswith(("40", "44")):
                return reply or ""

    def closed(self, within: float = 5.0) -> bool:
        """True once the server closes the connection (reading and dropping frames)."""
        deadline = time.monotonic() + within
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.ws.settimeout(left)
            reply = self.recv()
            if reply is None:
                return True
            if reply == "":
                return False

    def close(self) -> None:
        try:
            self.ws.close(timeout=0.2)
        except Exception:
            pass


class RawPolling:
    def __init__(self, port: int, headers: Optional[dict] = None):
        self.base = f"http://127.0.0.1:{port}{PATH}"
        self.http = requests.Session()
        if headers:
            self.http.headers.update(headers)
        r = self.http.get(
            self.base, params={"EIO": "4", "transport": "polling"}, timeout=5
        )
        r.raise_for_status()
        assert r.text.startswith("0{"), r.text
        self.sid = json.loads(r.text[1:])["sid"]

    def post(self, body: Any) -> int:
        r = self.http.post(
            self.base,
            params={"EIO": "4", "transport": "polling", "sid": self.sid},
            data=body if isinstance(body, bytes) else body.encode("utf-8"),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
            timeout=5,
        )
        return r.status_code

    def get(self) -> tuple[int, str]:
        r = self.http.get(
            self.base,
            params={"EIO": "4", "transport": "polling", "sid": self.sid},
            timeout=35,
        )
        return r.status_code, r.text

    def close(self) -> None:
        try:
            self.post("1")
        except Exception:
            pass
        self.http.close()


def half_open(port: int) -> socket.socket:
    """A TCP connection that never sends its HTTP request."""
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def polling_refusal(port: int, auth: Optional[dict], headers: dict) -> Optional[str]:
    """Joins over long-polling with these headers; the connect_error message, or
    None when the namespace was joined."""
    poll = RawPolling(port, headers=headers)
    try:
        poll.post(f"40{NS},{json.dumps(auth or {})}")
        _status, text = poll.get()
        for packet in text.split("\x1e"):
            if packet.startswith("40"):
                return None
            if packet.startswith("44"):
                return json.loads(packet[len(f"44{NS},") :])["message"]
        return text
    finally:
        poll.close()
