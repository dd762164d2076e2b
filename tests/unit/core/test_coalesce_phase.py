"""The coalescer against a printer whose reports come at about the interval, or at a
whole fraction of it: the sends must stay in phase with the reports (issue 23, "every
sample late by one whole interval"). Each case replays reports through a Coalescer
whose timer runs late by a millisecond, as asyncio's does (epoll rounds up); the
latency of a sample is when it went out minus when it arrived.

Before the fix (the interval counted from the instant the last sample went out), the
first case held every report 4 ms longer than the one before, up to a whole interval
(p50 476 ms over 2000 reports), and a single 300 ms stall at a 2 s period left every
later report about 1 s late for the rest of the run."""

from __future__ import annotations

import random
from typing import Optional

from octoprint_fluxprint.core.coalesce import Coalescer, Sample, slack

LATE = 0.001  # the timer's lateness


def replay(arrivals: list[float], interval: float) -> list[tuple[float, float]]:
    """(sent at, arrived at) of every sample that went out, in order."""
    c = Coalescer(interval)
    timer: Optional[float] = None
    out: list[tuple[float, float]] = []

    def run_timer_until(t: float) -> None:
        nonlocal timer
        while timer is not None and timer + LATE <= t:
            now = timer + LATE
            d = c.fire(now)
            timer = d.arm_at
            if d.send is not None:
                out.append((now, d.send.body))

    for a in arrivals:
        run_timer_until(a)
        d = c.offer(Sample(a, 0), a)
        if d.send is not None:
            out.append((a, a))
        if d.arm_at is not None:
            timer = d.arm_at
    run_timer_until(float("inf"))
    return out


def periodic(period: float, n: int, jitter: float = 0.0005, seed: int = 7) -> list:
    r = random.Random(seed)
    return [1000.0 + k * period + r.uniform(-jitter, jitter) for k in range(n)]


def latencies(out: list[tuple[float, float]]) -> list[float]:
    return [sent - arrived for sent, arrived in out]


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[int(0.99 * (len(values) - 1))]


def spacings(out: list[tuple[float, float]]) -> list[float]:
    return [b[0] - a[0] for a, b in zip(out, out[1:])]


def test_reports_a_few_ms_short_of_the_interval_go_out_at_once():
    # the hub test's setting: reports every 1.001 s, interval 1.005 s
    out = replay(periodic(1.001, 2000), 1.005)
    assert len(out) == 2000  # none dropped
    assert max(latencies(out)) <= 0.002
    # sends stay at most the slack short of the interval apart
    assert min(spacings(out)) >= 1.005 - slack(1.005) - 0.002


def test_reports_at_the_interval_with_jitter_are_not_held_a_whole_interval():
    # OctoPrint's 2 s against FluxPrint's 2 s, reports jittering by 20 ms
    out = replay(periodic(2.0, 1000, jitter=0.02), 2.0)
    assert p99(latencies(out)) <= 0.05
    assert len(out) >= 990


def test_one_stall_does_not_leave_every_later_report_late():
    arrivals = periodic(2.001, 600)
    arrivals[100] += 0.3  # the loop took this one 300 ms late
    out = replay(arrivals, 2.0)
    after = [sent - arrived for sent, arrived in out if arrived > arrivals[103]]
    assert max(after) <= 0.05, max(after)
    # catching up never sends two within half an interval
    assert min(spacings(out)) >= 1.0


def test_twice_per_interval_locks_onto_the_fresh_report():
    # the tests' and benchmarks' setting: reports every 1.001 s, interval 2 s;
    # the printer's reports shift by 300 ms (a reconnect, a delayed poll) halfway
    arrivals = periodic(1.001, 1200)
    arrivals[600:] = [a + 0.3 for a in arrivals[600:]]
    out = replay(arrivals, 2.0)
    lat = latencies(out)
    assert p99(lat) <= 0.05
    # a period late at most while it finds the new phase
    assert sum(1 for x in lat if x > 0.05) <= 3
    assert min(spacings(out)) >= 2.0 - 2 * slack(2.0) - 0.002


def test_rate_and_newest_value_whatever_the_period():
    for period in (0.7, 1.4, 1.8, 0.35, 0.2, 0.05, 3.0):
        arrivals = periodic(period, int(600 / period), jitter=0.01, seed=3)
        out = replay(arrivals, 2.0)
        sent = len(out)
        span = arrivals[-1] - arrivals[0]
        # never more often than one per (interval - slack) on average
        assert sent <= span / (2.0 - slack(2.0)) + 2, period
        assert min(spacings(out)) >= 1.0, period
        assert out[-1][1] == arrivals[-1], period  # the last value is delivered
        assert [a for _s, a in out] == sorted(a for _s, a in out)
