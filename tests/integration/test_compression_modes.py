"""Every ``websocket_compression`` mode against a real OctoPrint, seen from Node's
socket.io-client 4 (whose ``ws`` offers permessage-deflate as browsers do): what the
server agrees to on the websocket, and that the client inflates what it gets. The
default (``deflate_shared``) is covered in depth by test_shared_deflate.py."""

from __future__ import annotations

import time

import pytest

from octoprint_fluxprint.core import compression
from tests.integration.test_delta import DEFAULTS, set_settings

pytestmark = pytest.mark.integration


def _flags(params: dict | None) -> set[str] | None:
    if params is None:
        return None
    return {k for k in params if k.endswith("_no_context_takeover")}


# the *_no_context_takeover parameters agreed per mode (None: no permessage-deflate)
AGREED: dict[str, set[str] | None] = {
    "off": None,
    compression.DEFLATE: set(),
    compression.DEFLATE_NO_CONTEXT_TAKEOVER: {
        "server_no_context_takeover",
        "client_no_context_takeover",
    },
    # the server keeps its window (one per cohort), the client's frames are small
    compression.DEFLATE_SHARED: {"client_no_context_takeover"},
}


@pytest.fixture
def restore(octo):
    yield
    set_settings(octo, websocket_compression=compression.DEFAULT_MODE, **DEFAULTS)


def test_the_default_is_shared_deflate(octo, restore):
    r = octo.api("GET", "/api/settings")
    assert r.json()["plugins"]["fluxprint"]["websocket_compression"] == (
        compression.DEFAULT_MODE
    )
    assert compression.DEFAULT_MODE == compression.DEFLATE_SHARED


@pytest.mark.parametrize("mode", compression.MODES)
def test_each_mode_negotiates_and_inflates(clients, octo, restore, mode):
    octo.ensure_operational()
    set_settings(octo, websocket_compression=mode, temperature_interval=0)
    client = clients("node")
    assert _flags(client.deflate) == AGREED[mode], client.deflate
    deadline = time.time() + 12
    while time.time() < deadline and len(client.events("printer:temperature")) < 3:
        time.sleep(0.2)
    temps = client.events("printer:temperature")
    assert len(temps) >= 3, [r["event"] for r in client.records]
    seqs = [r["data"]["seq"] for r in temps]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all("tool0" in r["data"] for r in temps), temps[-1]
    # a request and its ack go out uncompressed under deflate_shared (RSV1 clear)
    assert client.call("printer:subscribe", {"intervals": {"temperature": 1}})["ok"]
    assert client.disconnects == [] and client.connect_error is None


def synced_on_shared_streams(octo) -> int:
    r = octo.api("GET", "/plugin/fluxprint/health", params={"detail": "1"})
    r.raise_for_status()
    return r.json()["detail"]["fanout"]["shared_deflate"]["synced"]


def test_a_mode_change_keeps_deflate_shared_clients_on_their_stream(
    clients, octo, restore
):
    """A client that connected under deflate_shared and had no broadcast yet when
    the mode changed still gets the shared frames (the mode is for new
    connections), not frames compressed on their own."""
    octo.ensure_operational()
    channels = {"temperature": False}
    set_settings(
        octo,
        websocket_compression=compression.DEFLATE_SHARED,
        temperature_interval=0,
        channels=channels,
    )
    before = synced_on_shared_streams(octo)
    try:
        client = clients("node")
        assert _flags(client.deflate) == AGREED[compression.DEFLATE_SHARED]
        set_settings(octo, websocket_compression="off")  # before any broadcast
        set_settings(octo, channels={"temperature": True})
        deadline = time.time() + 12
        while time.time() < deadline and len(client.events("printer:temperature")) < 3:
            time.sleep(0.2)
        assert len(client.events("printer:temperature")) >= 3
        assert synced_on_shared_streams(octo) >= before + 1
        assert client.disconnects == []
    finally:
        set_settings(octo, channels={"temperature": True})
