"""Who may connect: pure decisions over credentials a client presents.

The transport extracts the credentials from the Socket.IO ``auth`` payload and the
WSGI environ; the plugin supplies the look-ups (in-memory user and application-key
tables, no I/O). Nothing here logs or returns the key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

MISSING = "missing credentials"
INVALID = "invalid API key"
INACTIVE = "user is deactivated"
DENIED = "permission denied"
MALFORMED = "malformed credentials"

MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class Decision:
    user: Any = None
    reason: Optional[str] = None

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
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return None, MALFORMED
    return key.strip(), None


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
