"""Real Socket.IO test clients with one interface: python-socketio and Node's
socket.io-client 4 (through tests/node/bridge.mjs).

Both record every event with its receipt time (epoch ms) and answer ``call`` with
the server's acknowledgement.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any, Callable, Optional

import socketio

NAMESPACE = "/ws/printing"
PATH = "/plugin/fluxprint/socket.io/"
NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "node")
BRIDGE = os.path.join(NODE_DIR, "bridge.mjs")

Record = dict[str, Any]


class Recorder:
    kind = "?"

    def __init__(self) -> None:
        self.records: list[Record] = []  # {"event", "data", "recv"}
        self.connect_error: Optional[str] = None
        self.connected = threading.Event()
        self.failed = threading.Event()
        self.disconnects: list[str] = []
        self.transport: Optional[str] = None
        self._cond = threading.Condition()

    def _record(self, event: str, data: Any, recv: Optional[float] = None) -> None:
        with self._cond:
            self.records.append(
                {
                    "event": event,
                    "data": data,
                    "recv": recv if recv else time.time() * 1000,
                }
            )
            self._cond.notify_all()

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def events(self, name: Optional[str] = None) -> list[Record]:
        with self._cond:
            return [r for r in self.records if name is None or r["event"] == name]

    def payloads(self, name: str) -> list[Any]:
        return [r["data"] for r in self.events(name)]

    def wait_for(
        self,
        name: str,
        predicate: Callable[[Any], bool] = lambda d: True,
        timeout: float = 15.0,
        after: int = 0,
    ) -> Any:
        """The first ``name`` event at index >= ``after`` whose payload matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.records[after:]:
                    if r["event"] == name and predicate(r["data"]):
                        return r["data"]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [r["event"] for r in self.records[after:]][-20:]
                    raise TimeoutError(
                        f"{self.kind}: no {name} within {timeout}s; saw {seen}"
                    )
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.records)

    def wait_connected(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return
            if self.failed.is_set():
                raise ConnectionError(
                    f"{self.kind}: connect_error {self.connect_error!r}"
                )
            time.sleep(0.02)
        raise TimeoutError(f"{self.kind}: not connected after {timeout}s")


class PyClient(Recorder):
    kind = "python"

    def __init__(
        self,
        url: str,
        auth: Optional[dict] = None,
        transports: Optional[list[str]] = None,
        headers: Optional[dict] = None,
    ):
        super().__init__()
        self.url = url
        self.auth = auth
        self.transports = transports or ["websocket"]
        self.headers = headers or {}
        self.sio = socketio.Client(reconnection=False)

        @self.sio.event(namespace=NAMESPACE)
        def connect():
            self.transport = self.sio.transport()
            self.connected.set()

        @self.sio.event(namespace=NAMESPACE)
        def connect_error(data):
            self.connect_error = (
                data.get("message") if isinstance(data, dict) else str(data)
            )
            self.failed.set()

        @self.sio.event(namespace=NAMESPACE)
        def disconnect(reason=None):
            self.disconnects.append(str(reason))
            self._notify()

        @self.sio.on("*", namespace=NAMESPACE)
        def any_event(event, data=None):
            self._record(event, data)

    def start(self, wait: bool = True) -> PyClient:
        try:
            self.sio.connect(
                self.url,
                namespaces=[NAMESPACE],
                socketio_path=PATH,
                auth=self.auth,
                transports=self.transports,
                headers=self.headers,
                wait_timeout=10,
            )
        except socketio.exceptions.ConnectionError as exc:
            if self.connect_error is None:
                self.connect_error = str(exc)
            self.failed.set()
            if wait:
                raise
            return self
        if wait:
            self.wait_connected()
        return self

    def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        if data is None:
            return self.sio.call(event, namespace=NAMESPACE, timeout=timeout)
        return self.sio.call(event, data, namespace=NAMESPACE, timeout=timeout)

    def close(self) -> None:
        try:
            if self.sio.transport() == "polling":
                # python-engineio's client otherwise waits out its pending long-poll
                # (ping interval + timeout) before disconnect() returns
                self.sio.eio.disconnect(abort=True)
            self.sio.disconnect()
        except Exception:
            pass


class NodeClient(Recorder):
    kind = "node"

    def __init__(
        self,
        url: str,
        auth: Optional[dict] = None,
        transports: Optional[list[str]] = None,
        headers: Optional[dict] = None,
        upgrade: bool = True,
        reconnection: bool = False,
        reconnection_delay: int = 1000,
    ):
        super().__init__()
        self.opts = {
            "url": url,
            "namespace": NAMESPACE,
            "path": PATH,
            "auth": auth or {},
            "transports": transports or ["websocket"],
            "extraHeaders": headers or {},
            "upgrade": upgrade,
            "reconnection": reconnection,
            "reconnectionDelay": reconnection_delay,
        }
        self.proc: Optional[subprocess.Popen] = None
        self.sid: Optional[str] = None
        self._acks: dict[int, Any] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self.stderr: list[str] = []
        # permessage-deflate parameters agreed on the websocket (None: not deflated)
        self.deflate: Optional[dict] = None

    def start(self, wait: bool = True) -> NodeClient:
        self.proc = subprocess.Popen(
            ["node", BRIDGE, json.dumps(self.opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=NODE_DIR,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        if wait:
            self.wait_connected()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            kind = msg.get("type")
            if kind == "event":
                self._record(msg["event"], msg.get("data"), msg.get("recv"))
            elif kind == "connect":
                self.sid = msg.get("id")
                self.transport = msg.get("transport")
                self.deflate = msg.get("deflate")
                self.connected.set()
            elif kind == "upgrade":
                self.transport = msg.get("transport")
                self.deflate = msg.get("deflate")
            elif kind == "connect_error":
                self.connect_error = msg.get("message")
                self.failed.set()
            elif kind == "disconnect":
                self.connected.clear()
                self.disconnects.append(msg.get("reason"))
                self._notify()
            elif kind == "ack":
                with self._cond:
                    self._acks[msg["id"]] = msg
                    self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _send(self, obj: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        cmd: dict[str, Any] = {
            "op": "emit",
            "id": ident,
            "event": event,
            "timeout": timeout * 1000,
        }
        if data is not None:
            cmd["data"] = data
        self._send(cmd)
        deadline = time.monotonic() + timeout + 2
        with self._cond:
            while ident not in self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"node: no ack for {event}")
                self._cond.wait(left)
            msg = self._acks.pop(ident)
        if msg.get("error"):
            raise TimeoutError(f"node: {event}: {msg['error']}")
        return msg.get("data")

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self._send({"op": "close"})
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
        finally:
            self.proc = None


def make_client(kind: str, url: str, **kwargs: Any) -> Recorder:
    return (NodeClient if kind == "node" else PyClient)(url, **kwargs)  # type: ignore[return-value]
