"""Minimum spacing for one stream of samples. Pure: the caller passes the clock in
and owns the timer.

Rules (issue #2, "Intervals"):

* the first sample after a quiet interval goes out at once;
* samples that arrive sooner are held, newest wins, and go out as soon as the
  interval since the last send has passed;
* with ``dedupe`` a sample equal to the last one sent is not sent again, and a held
  sample is dropped when a newer one equals what the client already has;
* ``force`` sends at once (a state change must not wait);
* ``flush`` sends at once unless the client already has it, and holds nothing
  back (a job's last progress goes before its job event, and nothing after);
* ``prime`` records a body the clients got another way (the status on connect),
  as if it had been sent now;
* an interval of 0 sends every sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# timers may fire a hair early (asyncio allows the clock's resolution)
EPSILON = 0.001


@dataclass
class Sample:
    body: Any
    ts: int  # epoch ms of the observation
    cb_ns: int = 0  # epoch ns the plugin received it (benchmark tracing only)


@dataclass
class Decision:
    send: Optional[Sample] = None  # send this now
    arm_at: Optional[float] = None  # arm a timer for this monotonic time


@dataclass
class Coalescer:
    interval: float
    dedupe: bool = False
    last_sent_at: Optional[float] = None
    last_body: Any = None
    has_sent: bool = False
    pending: Optional[Sample] = None
    timer_at: Optional[float] = None  # a timer is armed for this time
    dropped: int = field(default=0)  # samples replaced by newer ones while held

    def _due(self, now: float) -> bool:
        return (
            self.interval <= 0
            or self.last_sent_at is None
            or now + EPSILON >= self.last_sent_at + self.interval
        )

    def _take(self, sample: Sample, now: float) -> Decision:
        self.last_sent_at = now
        self.last_body = sample.body
        self.has_sent = True
        self.pending = None
        return Decision(send=sample)

    def offer(self, sample: Sample, now: float, force: bool = False) -> Decision:
        if self.dedupe and self.has_sent and sample.body == self.last_body and not force:
            # the client already has this; anything held is older than it
            if self.pending is not None:
                self.dropped += 1
            self.pending = None
            return Decision()
        if force or self._due(now):
            if self.pending is not None:
                self.dropped += 1
            return self._take(sample, now)
        if self.pending is not None:
            self.dropped += 1
        self.pending = sample
        if self.timer_at is None:
            assert self.last_sent_at is not None
            self.timer_at = self.last_sent_at + self.interval
            return Decision(arm_at=self.timer_at)
        return Decision()

    def fire(self, now: float) -> Decision:
        """The armed timer ran."""
        self.timer_at = None
        if self.pending is None:
            return Decision()
        if not self._due(now):
            # a forced send moved the last send forward since the timer was armed
            assert self.last_sent_at is not None
            self.timer_at = self.last_sent_at + self.interval
            return Decision(arm_at=self.timer_at)
        return self._take(self.pending, now)

    def flush(self, sample: Sample, now: float) -> Decision:
        """Sends ``sample`` now unless it is what was sent last; drops anything
        held either way."""
        if self.pending is not None:
            self.dropped += 1
        self.pending = None
        if self.has_sent and sample.body == self.last_body:
            return Decision()
        return self._take(sample, now)

    def prime(self, body: Any, now: float) -> None:
        """The clients got ``body`` now, outside this stream."""
        self.last_sent_at = now
        self.last_body = body
        self.has_sent = True
