"""The redis source's pure parts: reader groups and reading entries back (what
``core.streams`` does not say about a stream read: a snapshot's start). Pure."""

from __future__ import annotations

from typing import Any

from ...core import streams as ST
from ...core.schema import EV_STATUS


class Groups:
    """Printers to reader groups, ``size`` to a group, in order of appearance. Pure."""

    def __init__(self, size: int):
        self.size = size
        self.groups: list[list[str]] = [[]]
        self.of: dict[str, int] = {}

    def add(self, pid: str) -> int:
        if pid in self.of:
            return self.of[pid]
        if len(self.groups[-1]) >= self.size:
            self.groups.append([])
        self.groups[-1].append(pid)
        self.of[pid] = len(self.groups) - 1
        return self.of[pid]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def seq_or_zero(entry_id: Any) -> int:
    try:
        return ST.seq_of(entry_id)
    except ST.StreamError:
        return 0


def snapshot_of(newest_first: list) -> tuple[list, int, int]:
    """(the entries from the latest status up, newest first; the seq to relay after;
    the live top). No status retained: nothing, after the top (the next keyframe
    comes within seconds)."""
    top = seq_or_zero(newest_first[0][0]) if newest_first else 0
    snapshot: list = []
    for entry in newest_first:
        snapshot.append(entry)
        if is_status(entry[1]):
            start = seq_or_zero(entry[0]) - 1
            return snapshot, start, top
    return [], top, top


def is_status(fields: Any) -> bool:
    event = fields.get(b"e", fields.get("e")) if isinstance(fields, dict) else None
    return event is not None and text(event) == EV_STATUS
