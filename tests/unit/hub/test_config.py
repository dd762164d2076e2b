"""The hub's config and identity (no octoprint, no network)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from octoprint_fluxprint.hub import config as C
from octoprint_fluxprint.hub.identity import INVALID_TOKEN, NO_CREDENTIALS, HubIdentity

BASE = {"printers": [{"id": "a", "url": "http://127.0.0.1:5000", "apikey": "K" * 32}]}


def parse(raw, env=None):
    return C.parse(raw, env or {})


def test_defaults():
    cfg = parse(BASE)
    assert cfg.listen.port == 5001 and cfg.listen.path == "/socket.io/"
    assert cfg.listen.host == "127.0.0.1"
    assert cfg.auth.trusted_networks == ["127.0.0.0/8", "::1"]
    assert cfg.printers[0].path == "/plugin/fluxprint/socket.io/"
    assert "K" * 32 not in repr(cfg.printers[0])


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({**BASE, "listen": {"prot": 1}}, "listen.prot: unknown key"),
        ({**BASE, "listen": {"port": 0}}, "listen.port:"),
        ({"printers": []}, "printers:"),
        ({"printers": [{"id": "a b", "url": "http://x"}]}, "printers.0.id:"),
        ({"printers": [{"id": "a", "url": "http://x"}]}, "printers.0.apikey: missing"),
        ({**BASE, "auth": {"trusted_networks": ["nope"]}}, "auth.trusted_networks:"),
        (
            {
                **BASE,
                "auth": {
                    "tokens": [{"name": "t", "sha256": "00" * 32, "printers": ["b"]}]
                },
            },
            "auth.tokens.0.printers: unknown printer 'b'",
        ),
        (
            {**BASE, "auth": {"trusted": {"profile": "x"}}},
            "auth.trusted.profile: unknown",
        ),
    ],
)
def test_errors_name_the_key(raw, needle):
    with pytest.raises(C.ConfigError) as info:
        parse(raw)
    assert needle in str(info.value)


def test_fluxstudio_sees_one_printer_unless_named():
    two = {"printers": BASE["printers"] + [{**BASE["printers"][0], "id": "b"}]}
    with pytest.raises(C.ConfigError, match="auth.trusted.printers: the fluxstudio"):
        parse(two)
    cfg = parse({**two, "auth": {"trusted": {"printers": ["b"]}}})
    assert HubIdentity(cfg).trusted.printers == frozenset({"b"})
    assert HubIdentity(parse(BASE)).trusted.printers == frozenset({"a"})


def test_env_overrides():
    raw = {"printers": [{"id": "farm-1", "url": "http://127.0.0.1:5000"}]}
    env = {
        "FLUXPRINT_HUB_PORT": "6001",
        "FLUXPRINT_HUB_HOST": "0.0.0.0",
        "FLUXPRINT_HUB_TRUSTED_NETWORKS": "10.0.0.0/8, ::1",
        "FLUXPRINT_HUB_APIKEY_FARM_1": "SECRET",
    }
    cfg = C.parse(raw, env)
    assert cfg.listen.port == 6001 and cfg.listen.host == "0.0.0.0"
    assert cfg.auth.trusted_networks == ["10.0.0.0/8", "::1"]
    assert cfg.printers[0].apikey == "SECRET"


def environ(remote, key=None):
    class Req:
        remote_ip = remote

    class Handler:
        request = Req()

    env = {"tornado.handler": Handler(), "REMOTE_ADDR": "127.0.0.1"}
    if key:
        env["HTTP_X_API_KEY"] = key
    return env


def test_tokens_and_trusted_networks():
    raw = {
        **BASE,
        "auth": {
            "trusted_networks": ["10.1.0.0/16"],
            "tokens": [
                {"name": "dash", "sha256": C.hash_token("s3cret"), "printers": ["a"]}
            ],
        },
    }
    ident = HubIdentity(parse(raw))
    assert ident.authenticate({}, environ("10.1.2.3")).user.name == "trusted"
    assert ident.authenticate({}, environ("127.0.0.1")).reason == NO_CREDENTIALS
    assert ident.authenticate(None, environ("::ffff:10.1.0.9")).ok
    ok = ident.authenticate({"token": "s3cret"}, environ("192.0.2.1"))
    assert ok.ok and ok.user.printers == frozenset({"a"}) and ok.user.keyframe == 0
    assert "s3cret" not in repr(ok)
    assert ident.authenticate(None, environ("192.0.2.1", key="s3cret")).ok
    assert (
        ident.authenticate({"token": "nope"}, environ("10.1.0.1")).reason == INVALID_TOKEN
    )
    assert ident.authenticate("x", environ("10.1.0.1")).reason == "malformed credentials"


def test_bad_config_exits_non_zero_naming_the_key(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({**BASE, "listen": {"port": "many"}}))
    done = subprocess.run(
        [sys.executable, "-m", "octoprint_fluxprint.hub", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "listen.port:" in done.stderr and "K" * 32 not in done.stderr
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(BASE))
    done = subprocess.run(
        [sys.executable, "-m", "octoprint_fluxprint.hub", "-c", str(ok), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_listen_compression_is_one_of_the_engines_modes():
    from octoprint_fluxprint.core import compression
    from octoprint_fluxprint.hub.config import Listen

    assert Listen().compression == compression.DEFAULT_MODE
    for mode in compression.MODES:
        assert Listen(compression=mode).compression == mode
    with pytest.raises(ValueError):
        Listen(compression="zstd")
