"""Resume, per printer: the durable events after a client's cursor from the feed's
replay source, then a fresh status, then live (see core/replay.py for why the seam
neither loses nor repeats). Used by the namespace for each printer a client joins
or re-subscribes to with a cursor."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Optional

from ..core import schema as S
from ..core.replay import Plan, ReplaySession, plan_resume
from .delivery import Delivery
from .feeds import Feed
from .sessions import Sessions

REPLAY_PAGE = 500

_logger = logging.getLogger(__name__)


class Resumer:
    def __init__(self, sessions: Sessions, delivery: Delivery):
        self.sessions = sessions
        self.delivery = delivery
        # (sid, feed) resuming after a connect with a cursor: in the feed's rooms
        # already, but not ready for printer:subscribe until its status is out
        self.joining: set[tuple[str, str]] = set()

    async def resume(
        self,
        sid: str,
        feed: Feed,
        since: int,
        then: Callable[[], list[tuple[str, dict]]],
        enter: Optional[Callable[[], Any]] = None,
    ) -> None:
        """``enter`` (a client joining the printer with a cursor) lets the feed's
        messages reach it *after* its session exists and *before* the first read,
        so every durable event emitted from then on reaches its replay session;
        ``then`` (on the loop once the replay is done) returns what to send it next
        (a fresh status, delta bases).

        The session stays, live, after the replay, until everything the delivery's
        outbox held then has gone out (``Delivery.retire``): a durable event the
        pages held may still be on its way to the room (committed, its on_durable
        hop to the loop not run yet), and ``offer_live`` drops it instead of sending
        it twice."""
        clients = self.sessions.clients
        key = (sid, feed.key)
        if sid not in clients:
            return  # gone before its resume started: joins nothing
        if enter is not None:
            self.joining.add(key)
        try:
            await self._resume(sid, feed, since, then, enter)
        finally:
            self.joining.discard(key)

    async def _resume(
        self,
        sid: str,
        feed: Feed,
        since: int,
        then: Callable[[], list[tuple[str, dict]]],
        enter: Optional[Callable[[], Any]],
    ) -> None:
        clients = self.sessions.clients
        key = (sid, feed.key)
        replaying = self.delivery.replaying
        waits = feed.ready is not None and not feed.ready.is_set()
        hold = None
        if waits or feed.catch_up is not None:
            # the replay source is still filling (the hub's mirror from the plugin)
            # or catching up: live durable events meanwhile are buffered (and read
            # by the replay), nothing of this printer reaches the client
            hold = replaying[key] = ReplaySession(since)
            if enter is not None:
                enter()
                enter = None
        if waits:
            assert feed.ready is not None
            await feed.ready.wait()
            if sid not in clients:
                return
        if feed.catch_up is not None:
            await feed.catch_up(since)
            if sid not in clients:
                return
        log = feed.log
        send_one = self.delivery.send_one
        delivery = self.delivery
        if plan_resume(since, log.horizon(), feed.issued()) is Plan.RESYNC:
            delivery.resyncs += 1
            if enter is not None:
                enter()
            body = {
                "requested": since,
                "oldestSeq": log.oldest_seq(),
                "lastSeq": log.last_seq(),
            }
            send_one(sid, S.EV_RESYNC, feed.state.stamp(body), feed.key)
            if hold is not None and replaying.get(key) is hold:
                replaying.pop(key, None)  # live again: the status follows
        else:
            session = replaying[key] = ReplaySession(since)
            if enter is not None:
                enter()
            done = failed = False
            try:
                await self._replay(sid, feed, session, send_one)
                done = sid in clients and not session.overflow
            except Exception:
                # the replay source is away (Redis down): the client comes back
                _logger.warning("Replay for %s failed", sid, exc_info=True)
                failed = True
            finally:
                if not done and replaying.get(key) is session:
                    replaying.pop(key, None)
                delivery.replays += 1
                delivery.replayed_events += session.replayed
            if sid not in clients:
                return
            if session.overflow or failed:
                why = "replay overflow" if session.overflow else "replay unavailable"
                await self.sessions.close_transport(sid, why + ", reconnect to resume")
                return
        if sid not in clients:
            return
        # the telemetry queued meanwhile predates the status: not for this client
        self.delivery.skip_queued(sid, feed.key)
        for event, payload in then():
            # behind any durable event still waiting for its commit
            self.delivery.send_to(sid, event, payload, feed=feed.key)
        session = replaying.get(key)
        if session is not None and session.live:
            delivery.retire(key, session)

    async def _replay(
        self, sid: str, feed: Feed, session: ReplaySession, send_one: Any
    ) -> None:
        log = feed.log
        loop = asyncio.get_running_loop()
        clients = self.sessions.clients
        while True:
            if feed.read_async is not None:
                # on the loop, asynchronously (Redis): live durable events emitted
                # meanwhile are buffered by the session, as with the executor
                rows = await feed.read_async(session.cursor, REPLAY_PAGE)
            elif feed.blocking_log:
                rows = await loop.run_in_executor(
                    None, log.read_since, session.cursor, REPLAY_PAGE
                )
            else:  # in memory: read on the loop, nothing can slip in between
                rows = log.read_since(session.cursor, REPLAY_PAGE)
            if sid not in clients:
                return
            for _seq, event, payload in session.take_page(
                (row.seq, row.event, row.payload) for row in rows
            ):
                send_one(sid, event, payload, feed.key)
            if len(rows) < REPLAY_PAGE:
                break
        for _seq, event, payload in session.finish():
            send_one(sid, event, payload, feed.key)
