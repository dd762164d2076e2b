"""Batch ticks (core/ticks.py): newest telemetry per printer, every durable event,
in the order they happened; lagging clients' backlogs; when a tick goes out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.core import delta as D
from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from octoprint_fluxprint.core.ticks import (
    NEWEST_WINS,
    Item,
    TickBuffer,
    Ticker,
    batch_json,
)

EVENTS = [S.EV_STATUS, S.EV_TEMPERATURE, S.EV_PROGRESS, S.EV_JOB_STARTED, S.EV_RESYNC]
PRINTERS = ["a", "b", "c"]


def item(printer: str, event: str, seq: int, **body) -> Item:
    return Item(printer, event, {"seq": seq, "ts": seq, "printer": printer, **body})


def test_newest_telemetry_wins_and_moves_after_what_came_before():
    tick = TickBuffer()
    tick.add(item("a", S.EV_TEMPERATURE, 1))
    tick.add(item("a", S.EV_JOB_STARTED, 2))
    tick.add(item("b", S.EV_TEMPERATURE, 3))
    tick.add(item("a", S.EV_TEMPERATURE, 4))
    got = [(i.feed, i.event, i.seq) for i in tick.items()]
    assert got == [
        ("a", S.EV_JOB_STARTED, 2),
        ("b", S.EV_TEMPERATURE, 3),
        ("a", S.EV_TEMPERATURE, 4),
    ]
    assert len(tick) == 3 and tick.coalesced == 1 and tick.kept == 1


def test_durable_events_and_resyncs_are_never_coalesced():
    tick = TickBuffer()
    for seq in range(1, 6):
        tick.add(item("a", S.EV_JOB_PAUSED if seq % 2 else S.EV_RESYNC, seq))
    assert [i.seq for i in tick.items()] == [1, 2, 3, 4, 5]


def test_deltas_are_merged_so_no_change_is_lost():
    tick = TickBuffer()
    full = {"seq": 1, "ts": 1, "printer": "a", "tool0": 1, "bed": 2}
    tick.add(Item("a", S.EV_TEMPERATURE, full))
    tick.add(Item("a", S.EV_TEMPERATURE, {"seq": 2, "delta": True, "tool0": 3}))
    tick.add(Item("a", S.EV_TEMPERATURE, {"seq": 3, "delta": True, "bed": 4}))
    (merged,) = tick.items()
    assert merged.payload == {"seq": 3, "ts": 1, "printer": "a", "tool0": 3, "bed": 4}
    assert merged.json is None  # a new payload: encoded again


def test_take_leaves_the_rest_in_order_and_drop_filters():
    tick = TickBuffer()
    for seq in range(1, 8):
        tick.add(item(PRINTERS[seq % 3], S.EV_JOB_PAUSED, seq))
    assert [i.seq for i in tick.take(3)] == [1, 2, 3]
    assert [i.seq for i in tick.items()] == [4, 5, 6, 7]
    assert tick.drop(lambda i: i.feed != "a") == 1  # seq 6
    assert [i.seq for i in tick.take(10)] == [4, 5, 7]
    assert not tick and len(tick) == 0


def test_the_batch_json_is_the_event_payloads_as_json():
    parts = [(S.EV_STATUS, json.dumps({"seq": 1})), (S.EV_JOB_STARTED, '{"seq":2}')]
    assert json.loads(batch_json(12, parts)) == {
        "ts": 12,
        "items": [[S.EV_STATUS, {"seq": 1}], [S.EV_JOB_STARTED, {"seq": 2}]],
    }
    assert json.loads(batch_json(5, [])) == {"ts": 5, "items": []}


def test_the_ticker_gathers_a_burst_then_sends_at_most_once_per_period():
    ticker = Ticker(0.25)
    assert ticker.arm(10.0) == pytest.approx(10.025)  # a tenth of a tick: a burst
    assert ticker.arm(10.01) is None  # armed already
    ticker.fired(10.025)
    assert ticker.arm(10.1) == pytest.approx(10.275)  # a whole tick after the last
    ticker.fired(10.275)
    assert ticker.arm(11.0) == pytest.approx(11.025)  # quiet for longer: soon


stream = st.lists(
    st.tuples(st.sampled_from(PRINTERS), st.sampled_from(EVENTS)), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(stream, st.lists(st.integers(0, 60), max_size=4))
def test_ticks_hold_what_single_events_would_have_told(messages, cuts):
    """Cut a stream of messages into ticks anywhere: decoded item by item, each
    printer's durable events are exactly the single events' (in order), each
    printer's telemetry ends at its newest, and seq never goes back per printer."""
    ticks, tick = [], TickBuffer()
    for seq, (printer, event) in enumerate(messages, 1):
        tick.add(item(printer, event, seq))
        if seq in cuts:
            ticks.append(tick.take(10_000))
    ticks.append(tick.take(10_000))
    decoded = [i for t in ticks for i in t]
    for printer in PRINTERS:
        sent = [(s, e) for s, (p, e) in enumerate(messages, 1) if p == printer]
        got = [(i.seq, i.event) for i in decoded if i.feed == printer]
        kept = [x for x in sent if x[1] not in NEWEST_WINS]
        assert [x for x in got if x[1] not in NEWEST_WINS] == kept
        assert [s for s, _ in got] == sorted(s for s, _ in got)
        for event in NEWEST_WINS:
            mine = [s for s, e in sent if e == event]
            if mine:
                assert max(s for s, e in got if e == event) == mine[-1]
    assert DURABLE_EVENTS.isdisjoint(NEWEST_WINS)


def test_compose_is_what_newest_wins_uses():
    a = {"seq": 1, "x": 1}
    assert D.compose(a, {"seq": 2, "x": 2}) == {"seq": 2, "x": 2}
