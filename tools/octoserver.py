"""Start and drive a real ``octoprint serve`` in a throw-away base folder.

Used by the demo (``scripts/demo.sh``), the integration tests and the benchmarks.
It writes an offline-friendly config.yaml (no online checks, no tracking, no update
or announcement checks, the Virtual Printer enabled) and a users.yaml with known API
keys, then runs OctoPrint from the current Python environment.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Optional

import requests
import yaml

ADMIN = "admin"
ADMIN_PASSWORD = "fluxprint-admin"
VIEWER = "viewer"  # in the users group: has STATUS
NOSTATUS = "nostatus"  # in no group: lacks STATUS
IDLE = ("Offline", "Closed", "Error")  # no connection, and none being opened
PASSWORD = "fluxprint-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def password_hash(password: str) -> str:
    from octoprint.access.users import UserManager

    return UserManager.create_password_hash(password)


class OctoServer:
    def __init__(
        self,
        basedir: str,
        port: Optional[int] = None,
        host: str = "127.0.0.1",
        config: Optional[dict] = None,
        fluxprint: Optional[dict] = None,
        autoconnect: bool = False,
        disabled_plugins: tuple[str, ...] = (),
        log_name: str = "octoprint.out",
    ):
        self.basedir = os.path.abspath(basedir)
        self.host = host
        self.port = port or free_port()
        self.extra_config = config or {}
        self.fluxprint = fluxprint or {}
        self.autoconnect = autoconnect
        self.disabled_plugins = disabled_plugins
        self.log_path = os.path.join(self.basedir, log_name)
        self.proc: Optional[subprocess.Popen] = None
        self.keys = self._load_keys()

    # ~~ setup

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def apikey(self) -> str:
        return self.keys[ADMIN]

    def _load_keys(self) -> dict[str, str]:
        path = os.path.join(self.basedir, "fluxprint-test-keys.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return {
            ADMIN: secrets.token_hex(16).upper(),
            VIEWER: secrets.token_hex(16).upper(),
            NOSTATUS: secrets.token_hex(16).upper(),
        }

    def config(self) -> dict:
        base = {
            "server": {
                "firstRun": False,
                "onlineCheck": {"enabled": False},
                "pluginBlacklist": {"enabled": False},
                "allowFraming": False,
                "seenWizards": {"corewizard": 4, "tracking": None},
            },
            "plugins": {
                "tracking": {"enabled": False},
                "virtual_printer": {"enabled": True},
                "softwareupdate": {"ignore_throttled": True, "check_overlays": False},
                "announcements": {"enabled_channels": []},
                "pluginmanager": {
                    "repository": "",
                    "notices": "",
                    "pip_force_user": False,
                },
                "_disabled": [
                    "announcements",
                    "tracking",
                    "softwareupdate",
                    "backup",
                    *self.disabled_plugins,
                ],
                "fluxprint": self.fluxprint,
            },
            "serial": {
                "autoconnect": self.autoconnect,
                "port": "VIRTUAL",
                "baudrate": 115200,
                "log": False,
            },
            "webcam": {"webcamEnabled": False, "timelapseEnabled": False},
            "gcodeAnalysis": {"runAt": "never"},
            "temperature": {"cutoff": 30},
        }
        return deep_merge(base, self.extra_config)

    def prepare(self) -> None:
        os.makedirs(self.basedir, exist_ok=True)
        with open(os.path.join(self.basedir, "config.yaml"), "w") as f:
            yaml.safe_dump(self.config(), f)
        users_path = os.path.join(self.basedir, "users.yaml")
        if not os.path.exists(users_path):
            users = {
                "_version": 2,
                ADMIN: self._user(ADMIN_PASSWORD, self.keys[ADMIN], ["admins", "users"]),
                VIEWER: self._user(PASSWORD, self.keys[VIEWER], ["users"]),
                NOSTATUS: self._user(PASSWORD, self.keys[NOSTATUS], []),
            }
            with open(users_path, "w") as f:
                yaml.safe_dump(users, f)
        with open(os.path.join(self.basedir, "fluxprint-test-keys.json"), "w") as f:
            json.dump(self.keys, f)

    @staticmethod
    def _user(password: str, apikey: str, groups: list[str]) -> dict:
        return {
            "active": True,
            "apikey": apikey,
            "groups": groups,
            "password": password_hash(password),
            "permissions": [],
            "roles": ["user"],
            "settings": {},
        }

    # ~~ process

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "octoprint",
            "serve",
            "--basedir",
            self.basedir,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--iknowwhatimdoing",
        ]

    def start(self, timeout: float = 90.0) -> None:
        self.prepare()
        log = open(self.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"OctoPrint exited with {self.proc.returncode}; see {self.log_path}:\n"
                    + self.tail()
                )
            try:
                r = requests.get(
                    self.url + "/api/version", headers=self.headers(), timeout=2
                )
                if r.status_code == 200:
                    return
                last = r.status_code
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.25)
        raise TimeoutError(
            f"OctoPrint not ready after {timeout}s ({last}):\n" + self.tail()
        )

    def tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def octoprint_log(self) -> str:
        path = os.path.join(self.basedir, "logs", "octoprint.log")
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self, timeout: float = 90.0) -> None:
        self.stop()
        self.start(timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # ~~ REST

    def headers(self, user: str = ADMIN) -> dict[str, str]:
        return {"X-Api-Key": self.keys[user]}

    def api(
        self, method: str, path: str, user: str = ADMIN, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 15)
        return requests.request(
            method, self.url + path, headers=self.headers(user), **kwargs
        )

    def connection_state(self) -> str:
        r = self.api("GET", "/api/connection")
        r.raise_for_status()
        return r.json()["current"]["state"]

    def connect_printer(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = self.api(
                "POST",
                "/api/connection",
                json={"command": "connect", "port": "VIRTUAL", "baudrate": 115200},
            )
            r.raise_for_status()
            # OctoPrint 2.0 drops a connect that arrives while it is still closing an
            # errored connection (204, and it stays "Offline after error"): a connect
            # leaves IDLE within a few hundred ms, so one that has not in 3 s is sent
            # again (the chaos test's connect right after a firmware error)
            wait = min(3.0, deadline - time.monotonic())
            try:
                self.wait_state(IDLE, wait, prefix=True, leave=True)
                break  # left Offline: connecting
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise
        self.wait_state(("Operational",), max(0.0, deadline - time.monotonic()))
        # OctoPrint's state monitor pushes current data at most every 0.5 s, so the
        # REST state runs up to that far ahead of what callbacks (and FluxPrint) saw:
        # until FluxPrint's own status says Operational (a second without FluxPrint)
        self.wait_fluxprint_state("Operational", 5.0)

    def wait_fluxprint_state(self, text: str, timeout: float) -> None:
        """Until FluxPrint's status (what its callbacks saw) has the state ``text``;
        without FluxPrint loaded, one second (the state monitor's two pushes)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.api("GET", "/api/plugin/fluxprint")
            if r.status_code == 404:
                time.sleep(1.0)
                return
            if r.status_code == 200 and r.json().get("state", {}).get("text") == text:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"FluxPrint's state is not {text}: {r.text[:300]}")
            time.sleep(0.05)

    def disconnect_printer(self, timeout: float = 30.0) -> None:
        self.api(
            "POST", "/api/connection", json={"command": "disconnect"}
        ).raise_for_status()
        self.wait_state(("Offline", "Closed"), timeout, prefix=True)

    def wait_state(
        self,
        states: tuple[str, ...],
        timeout: float = 30.0,
        prefix: bool = False,
        leave: bool = False,
    ) -> str:
        """Until the state is one of ``states`` (``leave``: is none of them)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.connection_state()
            match = state in states or (
                prefix and any(state.startswith(s) for s in states)
            )
            if match != leave:
                return state
            time.sleep(0.2)
        raise TimeoutError(f"printer state {state!r}, wanted {states}")

    def ensure_operational(self, timeout: float = 60.0) -> None:
        state = self.connection_state()
        if state.startswith(
            ("Printing", "Paused", "Pausing", "Cancelling", "Resuming", "Finishing")
        ):
            self.api("POST", "/api/job", json={"command": "cancel"})
            self.wait_state(("Operational",), timeout)
            time.sleep(1.0)
            return
        if state != "Operational":
            if not state.startswith(("Offline", "Closed", "Error")):
                self.wait_state(
                    ("Operational", "Offline", "Closed"), timeout, prefix=True
                )
                if self.connection_state() == "Operational":
                    return
            self.connect_printer(timeout)

    def upload(self, name: str, content: str, print_: bool = False) -> requests.Response:
        r = self.api(
            "POST",
            "/api/files/local",
            files={"file": (name, content.encode(), "application/octet-stream")},
            data={"print": "true" if print_ else "false"},
        )
        r.raise_for_status()
        return r

    def send_gcode(self, *commands: str) -> None:
        self.api(
            "POST", "/api/printer/command", json={"commands": list(commands)}
        ).raise_for_status()


def gcode_file(lines: int = 600) -> str:
    """A file the Virtual Printer streams at about 100 lines a second."""
    body = ["; FluxPrint test print", "G28", "G90", "M82", "G92 E0"]
    x = 0.0
    for i in range(lines):
        x = (x + 1.5) % 180
        body.append(f"G1 X{x:.1f} Y{(i * 0.7) % 180:.1f} E{i * 0.05:.3f} F3000")
    body.append("M400")
    return "\n".join(body) + "\n"
