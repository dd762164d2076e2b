"""Auth at a real hub in front of the session's real OctoPrint (as two printers, a
and b, so b has live payloads to leak): trusted networks admitted without a token,
others refused with a clear connect_error; a token scoped to a sees nothing of b; a
bad config exits non-zero naming the key."""

from __future__ import annotations

import subprocess
import time

import pytest
import socketio
import yaml
from octoserver import free_port

from octoprint_fluxprint.hub.config import hash_token
from tests.hub.conftest import NS, HubProcess, hub_env, hub_executable

pytestmark = pytest.mark.integration

TOKEN_A = "token-for-printer-a"


def config(octo, trusted_networks=None) -> dict:
    printer = {"url": octo.url, "apikey": octo.apikey}
    auth: dict = {
        "trusted": {"profile": "dashboard"},
        "tokens": [{"name": "a-only", "sha256": hash_token(TOKEN_A), "printers": ["a"]}],
    }
    if trusted_networks is not None:
        auth["trusted_networks"] = trusted_networks
    return {
        "printers": [{"id": "a", **printer}, {"id": "b", **printer}],
        "auth": auth,
    }


@pytest.fixture
def hub_of(octo, tmp_path):
    octo.ensure_operational()
    made: list[HubProcess] = []

    def start(trusted_networks=None) -> HubProcess:
        proc = HubProcess(
            str(tmp_path / f"hub{len(made)}"), config(octo, trusted_networks), free_port()
        )
        (tmp_path / f"hub{len(made)}").mkdir()
        made.append(proc)
        proc.start()
        proc.wait_synced()
        return proc

    yield start
    for proc in made:
        proc.stop()


class Probe:
    """A python-socketio client that records everything, or why it was refused."""

    def __init__(self, url: str, auth=None, headers=None):
        self.events: list[tuple[str, dict]] = []
        self.refused: list[str] = []
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda e, d=None: self.events.append((e, d)), namespace=NS)
        self.sio.on(
            "connect_error", lambda d=None: self.refused.append(str(d)), namespace=NS
        )
        try:
            self.sio.connect(
                url,
                namespaces=[NS],
                transports=["websocket"],
                auth=auth,
                headers=headers or {},
                wait_timeout=10,
            )
        except socketio.exceptions.ConnectionError:
            pass

    def printers(self) -> list[list[str]]:
        return [
            [p["id"] for p in d["printers"]]
            for e, d in self.events
            if e == "printer:printers"
        ]

    def call(self, event: str, data: dict) -> dict:
        return self.sio.call(event, data, namespace=NS, timeout=10)

    def close(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


def wait_refused(probe: Probe, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while not probe.refused and time.monotonic() < deadline:
        time.sleep(0.05)
    assert probe.refused, "no connect_error"
    return probe.refused[0]


def test_trusted_network_token_scope_and_refusals(hub_of):
    hub = hub_of()  # trusted networks: the default, loopback
    trusted = Probe(hub.url)
    scoped = Probe(hub.url, auth={"token": TOKEN_A})
    by_header = Probe(hub.url, headers={"X-Api-Key": TOKEN_A})
    bad = Probe(hub.url, auth={"token": "not-a-token"})
    try:
        assert trusted.sio.connected and trusted.refused == []
        assert scoped.sio.connected and by_header.sio.connected
        assert "invalid token" in wait_refused(bad)
        # a cursor for a printer the token does not cover: refused, naming it
        cursor_b = Probe(hub.url, auth={"token": TOKEN_A, "last_seq": {"b": 1}})
        assert "unknown printer in the cursors: b" in wait_refused(cursor_b)

        ack = scoped.call("printer:subscribe", {"printers": ["b"]})
        assert ack["ok"] is False and "b" in ack["error"], ack
        ack = scoped.call("printer:subscribe", {"printers": ["a", "b"]})
        assert ack["ok"] is False, ack
        time.sleep(6)  # statuses (keyframes every 2 s), temperatures every second
        for probe in (scoped, by_header):
            seen = {d.get("printer") for e, d in probe.events if e != "printer:printers"}
            assert seen == {"a"}, seen  # live payloads of a, none of b
            assert probe.printers() and all(p == ["a"] for p in probe.printers())
        seen = {d.get("printer") for e, d in trusted.events if e != "printer:printers"}
        assert seen == {"a", "b"} and trusted.printers()[0] == ["a", "b"]
        counts = {
            "trusted_events": len(trusted.events),
            "scoped_events": len(scoped.events),
            "scoped_b_payloads": sum(
                1
                for _e, d in scoped.events
                if isinstance(d, dict) and d.get("printer") == "b"
            ),
        }
        print("auth:", counts, "refusals:", bad.refused + cursor_b.refused)
    finally:
        for probe in (trusted, scoped, by_header, bad):
            probe.close()


def test_untrusted_network_is_refused_without_a_token(hub_of):
    # "others": a hub whose trusted networks leave out loopback, where the test is
    hub = hub_of(trusted_networks=["192.0.2.0/24"])
    anonymous = Probe(hub.url)
    scoped = Probe(hub.url, auth={"token": TOKEN_A})
    try:
        reason = wait_refused(anonymous)
        assert "missing credentials" in reason and "trusted network" in reason, reason
        assert not anonymous.sio.connected
        assert scoped.sio.connected  # a token works from anywhere
        print("refused from an untrusted network:", reason)
    finally:
        anonymous.close()
        scoped.close()


@pytest.mark.parametrize(
    "change, key",
    [
        ({"listen": {"port": "many"}}, "listen.port:"),
        ({"listen": {"prot": 1}}, "listen.prot: unknown key"),
        (
            {"auth": {"tokens": [{"name": "x", "sha256": "ab", "printers": ["zz"]}]}},
            "auth.tokens.0",
        ),
    ],
)
def test_bad_config_exits_non_zero_naming_the_key(tmp_path, change, key):
    raw = {"printers": [{"id": "a", "url": "http://127.0.0.1:9", "apikey": "K" * 32}]}
    raw.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    done = subprocess.run(
        [hub_executable(), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env=hub_env(),
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert key in done.stderr, done.stderr
    assert "K" * 32 not in done.stderr + done.stdout  # never the API key
    print(done.stderr.strip())
