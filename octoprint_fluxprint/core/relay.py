"""One printer as the hub sees it: the plugin's payloads relayed as they are (same
``seq``, ``ts`` and ``printer``) through the same rooms, coalescers and keyframes
as the plugin's own state. Pure; runs on the hub's loop.

The plugin is the truth: nothing here allocates a seq, and each client's seq per
printer strictly increases, the hub's own messages included:

- a new client gets the latest status as relayed (its own seq: everything relayed
  after the join is above it);
- a status after a replay, or an answer to ``printer:request_status`` without an
  ack, is the plugin's next status, asked for upstream (``ask_status``) and sent to
  those waiting when it is relayed (above everything they got);
- keyframes are relayed statuses (the source has the plugin send one at least every
  few seconds); a keyframe room the plugin left silent asks upstream, and sends
  nothing made up;
- a resync carries the last relayed seq; the status after it is the plugin's next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

from . import schema as S
from . import shaping as shape
from .coalesce import Sample
from .rooms import Clock, Rooms, Sink

META = ("seq", "ts", "printer", "trace")
HUB_INTERVALS = {"status": 0.0, "temperature": 0.0, "progress": 0.0}


class RelayedPrinter(Rooms):
    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        printer_id: str,
        intervals: Optional[Mapping[str, float]] = None,
        keyframe: float = 0.0,
    ):
        super().__init__(
            sink, clock, self._no_seq, printer_id, intervals or HUB_INTERVALS, keyframe
        )
        self.last_seq = 0  # the highest seq relayed (any event)
        self.last_ts = 0
        self.status: Optional[dict] = None  # the latest printer:status, as relayed
        self._status_body: Optional[dict] = None  # ... without its seq, ts, printer
        self.latest: dict[str, dict] = {}  # event -> latest telemetry payload
        self.relayed = 0
        self.duplicates = 0
        # clients owed the plugin's next status, and how to ask the plugin for one
        self.waiting: set[str] = set()
        self.ask_status: Callable[[], None] = lambda: None
        self.asked = 0
        self._due: set[str] = set()  # keyframe rooms the plugin left silent

    def _no_seq(self) -> int:  # the plugin allocates; Rooms asks only via _meta
        return self.last_seq

    # ~~ input: a payload from the plugin (in the plugin's seq order)

    def on_payload(self, event: str, payload: Any) -> bool:
        """Relays one message; False when it is not news (seq at or below what was
        relayed: a replay overlapping what the hub already has) or malformed."""
        if not isinstance(payload, Mapping):
            return False
        seq = payload.get("seq")
        ts = payload.get("ts")
        if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(ts, int):
            return False
        if seq <= self.last_seq:
            self.duplicates += 1
            return False
        payload = dict(payload)
        payload["printer"] = self.printer_id  # the hub's id for it, always
        self.last_seq = seq
        self.last_ts = max(self.last_ts, ts)
        self.relayed += 1
        channel = S.CHANNEL_OF_EVENT.get(event)
        if channel is None:
            return True  # the plugin's own (resync, closing): not for the hub's clients
        if event == S.EV_STATUS:
            self.status = payload
            self.latest.pop(S.EV_TEMPERATURE, None)
            self.latest.pop(S.EV_PROGRESS, None)
        elif event in (S.EV_TEMPERATURE, S.EV_PROGRESS):
            self.latest[event] = payload
        elif event == S.EV_CONNECTION and self.status is not None:
            keys = ("state", "port", "baudrate", "error")
            self.status = {
                **self.status,
                "connection": {k: payload.get(k) for k in keys},
            }
        if event == S.EV_STATUS:
            body = {k: v for k, v in payload.items() if k not in META}
            unchanged, self._status_body = body == self._status_body, body
            self._relay_status(payload, ts, unchanged)
        elif channel in ("temperature", "progress"):
            self._offer(channel, event, payload, ts * 1_000_000)
        else:
            self._emit(event, payload, ts, channel)
        return True

    def _relay_status(self, payload: dict, ts: int, unchanged: bool = False) -> None:
        """To the status rooms (a due keyframe room at once), then to the clients
        owed a status that no room gave it to. A status whose body is the one
        relayed last (a quiet printer's answer to the source's heartbeat) goes only
        to due keyframe rooms and to those owed one: status is never re-sent
        unchanged, as at the plugin."""
        got: set[str] = set()
        if "status" in self.enabled:
            now = self.clock.monotonic()
            sample = Sample(payload, ts, ts * 1_000_000)
            for group in [g for g in self.groups.values() if g.channel == "status"]:
                due = group.room in self._due
                if unchanged and not due:
                    continue
                self._due.discard(group.room)
                sent = group.sent
                decision = group.coalescer.offer(sample, now, force=due)
                self._apply(group, S.EV_STATUS, decision, now)
                if group.sent > sent or group.coalescer.pending is sample:
                    got |= group.members  # sent, or held for the room's interval
                if group.sent > sent:
                    group.keyframes += due
                    self._arm_keyframe(group)
        waiting, self.waiting = self.waiting, set()
        for sid in sorted(waiting):
            sub = self.subscriber_of(sid)  # the client, or its cohort
            if sub not in got and sub in self.subs:
                self.sink.send_to(sid, S.EV_STATUS, payload)

    def answer_status(self, sid: str, status: dict) -> None:
        # the plugin's next status: a relayed status repeated would repeat its seq
        self.status_later(sid)

    def status_later(self, sid: str) -> None:
        """``sid`` gets the plugin's next status (a seq above all it has)."""
        first = not self.waiting
        self.waiting.add(sid)
        if first:
            self.asked += 1
            self.ask_status()

    # ~~ clients (Rooms' own, with statuses that keep each client's seq rising)

    def add_client(self, sid: str) -> dict:
        """The latest status as relayed: nothing the client gets later is below it.
        (A client joining by a replay gets its status from ``after_replay``.)"""
        rooms = self.subs.add(sid)
        self._move(sid, set(), rooms)
        return self.add_status()

    def joined(self, sub: str) -> list[tuple[str, dict]]:
        """The latest status as relayed, as for a new client (no delta rooms at the
        hub)."""
        return [(S.EV_STATUS, self.add_status())]

    def add_status(self) -> dict:
        if self.status is None:
            return self.status_body()  # nothing relayed yet: the last seq at most
        return dict(self.status)

    def remove_client(self, sid: str) -> None:
        super().remove_client(sid)
        self.waiting.discard(sid)

    def after_replay(self, sid: str) -> list[tuple[str, dict]]:
        self.status_later(sid)  # above the replay's and the live events' seqs
        return []

    def _keyframe(self, room: str) -> None:
        """No status for K seconds (the plugin is silent: stale): ask it, and let
        the room's next relayed status through at once. Nothing is made up."""
        group = self.groups.get(room)
        if group is None:
            return
        group.keyframe_timer = None
        if room not in self._due:
            self._due.add(room)
            self.asked += 1
            self.ask_status()
        when = self.clock.monotonic() + group.keyframe
        group.keyframe_timer = self.sink.call_at(when, lambda: self._keyframe(room))

    # ~~ payloads (what Rooms asks for)

    def status_body(self) -> dict:
        """The latest status with the telemetry relayed since, as a full payload."""
        base = self.status
        if base is None:
            state = shape.shape_state(None)
            job = shape.shape_job(None)
            base = {
                "state": state,
                "temperature": {},
                "job": job,
                "progress": shape.shape_progress(None, state["text"], job),
                "connection": shape.shape_connection("disconnected"),
            }
        body = {k: v for k, v in base.items() if k not in META}
        temperature = self.latest.get(S.EV_TEMPERATURE)
        if temperature is not None:
            body["temperature"] = {k: v for k, v in temperature.items() if k not in META}
        progress = self.latest.get(S.EV_PROGRESS)
        if progress is not None:
            body["progress"] = {k: v for k, v in progress.items() if k not in META}
        return self._stamped(body, self.status_ts())

    def status_ts(self) -> int:
        return self.last_ts or self.clock.wall_ms()

    def status_payload(self) -> dict:
        return self.status_body()

    def stamp(self, body: dict) -> dict:
        return self._stamped(body, self.clock.wall_ms())

    def _stamped(self, body: dict, ts: int) -> dict:
        return {
            **body,
            "seq": max(self.last_seq, 1),
            "ts": ts,
            "printer": self.printer_id,
        }

    def _meta(self, body: dict, ts: int, cb_ns: int = 0) -> dict:
        if "seq" in body:
            return body  # relayed (or made above): as it is
        return self._stamped(body, ts)

    def history(self, samples: list, minutes: float) -> list[dict]:
        return []  # OctoPrint's temperature history stays at the plugin
