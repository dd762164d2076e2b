"""Shared pytest setup: makes tools/ importable, and offers a session-wide real
OctoPrint (Virtual Printer connected, FluxPrint loaded) plus Socket.IO client
factories for Python and Node."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

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
