"""Which client gets which channel at which interval. Pure.

Clients that share a channel and an effective interval share one room (and, in the
hub, one coalescer), so a broadcast is one encode however many clients there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Optional

from .schema import CHANNELS, INTERVAL_CHANNELS


def room_name(channel: str, interval: Optional[float] = None) -> str:
    if channel not in INTERVAL_CHANNELS:
        return channel
    return f"{channel}@{interval:g}"


@dataclass
class ClientSubscription:
    channels: set[str] = field(default_factory=set)
    # intervals the client asked for; the effective one is never below the configured
    requested: dict[str, float] = field(default_factory=dict)


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
            )
            for channel in sub.channels
        }

    def subscribe(
        self,
        sid: str,
        channels: Optional[Iterable[str]],
        intervals: Optional[Mapping[str, Optional[float]]],
    ) -> set[str]:
        """Adds channels (all when None) and records requested intervals."""
        sub = self._clients[sid]
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
