"""JSON Web Tokens at the hub (``auth.jwt``), verified by PyJWT, never parsed by
hand.

One key source, loaded at startup (``JwtAuth``): an HS256 ``secret`` (best from
``FLUXPRINT_HUB_JWT_SECRET``), an RS256/ES256 ``public_key`` (a PEM file: a public
key or a certificate) or a ``jwks_file`` (keys chosen by the token's ``kid``). A
token must carry ``exp``; ``aud`` and ``iss`` are checked when configured. Its
printers come from a claim (a list of ids, or ``"*"``) or from the config.

A client that connected with a token is closed the reconnectable way when it
expires (hub/expiry.py).

Every refusal is one of a fixed set of reasons (they key the refusal counters):
nothing of the token or the key shows in them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

import jwt
from jwt.algorithms import has_crypto

from ..core import auth as A
from .config import ALL, ConfigError, Jwt
from .expiry import TOKEN_EXPIRED, JwtCredential

_logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
USER_CLAIMS = ("sub", "id", "email")  # the first present names the user
CLAIMS = ("exp", "aud", "iss", "nbf", "iat", "sub")

# PyJWT's errors, most specific first, as the reasons clients read
REASONS: tuple[tuple[type, str], ...] = (
    (jwt.ExpiredSignatureError, TOKEN_EXPIRED),
    (jwt.ImmatureSignatureError, "token not valid yet"),
    (jwt.InvalidAudienceError, "invalid token: wrong audience"),
    (jwt.InvalidIssuerError, "invalid token: wrong issuer"),
    (jwt.InvalidSignatureError, "invalid token: bad signature"),
    (jwt.InvalidAlgorithmError, "invalid token: algorithm not allowed"),
    (jwt.InvalidKeyError, "invalid token: wrong key"),
    (jwt.InvalidIssuedAtError, "invalid token: bad iat"),
    (jwt.DecodeError, "invalid token: malformed"),
)
UNKNOWN_KID = "invalid token: unknown key id"
BAD_CLAIM = 'invalid token: the {} claim must be a list of printer ids or "*"'


def _key_algorithms(key: Any, wanted: list[str]) -> list[str]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return [a for a in wanted if a == "RS256"]
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return [a for a in wanted if a == "ES256"]
    return []


def _load_public_key(path: str, wanted: list[str]) -> tuple[Any, list[str]]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(
            f"auth.jwt.public_key: cannot read {path}: {exc.strerror}"
        ) from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(
            f"auth.jwt.public_key: {path} holds no PEM public key or certificate"
        ) from None
    algorithms = _key_algorithms(key, wanted)
    if not algorithms:
        raise ConfigError(
            f"auth.jwt.public_key: {path} verifies none of {wanted}"
            " (RS256: an RSA key; ES256: an EC P-256 key)"
        )
    return key, algorithms


def _load_jwks(path: str, wanted: list[str]) -> dict[Optional[str], tuple[Any, list]]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        keys = jwt.PyJWKSet.from_json(text).keys
    except OSError as exc:
        raise ConfigError(
            f"auth.jwt.jwks_file: cannot read {path}: {exc.strerror}"
        ) from None
    except (ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as exc:
        raise ConfigError(f"auth.jwt.jwks_file: {path}: {exc}") from None
    out: dict[Optional[str], tuple[Any, list]] = {}
    for key in keys:
        algorithms = _key_algorithms(key.key, wanted)
        if key.algorithm_name not in (None, *algorithms):
            algorithms = []
        if algorithms:
            out[key.key_id] = (key.key, algorithms)
    if not out:
        raise ConfigError(f"auth.jwt.jwks_file: {path} has no key for {wanted}")
    return out


class JwtAuth:
    """Verifies tokens with the configured key (loaded here: startup only) and
    turns a valid one into the hub's user. ``user(name, printers, profile)``
    builds it (``printers``: a list of ids, or None for the profile's default)."""

    def __init__(self, cfg: Jwt, user: Callable[[str, Optional[list], str], Any]):
        self.cfg = cfg
        self.user = user
        wanted = list(cfg.algorithms)
        if any(a != "HS256" for a in wanted) and not has_crypto:
            raise ConfigError(
                "auth.jwt.algorithms: RS256 and ES256 need the cryptography package:"
                ' pip install "OctoPrint-FluxPrint[hub]"'
            )
        # kid -> (key, algorithms); None: the key for tokens without a kid
        self.keys: dict[Optional[str], tuple[Any, list]] = {}
        if cfg.secret:
            if len(cfg.secret.encode()) < MIN_SECRET_BYTES:
                _logger.warning(
                    "auth.jwt.secret is shorter than %d bytes: a token's signature"
                    " lets anyone guess it offline",
                    MIN_SECRET_BYTES,
                )
            self.keys[None] = (cfg.secret, wanted)
        elif cfg.public_key:
            self.keys[None] = _load_public_key(cfg.public_key, wanted)
        else:
            assert cfg.jwks_file
            self.keys = _load_jwks(cfg.jwks_file, wanted)
        self.only = next(iter(self.keys.values())) if len(self.keys) == 1 else None

    def _key(self, token: str) -> tuple[Any, list]:
        kid = jwt.get_unverified_header(token).get("kid")
        found = self.keys.get(kid) if kid is not None else None
        if found is None and (kid is None or None in self.keys):
            found = self.keys.get(None) or self.only
        if found is None:
            raise LookupError(UNKNOWN_KID)
        return found

    def authenticate(self, token: str, now: Optional[float] = None) -> A.Decision:
        cfg = self.cfg
        try:
            key, algorithms = self._key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway,
                options={
                    "require": ["exp"]
                    + (["aud"] if cfg.audience else [])
                    + (["iss"] if cfg.issuer else []),
                },
            )
        except LookupError as exc:
            return A.Decision(reason=str(exc))
        except jwt.MissingRequiredClaimError as exc:
            claim = exc.claim if exc.claim in CLAIMS else "required"
            return A.Decision(reason=f"invalid token: no {claim} claim")
        except jwt.PyJWTError as exc:
            return A.Decision(reason=_reason(exc))
        except Exception:  # a key library's surprise is a refusal, not a crash
            _logger.debug("Token verification failed", exc_info=True)
            return A.Decision(reason="invalid token")
        printers: Optional[list] = cfg.printers
        if cfg.printers_claim is not None:
            value = claims.get(cfg.printers_claim)
            if value is None:
                return A.Decision(
                    reason=f"no printer for this credential: no {cfg.printers_claim}"
                    " claim in the token"
                )
            if value == ALL:
                value = [ALL]
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                return A.Decision(reason=BAD_CLAIM.format(cfg.printers_claim))
            printers = value
        name = next((str(claims[c]) for c in USER_CLAIMS if claims.get(c)), "")
        expires = float(claims["exp"]) + cfg.leeway
        credential = JwtCredential("jwt", token, name or None, expires=expires)
        user = self.user("jwt:" + name[:128] if name else "jwt", printers, cfg.profile)
        return A.Decision(user=user, credential=credential)


def _reason(exc: Exception) -> str:
    for kind, reason in REASONS:
        if isinstance(exc, kind):
            return reason
    return "invalid token"
