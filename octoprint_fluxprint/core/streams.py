"""The print farm's layout in Redis: key names, entry IDs, entry fields and the
retention rules the plugin's publisher and the hub's ``redis`` source share. Pure.

Per printer ``<id>`` (``<p>`` is the prefix, ``fluxprint`` by default):

- ``<p>:<id>:live`` — every message the plugin emits for the farm (status,
  telemetry, durable events), in seq order. Entry ID ``<seq>-0``: Redis refuses an
  ID at or below the stream's top, so re-sending after a cut is idempotent with no
  bookkeeping, and a hub resumes with ``XREAD ... <last seq>-0``. Trimmed by
  ``MINID`` to about ``LIVE_RETENTION_S`` of messages: telemetry is never replayed.
- ``<p>:<id>:durable`` — the durable events only (``core.replay.DURABLE_EVENTS``),
  same IDs, trimmed by ``MINID`` to the oldest seq the plugin's own SQLite log still
  holds and by ``MAXLEN ~`` to the newest ``DURABLE_MAX`` (the plugin's
  ``redis.durable_max``): never more than the plugin's log, often less. Replay for a client cursor reads
  it with ``XRANGE (<cursor>-0 +``. A durable event goes into both streams in one
  ``MULTI``: a hub that relays it from ``live`` finds it in ``durable`` too.
- ``<p>:printers`` — a hash, printer id -> registry JSON (id, name, version,
  instance, lastSeen ms, lastSeq, state "online"/"offline"); the heartbeat.
- ``<p>:announce`` — a short stream of printer ids (``MAXLEN ~ 1000``): a hub reads
  it with the live streams, so a new printer appears within one XREAD.

Fields of a live/durable entry: ``e`` (the event name) and ``d`` (the payload as
compact JSON, exactly what the plugin would send a client).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

DEFAULT_PREFIX = "fluxprint"
PRINTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LIVE_RETENTION_S = 60.0  # telemetry kept about a minute, never replayed
ANNOUNCE_MAXLEN = 1000
HEARTBEAT_S = 2.0  # the registry's lastSeen is refreshed this often
# the farm's status keyframes: a healthy printer's live stream is never silent
# longer than this, so a hub marks a printer stale within a few seconds
KEYFRAME_S = 2.0
# the durable stream's cap by default (``redis.durable_max``): about 30 days of a
# busy farm printer (12 prints a day x 5 durable events), and 1,000 printers' durable
# streams in ~0.8 GB of Redis (docs/farm.md); the plugin's own log keeps more
DURABLE_MAX = 2000
# the longest a publisher or a hub reader waits before trying Redis again: once
# Redis is back, durable events flow within about this
RECONNECT_CAP_S = 3.0


class StreamError(ValueError):
    """A malformed entry or id (the message says what is wrong)."""


def live_key(prefix: str, printer_id: str) -> str:
    return f"{prefix}:{printer_id}:live"


def durable_key(prefix: str, printer_id: str) -> str:
    return f"{prefix}:{printer_id}:durable"


def registry_key(prefix: str) -> str:
    return f"{prefix}:printers"


def announce_key(prefix: str) -> str:
    return f"{prefix}:announce"


def check_printer_id(printer_id: str) -> str:
    if not isinstance(printer_id, str) or not PRINTER_ID.match(printer_id):
        raise StreamError(
            f"printer id {printer_id!r}: 1-64 of A-Z a-z 0-9 . _ -, starting with a"
            " letter or digit"
        )
    return printer_id


def entry_id(seq: int) -> str:
    """The stream entry ID of a seq."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise StreamError(f"seq {seq!r} is not a positive integer")
    return f"{seq}-0"


def seq_of(entry: Any) -> int:
    """The seq of an entry ID (``b"123-0"`` or ``"123-0"``)."""
    text = entry.decode() if isinstance(entry, (bytes, bytearray)) else str(entry)
    head, sep, tail = text.partition("-")
    if not sep or not head.isdigit() or not tail.isdigit():
        raise StreamError(f"entry id {text!r} is not <seq>-<n>")
    return int(head)


def after(seq: int) -> str:
    """The ID to XREAD after: everything above ``seq`` (0: from the start)."""
    return f"{max(seq, 0)}-0"


def encode(event: str, payload: Mapping[str, Any]) -> dict[str, str]:
    return {
        "e": event,
        "d": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
    }


class Entry(NamedTuple):
    seq: int
    event: str
    payload: dict


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def decode(entry_id_: Any, fields: Mapping[Any, Any]) -> Entry:
    """An entry as read back (bytes or str keys). Raises StreamError when it is not
    one of ours or its payload's seq does not match its ID."""
    seq = seq_of(entry_id_)
    values = {_text(k): v for k, v in fields.items()}
    if "e" not in values or "d" not in values:
        raise StreamError(f"entry {seq}: fields e and d are required")
    try:
        payload = json.loads(_text(values["d"]))
    except ValueError as exc:
        raise StreamError(f"entry {seq}: payload is not JSON ({exc})") from None
    if not isinstance(payload, dict) or payload.get("seq") != seq:
        raise StreamError(f"entry {seq}: payload seq does not match the entry id")
    return Entry(seq, _text(values["e"]), payload)


def registry_record(
    printer_id: str,
    name: str,
    version: str,
    instance: str,
    last_seen_ms: int,
    last_seq: int,
    state: str = "online",
) -> str:
    return json.dumps(
        {
            "id": printer_id,
            "name": name,
            "version": version,
            "instance": instance,
            "lastSeen": last_seen_ms,
            "lastSeq": last_seq,
            "state": state,
        },
        separators=(",", ":"),
    )


def parse_registry(value: Any) -> Optional[dict]:
    """A registry record, or None when it is not one (a hub skips it)."""
    try:
        record = json.loads(_text(value))
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    try:
        check_printer_id(record.get("id"))
    except StreamError:
        return None
    if not isinstance(record.get("lastSeen"), int):
        return None
    return record


# ~~ memory, projected (docs/farm.md): Redis's stream encoding costs about this
# much per entry for our payloads (measured by bench.farm: MEMORY USAGE per entry)


def projected_bytes(
    printers: int,
    live_rate_hz: float,
    live_entry_bytes: int,
    durable_events: int,
    durable_entry_bytes: int,
) -> int:
    live = printers * live_rate_hz * LIVE_RETENTION_S * live_entry_bytes
    durable = printers * durable_events * durable_entry_bytes
    return int(live + durable)
