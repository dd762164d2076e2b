"""The hub as a user installs it (``pip install "OctoPrint-FluxPrint[hub]"``): the
wheel venv that every hub test runs (tools/hubvenv.py) holds this tree's wheel and
its ``hub`` extra, and neither OctoPrint nor the develop extra; a hub started from
it with the direct source (over wss://, a client with an ES256 JWT) and with the
redis source has its printer online, so any module the hub imports at runtime that
the install lacks fails here; and a missing one ends the hub at startup with one
line that names the pip command, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import time

import hubvenv
import jwt
import pytest
import yaml
from octoserver import free_port
from redisserver import RedisServer

from tests.hub.certs import ec_key, make_pair, public_pem, write
from tests.hub.conftest import HubClient, HubProcess, hub_env, hub_executable
from tests.hub.test_redis_source import SynthPrinter, hub_config

pytestmark = pytest.mark.integration

PIP = 'pip install "OctoPrint-FluxPrint[hub]"'


def venv_python() -> str:
    return os.path.join(os.path.dirname(hub_executable()), "python")


def in_venv(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_python(), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env=hub_env(),
    )


def test_the_hub_venv_is_a_users_install(artifacts_dir):
    venv = os.path.dirname(os.path.dirname(hub_executable()))
    with open(os.path.join(venv, hubvenv.STAMP)) as f:
        assert json.load(f) == hubvenv.digests()  # built from this tree, as it is
    where = in_venv("import octoprint_fluxprint as p; print(p.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(os.path.join(venv, "lib")), where.stdout
    for absent in ("octoprint", "flask", "pytest", "playwright", "hypothesis"):
        done = in_venv(f"import {absent}")
        assert done.returncode != 0, f"{absent} is in the hub's venv"
    listed = subprocess.run(
        [venv_python(), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=hub_env(),
    )
    packages = sorted(p["name"] for p in json.loads(listed.stdout))
    check = subprocess.run(
        [venv_python(), "-m", "pip", "check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout
    size = subprocess.run(["du", "-sh", venv], capture_output=True, text=True).stdout
    report = {"packages": packages, "size": size.split()[0]}
    with open(os.path.join(artifacts_dir, "hub-install.json"), "w") as f:
        json.dump(report, f, indent=2)
    print("hub venv:", report)


def test_direct_source_with_tls_and_es256_from_the_wheel(octo, tmp_path):
    octo.ensure_operational()
    pair = make_pair(str(tmp_path / "tls"))
    key = ec_key()
    public = write(str(tmp_path), "jwt-es256.pem", public_pem(key))
    cfg = {
        "listen": {"tls": {"cert": pair.cert, "key": pair.key}},
        "printers": [{"id": "mk4", "url": octo.url, "apikey": octo.apikey}],
        "auth": {
            "trusted_networks": [],
            "jwt": {"algorithms": ["ES256"], "public_key": public, "printers": ["mk4"]},
        },
    }
    hub = HubProcess(str(tmp_path / "hub"), cfg, free_port(), ca=pair.ca)
    hub.start()
    try:
        hub.wait_synced()
        assert hub.health()["printers"] == {"mk4": "online"}
        token = jwt.encode({"sub": "ada", "exp": int(time.time()) + 120}, key, "ES256")
        client = HubClient(hub.url, auth={"token": token}, ca=pair.ca).start()
        try:
            deadline = time.monotonic() + 10
            while not client.seen("printer:status") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.seen("printer:status")[0]["printer"] == "mk4"
        finally:
            client.close()
        assert "ERROR" not in hub.tail(10**6) and "Traceback" not in hub.tail(10**6)
    finally:
        hub.stop()


def test_redis_source_from_the_wheel(tmp_path):
    server = RedisServer(str(tmp_path / "redis"))
    server.start()
    writer = SynthPrinter(server.url, "farm-1").start()
    hub = HubProcess(str(tmp_path / "hub"), hub_config(server.url), free_port())
    try:
        hub.start()
        deadline = time.monotonic() + 20
        while hub.health()["printers"].get("farm-1") != "online":
            assert time.monotonic() < deadline, hub.health()
            time.sleep(0.1)
        client = HubClient(hub.url).start()
        try:
            seq = writer.event()
            deadline = time.monotonic() + 10
            while not any(s == seq for _p, s, _e in client.durable):
                assert time.monotonic() < deadline, client.durable
                time.sleep(0.05)
        finally:
            client.close()
        assert hub.health()["redis"]["up"] is True
        assert "Traceback" not in hub.tail(10**6)
    finally:
        hub.stop()
        writer.stop()
        server.kill()


MISSING = [
    # (the module, what the config asks for, the package the line names)
    ("yaml", {}, "PyYAML"),
    ("aiohttp", {}, "aiohttp"),
    ("redis", {"source": "redis", "printers": []}, "redis"),
    ("jwt", {"auth": {"jwt": {"secret": "s" * 32}}}, "PyJWT"),
    (
        "cryptography",
        {"auth": {"jwt": {"algorithms": ["RS256"], "public_key": "/k.pem"}}},
        "cryptography",
    ),
]


@pytest.mark.parametrize("module, extra, package", MISSING, ids=[m[0] for m in MISSING])
def test_a_missing_package_is_one_line_and_exit_2(tmp_path, module, extra, package):
    """As on a machine where the package is not installed: a module of that name
    that cannot be imported, ahead of the venv's own on the path."""
    stub = tmp_path / "stubs" / module
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n"
    )
    cfg = {
        "listen": {"port": free_port()},
        "printers": [{"id": "a", "url": "http://127.0.0.1:9", "apikey": "K" * 32}],
        **extra,
    }
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [hub_executable(), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env={**hub_env(), "PYTHONPATH": str(tmp_path / "stubs")},
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("fluxprint-hub: ") and lines[0].endswith(PIP), lines
    assert f"needs {package}, which is missing" in lines[0], lines
    print(lines[0])
