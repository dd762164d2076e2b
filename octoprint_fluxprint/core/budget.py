"""Per-client outbound budget: what to do with a message for a client that is not
keeping up. Pure: the transport measures how much is queued for a client and passes
it in; the clock is injected.

- Under budget: send.
- Over budget (queued messages or bytes above the limit): telemetry is *held*, newest
  value per event name (older ones are coalesced away; deltas are merged into the
  held one, ``delta.compose``); durable events are still sent
  (they are never dropped; the hard limit bounds them). Once the queue drains below
  half the limits (hysteresis), ``poll`` hands back the held values to send.
- Over budget for ``grace`` seconds without a break, or above ``hard`` times the
  limits at any time: disconnect, with a reason. A disconnected client resumes with
  its last seq and gets its durable events by replay.

So what the server holds for a client is bounded by the limits (queue) plus one
value per telemetry event name (held), whatever the client's speed.

What to measure (python-engineio 5 on tornado): a websocket client's packets leave
engineio's per-socket queue at once, into tornado's write buffer, which is unbounded:
``len(handler.ws_connection.stream._write_buffer)`` bytes (plus the kernel's send
queue, ``ioctl(fd, TIOCOUTQ)`` on Linux). A long-polling client's packets wait in
``sio.eio.sockets[eio_sid].queue`` (``qsize()`` messages) for its next GET.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .delta import compose


@dataclass(frozen=True)
class Limits:
    max_messages: int = 200
    max_bytes: int = 512 * 1024
    grace: float = 15.0  # seconds continuously over budget before disconnecting
    hard: float = 4.0  # over hard x the limits: disconnect at once

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.max_bytes < 1:
            raise ValueError("limits must be positive")
        if self.grace < 0 or self.hard < 1:
            raise ValueError("grace must be >= 0 and hard >= 1")


class Action(enum.Enum):
    SEND = "send"
    HOLD = "hold"  # telemetry kept as the newest value, sent when the client drains
    DISCONNECT = "disconnect"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: Optional[str] = None


SEND = Verdict(Action.SEND)
HOLD = Verdict(Action.HOLD)


class ClientBudget:
    """Bookkeeping for one client."""

    def __init__(self, limits: Limits, clock: Callable[[], float]):
        self.limits = limits
        self.clock = clock
        self.over_since: Optional[float] = None
        self.held: dict[str, Any] = {}  # event name -> newest payload, in arrival order
        self.coalesced = 0  # telemetry values replaced by a newer one while held
        self.sent_held = 0
        self.disconnect_reason: Optional[str] = None

    # ~~ state

    def _over(self, messages: int, nbytes: int) -> bool:
        lim = self.limits
        if self.over_since is None:
            return messages > lim.max_messages or nbytes > lim.max_bytes
        # hysteresis: stay over until drained below half
        return messages > lim.max_messages // 2 or nbytes > lim.max_bytes // 2

    def _hard(self, messages: int, nbytes: int) -> bool:
        lim = self.limits
        return messages > lim.max_messages * lim.hard or nbytes > lim.max_bytes * lim.hard

    def _update(self, messages: int, nbytes: int) -> Optional[str]:
        """Tracks over/under; returns a reason once the client must go."""
        if self.disconnect_reason is not None:
            return self.disconnect_reason
        now = self.clock()
        if self._hard(messages, nbytes):
            return self._fail(
                f"slow client: {messages} messages / {nbytes} bytes queued "
                f"(hard limit {self.limits.hard:g}x budget)"
            )
        if self._over(messages, nbytes):
            if self.over_since is None:
                self.over_since = now
            elif now - self.over_since >= self.limits.grace:
                return self._fail(
                    f"slow client: over its outbound budget for "
                    f"{now - self.over_since:.0f}s ({messages} messages / "
                    f"{nbytes} bytes queued)"
                )
        else:
            self.over_since = None
        return None

    def _fail(self, reason: str) -> str:
        self.disconnect_reason = reason
        self.held.clear()
        return reason

    @property
    def backed_up(self) -> bool:
        return self.over_since is not None

    # ~~ API

    def offer(
        self,
        event: str,
        payload: Any,
        durable: bool,
        queued_messages: int,
        queued_bytes: int = 0,
    ) -> Verdict:
        """What to do with one outbound message for this client, given what is queued
        for it now."""
        reason = self._update(queued_messages, queued_bytes)
        if reason is not None:
            return Verdict(Action.DISCONNECT, reason)
        if durable:
            return SEND
        if self.over_since is not None or event in self.held:
            # held values go out in order, so a newer one waits behind them too
            older = self.held.pop(event, None)  # re-inserted: arrival order
            if older is not None:
                self.coalesced += 1
            # newest wins; deltas are merged into what is held, so none is lost
            self.held[event] = compose(older, payload)
            return HOLD
        return SEND

    def clear(self, queued_messages: int, queued_bytes: int) -> bool:
        """True when ``offer`` would answer SEND for any message and change nothing:
        under the limits, not backed up, nothing held (the fan-out's fast path)."""
        lim = self.limits
        return (
            self.over_since is None
            and not self.held
            and self.disconnect_reason is None
            and queued_messages <= lim.max_messages
            and queued_bytes <= lim.max_bytes
        )

    def tick(self, queued_messages: int, queued_bytes: int, busy: bool) -> Verdict:
        """A batched client's tick (core/ticks.py): SEND it, HOLD it (skip the
        tick: its items wait with the client's backlog, newest telemetry winning,
        while its socket still has bytes to write, ``busy``, or it is over budget),
        or DISCONNECT (over budget for ``grace``, or ``hard`` times over). The
        backlog's items count as queued messages."""
        reason = self._update(queued_messages, queued_bytes)
        if reason is not None:
            return Verdict(Action.DISCONNECT, reason)
        if busy or self.over_since is not None:
            return HOLD
        return SEND

    def poll(
        self, queued_messages: int, queued_bytes: int = 0
    ) -> tuple[list[tuple[str, Any]], Optional[str]]:
        """Periodic check (e.g. every half second): (held messages to send now,
        disconnect reason or None)."""
        reason = self._update(queued_messages, queued_bytes)
        if reason is not None:
            return [], reason
        if self.over_since is not None or not self.held:
            return [], None
        out = list(self.held.items())
        self.held.clear()
        self.sent_held += len(out)
        return out, None


class Budgets:
    """All clients' budgets, keyed by sid."""

    def __init__(self, limits: Limits, clock: Callable[[], float]):
        self.limits = limits
        self.clock = clock
        self.clients: dict[str, ClientBudget] = {}

    def add(self, sid: str) -> ClientBudget:
        budget = self.clients.get(sid)
        if budget is None:
            budget = self.clients[sid] = ClientBudget(self.limits, self.clock)
        return budget

    def remove(self, sid: str) -> None:
        self.clients.pop(sid, None)

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits
        for budget in self.clients.values():
            budget.limits = limits

    def offer(
        self,
        sid: str,
        event: str,
        payload: Any,
        durable: bool,
        queued_messages: int,
        queued_bytes: int = 0,
    ) -> Verdict:
        return self.add(sid).offer(event, payload, durable, queued_messages, queued_bytes)

    def poll(
        self,
        measure: Callable[[str], tuple[int, int]],
        sids: Optional[Iterable[str]] = None,
    ) -> tuple[dict[str, list[tuple[str, Any]]], dict[str, str]]:
        """Checks every client: ({sid: held messages to send}, {sid: reason to
        disconnect}). ``measure(sid)`` returns (queued messages, queued bytes)."""
        send: dict[str, list[tuple[str, Any]]] = {}
        drop: dict[str, str] = {}
        for sid in list(sids if sids is not None else self.clients):
            budget = self.clients.get(sid)
            if budget is None:
                continue
            messages, nbytes = measure(sid)
            out, reason = budget.poll(messages, nbytes)
            if reason is not None:
                drop[sid] = reason
            elif out:
                send[sid] = out
        return send, drop

    def stats(self) -> dict[str, dict]:
        return {
            sid: {
                "backedUp": b.backed_up,
                "held": len(b.held),
                "coalesced": b.coalesced,
            }
            for sid, b in self.clients.items()
        }
