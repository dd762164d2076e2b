"""The hub: what the plugin knows about the printer, and what goes to which room
when. Pure and single-threaded: every method runs on the IOLoop, the clock is
passed in, and all I/O goes through a ``Sink`` the transport implements.

Inputs are raw OctoPrint data (printer-callback dicts and event payloads), handed
over from OctoPrint's threads as they are; all shaping happens here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from . import schema as S
from .coalesce import Coalescer, Decision, Sample
from .delta import delta_body
from .subscriptions import Subscriptions, parse_room

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


DEDUPE = {"status": True, "progress": True, "temperature": False}
CHANNEL_EVENTS = {
    "status": S.EV_STATUS,
    "temperature": S.EV_TEMPERATURE,
    "progress": S.EV_PROGRESS,
}

# OctoPrint events -> FluxPrint job events
JOB_EVENTS = {
    "PrintStarted": S.EV_JOB_STARTED,
    "PrintPaused": S.EV_JOB_PAUSED,
    "PrintResumed": S.EV_JOB_RESUMED,
    "PrintDone": S.EV_JOB_COMPLETE,
    "PrintFailed": S.EV_JOB_FAILED,
}
CONNECTION_EVENTS = (
    "Connecting",
    "Connected",
    "Disconnected",
    "Error",
    "PrinterStateChanged",
)
HANDLED_EVENTS = frozenset(JOB_EVENTS) | frozenset(CONNECTION_EVENTS)
ERROR_STATE_IDS = ("ERROR", "CLOSED_WITH_ERROR")


class Hub:
    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        next_seq: Callable[[], int],
        printer_id: str,
        intervals: Mapping[str, float],
    ):
        self.sink = sink
        self.clock = clock
        self.next_seq = next_seq
        self.printer_id = printer_id
        self.subs = Subscriptions(intervals)
        self.groups: dict[str, Group] = {}

        # what the plugin holds; shaped, never OctoPrint's own objects
        self.temperature: dict[str, dict] = {}
        self.offsets: dict[str, Any] = {}
        self.state: dict = S.shape_state(None)
        self.job: dict = S.shape_job(None)
        self.progress: dict = S.shape_progress(None, self.state["text"], self.job)
        self.connection: dict = S.shape_connection("disconnected")
        self.last_ts: int = 0
        self.last_temperature_ts: Optional[int] = None
        self._job_open = False
        self.emitted = 0
        # channels switched off for every client in the settings
        self.enabled: frozenset[str] = frozenset(S.CHANNELS)
        # benchmark instrumentation: adds {"trace": {cb_ns, emit_ns}} to payloads
        self.trace = False

    # ~~ clients

    def add_client(self, sid: str) -> dict:
        """Subscribes a new client to every channel; returns the status to send it."""
        rooms = self.subs.add(sid)
        self._move(sid, set(), rooms)
        return self.status_payload()

    def remove_client(self, sid: str) -> None:
        if sid in self.subs:
            self._move(sid, self.subs.remove(sid), set())

    def subscribe(self, sid: str, request: S.SubscribeRequest) -> dict:
        before = self.subs.rooms(sid)
        intervals = request.intervals.model_dump() if request.intervals else None
        after = self.subs.subscribe(sid, request.channels, intervals, request.delta)
        self._move(sid, before, after)
        return self.subs.describe(sid)

    def unsubscribe(self, sid: str, request: S.UnsubscribeRequest) -> dict:
        before = self.subs.rooms(sid)
        after = self.subs.unsubscribe(sid, request.channels)
        self._move(sid, before, after)
        return self.subs.describe(sid)

    def describe(self, sid: str) -> dict:
        return self.subs.describe(sid)

    def set_intervals(self, intervals: Mapping[str, float]) -> None:
        before = {sid: self.subs.rooms(sid) for sid in self.subs.sids()}
        after = self.subs.set_configured(intervals)
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
        )
        self.groups[room] = group
        return group

    def _drop_group(self, group: Group) -> None:
        if group.timer is not None:
            self.sink.cancel(group.timer)
            group.timer = None
        self.groups.pop(group.room, None)

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
        return payload

    def status_body(self) -> dict:
        return {
            "state": self.state,
            "temperature": self.temperature,
            "job": self.job,
            "progress": self.progress,
            "connection": self.connection,
        }

    def stamp(self, body: dict) -> dict:
        """A message of the plugin's own (resync, closing): now, with a fresh seq."""
        return self._meta(body, self.clock.wall_ms())

    def history(self, samples: list, minutes: float) -> list[dict]:
        """OctoPrint's temperature history (``time`` in seconds) of the last minutes,
        shaped like printer:temperature with ``ts``."""
        cutoff = self.clock.wall_ms() - minutes * 60_000
        out = []
        for sample in samples:
            when = S._num(sample.get("time")) if isinstance(sample, Mapping) else None
            if when is None or when * 1000 < cutoff:
                continue
            shaped = S.shape_temperature(sample, self.offsets)
            shaped["ts"] = int(when * 1000)
            out.append(shaped)
        return out

    def status_payload(self) -> dict:
        """A fresh full status from what the hub holds, stamped with a new seq."""
        return self._meta(self.status_body(), self.last_ts or self.clock.wall_ms())

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
        for group in self.groups.values():
            if sid in group.members and group.delta:
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
        if channel not in self.enabled:
            return
        now = self.clock.monotonic()
        sample = Sample(body, ts_ns // 1_000_000, ts_ns)
        for group in list(self.groups.values()):
            if group.channel == channel:
                self._apply(group, event, group.coalescer.offer(sample, now, force), now)

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

    # ~~ inputs from OctoPrint (already on the loop)

    def on_temperature(self, data: Mapping[str, Any], ts_ns: int) -> None:
        self.temperature = S.shape_temperature(data, self.offsets)
        self.last_ts = max(self.last_ts, ts_ns // 1_000_000)
        if not self.temperature:
            # no heaters (disconnected): nothing to plot, but status changed
            self._offer("status", S.EV_STATUS, self.status_body(), ts_ns)
            return
        self.last_temperature_ts = ts_ns // 1_000_000
        self._offer("temperature", S.EV_TEMPERATURE, self.temperature, ts_ns)
        self._offer("status", S.EV_STATUS, self.status_body(), ts_ns)

    def on_current(self, data: Mapping[str, Any], ts_ns: int) -> None:
        offsets = data.get("offsets")
        if isinstance(offsets, Mapping) and dict(offsets) != self.offsets:
            self.offsets = dict(offsets)
            self.temperature = S.with_offsets(self.temperature, self.offsets)
        state = S.shape_state(data.get("state"))
        state_changed = state != self.state
        self.state = state
        self.job = S.shape_job(data.get("job"))
        self.progress = S.shape_progress(data.get("progress"), state["text"], self.job)
        self.last_ts = max(self.last_ts, ts_ns // 1_000_000)
        self._offer("progress", S.EV_PROGRESS, self.progress, ts_ns)
        self._offer("status", S.EV_STATUS, self.status_body(), ts_ns, force=state_changed)

    def on_event(
        self, name: str, payload: Optional[Mapping[str, Any]], ts_ns: int
    ) -> None:
        payload = payload or {}
        ts = ts_ns // 1_000_000
        if name in JOB_EVENTS:
            self._job_event(name, payload, ts)
        elif name in CONNECTION_EVENTS:
            self._connection_event(name, payload, ts)

    def _job_event(self, name: str, payload: Mapping[str, Any], ts: int) -> None:
        if name == "PrintStarted":
            self._job_open = True
        elif name in ("PrintDone", "PrintFailed"):
            if not self._job_open:
                # one notice per ended job (OctoPrint never sends two, but a replayed
                # or late event must not make a second one)
                _logger.debug("Ignoring %s for a job that already ended", name)
                return
            self._job_open = False
        body: dict[str, Any] = {
            "file": S.file_from_event(payload),
            "user": S.event_user(payload),
        }
        if name == "PrintDone":
            body["printTime"] = S._num(payload.get("time"))
        elif name == "PrintFailed":
            reason = payload.get("reason")
            body["reason"] = "cancelled" if reason == "cancelled" else "error"
            body["error"] = (
                S._str(payload.get("error")) if body["reason"] == "error" else None
            )
            body["progress"] = S.failed_progress(payload)
            body["printTime"] = S._num(payload.get("time"))
        self._emit(JOB_EVENTS[name], body, ts, "jobs")

    def job_known_open(self, is_printing: bool) -> None:
        """At startup: a print that is already running will end with a notice."""
        self._job_open = is_printing

    def _connection_event(self, name: str, payload: Mapping[str, Any], ts: int) -> None:
        current = self.connection
        port = current.get("port")
        baudrate = current.get("baudrate")
        error = None
        if name == "Connecting":
            state = "connecting"
        elif name == "Connected":
            state = "connected"
            port = payload.get("port", port)
            baudrate = payload.get("baudrate", baudrate)
        elif name == "Disconnected":
            if current["state"] == "error":
                return  # the connection closed because of the error already reported
            state = "disconnected"
        elif name == "Error":
            state = "error"
            error = S._str(payload.get("error")) or "unknown error"
        else:  # PrinterStateChanged: only catches errors that came without an Error event
            if payload.get("state_id") not in ERROR_STATE_IDS:
                return
            state = "error"
            error = current.get("error") or S._str(payload.get("state_string"))
        self.set_connection(state, port, baudrate, error, ts)

    def set_connection(
        self,
        state: str,
        port: Any = None,
        baudrate: Any = None,
        error: Optional[str] = None,
        ts: Optional[int] = None,
        announce: bool = True,
    ) -> None:
        connection = S.shape_connection(state, port, baudrate, error)
        if connection == self.connection:
            return
        changed_state = connection["state"] != self.connection["state"]
        self.connection = connection
        if ts is None:
            ts = self.clock.wall_ms()
        self.last_ts = max(self.last_ts, ts)
        if not announce:
            return
        if changed_state or connection["state"] == "connected":
            self._emit(S.EV_CONNECTION, connection, ts, "connection")
        self._offer("status", S.EV_STATUS, self.status_body(), ts * 1_000_000, force=True)

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
            }
            for g in self.groups.values()
        ]
