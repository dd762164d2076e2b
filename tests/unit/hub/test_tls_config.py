"""The hub's TLS config: listen.tls and printers[].ca, their environment overrides,
and every bad file refused at startup naming its key (certificates made here; no
network)."""

from __future__ import annotations

import ssl

import pytest

from octoprint_fluxprint.hub import config as C
from octoprint_fluxprint.hub import startup, tls
from tests.hub.certs import make_pair, write

BASE = {"printers": [{"id": "a", "url": "http://127.0.0.1:5000", "apikey": "K" * 32}]}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    return make_pair(str(folder / "one")), make_pair(str(folder / "two"))


def listen_tls(cert: str, key: str) -> C.ListenTLS:
    return C.ListenTLS(cert=cert, key=key)


def test_a_good_pair_makes_a_server_context(pairs):
    ctx = tls.server_context(listen_tls(pairs[0].cert, pairs[0].key))
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def bad_cases(pairs, tmp_path) -> list[tuple[str, str, str]]:
    one, two = pairs
    garbage = write(str(tmp_path), "garbage.pem", b"not a certificate\n")
    return [
        (str(tmp_path / "nope.pem"), one.key, "listen.tls.cert: cannot read"),
        (one.cert, str(tmp_path), "listen.tls.key: cannot read"),  # a folder
        (garbage, one.key, "listen.tls.cert: " + garbage + " holds no PEM certificate"),
        (one.key, one.key, "listen.tls.cert:"),  # a key where the cert belongs
        (one.cert, garbage, "listen.tls.key: " + garbage + " holds no usable PEM"),
        (one.cert, two.key, "listen.tls.key: " + two.key + " does not match"),
        (one.cert, one.encrypted_key, "is encrypted"),
    ]


def test_every_bad_file_is_refused_naming_its_key(pairs, tmp_path):
    for cert, key, needle in bad_cases(pairs, tmp_path):
        with pytest.raises(C.ConfigError) as info:
            tls.server_context(listen_tls(cert, key))
        assert needle in str(info.value), (cert, key, str(info.value))
        assert "\n" not in str(info.value)


def test_the_environment_names_the_pair(pairs):
    env = {"FLUXPRINT_HUB_TLS_CERT": pairs[0].cert, "FLUXPRINT_HUB_TLS_KEY": pairs[0].key}
    cfg = C.parse(dict(BASE), env)
    assert cfg.listen.tls == C.ListenTLS(cert=pairs[0].cert, key=pairs[0].key)
    # the environment wins over the file, key by key
    raw = {**BASE, "listen": {"tls": {"cert": "/etc/x.pem", "key": "/etc/y.pem"}}}
    cfg = C.parse(raw, {"FLUXPRINT_HUB_TLS_KEY": pairs[1].key})
    assert (cfg.listen.tls.cert, cfg.listen.tls.key) == ("/etc/x.pem", pairs[1].key)
    with pytest.raises(C.ConfigError) as info:
        C.parse(dict(BASE), {"FLUXPRINT_HUB_TLS_CERT": pairs[0].cert})
    assert "listen.tls.key: Field required" in str(info.value)


def test_startup_refuses_a_bad_pair_through_the_config(pairs, tmp_path):
    raw = {**BASE, "listen": {"tls": {"cert": pairs[0].cert, "key": pairs[1].key}}}
    with pytest.raises(C.ConfigError) as info:
        startup.prepare(C.parse(raw, {}))
    assert "listen.tls.key:" in str(info.value)
    good = {**BASE, "listen": {"tls": {"cert": pairs[0].cert, "key": pairs[0].key}}}
    assert startup.prepare(C.parse(good, {})).server_tls is not None


def test_a_printer_ca_is_for_https_and_must_hold_a_certificate(pairs, tmp_path):
    raw = {"printers": [{**BASE["printers"][0], "ca": pairs[0].ca}]}
    with pytest.raises(C.ConfigError) as info:
        C.parse(raw, {})
    assert "printers.0.ca: only for an https:// url" in str(info.value)
    https = {"printers": [{**raw["printers"][0], "url": "https://octopi.local"}]}
    prepared = startup.prepare(C.parse(https, {}))
    assert set(prepared.client_tls) == {"a"}
    assert prepared.client_tls["a"].verify_mode == ssl.CERT_REQUIRED
    garbage = write(str(tmp_path), "ca.pem", b"-----BEGIN NOTHING-----\n")
    https["printers"][0]["ca"] = garbage
    with pytest.raises(C.ConfigError) as info:
        startup.prepare(C.parse(https, {}))
    assert f"printers.0.ca: {garbage} holds no PEM certificate" in str(info.value)
