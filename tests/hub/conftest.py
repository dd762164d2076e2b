"""Real parts for the hub tests: hub processes (``python -m octoprint_fluxprint.hub``)
and python-socketio clients that resume with per-printer cursors. FluxStudio's relay
and browser come from tests/harness/fluxstudio.py."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any, Optional

import requests
import socketio
import yaml

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


class HubProcess:
    def __init__(self, workdir: str, config: dict, port: int):
        self.workdir = workdir
        self.config = config
        self.port = port
        self.path = os.path.join(workdir, "hub.yaml")
        self.log = os.path.join(workdir, "hub.log")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        self.config.setdefault("listen", {})["port"] = self.port
        with open(self.path, "w") as f:
            yaml.safe_dump(self.config, f)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "octoprint_fluxprint.hub", "--config", self.path],
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.tail()
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.tail())

    def health(self) -> dict:
        return requests.get(self.url + "/health", timeout=5).json()

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
    (of durable events) on every reconnect."""

    def __init__(
        self, url: str, auth: Optional[dict] = None, printers: Optional[list] = None
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
        self.sio = socketio.Client(
            reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2
        )
        self.sio.on("*", self._any, namespace=NS)
        self.sio.on("connect", self._connect, namespace=NS)
        self.sio.on(
            "connect_error",
            lambda data=None: self.connect_errors.append(str(data)),
            namespace=NS,
        )

    def _auth(self) -> dict:
        auth = dict(self.base_auth)
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
