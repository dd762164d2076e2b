"""Real parts for the npm client's tests (clients/js): the session's OctoPrint with
the Virtual Printer, hub processes in front of it, and a control server through
which a Node test (node:test) drives them: stop, kill and restart the hub, make
durable events on the printer, read the plugin's own event log to compare with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

import pytest
from harness.jobs import job_command, wait_job
from octoserver import free_port, gcode_file

from octoprint_fluxprint.hub.config import hash_token
from tests.hub.conftest import HubProcess, plugin_log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JS = os.path.join(ROOT, "clients", "js")
PRINTER = "js-octo"
TOKEN = "js-client-token"
JWT_SECRET = "js-client-jwt-secret-of-at-least-32-bytes"


def jwt_token(seconds: float = 600, **claims) -> str:
    """A JWT as FluxStudio signs its users' (HS256, id, email, exp)."""
    import jwt

    body = {"id": "u1", "email": "u1@example.com", "exp": int(time.time() + seconds)}
    return jwt.encode({**body, **claims}, JWT_SECRET, algorithm="HS256")


NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"


def hub_config(octo, trusted: bool) -> dict:
    return {
        "printers": [{"id": PRINTER, "url": octo.url, "apikey": octo.apikey}],
        "auth": {
            "trusted_networks": ["127.0.0.0/8", "::1"] if trusted else [],
            "trusted": {"profile": "dashboard", "printers": ["*"]},
            "tokens": [{"name": "js", "sha256": hash_token(TOKEN), "printers": ["*"]}],
            "jwt": {"secret": JWT_SECRET, "printers": ["*"]},
        },
        "stale_after": 3,
        "offline_after": 6,
    }


@pytest.fixture(scope="module")
def hub(octo, tmp_path_factory):
    """A hub in front of the session's OctoPrint: loopback trusted, and a token."""
    octo.ensure_operational()
    proc = HubProcess(
        str(tmp_path_factory.mktemp("jshub")), hub_config(octo, True), free_port()
    )
    proc.start()
    proc.wait_synced()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def token_hub(octo, tmp_path_factory):
    """A hub that trusts no network: a token or nothing."""
    proc = HubProcess(
        str(tmp_path_factory.mktemp("jshub-token")), hub_config(octo, False), free_port()
    )
    proc.start()
    proc.wait_synced()
    yield proc
    proc.stop()


def run(
    cmd: list[str],
    cwd: str,
    timeout: float = 300,
    env: Optional[dict] = None,
    log: Optional[str] = None,
):
    """A command whose output goes into the assertion message when it fails (and
    into ``log``, if given, either way)."""
    done = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if log is not None:
        with open(log, "w") as f:
            f.write(done.stdout + done.stderr)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    )
    return done


class Control:
    """The scenario's hands, for a Node test: POST /<action> runs it, answers JSON."""

    def __init__(self, octo, hub: HubProcess):
        self.octo = octo
        self.hub = hub
        self.lock = threading.Lock()
        self.actions: dict[str, Callable[[dict], Any]] = {
            "hub/stop": lambda _a: self.hub.stop(),
            "hub/kill": lambda _a: self.hub.kill(),
            "hub/start": lambda _a: self._hub_start(),
            "octo/print": self._print,
            "octo/pause-resume": lambda _a: self._pause_resume(),
            "octo/operational": lambda _a: self.octo.ensure_operational(),
            "octo/log": lambda _a: plugin_log(self.octo.basedir),
            "octo/appkey": self._appkey,
            "octo/revoke": self._revoke,
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Control:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _hub_start(self) -> None:
        # only when it is down: a second process would lose the port to the running
        # one, whose /health would answer start(), and the running one be orphaned
        if self.hub.proc is None or self.hub.proc.poll() is not None:
            self.hub.start()
        self.hub.wait_synced()

    def _print(self, args: dict) -> str:
        self.octo.ensure_operational()
        name = f"js-{time.monotonic_ns()}.gcode"
        self.octo.upload(name, gcode_file(int(args.get("lines", 300))), print_=True)
        wait_job(self.octo, lambda s: s.startswith("Printing") or s == "Operational", 20)
        return name

    def _pause_resume(self) -> None:
        if not self._printing():
            self._print({"lines": 20000})
        job_command(self.octo, "pause", "pause")
        wait_job(self.octo, lambda s: s.startswith("Paused"), 15)
        job_command(self.octo, "pause", "resume")
        wait_job(self.octo, lambda s: s.startswith("Printing"), 15)

    def _appkey(self, args: dict) -> dict:
        app = f"js-{time.monotonic_ns()}"
        r = self.octo.api(
            "POST", "/api/plugin/appkeys", json={"command": "generate", "app": app}
        )
        r.raise_for_status()
        return {"app": app, "key": r.json()["api_key"]}

    def _revoke(self, args: dict) -> None:
        body = {"command": "revoke", "app": args["app"]}
        self.octo.api("POST", "/api/plugin/appkeys", json=body).raise_for_status()

    def _printing(self) -> bool:
        return self.octo.api("GET", "/api/job").json()["state"].startswith("Printing")

    def _handler(self) -> type:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                action = control.actions.get(self.path.strip("/"))
                length = int(self.headers.get("Content-Length") or 0)
                args = json.loads(self.rfile.read(length) or b"{}")
                if action is None:
                    self._send(404, {"error": f"unknown action {self.path}"})
                    return
                try:
                    with control.lock:
                        result = action(args)
                    self._send(200, {"ok": True, "result": result})
                except Exception as exc:  # noqa: BLE001 - reported to the Node test
                    self._send(500, {"ok": False, "error": repr(exc)})

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
