"""JWTs at the hub without a network: the auth.jwt config, every refusal reason,
printers from a claim or the config, static tokens beside JWTs, and the expiry
timer (an injected clock, no sleeping). Tokens are minted here with PyJWT."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest

from octoprint_fluxprint.hub import config as C
from octoprint_fluxprint.hub.expiry import JwtCredential, TokenExpiry
from octoprint_fluxprint.hub.identity import NO_JWT, HubIdentity
from tests.hub.certs import ec_key, public_pem, rsa_key, write

SECRET = "s" * 40
PRINTERS = [
    {"id": "a", "url": "http://127.0.0.1:5000", "apikey": "K" * 32},
    {"id": "b", "url": "http://127.0.0.1:5001", "apikey": "L" * 32},
]
ENV = {"REMOTE_ADDR": "127.0.0.1"}


def cfg_of(jwt_cfg: dict, env=None, **auth) -> C.HubConfig:
    trusted = {"profile": "dashboard"}
    raw = {
        "printers": PRINTERS,
        "auth": {"trusted_networks": [], "trusted": trusted, "jwt": jwt_cfg, **auth},
    }
    return C.parse(raw, env or {})


def identity(jwt_cfg: dict, **auth) -> HubIdentity:
    return HubIdentity(cfg_of(jwt_cfg, **auth))


def mint(key=SECRET, algorithm="HS256", ttl=60.0, headers=None, **claims) -> str:
    body = {"id": "u42", "email": "ada@example.com", "exp": time.time() + ttl, **claims}
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def verdict(ident: HubIdentity, token: str):
    return ident.authenticate({"token": token}, ENV)


# ~~ the config


@pytest.mark.parametrize(
    "jwt_cfg, needle",
    [
        ({}, "auth.jwt: give one of secret (or FLUXPRINT_HUB_JWT_SECRET)"),
        (
            {"secret": SECRET, "jwks_file": "/x.json"},
            "(not secret and jwks_file)",
        ),
        ({"secret": SECRET, "algorithms": ["RS256"]}, "a secret verifies HS256 only"),
        ({"public_key": "/k.pem"}, "HS256 needs a secret, not public_key"),
        ({"secret": SECRET, "algorithms": ["PS256"]}, "auth.jwt.algorithms.0:"),
        (
            {"secret": SECRET, "printers": ["a"], "printers_claim": "printers"},
            "give printers or printers_claim, not both",
        ),
        ({"secret": SECRET, "printers": ["zz"]}, "auth.jwt.printers: unknown printer"),
        ({"secret": SECRET, "profile": "nope"}, "auth.jwt.profile: unknown profile"),
        ({"secret": SECRET, "leeway": -1}, "auth.jwt.leeway:"),
        (
            {"secret": SECRET, "profile": "fluxstudio"},
            "auth.jwt.printers: the fluxstudio",
        ),
        ({"secret": SECRET, "algorithm": "HS256"}, "auth.jwt.algorithm: unknown key"),
    ],
)
def test_config_errors_name_the_key(jwt_cfg, needle):
    with pytest.raises(C.ConfigError) as info:
        cfg_of(jwt_cfg)
    assert needle in str(info.value)
    assert SECRET not in str(info.value)


def test_the_secret_comes_from_the_environment():
    cfg = cfg_of({}, env={"FLUXPRINT_HUB_JWT_SECRET": SECRET})
    assert cfg.auth.jwt.secret == SECRET and cfg.auth.jwt.algorithms == ["HS256"]
    assert SECRET not in repr(cfg) and SECRET not in repr(cfg.auth.jwt)
    with pytest.raises(C.ConfigError) as info:
        C.parse({"printers": PRINTERS[:1]}, {"FLUXPRINT_HUB_JWT_SECRET": SECRET})
    assert "FLUXPRINT_HUB_JWT_SECRET is set, but the config has no auth.jwt" in str(
        info.value
    )
    assert cfg_of({"secret": SECRET, "audience": "hub"}).auth.jwt.audience == ["hub"]


def test_key_files_are_refused_naming_the_key(tmp_path):
    rsa = rsa_key()
    garbage = write(str(tmp_path), "garbage.pem", b"nothing")
    rsa_pub = write(str(tmp_path), "rsa.pem", public_pem(rsa))
    cases = [
        (
            {"public_key": str(tmp_path / "none.pem"), "algorithms": ["RS256"]},
            "cannot read",
        ),
        ({"public_key": garbage, "algorithms": ["RS256"]}, "holds no PEM public key"),
        ({"public_key": rsa_pub, "algorithms": ["ES256"]}, "verifies none of ['ES256']"),
        ({"jwks_file": garbage, "algorithms": ["ES256"]}, "auth.jwt.jwks_file:"),
    ]
    for jwt_cfg, needle in cases:
        with pytest.raises(C.ConfigError) as info:
            identity(jwt_cfg)
        assert needle in str(info.value), (jwt_cfg, str(info.value))


# ~~ tokens


def test_a_valid_token_is_admitted_with_its_user_printers_and_expiry():
    ident = identity({"secret": SECRET, "printers": ["a"]})
    token = mint(ttl=30)
    ok = verdict(ident, token)
    assert ok.ok and ok.user.name == "jwt:u42" and ok.user.printers == frozenset({"a"})
    assert isinstance(ok.credential, JwtCredential)
    assert abs(ok.credential.expires - (time.time() + 30)) < 2
    assert token not in repr(ok) and len(token) > 0
    # sub wins over id, id over email
    assert verdict(ident, mint(sub="s-1")).user.name == "jwt:s-1"


def claimed(**kw) -> str:
    """A token for the hub below (aud and iss right) unless kw says otherwise."""
    return mint(**{"aud": "hub", "iss": "fluxstudio", **kw})


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: claimed(ttl=-5), "token expired"),
        (
            lambda: claimed(key="another secret, just as long as the first"),
            "invalid token: bad signature",
        ),
        (lambda: claimed(aud="other"), "invalid token: wrong audience"),
        (lambda: claimed(iss="someone"), "invalid token: wrong issuer"),
        (lambda: mint(aud="hub"), "invalid token: no iss claim"),
        (lambda: mint(iss="fluxstudio"), "invalid token: no aud claim"),
        (lambda: claimed(nbf=time.time() + 60), "token not valid yet"),
        (
            lambda: jwt.encode({"aud": "hub", "iss": "fluxstudio"}, SECRET, "HS256"),
            "invalid token: no exp claim",
        ),
        (
            lambda: claimed(key=None, algorithm="none"),
            "invalid token: algorithm not allowed",
        ),
        (
            lambda: claimed(key=ec_key(), algorithm="ES256"),
            "invalid token: algorithm not allowed",
        ),
        (lambda: "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln-bad", "bad signature"),
        (lambda: "eyJub3QiOiJqc29uIn0x.eyJ4IjoxfQ.c2ln", "invalid token: malformed"),
    ],
)
def test_every_refusal_says_why(make, reason):
    ident = identity({"secret": SECRET, "audience": "hub", "issuer": "fluxstudio"})
    refused = verdict(ident, make())
    assert not refused.ok and reason in refused.reason, refused.reason


def test_leeway_admits_a_token_just_expired_and_extends_its_life():
    ident = identity({"secret": SECRET, "leeway": 30})
    ok = verdict(ident, mint(ttl=-5))
    assert ok.ok and abs(ok.credential.expires - (time.time() + 25)) < 2


def test_printers_from_a_claim():
    ident = identity({"secret": SECRET, "printers_claim": "printers"})
    assert verdict(ident, mint(printers=["b"])).user.printers == frozenset({"b"})
    assert verdict(ident, mint(printers="*")).user.printers is None
    assert verdict(ident, mint(printers=["*"])).user.printers is None
    missing = verdict(ident, mint())
    assert missing.reason.startswith("no printer for this credential")
    assert "printers claim" in missing.reason
    assert "must be a list" in verdict(ident, mint(printers=[1])).reason
    assert "must be a list" in verdict(ident, mint(printers="a")).reason


def test_rs256_public_key_and_es256_jwks_by_kid(tmp_path):
    rsa = rsa_key()
    path = write(str(tmp_path), "rsa.pem", public_pem(rsa))
    ident = identity({"public_key": path, "algorithms": ["RS256", "ES256"]})
    assert verdict(ident, mint(key=rsa, algorithm="RS256")).ok
    assert (
        "bad signature" in verdict(ident, mint(key=rsa_key(), algorithm="RS256")).reason
    )
    assert "not allowed" in verdict(ident, mint(algorithm="HS256")).reason

    one, two = ec_key(), ec_key()
    keys = []
    for kid, key in (("k1", one), ("k2", two)):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "alg": "ES256", "use": "sig"})
    jwks = write(str(tmp_path), "jwks.json", json.dumps({"keys": keys}).encode())
    ident = identity({"jwks_file": jwks, "algorithms": ["ES256"]})
    assert verdict(ident, mint(key=two, algorithm="ES256", headers={"kid": "k2"})).ok
    crossed = mint(key=one, algorithm="ES256", headers={"kid": "k2"})
    assert "bad signature" in verdict(ident, crossed).reason
    unknown = mint(key=one, algorithm="ES256", headers={"kid": "k9"})
    assert verdict(ident, unknown).reason == "invalid token: unknown key id"
    no_kid = mint(key=one, algorithm="ES256")
    assert verdict(ident, no_kid).reason == "invalid token: unknown key id"


def test_static_tokens_keep_working_beside_jwts():
    dotted = "abc.defgh.ijk"  # a hub token that has the shape of a JWT
    tokens = [
        {"name": "plain", "sha256": C.hash_token("plain-token"), "printers": ["a"]},
        {"name": "dotted", "sha256": C.hash_token(dotted), "printers": ["b"]},
    ]
    ident = identity({"secret": SECRET}, tokens=tokens)
    assert verdict(ident, "plain-token").user.name == "token:plain"
    assert verdict(ident, dotted).user.name == "token:dotted"
    assert verdict(ident, "nope").reason == "invalid token"
    assert verdict(ident, mint()).user.name == "jwt:u42"
    # a JWT longer than a hub token may be (RS256 signatures are 342 characters)
    long = mint(pad="x" * 600)
    assert len(long) > 256 and verdict(ident, long).ok
    assert verdict(ident, "x" * 300).reason == "malformed credentials"
    # without auth.jwt a JWT is refused as such
    auth = {"tokens": tokens, "trusted": {"profile": "dashboard"}}
    plain = HubIdentity(C.parse({"printers": PRINTERS, "auth": auth}, {}))
    assert verdict(plain, mint()).reason == NO_JWT


# ~~ the expiry timer


class Engine:
    def __init__(self):
        self.clients: dict = {}
        self.closed: list[tuple[str, str]] = []
        self.sessions = self

    async def close_transport(self, sid: str, reason: str) -> None:
        self.closed.append((sid, reason))


class Info:
    def __init__(self, credential):
        self.credential = credential


def test_expiry_closes_the_client_the_reconnectable_way():
    async def scenario() -> None:
        engine = Engine()
        now = [1000.0]
        expiry = TokenExpiry(engine, clock=lambda: now[0])
        due = JwtCredential("jwt", "t", "u", expires=999.0)  # expired by the clock
        later = JwtCredential("jwt", "t", "u", expires=1_000_000.0)
        engine.clients = {
            "s1": Info(due),
            "s2": Info(later),
            "s3": Info(None),  # a static token or a trusted client: never timed
        }
        for sid in engine.clients:
            expiry.watch(sid)
        assert len(expiry) == 2
        for _ in range(3):
            await asyncio.sleep(0)
        assert engine.closed == [("s1", "token expired")]
        del engine.clients["s2"]
        assert expiry.sweep() == 1 and len(expiry) == 0

    asyncio.run(scenario())
