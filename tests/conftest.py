"""Shared pytest setup: makes tools/ importable, and offers a session-wide real
OctoPrint (Virtual Printer connected, FluxPrint loaded) plus Socket.IO client
factories for Python and Node."""

from __future__ import annotations

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

ARTIFACTS = os.environ.get("FLUXPRINT_ARTIFACTS", os.path.join(ROOT, "test-artifacts"))

# fast temperature reports so cadence tests need seconds, not minutes
SESSION_CONFIG = {"serial": {"timeout": {"temperatureAutoreport": 1}}}


@pytest.fixture(scope="session")
def artifacts_dir() -> str:
    os.makedirs(ARTIFACTS, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def event_schema() -> dict:
    from octoprint_fluxprint import schemas

    return schemas.load()


@pytest.fixture(scope="session")
def octo(tmp_path_factory):
    """One real OctoPrint for the session; tests must leave the printer operational."""
    from octoserver import OctoServer

    server = OctoServer(str(tmp_path_factory.mktemp("octoprint")), config=SESSION_CONFIG)
    server.start()
    try:
        server.connect_printer()
        yield server
    finally:
        code = server.stop()
        log = server.octoprint_log()
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "octoprint-session.log"), "w") as f:
            f.write(log)
        assert code in (0, -15, None), f"OctoPrint exited with {code}"


@pytest.fixture
def clients(octo, event_schema):
    """Factory for connected test clients; every payload they received is checked
    against the shipped JSON Schema when the test ends."""
    from harness.clients import make_client
    from harness.validate import validate_records

    made = []

    def factory(
        kind: str = "python", transport: str = "websocket", start: bool = True, **kw
    ):
        kw.setdefault("auth", {"apikey": octo.apikey})
        kw.setdefault("transports", [transport])
        client = make_client(kind, octo.url, **kw)
        made.append(client)
        if start:
            client.start()
        return client

    yield factory
    for client in made:
        client.close()
    for client in made:
        validate_records(event_schema, client.records)
        _LATENCIES.extend(
            r["recv"] - r["data"]["ts"]
            for r in client.records
            if client.kind == "node"
            and r["event"] in ("printer:temperature", "printer:progress")
            and isinstance(r["data"], dict)
        )


_LATENCIES: list[float] = []


def pytest_sessionfinish(session, exitstatus):
    if not _LATENCIES:
        return
    data = sorted(_LATENCIES)

    def pct(p: float) -> float:
        return data[min(len(data) - 1, int(round(p / 100 * (len(data) - 1))))]

    summary = {
        "samples": len(data),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": data[-1],
        "note": "callback receipt in the plugin (ts) to a Node socket.io-client's receipt",
    }
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "latency.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"\nFluxPrint latency, plugin callback -> Node client: {summary}")
