"""Rooms: which client gets which channel at which interval, one coalescer per
room, and the stamping of what goes out. Pure and single-threaded: every method runs
on the loop, the clock is passed in, and all I/O goes through a ``Sink`` that the
server's delivery layer implements.

``printer.PrinterState`` builds on this with what the printer is; a host with many
printers has one of those per printer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from . import schema as S
from .coalesce import EPSILON, Coalescer, Decision, Sample
from .delta import delta_body
from .subscriptions import Subscriptions, parse_room, room_keyframe
from .trace import TraceTable

_logger = logging.getLogger(__name__)


class Sink(Protocol):
    def emit(self, event: str, payload: dict, room: str) -> None: ...
    def send_to(self, sid: str, event: str, payload: dict) -> None: ...
    def enter_room(self, sid: str, room: str) -> None: ...
    def leave_room(self, sid: str, room: str) -> None: ...
    def call_at(self, when: float, callback: Callable[[], None]) -> Any: ...
    def cancel(self, handle: Any) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall_ms(self) -> int: ...
    def wall_ns(self) -> int: ...


@dataclass
class Group:
    channel: str
    interval: float
    room: str
    coalescer: Coalescer
    members: set[str] = field(default_factory=set)
    timer: Any = None
    sent: int = 0
    delta: bool = False  # the room gets deltas against last_body
    last_body: Any = None  # delta rooms: the last body sent, and its ts
    last_ts: int = 0
    keyframe: float = 0.0  # status rooms: at least this often, changed or not
    keyframe_timer: Any = None
    keyframes: int = 0


DEDUPE = {"status": True, "progress": True, "temperature": False}
CHANNEL_EVENTS = {
    "status": S.EV_STATUS,
    "temperature": S.EV_TEMPERATURE,
    "progress": S.EV_PROGRESS,
}


class Rooms:
    """Clients, their rooms and each room's coalescer, for one printer."""

    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        next_seq: Callable[[], int],
        printer_id: str,
        intervals: Mapping[str, float],
        keyframe: float = 0.0,
    ):
        self.sink = sink
        self.clock = clock
        self.next_seq = next_seq
        self.printer_id = printer_id
        self.subs = Subscriptions(intervals, keyframe)
        self.groups: dict[str, Group] = {}
        self.emitted = 0
        # channels switched off for every client in the settings
        self.enabled: frozenset[str] = frozenset(S.CHANNELS)
        # benchmark instrumentation (core/trace.py): adds {"trace": {cb_ns,
        # emit_ns}} to payloads, or records the two in a table beside them
        self.trace = False
        self.trace_table: Optional[TraceTable] = None
        # a client's subscriber in these rooms: the client itself, or (server) the
        # cohort it is in
        self.subscriber_of: Callable[[str], str] = lambda sid: sid

    # the printer's state lives in the subclass (printer.PrinterState)

    def status_body(self) -> dict:
        raise NotImplementedError

    def status_payload(self) -> dict:
        """A fresh full status, stamped with a new seq."""
        raise NotImplementedError

    def status_ts(self) -> int:
        """The observation time of what the status holds."""
        raise NotImplementedError

    def answer_status(self, sid: str, status: dict) -> None:
        """``printer:request_status`` without an ack: the status as an event."""
        self.sink.send_to(sid, S.EV_STATUS, status)

    # ~~ clients

    def add_client(self, sid: str) -> dict:
        """Subscribes a new client to every channel; returns the status to send it.
        A status room made for this client counts that status as sent, so the room's
        first broadcast is not the same status again."""
        rooms = self.subs.add(sid)
        self._move(sid, set(), rooms)
        status = self.status_payload()
        self._prime(rooms)
        return status

    def _prime(self, rooms: set[str]) -> None:
        now = self.clock.monotonic()
        for room in rooms:
            group = self.groups.get(room)
            if group is not None and group.channel == "status" and not group.delta:
                if not group.coalescer.has_sent:
                    group.coalescer.prime(self.status_body(), now)
                    self._arm_keyframe(group)

    # ~~ cohorts (server/cohorts.py): one subscriber in the rooms for many clients

    def place(
        self,
        sub: str,
        channels: Any,
        requested: Mapping[str, float],
        delta: bool = False,
        keyframe: Optional[float] = None,
    ) -> dict:
        """Puts subscriber ``sub`` into exactly the rooms of this subscription."""
        before = self.subs.rooms(sub)
        self._move(
            sub, before, self.subs.place(sub, channels, requested, delta, keyframe)
        )
        return self.subs.describe(sub)

    def joined(self, sub: str) -> list[tuple[str, dict]]:
        """A client joins subscriber ``sub``: what it gets first (a fresh status and
        the bases of ``sub``'s delta rooms); a status room that has sent nothing yet
        counts that status as sent."""
        out = self.after_replay(sub)
        self._prime(self.subs.rooms(sub))
        return out

    def remove_client(self, sid: str) -> None:
        if sid in self.subs:
            self._move(sid, self.subs.remove(sid), set())

    def subscribe(self, sid: str, request: S.SubscribeRequest) -> dict:
        before = self.subs.rooms(sid)
        intervals = request.intervals.model_dump() if request.intervals else None
        after = self.subs.subscribe(
            sid, request.channels, intervals, request.delta, request.keyframe
        )
        self._move(sid, before, after)
        return self.subs.describe(sid)

    def unsubscribe(self, sid: str, request: S.UnsubscribeRequest) -> dict:
        before = self.subs.rooms(sid)
        after = self.subs.unsubscribe(sid, request.channels)
        self._move(sid, before, after)
        return self.subs.describe(sid)

    def describe(self, sid: str) -> dict:
        return self.subs.describe(sid)

    def set_intervals(
        self, intervals: Mapping[str, float], keyframe: Optional[float] = None
    ) -> None:
        before = {sid: self.subs.rooms(sid) for sid in self.subs.sids()}
        after = self.subs.set_configured(intervals, keyframe)
        for sid, rooms in after.items():
            self._move(sid, before.get(sid, set()), rooms)

    def _move(self, sid: str, before: set[str], after: set[str]) -> None:
        for room in before - after:
            self.sink.leave_room(sid, room)
            group = self.groups.get(room)
            if group is not None:
                group.members.discard(sid)
                if not group.members:
                    self._drop_group(group)
        for room in after - before:
            self.sink.enter_room(sid, room)
            group = self.groups.get(room)
            if group is None:
                group = self._make_group(room)
            group.members.add(sid)
            if group.delta and group.last_body is not None:
                # the room's next delta is against last_body: the client gets that
                # first, as a full message
                base = self._base(group)
                if base is not None:
                    self.sink.send_to(sid, *base)

    def _make_group(self, room: str) -> Group:
        channel, value, delta = parse_room(room)
        group = Group(
            channel=channel,
            interval=value,
            room=room,
            # a delta room never repeats a body: there would be nothing in it
            coalescer=Coalescer(value, dedupe=delta or DEDUPE.get(channel, False)),
            delta=delta,
            keyframe=room_keyframe(room),
        )
        self.groups[room] = group
        self._arm_keyframe(group)
        return group

    def _drop_group(self, group: Group) -> None:
        for timer in (group.timer, group.keyframe_timer):
            if timer is not None:
                self.sink.cancel(timer)
        group.timer = group.keyframe_timer = None
        self.groups.pop(group.room, None)

    # ~~ status keyframes: late joiners of a relay see a status within K seconds

    def _arm_keyframe(self, group: Group) -> None:
        if group.keyframe <= 0:
            return
        if group.keyframe_timer is not None:
            self.sink.cancel(group.keyframe_timer)
        last = group.coalescer.last_sent_at
        when = (self.clock.monotonic() if last is None else last) + group.keyframe
        group.keyframe_timer = self.sink.call_at(when, lambda: self._keyframe(group.room))

    def _keyframe(self, room: str) -> None:
        group = self.groups.get(room)
        if group is None:
            return
        group.keyframe_timer = None
        now = self.clock.monotonic()
        last = group.coalescer.last_sent_at
        if last is None or now + EPSILON >= last + group.keyframe:
            # nothing went out for K seconds: the current status, changed or not
            body = self.status_body()
            group.coalescer.pending = None
            group.coalescer.prime(body, now)
            group.keyframes += 1
            group.sent += 1
            self._emit(S.EV_STATUS, body, self.status_ts(), room)
        self._arm_keyframe(group)

    # ~~ payloads

    def set_enabled(self, channels: set[str]) -> None:
        self.enabled = frozenset(c for c in channels if c in S.CHANNELS)

    def _meta(self, body: dict, ts: int, cb_ns: int = 0) -> dict:
        payload = dict(body)
        payload["seq"] = self.next_seq()
        payload["ts"] = ts
        payload["printer"] = self.printer_id
        if self.trace:
            payload["trace"] = {"cb_ns": cb_ns, "emit_ns": self.clock.wall_ns()}
        elif self.trace_table is not None:
            self.trace_table.record(payload["seq"], cb_ns, self.clock.wall_ns())
        return payload

    def stamp(self, body: dict) -> dict:
        """A message of the plugin's own (resync, closing): now, with a fresh seq."""
        return self._meta(body, self.clock.wall_ms())

    def _base(self, group: Group) -> Optional[tuple[str, dict]]:
        """A delta room's last body as a full message (fresh seq, its own ts)."""
        if group.channel not in self.enabled or group.last_body is None:
            return None
        return CHANNEL_EVENTS[group.channel], self._meta(group.last_body, group.last_ts)

    def after_replay(self, sid: str) -> list[tuple[str, dict]]:
        """What a client that re-subscribed with ``since`` gets once the replay is
        done: a fresh full status and, for its delta rooms (whose deltas it missed
        while replaying), each room's base, so the rooms' next deltas apply."""
        out: list[tuple[str, dict]] = []
        status_base = False
        sub = self.subscriber_of(sid)
        for group in self.groups.values():
            if sub in group.members and group.delta:
                base = self._base(group)
                if base is not None:
                    out.append(base)
                    status_base = status_base or group.channel == "status"
        if not status_base:
            out.insert(0, (S.EV_STATUS, self.status_payload()))
        return out

    # ~~ emission

    def _emit(self, event: str, body: dict, ts: int, room: str, cb_ns: int = 0) -> None:
        if S.CHANNEL_OF_EVENT[event] not in self.enabled:
            return
        self.emitted += 1
        self.sink.emit(event, self._meta(body, ts, cb_ns), room)

    def _offer(
        self, channel: str, event: str, body: Any, ts_ns: int, force: bool = False
    ) -> None:
        self._each_group(
            channel,
            event,
            body,
            ts_ns,
            lambda c, sample, now: c.offer(sample, now, force),
        )

    def _flush(self, channel: str, event: str, body: Any, ts_ns: int) -> None:
        """``body`` to every room of the channel now, unless a room sent it last;
        nothing held back goes out after it."""

        def flush(coalescer: Coalescer, sample: Sample, now: float) -> Decision:
            coalescer.timer_at = None  # the held sample is gone; its timer finds none
            return coalescer.flush(sample, now)

        self._each_group(channel, event, body, ts_ns, flush)

    def _each_group(
        self,
        channel: str,
        event: str,
        body: Any,
        ts_ns: int,
        decide: Callable[[Coalescer, Sample, float], Decision],
    ) -> None:
        if channel not in self.enabled:
            return
        now = self.clock.monotonic()
        sample = Sample(body, ts_ns // 1_000_000, ts_ns)
        for group in list(self.groups.values()):
            if group.channel == channel:
                self._apply(group, event, decide(group.coalescer, sample, now), now)

    def _apply(self, group: Group, event: str, decision: Decision, now: float) -> None:
        if decision.send is not None:
            sample = decision.send
            body = sample.body
            if group.delta:
                previous = group.last_body
                group.last_body, group.last_ts = body, sample.ts
                if previous is not None:
                    body = delta_body(previous, body)
            if body is not None:
                group.sent += 1
                self._emit(event, body, sample.ts, group.room, sample.cb_ns)
        if decision.arm_at is not None:
            group.timer = self.sink.call_at(
                decision.arm_at, lambda: self._fire(group.room, event)
            )

    def _fire(self, room: str, event: str) -> None:
        group = self.groups.get(room)
        if group is None:
            return
        group.timer = None
        now = self.clock.monotonic()
        self._apply(group, event, group.coalescer.fire(now), now)

    # ~~ introspection

    def group_stats(self) -> list[dict]:
        return [
            {
                "room": g.room,
                "channel": g.channel,
                "interval": g.interval,
                "clients": len(g.members),
                "sent": g.sent,
                "coalesced": g.coalescer.dropped,
                "keyframes": g.keyframes,
            }
            for g in self.groups.values()
        ]
