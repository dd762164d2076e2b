"""Delta payloads: the pure functions (property-tested) and the hub's rooms, with
every client's exact stream recorded in order and replayed the way a client would."""

from __future__ import annotations

import random

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core import schemadoc
from octoprint_fluxprint.core.delta import apply_delta, compose, delta_body

from .fakes import FakeSink
from .test_printer import current, make_hub, temps

META = ("seq", "ts", "printer", "trace")

bodies = st.dictionaries(
    st.sampled_from(["tool0", "tool1", "bed", "chamber", "state"]),
    st.one_of(
        st.none(),
        st.integers(0, 3),
        st.dictionaries(st.sampled_from(["actual", "target"]), st.integers(0, 2)),
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(bodies, min_size=1, max_size=12))
def test_deltas_rebuild_every_body(seq):
    state = apply_delta(None, seq[0])
    for previous, body in zip(seq, seq[1:]):
        d = delta_body(previous, body)
        if d is None:
            assert body == previous
            continue
        assert d["delta"] is True
        state = apply_delta(state, d)
        assert state == body


@settings(max_examples=300, deadline=None)
@given(st.lists(bodies, min_size=2, max_size=12), st.integers(1, 10))
def test_composed_deltas_have_the_effect_of_all_of_them(seq, cut):
    # what a held client gets: the messages after `cut` merged into one
    cut = min(cut, len(seq) - 1)
    messages = [seq[0]] + [
        d for a, b in zip(seq, seq[1:]) if (d := delta_body(a, b)) is not None
    ]
    head, tail = messages[:cut], messages[cut:]
    state = None
    for m in head:
        state = apply_delta(state, m)
    held = None
    for m in tail:
        held = compose(held, m)
    if held is not None:
        state = apply_delta(state, held)
    assert state == seq[-1]


def test_compose_full_then_delta_is_full_and_plain_values_are_newest_wins():
    assert compose({"a": 1, "b": 2}, {"b": 3, "delta": True}) == {"a": 1, "b": 3}
    assert compose(1, 2) == 2
    assert compose(
        {"a": 1, "delta": True, "removed": ["c"]},
        {"c": 5, "delta": True, "removed": ["a"]},
    ) == {"c": 5, "delta": True, "removed": ["a"]}


def test_a_delta_without_a_full_message_is_an_error():
    with pytest.raises(ValueError, match="before any full message"):
        apply_delta(None, {"a": 1, "delta": True})


def test_subscribe_request_takes_a_strict_bool():
    assert S.parse_client_payload(S.SubscribeRequest, {"delta": True}).delta is True
    for bad in ("yes", 1, 0, "true"):
        with pytest.raises(S.ClientError, match="invalid delta"):
            S.parse_client_payload(S.SubscribeRequest, {"delta": bad})


# ~~ the hub


class StreamSink(FakeSink):
    """Records what each client receives, in order, with room membership as it is
    at each emission."""

    def __init__(self, clock):
        super().__init__(clock)
        self.streams: dict[str, list[tuple[str, dict]]] = {}

    def emit(self, event, payload, room):
        super().emit(event, payload, room)
        for sid in sorted(self.rooms.get(room, ())):
            self.streams.setdefault(sid, []).append((event, payload))

    def send_to(self, sid, event, payload):
        super().send_to(sid, event, payload)
        self.streams.setdefault(sid, []).append((event, payload))


def make(**intervals):
    return make_hub(StreamSink, **intervals)


def views(stream):
    """What a delta client holds per event after each message, meta stripped."""
    state: dict[str, dict] = {}
    out = []
    for event, payload in stream:
        if event not in S.DELTA_MODELS:
            continue
        state[event] = apply_delta(state.get(event), payload)
        out.append((event, {k: v for k, v in state[event].items() if k not in META}))
    return state, out


def strip(payload):
    return {k: v for k, v in payload.items() if k not in META}


def validate(stream):
    schema = schemadoc.events_json_schema()
    for event, payload in stream:
        jsonschema.Draft202012Validator({**schema, **schema["events"][event]}).validate(
            payload
        )


def drive(hub, clock, sink, steps, rng, on_step=None):
    for i in range(steps):
        clock.now += 0.25
        sink.advance(0)
        kind = rng.random()
        now = clock.wall_ns()
        if kind < 0.4:
            hub.on_temperature(temps(actual=200 + rng.choice([0, 0, 0.5, 1])), now)
        elif kind < 0.8:
            printing = rng.random() < 0.8
            hub.on_current(
                current(
                    "Printing" if printing else "Operational",
                    printing=printing,
                    completion=rng.choice([10.0, 10.0, 11.5]),
                    filepos=rng.choice([100, 100, 150]),
                ),
                now,
            )
        else:
            sink.advance(1.0)
        if on_step:
            on_step(i)


@pytest.mark.parametrize("seed", range(6))
def test_a_delta_client_always_holds_what_a_full_client_holds(seed):
    rng = random.Random(seed)
    hub, sink, clock = make(status=1.0, temperature=0.0, progress=0.5)
    hub.add_client("full")
    hub.add_client("delta")
    ack = hub.subscribe("delta", S.SubscribeRequest(delta=True))
    assert ack["delta"] is True

    def late_joiner(i):
        # joins rooms that already have a history: gets the base first
        if i == 40:
            hub.add_client("late")
            hub.subscribe("late", S.SubscribeRequest(delta=True))
        if i == 70:  # interval change: everybody moves to new rooms
            hub.set_intervals({"status": 2.0, "temperature": 1.0, "progress": 1.0})

    drive(hub, clock, sink, 120, rng, late_joiner)
    sink.advance(5)
    full_state, _ = views(sink.streams["full"])
    for sid in ("delta", "late"):
        state, _ = views(sink.streams[sid])
        for event in S.DELTA_MODELS:
            assert strip(state[event]) == strip(full_state[event]), (sid, event)
        validate(sink.streams[sid])
    deltas = [p for _, p in sink.streams["delta"] if p.get("delta")]
    assert deltas, "no deltas were sent"
    # the late client's first message of each delta event is full
    firsts: dict[str, dict] = {}
    for event, payload in sink.streams["late"]:
        firsts.setdefault(event, payload)
    assert all("delta" not in p for p in firsts.values())


def test_unchanged_temperatures_are_not_sent_to_delta_clients():
    hub, sink, clock = make(temperature=0.0)
    hub.add_client("full")
    hub.add_client("delta")
    hub.subscribe("delta", S.SubscribeRequest(delta=True))
    for _ in range(5):
        clock.now += 2
        hub.on_temperature(temps(actual=21.0), clock.wall_ns())
    full = [p for e, p in sink.streams["full"] if e == S.EV_TEMPERATURE]
    delta = [p for e, p in sink.streams["delta"] if e == S.EV_TEMPERATURE]
    assert len(full) == 5 and len(delta) == 1 and "delta" not in delta[0]
    clock.now += 2
    hub.on_temperature(temps(actual=22.0), clock.wall_ns())
    last = [p for e, p in sink.streams["delta"] if e == S.EV_TEMPERATURE][-1]
    assert last["delta"] is True and set(strip(last)) == {"tool0", "delta"}
    assert last["tool0"]["actual"] == 22.0


def test_switching_back_to_full_and_after_replay_bases():
    hub, sink, clock = make(temperature=0.0, progress=0.0, status=0.0)
    hub.add_client("c")
    hub.subscribe("c", S.SubscribeRequest(delta=True))
    hub.on_temperature(temps(actual=20.0), clock.wall_ns())
    hub.on_current(current("Printing", printing=True, completion=5.0), clock.wall_ns())
    messages = hub.after_replay("c")
    events = [e for e, _ in messages]
    assert sorted(events) == sorted(S.DELTA_MODELS)  # one base per delta room
    assert all("delta" not in p for _, p in messages)
    assert hub.subscribe("c", S.SubscribeRequest(delta=False))["delta"] is False
    before = len(sink.streams["c"])
    clock.now += 1
    hub.on_temperature(temps(actual=20.5), clock.wall_ns())
    new = sink.streams["c"][before:]
    assert new and all("delta" not in p for _, p in new)
    # a full subscription gets a fresh status after a replay
    assert [e for e, _ in hub.after_replay("c")] == [S.EV_STATUS]
