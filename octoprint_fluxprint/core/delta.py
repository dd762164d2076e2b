"""Delta payloads (opt-in, ``printer:subscribe {"delta": true}``). Pure.

A delta carries the meta keys, ``"delta": true``, the top-level fields whose value
changed since the previous message of the same event on the same connection (whole
values: a heater, ``state``, ``job``… not merged further down) and, if any
disappeared, ``"removed": [names]``. A message without ``delta`` is full and
replaces what the client holds. The hub makes sure every client of a delta room
has a full message before the room's first delta reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

MARKERS = ("delta", "removed")


def delta_body(previous: Mapping[str, Any], body: Mapping[str, Any]) -> Optional[dict]:
    """The delta from ``previous`` to ``body`` (bodies without meta keys), or None
    when nothing changed."""
    out = {k: v for k, v in body.items() if k not in previous or previous[k] != v}
    removed = [k for k in previous if k not in body]
    if not out and not removed:
        return None
    out["delta"] = True
    if removed:
        out["removed"] = sorted(removed)
    return out


def is_delta(payload: Any) -> bool:
    return isinstance(payload, Mapping) and payload.get("delta") is True


def apply_delta(state: Optional[Mapping[str, Any]], payload: Mapping[str, Any]) -> dict:
    """What a client does with a message: a full one replaces the state, a delta
    updates it (meta keys come from the message)."""
    if not is_delta(payload):
        return dict(payload)
    if state is None:
        raise ValueError("a delta arrived before any full message")
    gone = set(payload.get("removed", ()))
    out = {k: v for k, v in state.items() if k not in gone and k not in MARKERS}
    out.update((k, v) for k, v in payload.items() if k not in MARKERS)
    return out


def compose(older: Any, newer: Any) -> Any:
    """One message with the effect of ``older`` then ``newer`` (for holding the
    messages of a client that is not keeping up): newest wins for full messages,
    deltas are merged so that none of their changes is lost."""
    if older is None or not is_delta(newer):
        return newer  # type: ignore[return-value]
    if not is_delta(older):
        return apply_delta(older, newer)
    gone_now = set(newer.get("removed", ()))
    changed_now = {k for k in newer if k not in MARKERS}
    out = {k: v for k, v in older.items() if k not in MARKERS and k not in gone_now}
    out.update((k, v) for k, v in newer.items() if k not in MARKERS)
    out["delta"] = True
    removed = (set(older.get("removed", ())) | gone_now) - changed_now
    if removed:
        out["removed"] = sorted(removed)
    return out
