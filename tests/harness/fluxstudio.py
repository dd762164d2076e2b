"""FluxStudio's side of the wire as subprocesses: tests/fluxstudio/relay.mjs (its
backend relay) and tests/fluxstudio/browser.mjs (its browser hook), and any other
Node script that reports JSON lines on stdout (tests/integration/plain_client.mjs).

    relay = Relay.start(octo.url, octo.apikey, log_path)   # the two lines FluxStudio adds
    browser = Browser.start(relay.url, log_path)
    browser.wait_for(lambda m: m["event"] == "printer:status", 10)
    browser.close(); relay.stop()

Every stdout line that parses as JSON is kept, in arrival order, in ``lines``; a
``mark()`` taken before an action lets a wait look only at what came after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any, Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
FLUXSTUDIO_DIR = os.path.join(os.path.dirname(HERE), "fluxstudio")
PLUGIN_PATH = "/plugin/fluxprint/socket.io/"

Line = dict[str, Any]


class Proc:
    """A node process whose stdout JSON lines are collected in ``lines``; stderr and
    the raw stdout go to ``log_path``."""

    def __init__(
        self,
        script: str,
        env: Optional[dict[str, str]] = None,
        log_path: Optional[str] = None,
        args: tuple[str, ...] = (),
    ):
        self.script = script
        self.lines: list[Line] = []
        self._cond = threading.Condition()
        self.log = open(log_path or os.devnull, "w")
        self.p = subprocess.Popen(
            ["node", script, *args],
            cwd=os.path.dirname(script),
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            try:
                self.log.write(line)
                self.log.flush()
            except ValueError:  # log closed by stop()
                pass
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict):
                with self._cond:
                    self.lines.append(msg)
                    self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self.p.poll() is None

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def since(self, after: int = 0) -> list[Line]:
        with self._cond:
            return list(self.lines[after:])

    def find(self, pred: Callable[[Line], Any], after: int = 0) -> Optional[Line]:
        return next((m for m in self.since(after) if pred(m)), None)

    def wait_for(
        self, pred: Callable[[Line], Any], timeout: float, after: int = 0
    ) -> Line:
        """The first line at index >= ``after`` that matches; TimeoutError if none
        arrives in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.lines[after:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (not self.alive and not self._reader.is_alive()):
                    tail = [
                        m.get("event") or m.get("relay") or m.get("type")
                        for m in self.lines[after:]
                    ][-25:]
                    raise TimeoutError(
                        f"{os.path.basename(self.script)}: condition not met in "
                        f"{timeout}s; last lines {tail}"
                    )
                self._cond.wait(min(left, 0.5))

    def send(self, obj: dict) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(obj) + "\n")
        self.p.stdin.flush()

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        if self.p.poll() is None:
            try:
                assert self.p.stdin is not None
                self.p.stdin.close()
            except OSError:
                pass
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self._reader.join(2)
        self.log.close()
        return self.p.returncode


class Relay(Proc):
    """relay.mjs toward FluxPrint: FluxStudio's relay with ``FLUXPRINT_PATH`` and
    ``FLUXPRINT_APIKEY`` set, logging every forwarded and dropped event."""

    port: int

    @classmethod
    def start(
        cls,
        url: str,
        apikey: Optional[str],
        log_path: Optional[str] = None,
        wait_upstream: bool = True,
        **env: str,
    ) -> Relay:
        """``apikey=None``: FluxStudio exactly as it ships (no path, no credentials),
        for the standalone hub."""
        relay = cls(
            os.path.join(FLUXSTUDIO_DIR, "relay.mjs"),
            {
                "FLUXPRINT_WS_URL": url,
                # empty is unset for relay.mjs
                "FLUXPRINT_PATH": PLUGIN_PATH if apikey is not None else "",
                "FLUXPRINT_APIKEY": apikey or "",
                "RELAY_PORT": "0",
                "RELAY_LOG_FORWARD": "1",
                **env,
            },
            log_path,
        )
        try:
            relay.port = relay.wait_for(lambda m: "listening" in m, 20)["listening"]
            if wait_upstream:
                relay.wait_for(lambda m: m.get("relay") == "upstream_connect", 20)
        except Exception:
            relay.stop()
            raise
        return relay

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def of(self, kind: str, after: int = 0) -> list[Line]:
        """The relay's own lines of one kind ("upstream_connect", "forward", ...)."""
        return [m for m in self.since(after) if m.get("relay") == kind]

    def forwarded(self, event: str, after: int = 0) -> list[Line]:
        return [m for m in self.of("forward", after) if m.get("event") == event]

    def stop(self, timeout: float = 5.0) -> Optional[int]:
        # SIGTERM: the relay disconnects from FluxPrint and exits, as FluxStudio's
        return super().stop(timeout)


class Browser(Proc):
    """browser.mjs: a client of the relay that reads payloads the way FluxStudio's
    usePrintWebSocket / usePrinterStatus hooks do. Lines: {"event", "t", "payload",
    "view"}."""

    @classmethod
    def start(
        cls, relay_url: str, log_path: Optional[str] = None, wait: bool = True, **env: str
    ) -> Browser:
        browser = cls(
            os.path.join(FLUXSTUDIO_DIR, "browser.mjs"),
            {"RELAY_URL": relay_url, **env},
            log_path,
        )
        if wait:
            try:
                browser.wait_for(lambda m: m.get("event") == "connect", 20)
            except Exception:
                browser.stop()
                raise
        return browser

    def events(self, name: str, after: int = 0) -> list[Line]:
        return [m for m in self.since(after) if m.get("event") == name]

    def payloads(self, name: str, after: int = 0) -> list[Any]:
        return [m["payload"] for m in self.events(name, after)]

    def wait_event(
        self,
        name: str,
        pred: Callable[[Any], Any] = lambda p: True,
        timeout: float = 15.0,
        after: int = 0,
    ) -> Line:
        return self.wait_for(
            lambda m: m.get("event") == name and pred(m.get("payload")), timeout, after
        )

    def command(self, cmd: str, **extra: Any) -> Line:
        """Sends a stdin command and waits for its answer line."""
        mark = self.mark()
        self.send({"cmd": cmd, **extra})
        reply = "_state" if cmd == "state" else "_cmd"
        return self.wait_for(lambda m: m.get("event") == reply, 10, mark)

    def request_status(self) -> Line:
        return self.command("request_status")

    def state(self) -> Line:
        """What the hooks hold: connectionStatus, data (status, temperature,
        progress), dashboard, callbacks."""
        return self.command("state")

    def close(self) -> Optional[int]:
        if self.alive:
            try:
                self.send({"cmd": "close"})
                self.p.wait(5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        return self.stop()


def from_fluxprint(line: Line) -> bool:
    """A browser line carrying a payload FluxPrint made (the relay's own
    printer:connection and printer:subscribed have no ``seq``)."""
    payload = line.get("payload")
    return isinstance(payload, dict) and "seq" in payload


def fluxprint_records(lines: list[Line]) -> list[dict[str, Any]]:
    """Browser lines with FluxPrint payloads as {"event", "data"} records, for
    harness.validate.validate_records."""
    return [
        {"event": m["event"], "data": m["payload"]}
        for m in lines
        if m.get("event", "").startswith("printer:") and from_fluxprint(m)
    ]
