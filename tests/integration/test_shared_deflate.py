"""websocket_compression = deflate_shared against a real OctoPrint: Node
socket.io-client 4 clients (whose ``ws`` inflaters keep their window, as browsers
do) join at different times, in different cohorts, and change cohort mid-stream;
every frame they get inflates and every payload is what the server sent, in order,
while the server compresses once per cohort."""

from __future__ import annotations

import time

import pytest
import requests
from octoserver import gcode_file

from octoprint_fluxprint.core import compression
from tests.integration.test_delta import DEFAULTS, heat, set_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def shared_mode(octo):
    set_settings(
        octo,
        websocket_compression="deflate_shared",
        status_interval=1,
        temperature_interval=0,
        progress_interval=0.5,
    )
    yield
    set_settings(octo, websocket_compression=compression.DEFAULT_MODE, **DEFAULTS)
    heat(octo, 0)


def fanout(octo) -> dict:
    r = requests.get(
        f"{octo.url}/plugin/fluxprint/health",
        params={"detail": "1"},
        headers={"X-Api-Key": octo.apikey},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["detail"]["fanout"]


def seqs_increase(client) -> None:
    seqs = [r["data"]["seq"] for r in client.events() if isinstance(r["data"], dict)]
    seqs = [s for s in seqs if isinstance(s, int)]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


@pytest.mark.engine
def test_clients_of_shared_streams_inflate_every_frame(clients, octo, shared_mode):
    octo.ensure_operational()
    before = fanout(octo)["shared_deflate"]
    first = clients("node")
    heat(octo, 60)
    time.sleep(2)
    late = clients("node")  # same rooms: waits for a sync point, then shares
    slow = clients("node")
    assert slow.call("printer:subscribe", {"intervals": {"temperature": 3}})["ok"]
    mover = clients("node")
    octo.upload("shared.gcode", gcode_file(400), print_=True)
    time.sleep(3)
    assert mover.call("printer:subscribe", {"delta": True})["ok"]  # another cohort
    time.sleep(4)
    heat(octo, 0)
    time.sleep(3)
    stats = fanout(octo)["shared_deflate"]
    for client in (first, late, slow, mover):
        assert client.disconnects == [], client.disconnects
        assert client.connect_error is None
        seqs_increase(client)
        assert len(client.events("printer:temperature")) >= 3
    # everyone got the same temperatures at interval 0 where they share a room
    a = [r["data"]["seq"] for r in first.events("printer:temperature")]
    b = [r["data"]["seq"] for r in late.events("printer:temperature")]
    assert set(b) <= set(a) and len(b) >= 5
    print(f"\nshared deflate: {stats}")
    assert stats["streams"] >= 2  # the default cohort and at least one other
    assert stats["syncs"] - before["syncs"] >= 3  # one per cohort and late joiner
    assert stats["synced"] >= 3  # most clients ended up on a shared stream
    octo.ensure_operational()
