"""The hub's configuration: one YAML file, checked by pydantic models that refuse
unknown keys, with environment variables over it (docs/hub.md lists them).

Errors name the key and what is wrong (``ConfigError``); the CLI prints them and
exits non-zero.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.batchmodel import check_batch

PRINTER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEFAULT_PLUGIN_PATH = "/plugin/fluxprint/socket.io/"
ALL = "*"


class ConfigError(Exception):
    """A bad configuration; the message names each key and what is wrong."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListenTLS(Strict):
    """https:// and wss:// on the listen port (hub/tls.py). PEM files, read once at
    startup; the key unencrypted and readable by the hub's user only."""

    cert: str = Field(min_length=1)  # the certificate, then its chain
    key: str = Field(min_length=1)


class Listen(Strict):
    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)
    path: str = "/socket.io/"
    # websocket permessage-deflate, as the plugin's websocket_compression setting
    compression: Literal[
        "off", "deflate", "deflate_no_context_takeover", "deflate_shared"
    ] = "deflate_shared"
    tls: Optional[ListenTLS] = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value if value.endswith("/") else value + "/"


class Printer(Strict):
    id: str = Field(pattern=PRINTER_ID)
    # the direct source's OctoPrint (the redis source needs neither url nor apikey)
    url: Optional[str] = Field(None, pattern=r"^https?://[^\s/]+(/.*)?$")
    apikey: Optional[str] = Field(None, min_length=1, repr=False)
    path: str = DEFAULT_PLUGIN_PATH
    ca: Optional[str] = None  # a CA bundle (PEM) to verify an https:// OctoPrint with

    def __repr__(self) -> str:  # never the key
        return f"Printer(id={self.id!r}, url={self.url!r})"


class Profile(Strict):
    keyframe: float = Field(0.0, ge=0, le=3600)  # status at least every K s (0: off)
    one_printer: bool = False  # entries name their printer; one unless listed
    # printer:batch every this many ms from the connect (0: single events), as a
    # client's printer:subscribe {batch} would ask; the client may change it
    batch: int = Field(0, strict=True)

    _batch = field_validator("batch")(check_batch)


BUILTIN_PROFILES = {
    # FluxStudio's relay cannot ask for keyframes and shows one printer
    "fluxstudio": Profile(keyframe=5.0, one_printer=True),
    # a dashboard asks for what it wants
    "dashboard": Profile(),
}


class Trusted(Strict):
    profile: str = "fluxstudio"
    printers: Optional[list[str]] = None  # None: the profile's default


class Token(Strict):
    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", repr=False)
    printers: list[str] = Field(default_factory=lambda: [ALL])
    profile: str = "dashboard"

    @field_validator("sha256")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


JWT_SECRET_ENV = "FLUXPRINT_HUB_JWT_SECRET"


class Jwt(Strict):
    """JSON Web Tokens (hub/jwtauth.py, PyJWT): one key source, the algorithms it
    verifies, the claims checked, and what a valid token may see."""

    algorithms: list[Literal["HS256", "RS256", "ES256"]] = Field(
        default_factory=lambda: ["HS256"], min_length=1
    )
    secret: Optional[str] = Field(None, min_length=1, repr=False)  # HS256
    public_key: Optional[str] = None  # a PEM file: RS256 or ES256
    jwks_file: Optional[str] = None  # a JWKS (JSON) file: keys chosen by the kid
    audience: Optional[list[str]] = None  # the token's aud must name one of them
    issuer: Optional[str] = None
    leeway: float = Field(0.0, ge=0, le=300)  # s of clock skew on exp, nbf, iat
    printers_claim: Optional[str] = Field(None, min_length=1)  # ids, or "*"
    printers: Optional[list[str]] = None  # or fixed (None: the profile's default)
    profile: str = "dashboard"

    @field_validator("audience", mode="before")
    @classmethod
    def _audience(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def __repr__(self) -> str:  # never the secret
        return f"Jwt(algorithms={self.algorithms!r})"


class Auth(Strict):
    trusted_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1"])
    trusted: Trusted = Field(default_factory=Trusted)
    tokens: list[Token] = Field(default_factory=list)
    jwt: Optional[Jwt] = None
    allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("trusted_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"not a network: {net!r}") from None
        return value


class HubLimits(Strict):
    """Connections the hub admits (a hub serves farms: more than the plugin's)."""

    max_connections: int = Field(2000, ge=1, le=100_000)
    max_connections_per_user: int = Field(1000, ge=1, le=100_000)


class RedisSection(Strict):
    """The ``redis`` source (docs/hub.md): where the plugins publish, and how the hub
    reads it."""

    url: str = Field("redis://127.0.0.1:6379/0", pattern=r"^(redis|rediss|unix)://")
    prefix: str = Field("fluxprint", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    streams_per_read: int = Field(256, ge=1, le=10_000)  # printers per blocking XREAD
    block_ms: int = Field(1000, ge=10, le=60_000)
    cache_events: int = Field(1000, ge=0, le=1_000_000)  # durable events kept per printer

    def __repr__(self) -> str:  # the url may hold a password
        return f"RedisSection(prefix={self.prefix!r})"


class Web(Strict):
    """The hub's HTTP extras beside Socket.IO (hub/page.py, hub/rest.py)."""

    page: bool = True  # GET /: the live farm page
    rest: bool = True  # GET <base>/api/printers...: the REST fallback


class HubConfig(Strict):
    listen: Listen = Field(default_factory=Listen)
    source: Literal["direct", "redis"] = "direct"
    # direct: the OctoPrints to connect to; redis: an allow-list (empty: every
    # printer that registers)
    printers: list[Printer] = Field(default_factory=list)
    redis: RedisSection = Field(default_factory=RedisSection)
    auth: Auth = Field(default_factory=Auth)
    profiles: dict[str, Profile] = Field(default_factory=dict)
    limits: HubLimits = Field(default_factory=HubLimits)
    web: Web = Field(default_factory=Web)
    stale_after: float = Field(5.0, gt=0, le=600)
    offline_after: float = Field(10.0, gt=0, le=3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def profile(self, name: str) -> Profile:
        return {**BUILTIN_PROFILES, **self.profiles}[name]

    @property
    def dynamic(self) -> bool:
        """Printers appear as they register (the redis source without an allow-list)."""
        return self.source == "redis" and not self.printers


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def env_key(printer_id: str) -> str:
    return "FLUXPRINT_HUB_APIKEY_" + re.sub(r"[^A-Z0-9]", "_", printer_id.upper())


def _apply_env(raw: dict, env: dict) -> dict:
    listen = (
        raw.setdefault("listen", {}) if isinstance(raw.get("listen", {}), dict) else {}
    )
    for name, key in (("HOST", "host"), ("PORT", "port"), ("PATH", "path")):
        value = env.get("FLUXPRINT_HUB_" + name)
        if value:
            listen[key] = value
    nets = env.get("FLUXPRINT_HUB_TRUSTED_NETWORKS")
    if nets is not None and isinstance(raw.setdefault("auth", {}), dict):
        raw["auth"]["trusted_networks"] = [
            n.strip() for n in nets.split(",") if n.strip()
        ]
    tls = {key: env.get("FLUXPRINT_HUB_TLS_" + key.upper()) for key in ("cert", "key")}
    if any(tls.values()) and isinstance(raw.get("listen"), dict):
        section = raw["listen"].get("tls")
        if section is None or isinstance(section, dict):
            raw["listen"]["tls"] = {
                **(section or {}),
                **{k: v for k, v in tls.items() if v},
            }
    secret = env.get(JWT_SECRET_ENV)
    if secret and isinstance(raw.get("auth"), dict):
        if isinstance(raw["auth"].get("jwt"), dict):
            raw["auth"]["jwt"]["secret"] = secret
    url = env.get("FLUXPRINT_HUB_REDIS_URL")
    if url and isinstance(raw.setdefault("redis", {}), dict):
        raw["redis"]["url"] = url
    for printer in raw.get("printers") or []:
        if isinstance(printer, dict) and isinstance(printer.get("id"), str):
            value = env.get(env_key(printer["id"]))
            if value:
                printer["apikey"] = value
    return raw


def _errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{where}: {msg}")
    return "\n".join(lines)


def _check(cfg: HubConfig) -> list[str]:
    problems = []
    ids = [p.id for p in cfg.printers]
    for i, pid in enumerate(ids):
        if pid in ids[:i]:
            problems.append(f"printers.{i}.id: duplicate printer id {pid!r}")
    direct = cfg.source == "direct"
    if direct and not cfg.printers:
        problems.append("printers: the direct source needs at least one printer")
    for i, p in enumerate(cfg.printers if direct else ()):
        if not p.url:
            problems.append(
                f"printers.{i}.url: missing (the direct source connects to it)"
            )
        if not p.apikey:
            problems.append(
                f"printers.{i}.apikey: missing (set it here or in {env_key(p.id)})"
            )
        if p.ca and not (p.url or "").startswith("https://"):
            problems.append(f"printers.{i}.ca: only for an https:// url")
    profiles = {**BUILTIN_PROFILES, **cfg.profiles}
    entries = []
    if cfg.auth.trusted_networks:  # with none, the trusted entry admits no one
        trusted = cfg.auth.trusted
        entries.append(("auth.trusted", trusted.profile, trusted.printers))
    entries += [
        (f"auth.tokens.{i}", t.profile, t.printers) for i, t in enumerate(cfg.auth.tokens)
    ]
    if cfg.auth.jwt is not None:
        problems += _check_jwt(cfg.auth.jwt)
        if cfg.auth.jwt.printers_claim is None:
            entries.append(("auth.jwt", cfg.auth.jwt.profile, cfg.auth.jwt.printers))
        elif cfg.auth.jwt.profile not in profiles:
            entries.append(("auth.jwt", cfg.auth.jwt.profile, None))
    for where, profile, printers in entries:
        if profile not in profiles:
            problems.append(
                f"{where}.profile: unknown profile {profile!r} (known: {sorted(profiles)})"
            )
            continue
        for name in printers or []:
            if name == ALL or name in ids:
                continue
            if cfg.dynamic and re.match(PRINTER_ID, name):
                continue  # it may register later
            problems.append(f"{where}.printers: unknown printer {name!r}")
        if (
            printers is None
            and profiles[profile].one_printer
            and len(ids) != 1
            and not cfg.dynamic
        ):
            problems.append(
                f"{where}.printers: the {profile} profile sees one printer; name it"
                " (or list the ones it may see)"
            )
    names = [t.name for t in cfg.auth.tokens]
    for i, name in enumerate(names):
        if name in names[:i]:
            problems.append(f"auth.tokens.{i}.name: duplicate token name {name!r}")
    return problems


def _check_jwt(jwt: Jwt) -> list[str]:
    keys = [k for k in ("secret", "public_key", "jwks_file") if getattr(jwt, k)]
    if len(keys) != 1:
        return [
            f"auth.jwt: give one of secret (or {JWT_SECRET_ENV}), public_key,"
            f" jwks_file{' (not ' + ' and '.join(keys) + ')' if keys else ''}"
        ]
    hmac = [a for a in jwt.algorithms if a.startswith("HS")]
    if keys == ["secret"] and len(hmac) != len(jwt.algorithms):
        return ["auth.jwt.algorithms: a secret verifies HS256 only"]
    if keys != ["secret"] and hmac:
        return [f"auth.jwt.algorithms: HS256 needs a secret, not {keys[0]}"]
    if jwt.printers_claim is not None and jwt.printers is not None:
        return ["auth.jwt.printers: give printers or printers_claim, not both"]
    return []


def parse(raw: Any, env: Optional[dict] = None) -> HubConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level): must be a mapping of keys")
    env = dict(os.environ if env is None else env)
    raw = _apply_env(raw, env)
    try:
        cfg = HubConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_errors(exc)) from None
    problems = _check(cfg)
    if env.get(JWT_SECRET_ENV) and cfg.auth.jwt is None:
        problems.append(
            f"auth.jwt: {JWT_SECRET_ENV} is set, but the config has no auth.jwt"
            " (add jwt: {} under auth)"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg


def load(path: str, env: Optional[dict] = None) -> HubConfig:
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse(raw, env)
