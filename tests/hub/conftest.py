"""Real parts for the hub tests: hub processes and python-socketio clients that
resume with per-printer cursors. FluxStudio's relay and browser come from
tests/harness/fluxstudio.py.

A hub process is the ``fluxprint-hub`` of the hub as a user installs it: the
wheel built from this tree with ``<wheel>[hub]`` in a venv of its own, without
OctoPrint or the develop extra (tools/hubvenv.py, made by scripts/setup.sh and
brought up to date here when the package changed since)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from typing import Any, Optional

import hubvenv
import requests
import socketio
import yaml
from harness.clients import NodeClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NS = "/ws/printing"
DURABLE = {
    "printer:job_started",
    "printer:job_paused",
    "printer:job_resumed",
    "printer:job_complete",
    "printer:job_failed",
    "printer:connection",
}


_executable: list[str] = []


def hub_executable() -> str:
    """The wheel venv's ``fluxprint-hub``, rebuilt once per test session when the
    package changed since the venv was made."""
    if not _executable:
        _executable.append(hubvenv.ensure())
    return _executable[0]


def hub_env(extra: Optional[dict] = None) -> dict:
    """The environment of a hub process: nothing that would make it import this
    source tree instead of its own install."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra or {})
    return env


class HubProcess:
    def __init__(
        self,
        workdir: str,
        config: dict,
        port: int,
        env: Optional[dict] = None,
        ca: Optional[str] = None,
    ):
        self.workdir = workdir
        self.config = config
        self.port = port
        self.env = env or {}
        self.ca = ca  # the CA bundle that verifies a TLS hub (listen.tls)
        self.path = os.path.join(workdir, "hub.yaml")
        self.log = os.path.join(workdir, "hub.log")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        tls = (self.config.get("listen") or {}).get("tls") or self.ca
        return f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout, verify=self.ca or True)

    def start(self, timeout: float = 30) -> None:
        self.config.setdefault("listen", {})["port"] = self.port
        os.makedirs(self.workdir, exist_ok=True)
        with open(self.path, "w") as f:
            yaml.safe_dump(self.config, f)
        self.proc = subprocess.Popen(
            [hub_executable(), "--config", self.path],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=hub_env(self.env),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            try:
                if self.get("/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.tail())

    def health(self) -> dict:
        return self.get("/health").json()

    def wait_synced(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s == "online" for s in self.health()["printers"].values()):
                return
            time.sleep(0.2)
        raise TimeoutError(self.health())

    def kill(self) -> None:
        """SIGKILL: no goodbye, no clean close."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        self.proc = None
        return code

    def tail(self, n: int = 4000) -> str:
        try:
            return open(self.log, errors="replace").read()[-n:]
        except OSError:
            return ""


class HubClient:
    """A python-socketio client of the hub that resumes with per-printer cursors
    (of durable events) on every reconnect. ``auth``: a dict, or a callable that
    returns one for each (re)connect."""

    def __init__(
        self,
        url: str,
        auth: Any = None,
        printers: Optional[list] = None,
        ca: Optional[str] = None,
    ):
        self.url = url
        self.base_auth = auth or {}
        self.printers = printers
        self.cursors: dict[str, int] = {}
        self.durable: list[tuple[str, int, str]] = []  # (printer, seq, event)
        self.events: list[tuple[float, str, Any]] = []
        self.states: list[tuple[float, str, str]] = []  # (t, printer, state)
        self.errors: list[str] = []  # resyncs: a cursor the hub could not serve
        self.connect_errors: list[str] = []  # refusals, and attempts while it is down
        self.connects = 0
        self.lock = threading.Lock()
        options: dict = {}
        if ca is not None:  # a TLS hub: verified against this CA bundle
            options["http_session"] = requests.Session()
            options["http_session"].verify = ca
        self.sio = socketio.Client(
            reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2, **options
        )
        self.sio.on("*", self._any, namespace=NS)
        self.sio.on("connect", self._connect, namespace=NS)
        self.sio.on(
            "connect_error",
            lambda data=None: self.connect_errors.append(str(data)),
            namespace=NS,
        )

    def _auth(self) -> dict:
        # a callable gives what each (re)connect presents: a fresh token
        base = self.base_auth
        auth = dict(base() if callable(base) else base)
        if self.cursors:
            auth["last_seq"] = dict(self.cursors)
        return auth

    def start(self) -> HubClient:
        self.sio.connect(
            self.url,
            namespaces=[NS],
            transports=["websocket"],
            auth=self._auth,
            wait_timeout=10,
        )
        return self

    def _connect(self) -> None:
        self.connects += 1
        if self.printers is not None:
            self.sio.emit("printer:subscribe", {"printers": self.printers}, namespace=NS)

    def _any(self, event: str, data: Any = None) -> None:
        now = time.monotonic()
        with self.lock:
            self.events.append((now, event, data))
            if event == "printer:printers":
                for p in data["printers"]:
                    self.states.append((now, p["id"], p["state"]))
            elif event in DURABLE:
                pid, seq = data["printer"], data["seq"]
                self.durable.append((pid, seq, event))
                self.cursors[pid] = max(seq, self.cursors.get(pid, 0))
            elif event == "printer:resync":
                self.errors.append(f"resync {data}")

    def seen(self, event: str) -> list:
        with self.lock:
            return [d for _t, e, d in self.events if e == event]

    def close(self) -> None:
        self.sio.disconnect()


class HubNode(NodeClient):
    """socket.io-client 4 (tests/node/bridge.mjs) at a hub: its default path, a CA
    bundle for a TLS hub (``ca``), and ``set_auth`` for what the next (re)connect
    presents."""

    def __init__(
        self,
        url: str,
        auth: Optional[dict] = None,
        ca: Optional[str] = None,
        reconnection: bool = False,
    ):
        super().__init__(
            url, auth=auth, reconnection=reconnection, reconnection_delay=300
        )
        self.opts["path"] = "/socket.io/"
        if ca is not None:
            self.opts["ca"] = ca

    def set_auth(self, auth: dict) -> None:
        self._send({"op": "auth", "auth": auth})

    def refused(self, timeout: float = 10) -> str:
        """The connect_error's message (the client must be refused)."""
        assert self.failed.wait(timeout), "node: no connect_error"
        assert not self.connected.is_set()
        return str(self.connect_error)


def plugin_log(basedir: str) -> list[tuple[int, str]]:
    path = os.path.join(basedir, "data", "fluxprint", "events.db")
    with sqlite3.connect(path) as db:
        return [
            tuple(r) for r in db.execute("SELECT seq, event FROM events ORDER BY seq")
        ]


def compare(
    client: HubClient, pid: str, log: list[tuple[int, str]], since: int = 0
) -> dict:
    got = [(s, e) for p, s, e in client.durable if p == pid and s > since]
    want = [(s, e) for s, e in log if s > since]
    seqs = [s for s, _ in got]
    return {
        "compared": len(want),
        "lost": len(set(want) - set(got)),
        "duplicated": len(seqs) - len(set(seqs)),
        "out_of_order": int(seqs != sorted(seqs)),
    }
