"""TLS at a real hub (the wheel venv's fluxprint-hub) in front of the session's real
OctoPrint, with a CA and a certificate made in the test:

- https:// and wss:// on the hub's port: socket.io-client 4 with ``ca``, the python
  client with a CA bundle, /health and /metrics; a client that does not trust the
  CA is refused by its own TLS check; a plain http:// request to the TLS port is
  answered 400 "use https://", and a plain Socket.IO client fails there;
- a bad or unreadable certificate or key ends the hub at startup, exit 2, naming
  the key;
- the direct source reaches an OctoPrint over https:// behind a TLS-terminating
  proxy with ``printers[].ca``, and without it reports why it cannot.
"""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
import socketio
import yaml
from octoserver import free_port

from tests.hub.certs import make_pair
from tests.hub.conftest import NS, HubClient, HubNode, HubProcess, hub_env, hub_executable
from tests.hub.tlsproxy import TlsProxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def tls_hub(octo, tmp_path, pair):
    octo.ensure_operational()
    cfg = {
        "listen": {"tls": {"cert": pair.cert, "key": pair.key}},
        "printers": [{"id": "mk4", "url": octo.url, "apikey": octo.apikey}],
    }
    hub = HubProcess(str(tmp_path / "hub"), cfg, free_port(), ca=pair.ca)
    hub.start()
    hub.wait_synced()
    yield hub
    hub.stop()


def test_https_and_wss_on_the_hub_port(tls_hub, pair):
    assert tls_hub.url.startswith("https://")
    health = tls_hub.get("/health").json()
    assert health["status"] == "ok" and health["printers"] == {"mk4": "online"}
    metrics = tls_hub.get("/metrics")
    assert metrics.ok and "fluxprint_clients" in metrics.text

    py = HubClient(tls_hub.url, ca=pair.ca).start()
    node = HubNode(tls_hub.url, ca=pair.ca).start()
    try:
        assert py.sio.transport() == "websocket"
        node.wait_for("printer:status", lambda d: d["printer"] == "mk4", 15)
        node.wait_for("printer:temperature", timeout=15)
        deadline = time.monotonic() + 15
        while not py.seen("printer:temperature") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert py.seen("printer:status") and py.seen("printer:temperature")
        assert node.transport == "websocket"
        print(
            "over wss:",
            {"node_events": len(node.records), "python_events": len(py.events)},
        )
    finally:
        py.close()
        node.close()


def test_a_client_without_the_ca_and_plain_http_fail_clearly(tls_hub):
    # the certificate is verified: not trusted by the system's store
    with pytest.raises(requests.exceptions.SSLError) as info:
        requests.get(tls_hub.url + "/health", timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    stranger = HubNode(tls_hub.url).start(wait=False)
    try:
        assert stranger.refused() in ("websocket error", "xhr poll error")
    finally:
        stranger.close()

    # http:// to the TLS port: a plain 400 that says what to do
    plain = tls_hub.url.replace("https://", "http://")
    answer = requests.get(plain + "/health", timeout=5)
    assert answer.status_code == 400
    assert "use https://" in answer.text and "wss://" in answer.text
    sio = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(plain, namespaces=[NS], transports=["websocket"], wait_timeout=5)
    sio.disconnect()
    node = HubNode(plain).start(wait=False)
    try:
        assert node.refused() == "websocket error"
    finally:
        node.close()
    # the hub lives on, and says what happened
    assert tls_hub.health()["status"] == "ok"
    assert "plain-text request from 127.0.0.1 on the TLS port" in tls_hub.tail()
    print("plain http:// to the TLS port:", answer.status_code, answer.text.strip())


def run_hub(tmp_path, cfg: dict, env=None) -> subprocess.CompletedProcess:
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [hub_executable(), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env=hub_env(env),
    )


def test_a_bad_certificate_or_key_ends_the_hub_naming_the_key(tmp_path, pair):
    other = make_pair(str(tmp_path / "other"))
    printer = {"id": "a", "url": "http://127.0.0.1:9", "apikey": "K" * 32}
    cases = [
        (
            {"cert": str(tmp_path / "missing.pem"), "key": pair.key},
            {},
            "listen.tls.cert:",
        ),
        ({"cert": pair.cert, "key": str(tmp_path)}, {}, "listen.tls.key: cannot read"),
        ({"cert": pair.cert, "key": other.key}, {}, "listen.tls.key:"),
        ({"cert": pair.key, "key": pair.key}, {}, "listen.tls.cert:"),
        ({"cert": pair.cert, "key": pair.encrypted_key}, {}, "is encrypted"),
        # the environment's pair, named by the key it overrides
        (
            {"cert": pair.cert, "key": pair.key},
            {"FLUXPRINT_HUB_TLS_KEY": other.key},
            "does not match",
        ),
    ]
    for tls, env, needle in cases:
        cfg = {"printers": [printer], "listen": {"tls": tls, "port": free_port()}}
        done = run_hub(tmp_path, cfg, env)
        assert done.returncode == 2, (tls, done.returncode, done.stderr)
        assert needle in done.stderr, (needle, done.stderr)
        assert "Traceback" not in done.stderr
    print("refused:", done.stderr.strip().splitlines()[-1])


def test_the_direct_source_over_https_with_a_ca(octo, tmp_path, pair):
    octo.ensure_operational()
    proxy = TlsProxy(int(octo.url.rsplit(":", 1)[1]), pair.cert, pair.key).start()
    printer = {"id": "haproxied", "url": proxy.url, "apikey": octo.apikey}
    trusting = HubProcess(
        str(tmp_path / "trusting"),
        {"printers": [{**printer, "ca": pair.ca}]},
        free_port(),
    )
    stranger = HubProcess(
        str(tmp_path / "stranger"), {"printers": [printer]}, free_port()
    )
    try:
        trusting.start()
        trusting.wait_synced()
        client = HubClient(trusting.url).start()
        try:
            deadline = time.monotonic() + 15
            while not client.seen("printer:temperature") and time.monotonic() < deadline:
                time.sleep(0.1)
            statuses = client.seen("printer:status")
            assert statuses and statuses[0]["printer"] == "haproxied"
            assert client.seen("printer:temperature")
        finally:
            client.close()
        assert proxy.connections >= 1
        # the same OctoPrint without its CA: never online, and the log says why
        stranger.start()
        deadline = time.monotonic() + 10
        while "CERTIFICATE_VERIFY_FAILED" not in stranger.tail():
            assert time.monotonic() < deadline, stranger.tail()
            time.sleep(0.2)
        assert stranger.health()["printers"]["haproxied"] != "online"
        print("via the TLS proxy:", trusting.health()["printers"], proxy.connections)
    finally:
        trusting.stop()
        stranger.stop()
        proxy.stop()
