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


def room_name(channel: str, interval: Optional[float] = None, delta: bool = False) -> str:
    if channel not in INTERVAL_CHANNELS:
        return channel
    return f"{channel}@{interval:g}{DELTA_SUFFIX if delta else ''}"


def parse_room(room: str) -> tuple[str, float, bool]:
    """(channel, interval, delta) of a room name."""
    delta = room.endswith(DELTA_SUFFIX)
    if delta:
        room = room[: -len(DELTA_SUFFIX)]
    channel, _, interval = room.partition("@")
    return channel, float(interval) if interval else 0.0, delta


@dataclass
class ClientSubscription:
    channels: set[str] = field(default_factory=set)
    # intervals the client asked for; the effective one is never below the configured
    requested: dict[str, float] = field(default_factory=dict)
    delta: bool = False  # status/temperature/progress as deltas


class Subscriptions:
    def __init__(self, configured: Mapping[str, float]):
        self.configured: dict[str, float] = dict(configured)
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

    def remove(self, sid: str) -> set[str]:
        rooms = self.rooms(sid)
        self._clients.pop(sid, None)
        return rooms

    def effective_interval(self, sid: str, channel: str) -> float:
        configured = self.configured.get(channel, 0.0)
        requested = self._clients[sid].requested.get(channel)
        return configured if requested is None else max(requested, configured)

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
            )
            for channel in sub.channels
        }

    def subscribe(
        self,
        sid: str,
        channels: Optional[Iterable[str]],
        intervals: Optional[Mapping[str, Optional[float]]],
        delta: Optional[bool] = None,
    ) -> set[str]:
        """Adds channels (all when None), records requested intervals and, unless
        None, the payload form."""
        sub = self._clients[sid]
        if delta is not None:
            sub.delta = delta
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
            "intervals": {
                c: self.effective_interval(sid, c)
                for c in INTERVAL_CHANNELS
                if c in sub.channels
            },
        }

    def set_configured(self, configured: Mapping[str, float]) -> dict[str, set[str]]:
        """New configured intervals; returns each client's rooms afterwards."""
        self.configured = dict(configured)
        return {sid: self.rooms(sid) for sid in self._clients}
