"""At the hub, each client's seq per printer strictly increases, the hub's own
messages included (a status for a new client, keyframes, the status after a replay
or a resync, answers to request_status without an ack): nothing the hub sends
repeats a seq or goes below one the client has, and no second seq space exists."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.relay import RelayedPrinter
from tests.unit.core.fakes import FakeClock, FakeSink


class Recording(FakeSink):
    """Who got what, by room membership at the moment of sending."""

    def __init__(self, clock):
        super().__init__(clock)
        self.got: dict[str, list[tuple[str, int]]] = {}

    def emit(self, event, payload, room):
        super().emit(event, payload, room)
        for sid in sorted(self.rooms.get(room, ())):
            self.got.setdefault(sid, []).append((event, payload["seq"]))

    def send_to(self, sid, event, payload):
        super().send_to(sid, event, payload)
        self.got.setdefault(sid, []).append((event, payload["seq"]))


def body(event, seq, ts):
    extra = {
        S.EV_STATUS: {"state": {"text": "Operational"}, "connection": {}},
        S.EV_TEMPERATURE: {"bed": {"actual": seq}},
        S.EV_PROGRESS: {"completion": seq},
        S.EV_JOB_STARTED: {"file": {"name": "x"}},
        S.EV_CONNECTION: {"state": "connected"},
    }[event]
    return {**extra, "seq": seq, "ts": ts, "printer": "p"}


def make():
    clock = FakeClock()
    sink = Recording(clock)
    state = RelayedPrinter(sink, clock, "a")
    asked: list[float] = []
    state.ask_status = lambda: asked.append(clock.now)
    return clock, sink, state, asked


def send(client_seqs: dict[str, list[int]], sid: str, payload: dict) -> None:
    client_seqs.setdefault(sid, []).append(payload["seq"])


def assert_rising(sink: Recording) -> None:
    for sid, got in sink.got.items():
        seqs = [seq for _event, seq in got]
        assert all(a < b for a, b in zip(seqs, seqs[1:])), (sid, got)


def test_a_new_client_then_live():
    clock, sink, state, _ = make()
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 10, 1))
    state.on_payload(S.EV_TEMPERATURE, body(S.EV_TEMPERATURE, 11, 2))
    first = state.add_client("c")
    sink.send_to("c", S.EV_STATUS, first)  # what the namespace does with it
    state.on_payload(S.EV_TEMPERATURE, body(S.EV_TEMPERATURE, 12, 3))
    assert [s for _e, s in sink.got["c"]] == [10, 12]


def test_after_a_replay_the_plugins_next_status_once():
    clock, sink, state, asked = make()
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 10, 1))
    state.add_client("c")  # a client joining by a replay: its status comes after it
    state.on_payload(S.EV_JOB_STARTED, body(S.EV_JOB_STARTED, 11, 2))
    assert state.after_replay("c") == [] and len(asked) == 1
    state.on_payload(S.EV_TEMPERATURE, body(S.EV_TEMPERATURE, 12, 3))
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 13, 4))
    statuses = [s for e, s in sink.got["c"] if e == S.EV_STATUS]
    assert statuses == [13]  # through its room, not a second time directly
    assert_rising(sink)


def test_request_status_without_an_ack_is_the_next_status():
    clock, sink, state, asked = make()
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 10, 1))
    state.add_client("c")
    state.unsubscribe("c", S.UnsubscribeRequest(channels=["status"]))
    state.status_later("c")
    state.status_later("c")  # asked twice: one answer, one upstream request
    assert len(asked) == 1
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 11, 2))
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 12, 3))
    assert sink.got["c"] == [(S.EV_STATUS, 11)]  # directly: not in a status room


def test_a_resync_precedes_the_status_after_it():
    clock, sink, state, _ = make()
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 10, 1))
    state.on_payload(S.EV_TEMPERATURE, body(S.EV_TEMPERATURE, 11, 2))
    state.add_client("c")
    sink.send_to("c", S.EV_RESYNC, state.stamp({"requested": 1, "lastSeq": 11}))
    for event, payload in state.after_replay("c"):
        sink.send_to("c", event, payload)
    state.on_payload(S.EV_STATUS, body(S.EV_STATUS, 12, 3))
    assert [s for _e, s in sink.got["c"]] == [11, 12]


OPS = st.lists(
    st.sampled_from(
        [
            "status",
            "temperature",
            "progress",
            "job",
            "connection",
            "join",
            "replay",
            "resync",
            "ask",
            "keyframe",
            "tick",
            "leave",
        ]
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(OPS, st.integers(0, 2**16))
def test_every_clients_seq_strictly_increases(ops, seed):
    rnd = random.Random(seed)
    clock, sink, state, _ = make()
    seq = 100
    joined: list[str] = []
    ids = iter(f"c{i}" for i in range(1000))
    events = {
        "status": S.EV_STATUS,
        "temperature": S.EV_TEMPERATURE,
        "progress": S.EV_PROGRESS,
        "job": S.EV_JOB_STARTED,
        "connection": S.EV_CONNECTION,
    }
    for op in ops:
        if op in events:
            seq += rnd.randint(1, 3)  # the plugin's seqs, gaps for other clients
            state.on_payload(events[op], body(events[op], seq, seq))
        elif op == "join":
            sid = next(ids)
            joined.append(sid)
            sink.send_to(sid, S.EV_STATUS, state.add_client(sid))
        elif op in ("replay", "resync"):
            sid = next(ids)  # a client connecting with a cursor
            joined.append(sid)
            state.add_client(sid)  # in the rooms before the replay's first read
            if op == "resync":
                sink.send_to(sid, S.EV_RESYNC, state.stamp({"requested": 1}))
            for event, payload in state.after_replay(sid):
                sink.send_to(sid, event, payload)
        elif op == "ask" and joined:
            state.status_later(rnd.choice(joined))
        elif op == "keyframe" and joined:
            state.subscribe(rnd.choice(joined), S.SubscribeRequest(keyframe=5.0))
        elif op == "tick":
            sink.advance(rnd.choice([0.5, 2.0, 6.0]))
        elif op == "leave" and joined:
            state.remove_client(joined.pop(rnd.randrange(len(joined))))
    assert_rising(sink)
