"""The REST fallback's payloads, the same at the plugin (``plugin/rest.py``) and the
hub (``hub/rest.py``): the printers list, a printer's status (the socket's
``printer:printers`` and ``printer:status``), and a page of durable events after a
cursor, planned as a resume is (``core/replay.py``). Pure: the hosts read the log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from .replay import Plan, plan_resume

MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
SEQ_MAX = 2**63 - 1
_DIGITS = re.compile(r"\d{1,19}")


class BadArgument(ValueError):
    """A query argument that is missing or out of range; the message names it."""


def int_arg(
    raw: Optional[str], name: str, default: Optional[int], low: int, high: int
) -> int:
    if raw is None:
        if default is None:
            raise BadArgument(f"{name}: required (an integer from {low} to {high})")
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadArgument(f"{name}: an integer from {low} to {high} is expected")
    return int(raw)


def events_args(since: Optional[str], limit: Optional[str]) -> tuple[int, int]:
    """``?since=N&limit=M`` of the events route (raises BadArgument)."""
    return (
        int_arg(since, "since", None, 0, SEQ_MAX),
        int_arg(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
    )


def resync_body(since: int, log: Any, issued: int) -> Optional[dict]:
    """The body of ``printer:resync`` when ``since`` cannot be served from ``log``
    (an EventLog, an EventMirror or the hub's redis replay), else None."""
    if plan_resume(since, log.horizon(), issued) is Plan.RESYNC:
        return {
            "requested": since,
            "oldestSeq": log.oldest_seq(),
            "lastSeq": log.last_seq(),
        }
    return None


def events_page(
    printer: str, rows: Sequence[Any], limit: int, resync: Optional[dict] = None
) -> dict:
    """``rows``: up to ``limit + 1`` log rows (seq, event, payload, ts) after the
    cursor; one more than ``limit`` says that more follow."""
    return {
        "printer": printer,
        "events": [[row.event, row.payload] for row in rows[:limit]],
        "more": len(rows) > limit,
        "resync": resync,
    }


def printer_entry(
    printer: str, state: str, connection: Optional[str], last_seq: int, synced: bool
) -> dict:
    """One entry of ``printer:printers`` (core/schema.PrinterEntry)."""
    return {
        "id": printer,
        "state": state,
        "connection": connection,
        "lastSeq": last_seq,
        "synced": synced,
    }
