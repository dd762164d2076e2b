"""Minimum spacing for one stream of samples. Pure: the caller passes the clock in
and owns the timer.

Rules (issue #2, "Intervals"):

* the first sample after a quiet interval goes out at once;
* samples that arrive sooner are held, newest wins, and go out once the interval
  has passed;
* with ``dedupe`` a sample equal to the last one sent is not sent again, and a held
  sample is dropped when a newer one equals what the client already has;
* ``force`` sends at once (a state change must not wait);
* ``flush`` sends at once unless the client already has it, and holds nothing
  back (a job's last progress goes before its job event, and nothing after);
* ``prime`` records a body the clients got another way (the status on connect),
  as if it had been sent now;
* an interval of 0 sends every sample.

Keeping the sends in phase with the printer's reports (issue 23: "every sample late
by one whole interval"). The interval used to count from the instant the last
sample went out. A held sample goes out late by its hold and by the timer's own
lateness (~1 ms: epoll rounds up), so with a printer reporting at about the interval
(OctoPrint's 2 s against FluxPrint's 2 s) one early or stalled sample made the next
one early too, each hold carried into the next and grew, up to a whole interval,
and stayed there for as long as the run (tests/unit/core/test_coalesce_phase.py
replays it). Now:

* the interval counts from when a sample arrived (sent at once) or was due (held
  and sent by the timer), never from when the timer ran;
* ``slack`` (2.5% of the interval, at most 50 ms) is the jitter allowed around a due
  time: a sample up to that much early goes out at once (sends are then at least
  interval - 2 x slack apart), and a held sample waits that much past its due time,
  so a fresher report arriving about then replaces it instead of following it a
  whole interval later;
* when the timer sent a sample that came one interval after the one before it
  (the printer reports once per interval and the sends lag it: after a stall), the
  interval counts from that sample's arrival; when the printer reports several
  times per interval and a report arrives just after the timer sent the one before
  it (each one sent was a period old), the interval counts from that report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# timers may fire a hair early (asyncio allows the clock's resolution)
EPSILON = 0.001
# the jitter allowed around a due time: this share of the interval, at most MAX_SLACK
SLACK = 0.025
MAX_SLACK = 0.05


def slack(interval: float) -> float:
    return max(EPSILON, min(interval * SLACK, MAX_SLACK))


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
    last_sent_at: Optional[float] = None  # when the last sample went out
    anchor: Optional[float] = None  # where the next interval counts from
    last_body: Any = None
    has_sent: bool = False
    pending: Optional[Sample] = None
    timer_at: Optional[float] = None  # a timer is armed for this time
    arrived_at: Optional[float] = None  # when the last sample was offered
    held_at: Optional[float] = None  # when the pending sample arrived
    held_gap: float = 0.0  # ... and how long after the sample before it
    # when the sample the timer sent last had arrived, until the next offer
    timer_sent_at: Optional[float] = None
    dropped: int = field(default=0)  # samples replaced by newer ones while held

    def _due(self, now: float) -> bool:
        return (
            self.interval <= 0
            or self.anchor is None
            or now + slack(self.interval) >= self.anchor + self.interval
        )

    def _arm(self) -> Decision:
        assert self.anchor is not None
        self.timer_at = self.anchor + self.interval + slack(self.interval)
        return Decision(arm_at=self.timer_at)

    def _take(
        self, sample: Sample, now: float, anchor: Optional[float] = None
    ) -> Decision:
        self.last_sent_at = now
        self.anchor = now if anchor is None else anchor
        self.last_body = sample.body
        self.has_sent = True
        self.pending = self.timer_sent_at = None
        return Decision(send=sample)

    def offer(self, sample: Sample, now: float, force: bool = False) -> Decision:
        gap = 0.0 if self.arrived_at is None else now - self.arrived_at
        self.arrived_at = now
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
        if self.timer_sent_at is not None and self._steps(now - self.timer_sent_at) > 1:
            # the timer sent the sample before this one, and the printer reports
            # several times per interval: its reports come just after the sends
            # (out of phase: each one sent is a period old). Count the interval from
            # this one, so that the report one interval on goes out at once
            self.anchor = now
        self.timer_sent_at = None
        self.pending, self.held_at, self.held_gap = sample, now, gap
        if self.timer_at is None:
            return self._arm()
        return Decision()

    def fire(self, now: float) -> Decision:
        """The armed timer ran."""
        self.timer_at = None
        if self.pending is None:
            return Decision()
        if not self._due(now):
            # a forced send moved the last send forward since the timer was armed
            return self._arm()
        # the next interval counts from when this one was due, not from now (the
        # timer's own lateness must not add up); after a stall of the loop, from a
        # little before now, so two sends do not go out back to back
        assert self.anchor is not None and self.held_at is not None
        due = self.anchor + self.interval
        anchor = max(due, now - 2 * slack(self.interval))
        if self._steps(self.held_gap) == 1:
            # it came one interval after the sample before it: the printer reports
            # once per interval, and the sends lag its reports (the loop stalled, or
            # a send came late): count from its arrival, so the next goes out at once
            # (by at most half an interval per send)
            anchor = max(self.held_at, due - self.interval / 2)
        held_at = self.held_at
        decision = self._take(self.pending, now, min(now, anchor))
        self.timer_sent_at = held_at
        return decision

    def _steps(self, period: float) -> int:
        """How many ``period``s make the interval, when it is a whole number of
        them (within SLACK); 0 when it is not."""
        if period <= 0:
            return 0
        whole = max(1, round(self.interval / period))
        return whole if abs(self.interval - whole * period) <= slack(self.interval) else 0

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
        self.last_sent_at = self.anchor = now
        self.last_body = body
        self.has_sent = True
