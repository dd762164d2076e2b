"""Per-client outbound budget with a fake clock."""

from __future__ import annotations

import pytest

from octoprint_fluxprint.core.budget import (
    HOLD,
    SEND,
    Action,
    Budgets,
    ClientBudget,
    Limits,
)


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def budget(clock):
    return ClientBudget(Limits(max_messages=10, max_bytes=1000, grace=5, hard=4), clock)


def test_under_budget_sends(budget):
    assert budget.offer("printer:temperature", 1, False, 0, 0) == SEND
    assert budget.offer("printer:temperature", 2, False, 10, 1000) == SEND  # at the limit
    assert not budget.backed_up


def test_over_budget_holds_newest_telemetry(budget):
    assert budget.offer("printer:temperature", 1, False, 11, 0) == HOLD
    assert budget.backed_up
    assert budget.offer("printer:progress", "p1", False, 11, 0) == HOLD
    assert budget.offer("printer:temperature", 2, False, 11, 0) == HOLD
    assert budget.offer("printer:temperature", 3, False, 11, 0) == HOLD
    assert budget.held == {"printer:progress": "p1", "printer:temperature": 3}
    assert budget.coalesced == 2
    # arrival order of the newest values
    assert list(budget.held) == ["printer:progress", "printer:temperature"]


def test_bytes_count_too(budget):
    assert budget.offer("printer:status", 1, False, 1, 1001) == HOLD


def test_durable_events_are_always_sent(budget):
    budget.offer("printer:temperature", 1, False, 11, 0)
    assert budget.offer("printer:job_failed", {}, True, 30, 0) == SEND
    assert budget.held == {"printer:temperature": 1}


def test_hysteresis_and_release(budget, clock):
    budget.offer("printer:temperature", 1, False, 11, 0)
    # still above half the limits: stays backed up, nothing released
    assert budget.poll(6, 0) == ([], None)
    assert budget.offer("printer:temperature", 2, False, 6, 0) == HOLD
    out, reason = budget.poll(5, 500)
    assert reason is None and out == [("printer:temperature", 2)]
    assert not budget.backed_up and budget.held == {}
    assert budget.offer("printer:temperature", 3, False, 6, 0) == SEND
    assert budget.sent_held == 1


def test_held_values_keep_newer_ones_waiting_until_poll(budget):
    budget.offer("printer:temperature", 1, False, 11, 0)
    budget.poll(6, 0)
    # drained in the meantime, but a held temperature must not be overtaken
    assert budget.offer("printer:temperature", 2, False, 0, 0) == HOLD
    assert budget.offer("printer:progress", "p", False, 0, 0) == SEND
    out, _ = budget.poll(0, 0)
    assert out == [("printer:temperature", 2)]


def test_disconnects_after_grace(budget, clock):
    budget.offer("printer:temperature", 1, False, 11, 0)
    clock.now += 4.9
    assert budget.poll(11, 0) == ([], None)
    clock.now += 0.1
    out, reason = budget.poll(11, 0)
    assert out == [] and "slow client" in reason and "5s" in reason
    # stays disconnected, and holds nothing more
    v = budget.offer("printer:job_started", {}, True, 0, 0)
    assert v.action is Action.DISCONNECT and v.reason == reason
    assert budget.held == {}


def test_a_break_resets_grace(budget, clock):
    budget.offer("printer:temperature", 1, False, 11, 0)
    clock.now += 4
    budget.poll(0, 0)
    clock.now += 0.5
    budget.offer("printer:temperature", 1, False, 11, 0)
    clock.now += 4
    assert budget.poll(11, 0)[1] is None


def test_hard_limit_disconnects_at_once(budget):
    v = budget.offer("printer:job_started", {}, True, 41, 0)
    assert v.action is Action.DISCONNECT and "hard limit" in v.reason
    b2 = ClientBudget(Limits(max_messages=10, max_bytes=1000), lambda: 0.0)
    assert b2.poll(0, 4001)[1] is not None


def test_zero_grace(clock):
    b = ClientBudget(Limits(max_messages=1, max_bytes=10, grace=0), clock)
    assert b.offer("printer:temperature", 1, False, 2, 0) == HOLD
    assert b.poll(2, 0)[1] is not None


@pytest.mark.parametrize(
    "kw", [{"max_messages": 0}, {"max_bytes": 0}, {"grace": -1}, {"hard": 0.5}]
)
def test_limits_validate(kw):
    with pytest.raises(ValueError):
        Limits(**kw)


def test_held_is_bounded_by_event_names(budget):
    for i in range(1000):
        budget.offer(
            ("printer:temperature", "printer:progress", "printer:status")[i % 3],
            i,
            False,
            11,
            0,
        )
    assert len(budget.held) == 3


def test_budgets_poll_many(clock):
    budgets = Budgets(Limits(max_messages=10, max_bytes=1000, grace=2), clock)
    queued = {"a": 0, "b": 20, "c": 0}
    for sid in queued:
        budgets.add(sid)
    assert budgets.offer("a", "printer:temperature", 1, False, queued["a"]) == SEND
    assert budgets.offer("b", "printer:temperature", 1, False, queued["b"]) == HOLD
    send, drop = budgets.poll(lambda sid: (queued[sid], 0))
    assert send == {} and drop == {}
    queued["b"] = 0
    send, drop = budgets.poll(lambda sid: (queued[sid], 0))
    assert send == {"b": [("printer:temperature", 1)]} and drop == {}
    budgets.offer("c", "printer:status", 1, False, 20)
    clock.now += 3
    send, drop = budgets.poll(lambda sid: (queued[sid], 0) if sid != "c" else (20, 0))
    assert list(drop) == ["c"]
    budgets.remove("c")
    assert set(budgets.stats()) == {"a", "b"}
    budgets.set_limits(Limits(max_messages=100, max_bytes=10))
    assert budgets.clients["a"].limits.max_messages == 100


def test_clear_is_send_without_changing_anything():
    clock = Clock()
    b = ClientBudget(Limits(max_messages=10, max_bytes=1000, grace=2), clock)
    assert b.clear(0, 1000) and not b.clear(11, 0) and not b.clear(0, 1001)
    assert b.offer("printer:temperature", 1, False, 0, 1000) == SEND
    b.offer("printer:temperature", 1, False, 20, 0)  # over: held from now
    assert not b.clear(0, 0)


def test_a_batched_client_skips_ticks_while_busy_or_over_and_goes_when_over_long():
    clock = Clock()
    b = ClientBudget(Limits(max_messages=10, max_bytes=1000, grace=2), clock)
    assert b.tick(0, 0, busy=False) == SEND
    assert b.tick(0, 10, busy=True) == HOLD  # its socket still writes: skip
    assert not b.backed_up  # ...without being over budget
    assert b.tick(0, 2000, busy=True) == HOLD  # over: skip, the grace starts
    clock.now += 1
    assert b.tick(0, 600, busy=False) == HOLD  # hysteresis: still over half
    clock.now += 1.5
    verdict = b.tick(0, 600, busy=False)
    assert verdict.action is Action.DISCONNECT and "over its outbound budget" in (
        verdict.reason or ""
    )
    fresh = ClientBudget(Limits(max_messages=10, max_bytes=1000), clock)
    assert fresh.tick(0, 4001, busy=True).action is Action.DISCONNECT  # 4x: at once
