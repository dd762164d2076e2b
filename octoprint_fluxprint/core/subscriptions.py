"""Which client gets which channel at which interval. Pure.

Clients that share a channel, an effective interval and a payload form (full
objects or deltas) share one room (and, in the hub, one coalescer), so a broadcast
is one encode however many clients there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Optional

from .schema import CHANNELS, INTERVAL_CHANNELS

DELTA_SUFFIX = "+delta"
KEYFRAME_SEP = "/k"


def room_name(
    channel: str,
    interval: Optional[float] = None,
    delta: bool = False,
    keyframe: float = 0.0,
) -> str:
    if channel not in INTERVAL_CHANNELS:
        return channel
    name = f"{channel}@{interval:g}"
    if delta:
        return name + DELTA_SUFFIX
    if keyframe > 0 and channel == "status":
        name += f"{KEYFRAME_SEP}{keyframe:g}"
    return name


def parse_room(room: str) -> tuple[str, float, bool]:
    """(channel, interval, delta) of a room name."""
    delta = room.endswith(DELTA_SUFFIX)
    if delta:
        room = room[: -len(DELTA_SUFFIX)]
    room = room.partition(KEYFRAME_SEP)[0]
    channel, _, interval = room.partition("@")
    return channel, float(interval) if interval else 0.0, delta


def room_keyframe(room: str) -> float:
    """The keyframe period of a status room (0: none)."""
    _, sep, value = room.partition(KEYFRAME_SEP)
    return float(value) if sep else 0.0


@dataclass
class ClientSubscription:
    channels: set[str] = field(default_factory=set)
    # intervals the client asked for; the effective one is never below the configured
    requested: dict[str, float] = field(default_factory=dict)
    delta: bool = False  # status/temperature/progress as deltas
    keyframe: Optional[float] = None  # status at least every this many s (None: default)


class Subscriptions:
    def __init__(self, configured: Mapping[str, float], keyframe: float = 0.0):
        self.configured: dict[str, float] = dict(configured)
        self.keyframe = keyframe  # the default for clients that do not ask (settings)
        self._clients: dict[str, ClientSubscription] = {}

    def __contains__(self, sid: str) -> bool:
        return sid in self._clients

    def __len__(self) -> int:
        return len(self._clients)

    def sids(self) -> list[str]:
        return list(self._clients)

    def add(self, sid: str, channels: Iterable[str] = CHANNELS) -> set[str]:
        self._clients[sid] = ClientSubscription(channels=set(channels))
        return self.rooms(sid)

    def place(
        self,
        sid: str,
        channels: Iterable[str],
        requested: Mapping[str, float],
        delta: bool = False,
        keyframe: Optional[float] = None,
    ) -> set[str]:
        """Sets a subscriber's whole subscription at once (a cohort of clients with
        one view, core/views.py); returns its rooms."""
        self._clients[sid] = ClientSubscription(
            channels={c for c in channels if c in CHANNELS},
            requested={
                c: float(v) for c, v in requested.items() if c in INTERVAL_CHANNELS
            },
            delta=delta,
            keyframe=None if keyframe is None else float(keyframe),
        )
        return self.rooms(sid)

    def remove(self, sid: str) -> set[str]:
        rooms = self.rooms(sid)
        self._clients.pop(sid, None)
        return rooms

    def effective_interval(self, sid: str, channel: str) -> float:
        configured = self.configured.get(channel, 0.0)
        requested = self._clients[sid].requested.get(channel)
        return configured if requested is None else max(requested, configured)

    def effective_keyframe(self, sid: str) -> float:
        """0, or at least the status interval (a keyframe never comes sooner)."""
        sub = self._clients[sid]
        if sub.delta:
            return 0.0  # a delta of nothing is nothing: keyframes add no bytes
        keyframe = self.keyframe if sub.keyframe is None else sub.keyframe
        if keyframe <= 0:
            return 0.0
        return max(keyframe, self.effective_interval(sid, "status"))

    def rooms(self, sid: str) -> set[str]:
        sub = self._clients.get(sid)
        if sub is None:
            return set()
        return {
            room_name(
                channel,
                self.effective_interval(sid, channel)
                if channel in INTERVAL_CHANNELS
                else None,
                sub.delta,
                self.effective_keyframe(sid) if channel == "status" else 0.0,
            )
            for channel in sub.channels
        }

    def subscribe(
        self,
        sid: str,
        channels: Optional[Iterable[str]],
        intervals: Optional[Mapping[str, Optional[float]]],
        delta: Optional[bool] = None,
        keyframe: Optional[float] = None,
    ) -> set[str]:
        """Adds channels (all when None), records requested intervals and, unless
        None, the payload form and the keyframe period."""
        sub = self._clients[sid]
        if delta is not None:
            sub.delta = delta
        if keyframe is not None:
            sub.keyframe = float(keyframe)
        sub.channels |= set(CHANNELS if channels is None else channels)
        for channel, value in (intervals or {}).items():
            if value is not None and channel in INTERVAL_CHANNELS:
                sub.requested[channel] = float(value)
        return self.rooms(sid)

    def unsubscribe(self, sid: str, channels: Optional[Iterable[str]]) -> set[str]:
        sub = self._clients[sid]
        if channels is None:
            sub.channels.clear()
        else:
            sub.channels -= set(channels)
        return self.rooms(sid)

    def describe(self, sid: str) -> dict:
        sub = self._clients[sid]
        channels = [c for c in CHANNELS if c in sub.channels]
        return {
            "channels": channels,
            "delta": sub.delta,
            "keyframe": self.effective_keyframe(sid) if "status" in sub.channels else 0.0,
            "intervals": {
                c: self.effective_interval(sid, c)
                for c in INTERVAL_CHANNELS
                if c in sub.channels
            },
        }

    def set_configured(
        self, configured: Mapping[str, float], keyframe: Optional[float] = None
    ) -> dict[str, set[str]]:
        """New configured intervals (and default keyframe); returns each client's
        rooms afterwards."""
        self.configured = dict(configured)
        if keyframe is not None:
            self.keyframe = keyframe
        return {sid: self.rooms(sid) for sid in self._clients}
