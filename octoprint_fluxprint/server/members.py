"""A client in a cohort (server/cohorts.py), and the replays under way per client
and printer (server/resume.py), kept on the client's member: a member replaying
needs a look per message of that printer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

from ..core.ticks import TickBuffer


class Member:
    """One client of a cohort."""

    __slots__ = (
        "budget",
        "cohort",
        "eio_sid",
        "gen",
        "info",
        "kernel_queued",
        "lane",
        "link",
        "masked",
        "not_before",
        "seen",
        "sessions",
        "shared_ok",
        "sid",
        "skip_until",
    )

    def __init__(self, sid: str, eio_sid: str, info: Any, budget: Any):
        self.sid = sid
        self.eio_sid = eio_sid
        self.info = info
        self.budget = budget
        self.cohort: Any = None  # server.cohorts.Cohort
        self.link: Any = None  # server.fanout.Link
        self.masked: set[str] = set()  # feeds joined, not entered yet (replay first)
        self.sessions: dict[str, Any] = {}  # feed -> ReplaySession
        # feed -> outbox fence: its telemetry queued up to there predates the
        # member's status (Delivery.skip_queued)
        self.skip_until: dict[str, int] = {}
        self.lane: Optional[TickBuffer] = None  # batched: items of its own
        self.gen = self.seen = 0  # where it is in its cohort's deflate stream
        self.shared_ok = False
        self.kernel_queued = 0  # bytes in the kernel's send queue (budget tick)
        # batched: no tick of its own before this (it moved from another cohort's
        # ticks: at most one batch per tick for the client too)
        self.not_before = 0.0

    @property
    def special(self) -> bool:
        return bool(
            self.masked or self.sessions or self.skip_until or self.lane is not None
        )


class Replays:
    """(sid, feed) -> the client's ``ReplaySession`` for that printer
    (server/resume.py), kept on its member too: a member replaying needs a look
    per message of that printer."""

    def __init__(self, cohorts: Any):  # server.cohorts.Cohorts
        self.cohorts = cohorts
        self._all: dict[tuple[str, str], Any] = {}

    def __setitem__(self, key: tuple[str, str], session: Any) -> None:
        self._all[key] = session
        sid, feed = key
        m = self.cohorts.members.get(sid)
        if m is None:
            return
        m.sessions[feed] = session
        if m.cohort is not None:
            m.cohort.mark(m)
            if m.lane is not None:
                # the tick's items of this printer are in its log (committed before
                # they went out) or superseded by the status after the replay
                m.lane.drop(lambda i: i.feed != feed)

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        return self._all.get(key, default)

    def pop(self, key: tuple[str, str], default: Any = None) -> Any:
        session = self._all.pop(key, default)
        m = self.cohorts.members.get(key[0])
        if m is not None and session is not None and m.sessions.get(key[1]) is session:
            del m.sessions[key[1]]
            if m.cohort is not None:
                m.cohort.settle(m)
        return session

    def __contains__(self, key: object) -> bool:
        return key in self._all

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._all))

    def __len__(self) -> int:
        return len(self._all)
