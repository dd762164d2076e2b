"""Who may connect: pure decisions over credentials a client presents.

The transport extracts the credentials from the Socket.IO ``auth`` payload, the
``X-Api-Key`` header, the ``apikey`` query parameter or the session cookie; the
plugin supplies the look-ups (in-memory user, session and application-key tables, no
I/O). Origins are judged here too. Nothing here logs or returns a key or a session
id: ``Credential`` hides its secret from ``repr`` and only a hash of a key is ever
used as a cache key.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl

MISSING = "missing credentials"
INVALID = "invalid API key"
INACTIVE = "user is deactivated"
DENIED = "permission denied"
MALFORMED = "malformed credentials"
ORIGIN = "origin not allowed"
TOO_MANY = "too many connections"

MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class Credential:
    """What a client presented: an API key, or a browser session (user id and
    OctoPrint session id). The secret never shows in ``repr`` (nor in logs)."""

    kind: str  # "apikey" or "session"
    secret: str = field(repr=False)
    user_id: Optional[str] = None

    def __repr__(self) -> str:
        return f"Credential({self.kind})"


@dataclass(frozen=True)
class Decision:
    user: Any = None
    reason: Optional[str] = None
    credential: Optional[Credential] = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.reason is None


def extract_apikey(
    auth: Any, environ: Mapping[str, Any]
) -> tuple[Optional[str], Optional[str]]:
    """Returns (apikey, error). The ``auth`` payload wins over the header."""
    key: Any = None
    if auth is not None:
        if not isinstance(auth, Mapping):
            return None, MALFORMED
        key = auth.get("apikey")
    if key is None:
        key = environ.get("HTTP_X_API_KEY")
    if key is None or key == "":
        return None, MISSING
    return _valid_key(key)


def _valid_key(key: Any) -> tuple[Optional[str], Optional[str]]:
    if (
        not isinstance(key, str)
        or len(key) > MAX_KEY_LENGTH
        or not key.isascii()  # OctoPrint's hmac.compare_digest takes ASCII only
        or not key.isprintable()
    ):
        return None, MALFORMED
    key = key.strip()
    return (key, None) if key else (None, MISSING)


MAX_QUERY = 4096


def query_apikey(environ: Mapping[str, Any]) -> Any:
    """The ``apikey`` query parameter (None when absent); bounded parsing. An
    oversized query string yields a non-string, judged malformed."""
    query = environ.get("QUERY_STRING") or ""
    if "apikey=" not in query:
        return None
    if len(query) > MAX_QUERY:
        return _OVERSIZED
    for name, value in parse_qsl(query, keep_blank_values=True, max_num_fields=32):
        if name == "apikey":
            return value
    return None


_OVERSIZED = object()


def extract_credentials(
    auth: Any, environ: Mapping[str, Any], has_session_cookie: bool = False
) -> tuple[Optional[str], Optional[str]]:
    """(apikey, error) from, in order: the ``auth`` payload, the ``X-Api-Key``
    header, the ``apikey`` query parameter. ``(None, None)`` means "no key, but a
    session cookie to try" (only when ``has_session_cookie``)."""
    key: Any = None
    if auth is not None:
        if not isinstance(auth, Mapping):
            return None, MALFORMED
        key = auth.get("apikey")
    if key is None or key == "":
        key = environ.get("HTTP_X_API_KEY")
    if key is None or key == "":
        key = query_apikey(environ)
    if key is None or key == "":
        return None, (None if has_session_cookie else MISSING)
    return _valid_key(key)


def key_digest(apikey: str) -> bytes:
    """What the cache is keyed by: never the key itself."""
    return hashlib.sha256(apikey.encode("ascii", "replace")).digest()


class KeyCache:
    """A small LRU of API-key look-ups (user or None), keyed by a hash of the key.

    Look-ups are in-memory already (OctoPrint's user manager and the appkeys
    validator scan their tables); the cache makes a storm of connects with the same
    key a dictionary hit. ``clear()`` is called by the periodic sweep, so a revoked
    key is honoured for at most one sweep period, and the sweep re-checks every
    connected client without the cache.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._entries: OrderedDict[bytes, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def lookup(self, apikey: str, find_user: Callable[[str], Any]) -> Any:
        digest = key_digest(apikey)
        if digest in self._entries:
            self._entries.move_to_end(digest)
            self.hits += 1
            return self._entries[digest]
        self.misses += 1
        user = find_user(apikey)
        self._entries[digest] = user
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return user

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# ~~ origins

MAX_ORIGIN_LENGTH = 253 + 16


def normalize_origin(value: Any) -> Optional[str]:
    """``scheme://host[:port]`` in lower case, http(s) only, default ports dropped;
    None for anything else (paths, credentials, wildcards, "null")."""
    if not isinstance(value, str):
        return None
    value = value.strip().rstrip("/").lower()
    if not value or len(value) > MAX_ORIGIN_LENGTH or not value.isascii():
        return None
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest:
        return None
    if any(c in rest for c in "/?#@\\ *") or not rest.isprintable():
        return None
    host, colon, port = rest.rpartition(":")
    if colon and not rest.endswith("]") and port.isdigit():
        if not host or not 0 < int(port) < 65536:
            return None
        if (scheme, int(port)) in (("http", 80), ("https", 443)):
            rest = host
        else:
            rest = f"{host}:{int(port)}"
    elif colon and not rest.endswith("]"):
        return None
    return f"{scheme}://{rest}"


def normalize_origins(values: Any, limit: int = 64) -> list[str]:
    """The valid, distinct origins of a settings value (a list of strings)."""
    if not isinstance(values, (list, tuple)):
        return []
    out: list[str] = []
    for value in values:
        origin = normalize_origin(value)
        if origin is not None and origin not in out:
            out.append(origin)
        if len(out) >= limit:
            break
    return out


def own_origins(environ: Mapping[str, Any]) -> set[str]:
    """OctoPrint's own origin as the browser sees it: scheme and Host of the request,
    and the ``X-Forwarded-Proto``/``X-Forwarded-Host`` of a reverse proxy."""
    out: set[str] = set()
    host = environ.get("HTTP_HOST")
    scheme = environ.get("wsgi.url_scheme") or "http"
    if isinstance(host, str) and host:
        origin = normalize_origin(f"{scheme}://{host}")
        if origin:
            out.add(origin)
        fwd_host = environ.get("HTTP_X_FORWARDED_HOST")
        fwd_proto = environ.get("HTTP_X_FORWARDED_PROTO")
        if fwd_host or fwd_proto:
            h = (fwd_host or host).split(",")[0].strip()
            p = (fwd_proto or scheme).split(",")[0].strip()
            origin = normalize_origin(f"{p}://{h}")
            if origin:
                out.add(origin)
    return out


def origin_of(environ: Mapping[str, Any]) -> Optional[str]:
    """The raw Origin header; None when the client sent none (Node, Python)."""
    origin = environ.get("HTTP_ORIGIN")
    if not isinstance(origin, str) or not origin:
        return None
    if "," in origin:
        # a repeated header arrives joined ("a,a"; websocket-client repeats it):
        # one origin however often it is named, else none that normalizes
        parts = {part.strip() for part in origin.split(",")}
        if len(parts) == 1:
            return parts.pop()
    return origin


def is_same_origin(environ: Mapping[str, Any]) -> bool:
    """True for no Origin header or OctoPrint's own origin."""
    origin = origin_of(environ)
    return origin is None or normalize_origin(origin) in own_origins(environ)


def origin_allowed(environ: Mapping[str, Any], allowed: Iterable[str]) -> bool:
    """Clients without an Origin header are judged by their credentials alone; a
    browser page must come from OctoPrint's own origin or one listed in ``allowed``
    (normalized, see ``normalize_origins``)."""
    origin = origin_of(environ)
    if origin is None:
        return True
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    return normalized in own_origins(environ) or normalized in allowed


def decide(
    apikey: Optional[str],
    find_user: Callable[[str], Any],
    has_permission: Callable[[Any], bool],
) -> Decision:
    if not apikey:
        return Decision(reason=MISSING)
    user = find_user(apikey)
    if user is None:
        return Decision(reason=INVALID)
    if not getattr(user, "is_active", True):
        return Decision(reason=INACTIVE)
    if not has_permission(user):
        return Decision(reason=DENIED)
    return Decision(user=user)
