"""Which cohort a client is in (server/cohorts.py), and moving it when its view
(core/views.py) changes: a cohort made for a new view is put into its printers'
rooms (``Rooms.place``) before the client's last cohort, left empty, leaves them
(so rooms both views share keep their coalescers and keyframe timers).

A batched client moving keeps what its last cohort's tick held for it (the
printers and channels it still watches): into its new tick, or, when it stops
batching, as one last ``printer:batch`` at once.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from ..core import schema as S
from ..core.ticks import TickBuffer
from ..core.views import View
from .cohorts import Cohort
from .members import Member


class Membership:
    def __init__(self, delivery: Any, feeds: dict[str, Any]):
        self.delivery = delivery
        self.cohorts = delivery.cohorts
        self.feeds = feeds  # the namespace's: key -> server.feeds.Feed

    def member(self, sid: str) -> Optional[Member]:
        return self.cohorts.members.get(sid)

    def view(self, sid: str) -> Optional[View]:
        m = self.cohorts.members.get(sid)
        return None if m is None or m.cohort is None else m.cohort.view

    def add(
        self, sid: str, eio_sid: str, info: Any, view: View, masked: set[str]
    ) -> Member:
        """A client that joined the namespace, into its view's cohort; ``masked``:
        printers it gets nothing of until it entered them (``unmask``)."""
        m = Member(sid, eio_sid, info, self.delivery.budgets.add(sid))
        m.masked = set(masked)
        self.cohorts.members[sid] = m
        self._cohort(view).add(m)
        return m

    def unmask(self, sid: str, key: str) -> None:
        """The client is in printer ``key``'s rooms from now."""
        m = self.cohorts.members.get(sid)
        if m is not None and key in m.masked:
            m.masked.discard(key)
            if m.cohort is not None:
                m.cohort.settle(m)

    def mask(self, sid: str, keys: set[str]) -> None:
        m = self.cohorts.members.get(sid)
        if m is not None and keys:
            m.masked |= keys
            if m.cohort is not None:
                m.cohort.mark(m)

    def move(self, sid: str, view: View) -> None:
        m = self.cohorts.members.get(sid)
        if m is None or m.cohort is None or m.cohort.view == view:
            return
        old = m.cohort
        carry = old.pending(m)
        last = old.ticker.last if old.tick is not None else None
        m.not_before = 0.0 if last is None else last + view.batch / 1000.0
        new = self._cohort(view)  # in its rooms before the old one leaves them
        old.remove(m)
        if not old.members:
            self._discard(old)
        m.masked &= view.feeds
        m.lane = None
        kept = [i for i in carry if view.wants(i.feed, i.event, S.CHANNEL_OF_EVENT)]
        if new.tick is not None:
            m.lane = TickBuffer()
            m.lane.extend(kept)
        new.add(m)
        if m.lane:
            new.arm()
        elif kept and new.tick is None:
            # it stops batching: what its last tick held goes now, as a batch
            self.cohorts.send_batch(new, [m], kept, None, time.monotonic())

    def leave(self, sid: str) -> None:
        m = self.cohorts.members.pop(sid, None)
        if m is None or m.cohort is None:
            return
        cohort = m.cohort
        cohort.remove(m)
        if not cohort.members:
            self._discard(cohort)

    def _cohort(self, view: View) -> Cohort:
        cohort, made = self.cohorts.cohort(view)
        if made:
            for key in sorted(view.feeds):
                feed = self.feeds.get(key)
                if feed is not None:
                    feed.state.place(cohort.id, **view.placement())
        return cohort

    def _discard(self, cohort: Cohort) -> None:
        for key in sorted(cohort.view.feeds):
            feed = self.feeds.get(key)
            if feed is not None:
                feed.state.remove_client(cohort.id)
        self.cohorts.discard(cohort)
