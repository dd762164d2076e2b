"""Who may connect to the hub: a hub token (``auth: {token}`` or ``X-Api-Key``),
kept as a sha256 hash in the config and scoped to printers and a profile; a JSON
Web Token in the same place (``auth.jwt``, hub/jwtauth.py), told apart by its
shape (three base64url parts) and never mistaken for a hub token that happens to
look like one; or no credential at all from a trusted network. The decision is
the engine's ``core.auth.Decision``; tokens never show in logs or reprs."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from ..core import auth as A
from ..server.clock import remote_address
from .config import ALL, HubConfig

NO_CREDENTIALS = (
    "missing credentials: connect with auth {token} (or X-Api-Key), or from a trusted"
    " network"
)
INVALID_TOKEN = "invalid token"
MAX_JWT_LENGTH = 8192
NO_JWT = "invalid token (this hub takes no JWTs)"
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts (the signature empty for ``alg: none``): the shape of
    a JWS compact serialization; PyJWT decides whether it is one."""
    return JWT_SHAPE.fullmatch(token) is not None


@dataclass(frozen=True)
class HubUser:
    name: str
    printers: Optional[frozenset]  # None: every printer
    keyframe: float  # the profile's status keyframe period (0: none)
    profile: str
    batch: int = 0  # the profile's printer:batch tick in ms (0: single events)

    def get_id(self) -> str:
        return self.name


class HubIdentity:
    def __init__(self, cfg: HubConfig, jwt: Any = None):
        self.networks = [
            ipaddress.ip_network(n, strict=False) for n in cfg.auth.trusted_networks
        ]
        ids = [p.id for p in cfg.printers]

        def scope(printers: Optional[list[str]], profile: str) -> Optional[frozenset]:
            if printers is None:
                one = cfg.profile(profile).one_printer and not cfg.dynamic
                # printers that register later (redis, no allow-list): all of them
                return frozenset(ids[:1]) if one else None
            return None if ALL in printers else frozenset(printers)

        trusted = cfg.auth.trusted
        self.trusted = HubUser(
            "trusted",
            scope(trusted.printers, trusted.profile),
            cfg.profile(trusted.profile).keyframe,
            trusted.profile,
            cfg.profile(trusted.profile).batch,
        )
        self.tokens = [
            (
                bytes.fromhex(t.sha256),
                HubUser(
                    "token:" + t.name,
                    scope(t.printers, t.profile),
                    cfg.profile(t.profile).keyframe,
                    t.profile,
                    cfg.profile(t.profile).batch,
                ),
            )
            for t in cfg.auth.tokens
        ]
        self.jwt = jwt
        if jwt is None and cfg.auth.jwt is not None:
            from .jwtauth import JwtAuth  # reads its key: startup only

            self.jwt = JwtAuth(
                cfg.auth.jwt,
                lambda name, printers, profile: HubUser(
                    name,
                    scope(printers, profile),
                    cfg.profile(profile).keyframe,
                    profile,
                ),
            )

    def is_trusted(self, remote: str) -> bool:
        try:
            address = ipaddress.ip_address(remote.split("%")[0])
        except ValueError:
            return False
        if getattr(address, "ipv4_mapped", None) is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)

    def authenticate(self, auth: Any, environ: Mapping[str, Any]) -> A.Decision:
        token: Any = None
        if auth is not None:
            if not isinstance(auth, Mapping):
                return A.Decision(reason=A.MALFORMED)
            token = auth.get("token")
        if token is None or token == "":
            token = environ.get("HTTP_X_API_KEY")
        if token is None or token == "":
            if self.is_trusted(remote_address(environ)):
                return A.Decision(user=self.trusted)
            return A.Decision(reason=NO_CREDENTIALS)
        if not isinstance(token, str):
            return A.Decision(reason=A.MALFORMED)
        token = token.strip()
        if len(token) > A.MAX_KEY_LENGTH:
            if len(token) > MAX_JWT_LENGTH or not looks_like_jwt(token):
                return A.Decision(reason=A.MALFORMED)
        found = self._static(token)
        if found is not None:
            return A.Decision(user=found, credential=A.Credential("token", token))
        if looks_like_jwt(token):
            return self.jwt.authenticate(token) if self.jwt else A.Decision(reason=NO_JWT)
        return A.Decision(reason=INVALID_TOKEN)

    def _static(self, token: str) -> Optional[HubUser]:
        if len(token) > A.MAX_KEY_LENGTH:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for known, user in self.tokens:
            if hmac.compare_digest(known, digest):
                found = user
        return found
