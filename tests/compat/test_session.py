"""The same scripted session on whichever OctoPrint this venv has (issue 12):
connect, a print by upload that completes, one paused, resumed and cancelled, a
firmware error mid-print, a disconnect and a reconnect. What a FluxPrint client
received is written, normalised, to ``$FLUXPRINT_COMPAT_DIR/<version>.json``;
``compare_versions.py`` then compares the 1.11 and 2.0 records field by field
(scripts/test.sh runs it after both suites)."""

from __future__ import annotations

import json
import os
import time

import pytest
from octoserver import OctoServer, gcode_file

from octoprint_fluxprint.client import FluxPrintClient
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.harness.jobs import job_command, wait_job

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPAT_DIR = os.environ.get(
    "FLUXPRINT_COMPAT_DIR", os.path.join(ROOT, "test-artifacts", "compat")
)
# observation times and durations: never the same twice
TIMING = ("seq", "ts", "timestamp", "printTime", "printTimeLeft", "progress", "trace")
# the analysis runs while idle, so a fresh upload's estimate arrives during the print
CONFIG = {"gcodeAnalysis": {"runAt": "idle"}}


def octoprint_version() -> str:
    from octoprint.util.version import get_octoprint_version_string

    return get_octoprint_version_string()


def normalise(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k not in TIMING}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = OctoServer(
        str(tmp_path_factory.mktemp("compat")),
        config=CONFIG,
        fluxprint={"status_interval": 0, "temperature_interval": 0},
    )
    srv.start()
    try:
        srv.connect_printer()
        yield srv
    finally:
        srv.stop()


def test_scripted_session_record(server):
    octo = server
    client = FluxPrintClient(octo.url, octo.apikey, record=True, rest_interval=0)
    client.start()
    try:
        time.sleep(1)
        octo.upload("compat-done.gcode", gcode_file(300), print_=True)
        wait_job(octo, lambda s: s.startswith("Printing"))
        wait_job(octo, lambda s: s == "Operational", 90)
        time.sleep(1)
        octo.upload("compat-cancel.gcode", gcode_file(3000), print_=True)
        wait_job(octo, lambda s: s.startswith("Printing"))
        time.sleep(1)
        job_command(octo, "pause", "pause")
        wait_job(octo, lambda s: s == "Paused")
        job_command(octo, "pause", "resume")
        wait_job(octo, lambda s: s.startswith("Printing"))
        time.sleep(0.5)
        job_command(octo, "cancel")
        wait_job(octo, lambda s: s == "Operational")
        time.sleep(1)
        octo.upload("compat-error.gcode", gcode_file(3000), print_=True)
        wait_job(octo, lambda s: s.startswith("Printing"))
        time.sleep(1)
        octo.send_gcode("!!DEBUG:trigger_fatal_error_marlin")
        octo.wait_state(("Error", "Offline", "Closed"), 30, prefix=True)
        time.sleep(2)
        after_error = octo.api("GET", "/api/plugin/fluxprint").json()
        octo.connect_printer()
        time.sleep(2)
        r = octo.api("POST", "/api/connection", json={"command": "disconnect"})
        assert r.status_code == 204, r.text
        octo.wait_state(("Offline", "Closed"), 30, prefix=True)
        time.sleep(2)
        octo.connect_printer()
        time.sleep(2)
    finally:
        client.close()
    durable = [
        {"event": event, **normalise(payload)}
        for event, payload in client.records
        if event in DURABLE_EVENTS
    ]
    keys = {}
    for event, payload in client.records:
        keys.setdefault(event, set()).update(payload)
    record = {
        "octoprint": octoprint_version(),
        "durable": durable,
        # what the error left; temperatures and progress are live readings
        "status_after_error": {
            "state": after_error["state"],
            "connection": after_error["connection"],
            "job": {k: after_error["job"][k] for k in ("file", "user")},
        },
        "keys": {event: sorted(k) for event, k in keys.items()},
    }
    # what the session must have produced on any version
    names = [d["event"] for d in durable]
    for name in ("printer:job_started", "printer:job_complete", "printer:job_paused"):
        assert name in names, names
    failed = [d for d in durable if d["event"] == "printer:job_failed"]
    assert [f["reason"] for f in failed] == ["cancelled", "error"], failed
    assert failed[1]["error"] not in (None, "", "unknown"), failed[1]
    assert all(d["user"] == "admin" for d in durable if "user" in d), durable
    assert after_error["state"]["error"], after_error["state"]
    os.makedirs(COMPAT_DIR, exist_ok=True)
    path = os.path.join(COMPAT_DIR, f"{record['octoprint']}.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
