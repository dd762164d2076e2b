"""Fakes for the hub's Sink and Clock: a timer wheel driven by hand."""

from __future__ import annotations

import itertools
from typing import Any, Callable


class FakeClock:
    def __init__(self, start: float = 1000.0, wall_ms: int = 1_700_000_000_000):
        self.now = start
        self._wall0 = wall_ms
        self._start = start

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return self._wall0 + int((self.now - self._start) * 1000)

    def wall_ns(self) -> int:
        return self.wall_ms() * 1_000_000


class FakeSink:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.sent: list[tuple[str, dict, str, float]] = []
        self.rooms: dict[str, set[str]] = {}
        self.timers: dict[int, tuple[float, Callable[[], None]]] = {}
        self._ids = itertools.count(1)

    # Sink
    def emit(self, event: str, payload: dict, room: str) -> None:
        self.sent.append((event, payload, room, self.clock.now))

    def send_to(self, sid: str, event: str, payload: dict) -> None:
        self.sent.append((event, payload, "@" + sid, self.clock.now))

    def enter_room(self, sid: str, room: str) -> None:
        self.rooms.setdefault(room, set()).add(sid)

    def leave_room(self, sid: str, room: str) -> None:
        self.rooms.get(room, set()).discard(sid)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        ident = next(self._ids)
        self.timers[ident] = (when, callback)
        return ident

    def cancel(self, handle: Any) -> None:
        self.timers.pop(handle, None)

    # driving
    def advance(self, seconds: float) -> None:
        """Moves the clock, running due timers in order."""
        target = self.clock.now + seconds
        while True:
            due = [(w, i) for i, (w, _) in self.timers.items() if w <= target]
            if not due:
                break
            when, ident = min(due)
            self.clock.now = max(self.clock.now, when)
            _, callback = self.timers.pop(ident)
            callback()
        self.clock.now = target

    def events(self, name: str | None = None, room: str | None = None) -> list[dict]:
        return [
            p
            for (e, p, r, _) in self.sent
            if (name is None or e == name) and (room is None or r == room)
        ]

    def delivered(self, sid: str, name: str | None = None) -> list[dict]:
        """What a client in the given rooms would have received."""
        return [
            p
            for (e, p, r, _) in self.sent
            if (r == "@" + sid or sid in self.rooms.get(r, set()))
            and (name is None or e == name)
        ]
