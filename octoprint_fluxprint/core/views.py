"""What a client receives, as one hashable value: its *view*. Pure.

Clients with the same view (printers, channels, requested intervals, payload form,
keyframe period and batch tick) receive the same messages, so the server serves
them as one *cohort* (server/cohorts.py): one subscriber of each printer's rooms,
one build and one compression per message or tick, one socket write per client.

A view changes only by a client's request, never in place: ``subscribed`` and
``unsubscribed`` return the view after it (the same rules as
``subscriptions.Subscriptions``), and the client moves to that view's cohort.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Optional

from .schema import CHANNELS, INTERVAL_CHANNELS


@dataclass(frozen=True)
class View:
    feeds: frozenset  # the printers' feed keys ("" in the plugin)
    channels: frozenset = frozenset(CHANNELS)
    # the intervals the client asked for, (channel, seconds) sorted by channel; the
    # effective ones are never below the configured (core/subscriptions.py)
    intervals: tuple = ()
    delta: bool = False
    keyframe: Optional[float] = None  # None: the host's default
    batch: int = 0  # ms between printer:batch ticks; 0: single events

    @classmethod
    def initial(
        cls,
        feeds: Iterable[str],
        keyframe: Optional[float] = None,
        batch: Optional[int] = None,
    ) -> View:
        """A client that just connected: every channel of its printers, with its
        profile's keyframe period and batch tick (None: none)."""
        return cls(
            feeds=frozenset(feeds),
            keyframe=float(keyframe) if keyframe else None,
            batch=int(batch or 0),
        )

    def requested(self) -> dict[str, float]:
        return dict(self.intervals)

    def with_feeds(self, feeds: Iterable[str]) -> View:
        return replace(self, feeds=frozenset(feeds))

    def subscribed(self, request: Any) -> View:
        """After ``printer:subscribe`` (a validated ``schema.SubscribeRequest``):
        channels added (all when none are named), intervals, form, keyframe and
        batch set where given. Printers are the caller's (``with_feeds``)."""
        channels = self.channels | frozenset(
            CHANNELS if request.channels is None else request.channels
        )
        intervals = self.requested()
        given = request.intervals.model_dump() if request.intervals else {}
        intervals.update(
            (c, float(v))
            for c, v in given.items()
            if v is not None and c in INTERVAL_CHANNELS
        )
        return replace(
            self,
            channels=channels,
            intervals=_sorted(intervals),
            delta=self.delta if request.delta is None else request.delta,
            keyframe=self.keyframe if request.keyframe is None else request.keyframe,
            batch=self.batch if request.batch is None else request.batch,
        )

    def unsubscribed(self, request: Any) -> View:
        """After ``printer:unsubscribe``: the channels named (all when none)."""
        if request.channels is None:
            return replace(self, channels=frozenset())
        return replace(self, channels=self.channels - frozenset(request.channels))

    def placement(self) -> dict:
        """The keyword arguments of ``rooms.Rooms.place`` for a printer."""
        return {
            "channels": self.channels,
            "requested": self.requested(),
            "delta": self.delta,
            "keyframe": self.keyframe,
        }

    def wants(self, feed: str, event: str, channel_of: Mapping[str, str]) -> bool:
        """Whether a message of ``feed`` and ``event`` belongs to this view (what a
        client moving here carries over from its last view's pending tick)."""
        channel = channel_of.get(event)
        return feed in self.feeds and (channel is None or channel in self.channels)


def _sorted(intervals: Mapping[str, float]) -> tuple:
    return tuple(sorted(intervals.items()))
