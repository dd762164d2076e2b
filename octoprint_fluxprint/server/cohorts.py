"""Cohorts: the clients with one view (core/views.py: printers, channels, intervals,
form, keyframe, batch) served as one subscriber of each printer's rooms.

The printers' rooms (core/rooms.py) see one subscriber per cohort, never a client:
what a client costs is its ``Member`` (a reference to its cohort, its link, its
budget), whatever the number of printers it watches. A message to a room reaches
each cohort in it once (``Cohort.offer``), after the delivery's ordered outbox
(durable events after their commit):

- single events (``batch`` 0): encoded once per message, compressed once per
  cohort (``deflate_shared``), one write per client (server/fanout.py);
- batched (``batch`` ms): the message joins the cohort's tick (core/ticks.py:
  newest telemetry per printer, every durable event); at most once per tick the
  cohort's ``printer:batch`` is built, compressed and written once per client.

Some members need a look per message (``special``): a client joining a printer by
a replay (``masked`` until it entered the printer's rooms, then its replay
``sessions``: durable events buffered, the rest skipped, seam duplicates dropped),
and, batched, a client with items of its own (``lane``): one that joined in the
middle of a tick, got a single message that must keep its place among the tick's
(a status, a replay, a resync: everything with a seq goes in its batches), or
whose socket lagged (it skips ticks: their items wait in its lane, newest
telemetry winning, until its socket is clear). A special member gets its own
frame; once nothing is left of its own it rejoins the cohort's frames.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Callable, Optional

from ..core import schema as S
from ..core.budget import Action
from ..core.replay import DURABLE_EVENTS
from ..core.ticks import MAX_ITEMS, Item, TickBuffer, Ticker, batch_json
from ..core.views import View
from .clock import to_loop_time
from .fanout import QUEUE, SHARED, Built, Writer, encode_event, item_json
from .members import Member
from .shared_deflate import CohortStream

_logger = logging.getLogger(__name__)

PREFIX = "~cohort:"  # a cohort's subscriber id: never a python-socketio sid


class Cohort:
    def __init__(self, cid: str, view: View, owner: Cohorts):
        self.id = cid
        self.view = view
        self.owner = owner
        self.members: dict[str, Member] = {}
        self.special: set[Member] = set()
        self.stream = CohortStream()
        self.batch = view.batch / 1000.0
        self.tick: Optional[TickBuffer] = TickBuffer() if view.batch else None
        self.ticker = Ticker(self.batch)
        self.timer: Any = None
        # single events: this loop turn's messages for the members that need no
        # look per message, written at the end of the turn (one write per client)
        self.turn: list[Any] = []

    # ~~ members (a change first writes the loop turn's messages: to those who
    # were members when they came)

    def add(self, m: Member) -> None:
        if self.turn:
            self.flush_turn()
        m.cohort = self
        m.gen = m.seen = 0  # not on this stream yet
        self.members[m.sid] = m
        if self.tick is not None and m.lane is None:
            # joined in the middle of a tick: nothing of the tick before it came
            m.lane = TickBuffer()
        if m.special:
            self.special.add(m)

    def remove(self, m: Member) -> None:
        if self.turn:
            self.flush_turn()
        self.members.pop(m.sid, None)
        self.special.discard(m)
        m.cohort = None

    def pending(self, m: Member) -> list[Item]:
        """What a batched member would get at the next tick (it leaves now)."""
        if self.tick is None:
            return []
        if m.lane is not None:
            return m.lane.items()
        return self.tick.items()

    def mark(self, m: Member) -> None:
        """``m`` needs a look per message now (a replay, a lane). Batched, it gets
        its own tick from here: what the cohort's tick holds so far."""
        if m in self.special:
            return
        if self.turn:
            self.flush_turn()
        if self.tick is not None and m.lane is None:
            m.lane = TickBuffer()
            m.lane.extend(self.tick.items())
        self.special.add(m)

    def settle(self, m: Member) -> None:
        """``m`` may need no look per message any more."""
        if not m.special and m in self.special:
            if self.turn:
                self.flush_turn()
            self.special.discard(m)

    # ~~ a message from a room (after the delivery's outbox)

    def accepts(self, m: Member, out: Any) -> bool:
        """Whether a special member gets this message now (its replays decide)."""
        feed, event, payload = out.feed, out.event, out.payload
        if feed in m.masked:
            return False  # not in this printer's rooms yet
        durable = event in DURABLE_EVENTS
        if not durable and out.seq <= m.skip_until.get(feed, 0):
            return False  # queued before its status (Delivery.skip_queued)
        session = m.sessions.get(feed)
        if session is None:
            return True
        if not session.live:
            # replaying: durable events wait for the end of the pages, the rest
            # is skipped (a fresh status follows the replay)
            if durable:
                session.offer_live((payload.get("seq", 0), event, payload))
            return False
        if durable and not session.offer_live((payload.get("seq", 0), event, payload)):
            # the replay sent it already: read after its commit, before its hop
            self.owner.seam_duplicates += 1
            return False
        return True

    def offer(self, out: Any) -> None:
        special = self.special
        if self.tick is None:
            if special:  # one by one, at once
                go = [m for m in special if self.accepts(m, out)]
                if go:
                    self.owner.deliver(self, [out], go)
            if len(special) < len(self.members):
                if not self.turn:
                    self.owner.later(self)
                self.turn.append(out)
            return
        item = out.item()
        self.tick.add(item)
        for m in special:
            if m.lane is not None and self.accepts(m, out):
                m.lane.add(item)
        self.arm()

    def own(self, m: Member, item: Item) -> None:
        """A message for one batched member: in its own tick, after what the
        cohort's tick held for it."""
        self.mark(m)
        assert m.lane is not None
        m.lane.add(item)
        self.arm()

    def flush_turn(self) -> None:
        outs, self.turn = self.turn, []
        if outs:
            special = self.special
            normal = [m for m in self.members.values() if m not in special]
            self.owner.deliver(self, outs, normal)

    # ~~ ticks

    def arm(self) -> None:
        when = self.ticker.arm(time.monotonic())
        if when is not None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_at(to_loop_time(when), self.flush)

    def flush(self) -> None:
        self.timer = None
        now = time.monotonic()
        self.ticker.fired(now)
        tick = self.tick
        if tick is None or not self.members:
            return
        owner = self.owner
        items = tick.take(MAX_ITEMS)
        special = list(self.special)
        if items:
            normal = [m for m in self.members.values() if m not in self.special]
            go = []
            for m in normal:
                verdict = owner.tick_verdict(m)
                if verdict is Action.SEND:
                    go.append(m)
                elif verdict is Action.HOLD:
                    # its socket lags: this tick waits in a lane of its own, newest
                    # telemetry winning, until the socket is clear
                    self.special.add(m)
                    m.lane = TickBuffer()
                    m.lane.extend(items)
                    m.lane.extend(tick.items())
            if go:
                owner.send_batch(self, go, items, self.stream, now)
        for m in special:
            lane = m.lane
            if lane and now >= m.not_before:
                verdict = owner.tick_verdict(m)
                if verdict is Action.SEND:
                    owner.send_batch(self, [m], lane.take(MAX_ITEMS), None, now)
            if lane is not None and not lane and not m.masked and not m.sessions:
                m.lane = None  # nothing of its own left: the cohort's ticks again
                self.special.discard(m)
        if tick or any(m.lane for m in self.special):
            self.arm()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class Cohorts:
    """Every cohort and member, the rooms the cohorts are in, and what a cohort
    needs from the delivery (writes, budgets, closing a client)."""

    def __init__(self, writer: Writer, drop: Callable[[str, str], None]):
        self.writer = writer
        self.drop = drop  # (sid, reason): close a client's transport, it resumes
        self.by_view: dict[View, Cohort] = {}
        self.by_id: dict[str, Cohort] = {}
        self.members: dict[str, Member] = {}
        self.in_room: dict[str, list[Cohort]] = {}
        self._ids = itertools.count(1)
        self._turns: list[Cohort] = []  # cohorts with messages for the end of the turn
        self.seam_duplicates = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.batches_out = 0  # printer:batch frames written
        self.batch_items_out = 0  # items in them, per client
        self.on_fanout: Callable[[float, int, float], None] = lambda *a: None

    def subscriber_of(self, sid: str) -> str:
        m = self.members.get(sid)
        return sid if m is None or m.cohort is None else m.cohort.id

    def cohort(self, view: View) -> tuple[Cohort, bool]:
        """The view's cohort, and whether it was made now (the caller then puts it
        into its printers' rooms)."""
        cohort = self.by_view.get(view)
        if cohort is not None:
            return cohort, False
        cohort = Cohort(f"{PREFIX}{next(self._ids)}", view, self)
        self.by_view[view] = self.by_id[cohort.id] = cohort
        return cohort, True

    def discard(self, cohort: Cohort) -> None:
        cohort.close()
        self.by_view.pop(cohort.view, None)
        self.by_id.pop(cohort.id, None)

    def enter_room(self, cid: str, room: str) -> None:
        cohorts = self.in_room.setdefault(room, [])
        cohort = self.by_id[cid]
        if cohort not in cohorts:
            cohorts.append(cohort)

    def leave_room(self, cid: str, room: str) -> None:
        cohorts = self.in_room.get(room)
        cohort = self.by_id.get(cid)
        if cohorts is not None and cohort in cohorts:
            cohorts.remove(cohort)
            if not cohorts:
                del self.in_room[room]

    # ~~ budgets and writes (for the cohorts)

    def later(self, cohort: Cohort) -> None:
        """``cohort`` has messages for the end of this loop turn (or, after a long
        write, for when the writer's pace allows: ``Writer.uncork``)."""
        if not self._turns:
            wait = self.writer.pace_until - time.perf_counter()
            loop = asyncio.get_running_loop()
            if wait > 0:
                loop.call_later(wait, self._end_of_turn)
            else:
                loop.call_soon(self._end_of_turn)
        self._turns.append(cohort)

    def _end_of_turn(self) -> None:
        turns, self._turns = self._turns, []
        for cohort in turns:
            try:
                cohort.flush_turn()
            except Exception:  # one cohort's failure must not hold the others
                _logger.exception("Writing a turn to cohort %s failed", cohort.id)

    def deliver(self, cohort: Cohort, outs: list, members: list[Member]) -> None:
        """Single events to members of a cohort, in order."""
        if not members:
            return
        started, started_cpu = time.perf_counter(), time.thread_time()
        writer = self.writer

        def gate(m: Member, link: Any, out: Any) -> bool:
            # something queued for it, or over budget: its budget decides
            messages, nbytes = writer.measure(m, link)
            durable = out.event in DURABLE_EVENTS
            verdict = m.budget.offer(out.event, out.payload, durable, messages, nbytes)
            if verdict.action is Action.DISCONNECT:
                self.drop(m.sid, verdict.reason or "too slow")
            return verdict.action is Action.SEND

        count = writer.send(members, outs, cohort.stream, time.monotonic(), gate)
        self.messages_out += count
        self.bytes_out += count * sum(len(o.encoded) for o in outs) // len(outs)
        self.on_fanout(
            time.perf_counter() - started, count, time.thread_time() - started_cpu
        )

    def tick_verdict(self, m: Member) -> Action:
        link = m.link
        if link is None or link.mode == QUEUE:
            link = self.writer.link(m)
            if link is None:
                return Action.HOLD  # gone: its disconnect removes it
        if self.writer.clear(m, link):
            return Action.SEND
        messages, nbytes = self.writer.measure(m, link)
        verdict = m.budget.tick(messages, nbytes, busy=link.unsent() > 0)
        if verdict.action is Action.DISCONNECT:
            self.drop(m.sid, verdict.reason or "too slow")
        return verdict.action

    def send_batch(
        self,
        cohort: Cohort,
        members: list[Member],
        items: list[Item],
        stream: Optional[CohortStream],
        now: float,
    ) -> None:
        """One ``printer:batch`` to ``members``: built and compressed once."""
        started, started_cpu = time.perf_counter(), time.thread_time()
        ts = time.time_ns() // 1_000_000
        encoded = encode_event(
            S.EV_BATCH, batch_json(ts, ((i.event, item_json(i)) for i in items))
        )
        count = self.writer.send(members, [Built(encoded)], stream, now)
        self.messages_out += count
        self.bytes_out += count * len(encoded)
        self.batches_out += count
        self.batch_items_out += count * len(items)
        self.on_fanout(
            time.perf_counter() - started, count, time.thread_time() - started_cpu
        )

    def stats(self) -> dict:
        batched = [c for c in self.by_id.values() if c.tick is not None]
        return {
            "cohorts": len(self.by_id),
            "batched": len(batched),
            "members": len(self.members),
            "special": sum(len(c.special) for c in self.by_id.values()),
            "batches_out": self.batches_out,
            "batch_items_out": self.batch_items_out,
        }

    def stream_stats(self) -> dict:
        """The cohorts' deflate_shared streams (their clients on a shared socket)."""
        synced = pending = streams = syncs = 0
        for cohort in self.by_id.values():
            stream = cohort.stream
            on = [
                m
                for m in cohort.members.values()
                if m.link is not None and m.link.mode == SHARED
            ]
            if stream.gen:
                streams += 1
            syncs += stream.syncs
            n = sum(1 for m in on if stream.synced(m))
            synced += n
            pending += len(on) - n
        return {"streams": streams, "synced": synced, "pending": pending, "syncs": syncs}
