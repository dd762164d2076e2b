"""The seam between replay from the log and live emission: every durable event with
seq > since exactly once, ascending, whatever the interleaving."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.core.replay import (
    DURABLE_EVENTS,
    Plan,
    ReplaySession,
    merge_seam,
    parse_since,
    plan_resume,
)


def item(seq: int, event: str = "printer:job_started") -> tuple:
    return (seq, event, {"seq": seq})


def seqs(items) -> list[int]:
    return [i[0] for i in items]


# ~~ merge_seam examples


def test_plain_replay_then_live():
    out = merge_seam(3, [item(4), item(6)], [item(8), item(9)])
    assert seqs(out) == [4, 6, 8, 9]


def test_overlap_is_dropped():
    out = merge_seam(3, [item(4), item(6), item(8)], [item(6), item(8), item(9)])
    assert seqs(out) == [4, 6, 8, 9]


def test_live_at_or_below_since_is_dropped():
    assert seqs(merge_seam(5, [], [item(2), item(5), item(7)])) == [7]


def test_live_below_last_replayed_is_dropped_even_if_not_replayed():
    # cannot happen with an in-order log; the seam still never goes backwards
    assert seqs(merge_seam(0, [item(5)], [item(3), item(6)])) == [5, 6]


def test_unsorted_and_duplicated_inputs():
    out = merge_seam(0, [item(3), item(1), item(3)], [item(9), item(4), item(9), item(2)])
    assert seqs(out) == [1, 3, 4, 9]


def test_empty():
    assert merge_seam(10, [], []) == []


def test_payloads_are_passed_through():
    a = (4, "printer:connection", {"state": "error"})
    assert merge_seam(0, [a], []) == [a]


# ~~ the session, step by step


def test_session_buffers_until_finish_then_goes_live():
    s = ReplaySession(10)
    assert s.offer_live(item(12)) is False
    assert s.offer_live(item(11)) is False
    assert seqs(s.take_page([item(11)])) == [11]
    assert seqs(s.finish()) == [12]
    assert s.live and s.cursor == 12
    assert s.offer_live(item(12)) is False  # already sent
    assert s.offer_live(item(13)) is True
    assert s.offer_live(item(13)) is False
    assert s.duplicates == 3


def test_session_pages():
    s = ReplaySession(0)
    assert seqs(s.take_page([item(1), item(2)])) == [1, 2]
    assert s.cursor == 2
    assert seqs(s.take_page([item(2), item(3)])) == [3]
    assert s.replayed == 3


def test_session_buffer_is_bounded():
    s = ReplaySession(0, max_buffer=3)
    for seq in range(1, 10):
        s.offer_live(item(seq))
    assert s.overflow
    assert len(s.finish()) == 3


# ~~ planning


@pytest.mark.parametrize(
    "since,horizon,issued,plan",
    [
        (0, 0, 0, Plan.REPLAY),
        (5, 0, 10, Plan.REPLAY),
        (10, 10, 10, Plan.REPLAY),
        (9, 10, 20, Plan.RESYNC),  # events 10.. may be pruned
        (0, 1, 20, Plan.RESYNC),
        (21, 0, 20, Plan.RESYNC),  # from the future: another install's log
    ],
)
def test_plan_resume(since, horizon, issued, plan):
    assert plan_resume(since, horizon, issued) is plan


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, [1], 2**64])
def test_parse_since_refuses(bad):
    with pytest.raises(ValueError):
        parse_since(bad)


def test_parse_since_accepts():
    assert parse_since(None) is None
    assert parse_since(0) == 0
    assert parse_since(123) == 123


def test_durable_events():
    assert "printer:connection" in DURABLE_EVENTS
    assert "printer:temperature" not in DURABLE_EVENTS
    assert len(DURABLE_EVENTS) == 6


# ~~ the property: a simulated log, loop and client


@st.composite
def scenarios(draw):
    gaps = draw(st.lists(st.integers(1, 5), min_size=0, max_size=40))
    stream = []
    seq = 0
    for g in gaps:
        seq += g
        stream.append(seq)
    since = draw(st.integers(0, seq + 2))
    limit = draw(st.integers(1, 8))
    # a random interleaving of what the writer, the loop and the reader do
    actions = draw(
        st.lists(st.sampled_from(["commit", "callback", "start", "page"]), max_size=200)
    )
    return stream, since, limit, actions


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_replay_seam_never_duplicates_or_misses(scenario):
    stream, since, limit, actions = scenario
    committed = 0  # writer: events committed, in seq order
    called = 0  # loop: on_durable callbacks processed (never ahead of commits)
    session = None
    sent: list[int] = []

    def page():
        rows = [item(s) for s in stream[:committed] if s > session.cursor][:limit]
        out = session.take_page(rows)
        sent.extend(seqs(out))
        return len(rows) < limit

    def callback():
        nonlocal called
        ev = item(stream[called])
        called += 1
        if session is None:
            return  # emitted to the room before this client started to resume
        if session.offer_live(ev):
            sent.append(ev[0])

    for action in actions:
        if action == "commit" and committed < len(stream):
            committed += 1
        elif action == "callback" and called < committed:
            callback()
        elif action == "start" and session is None:
            session = ReplaySession(since)
        elif action == "page" and session is not None and not session.live:
            if page():
                sent.extend(seqs(session.finish()))
    # run everything to the end
    if session is None:
        session = ReplaySession(since)
    while not session.live:
        if page():
            sent.extend(seqs(session.finish()))
    while committed < len(stream):
        committed += 1
    while called < committed:
        callback()
    # the client saw the events emitted before it started resuming only if it
    # presented since >= them; everything after since comes exactly once, in order
    assert sent == [s for s in stream if s > since]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 30),
    st.lists(st.integers(1, 40), max_size=30),
    st.lists(st.integers(1, 40), max_size=30),
)
def test_merge_seam_properties(since, replayed, live):
    # replayed rows come from an in-order log: a prefix-closed set above since
    replayed = sorted(set(s for s in replayed if s > since))
    out = seqs(merge_seam(since, [item(s) for s in replayed], [item(s) for s in live]))
    assert out == sorted(set(out))  # strictly ascending: no duplicates
    assert all(s > since for s in out)
    assert out[: len(replayed)] == replayed
    top = replayed[-1] if replayed else since
    assert out[len(replayed) :] == sorted(set(s for s in live if s > top))
