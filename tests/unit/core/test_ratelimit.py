"""The pure limits: token bucket, refusal window, connection caps, settings."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octoprint_fluxprint.core import ratelimit as RL


class FakeClock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


def test_bucket_allows_burst_then_refills_at_rate():
    clock = FakeClock()
    bucket = RL.TokenBucket(5, 2.0, clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.advance(0.49)
    assert bucket.take() is False
    clock.advance(0.02)  # 0.51 s at 2/s: one token
    assert bucket.take() is True
    clock.advance(100)  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 5


def test_bucket_ignores_a_clock_going_backwards():
    clock = FakeClock()
    bucket = RL.TokenBucket(1, 1.0, clock)
    assert bucket.take()
    clock.advance(-50)
    assert not bucket.take()
    clock.advance(51)
    assert bucket.take()


def test_limiter_refuses_then_disconnects_sustained_abuse():
    clock = FakeClock()
    limiter = RL.RateLimiter(
        RL.RateConfig(burst=3, per_second=1, disconnect_after=4), clock
    )
    verdicts = [limiter.check() for _ in range(3 + 4)]
    assert verdicts == ["ok"] * 3 + ["limited"] * 4
    assert limiter.check() == "disconnect"  # the fifth refusal within the window


def test_limiter_forgives_refusals_outside_the_window():
    clock = FakeClock()
    limiter = RL.RateLimiter(
        RL.RateConfig(burst=1, per_second=0.01, disconnect_after=2), clock
    )
    assert limiter.check() == "ok"
    for _ in range(10):  # two refusals every 11 s: never three within 10 s
        assert limiter.check() == "limited"
        assert limiter.check() == "limited"
        clock.advance(RL.REFUSAL_WINDOW + 1)
    assert limiter.total_refused == 20
    assert len(limiter.refused) <= 3


def test_a_polite_client_is_never_limited():
    clock = FakeClock()
    limiter = RL.RateLimiter(RL.RateConfig(burst=2, per_second=5), clock)
    for _ in range(1000):
        assert limiter.check() == "ok"
        clock.advance(0.2)


def test_reconfigure_keeps_the_level():
    clock = FakeClock()
    limiter = RL.RateLimiter(RL.RateConfig(burst=10, per_second=1), clock)
    for _ in range(8):
        limiter.check()
    limiter.reconfigure(RL.RateConfig(burst=4, per_second=1))
    assert [limiter.check() for _ in range(3)] == ["ok", "ok", "limited"]


@given(
    st.integers(1, 50),
    st.floats(0.1, 100),
    st.lists(st.floats(0, 2), max_size=200),
)
def test_bucket_never_admits_more_than_burst_plus_rate_times_time(burst, rate, gaps):
    clock = FakeClock(0.0)
    bucket = RL.TokenBucket(burst, rate, clock)
    admitted = 0
    for gap in gaps:
        clock.advance(gap)
        admitted += bucket.take()
    assert admitted <= burst + rate * clock.t + 1e-6


def test_caps():
    limits = RL.Limits(max_connections=3, max_connections_per_user=2)
    assert RL.admit(limits, 0, 0) and RL.admit(limits, 2, 1)
    assert not RL.admit(limits, 3, 0)
    assert not RL.admit(limits, 1, 2)


def test_settings_are_clamped_and_bad_values_fall_back():
    d = RL.Limits()
    assert RL.limits_from_settings({}) == d
    got = RL.limits_from_settings(
        {
            "max_connections": "7",
            "max_connections_per_user": -3,
            "max_message_bytes": 10**9,
            "rate_limit": {
                "burst": True,
                "per_second": math.nan,
                "disconnect_after": 2.6,
            },
        }
    )
    assert got.max_connections == 7
    assert got.max_connections_per_user == 1
    assert got.max_message_bytes == 64 * 1024
    assert got.rate == RL.RateConfig(
        burst=d.rate.burst, per_second=d.rate.per_second, disconnect_after=3
    )
    assert RL.limits_from_settings({"rate_limit": "fast"}).rate == d.rate
    for junk in (None, [], {}, "x", float("inf")):
        assert RL.clamp_int(junk, 5, 1, 10) == 5


@pytest.mark.parametrize("value", [None, "", "abc", [1], {"a": 1}])
def test_rate_config_of_junk_is_the_default(value):
    assert RL.rate_config(value) == RL.RateConfig()
