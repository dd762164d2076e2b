"""The direct source keeps a quiet printer's link talking: it asks its plugin for
status keyframes once the plugin has replayed to the link (asked at the connect,
while the plugin was still replaying, the request was refused with "not ready" and
the link went silent whenever the printer's status held still). A disconnected
printer sends no temperatures, so without keyframes the hub turned it stale after
``stale_after`` with no client connected."""

from __future__ import annotations

import time

import pytest
from octoserver import free_port

from tests.hub.conftest import HubProcess

pytestmark = pytest.mark.integration


def test_a_quiet_printer_stays_online_at_the_hub(octo, tmp_path):
    octo.ensure_operational()
    cfg = {
        "printers": [{"id": "quiet", "url": octo.url, "apikey": octo.apikey}],
        "stale_after": 4,
        "offline_after": 8,
    }
    hub = HubProcess(str(tmp_path), cfg, free_port())
    hub.start()
    try:
        hub.wait_synced()
        octo.disconnect_printer()
        # the disconnect's own status and connection event come first; after them
        # the printer's status holds still and only keyframes flow
        states = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states.append(hub.health()["printers"]["quiet"])
            time.sleep(0.25)
        assert set(states) == {"online"}, states
    finally:
        hub.stop()
        octo.ensure_operational()
