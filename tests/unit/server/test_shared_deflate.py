"""deflate_shared: every frame a client gets, in every interleaving of joins,
leaves, skipped frames, per-client messages and time, inflates to what was sent,
through real zlib inflaters kept per client as a browser keeps them."""

from __future__ import annotations

import json
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.server.shared_deflate import TAIL, SharedStreams

CLIENTS = ["c0", "c1", "c2", "c3", "c4"]
COHORTS = ["rooms-a", "rooms-b"]


def standalone(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def message(i: int, temp: int) -> bytes:
    # status-like JSON: mostly the same keys and values, so the window pays off
    return json.dumps(
        {"seq": i, "ts": 1700000000000 + i, "printer": "p", "tool0": {"actual": temp}},
        separators=(",", ":"),
    ).encode()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


op = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(CLIENTS), st.sampled_from(COHORTS)),
    st.tuples(st.just("leave"), st.sampled_from(CLIENTS), st.none()),
    st.tuples(
        st.just("broadcast"),
        st.sampled_from(COHORTS),
        st.sets(st.sampled_from(CLIENTS), max_size=3),  # members skipped this time
    ),
    st.tuples(st.just("private"), st.sampled_from(CLIENTS), st.none()),
    st.tuples(st.just("tick"), st.floats(0, 3), st.none()),
    st.tuples(st.just("upgrade"), st.sampled_from(CLIENTS), st.none()),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(op, max_size=120), st.floats(0, 2.5))
def test_every_frame_inflates_to_what_was_sent(ops, sync_interval):
    clock = Clock()
    streams = SharedStreams(clock, sync_interval=sync_interval)
    inflaters: dict[str, object] = {}
    member: dict[str, str] = {}
    n = 0
    shared_frames = 0
    for kind, a, b in ops:
        if kind == "join":
            if a not in inflaters:  # a new connection: a new inflater
                inflaters[a] = zlib.decompressobj(-zlib.MAX_WBITS)
            member[a] = b
            streams.join(a, b)
        elif kind == "leave":
            member.pop(a, None)
            inflaters.pop(a, None)
            streams.leave(a)
        elif kind == "upgrade":
            # polling -> websocket: the same client gets a fresh inflater
            if a in member:
                inflaters[a] = zlib.decompressobj(-zlib.MAX_WBITS)
                streams.leave(a)
                streams.join(a, member[a])
        elif kind == "private":
            # per-client messages go with RSV1 clear: the inflater never sees them
            pass
        elif kind == "tick":
            clock.now += a
        else:
            n += 1
            data = message(n, n % 7)
            targets = [c for c, cohort in member.items() if cohort == a and c not in b]
            plan = streams.plan(a, data, targets)
            assert sorted(plan.synced + plan.alone) == sorted(targets)
            alone = standalone(data)
            for client in plan.synced:
                shared_frames += 1
                got = inflaters[client].decompress(plan.shared + TAIL)
                assert got == data, (client, n)
            for client in plan.alone:
                assert inflaters[client].decompress(alone + TAIL) == data, (client, n)
            for client in b:  # skipped: got nothing, so it is off its stream now
                if member.get(client) == a:
                    assert not streams.is_synced(client)
    # nothing is left for clients that left
    assert set(streams.cohort_of) == set(member)


def test_shared_frames_are_smaller_once_the_window_is_warm():
    clock = Clock()
    streams = SharedStreams(clock, sync_interval=2.0)
    for client in CLIENTS:
        streams.join(client, "rooms-a")
    sizes_shared, sizes_alone = [], []
    for i in range(200):
        data = message(i, i % 5)
        plan = streams.plan("rooms-a", data, CLIENTS)
        if i == 0:
            assert plan.synced == sorted(CLIENTS)  # nobody synced yet: sync at once
        sizes_shared.append(len(plan.shared))
        sizes_alone.append(len(standalone(data)))
    # the same JSON again and again: the shared window makes it a fraction
    assert sum(sizes_shared[10:]) * 2 < sum(sizes_alone[10:])
    assert streams.stats()["streams"] == 1


def test_a_late_joiner_waits_for_the_next_sync_point_and_costs_the_others_one():
    clock = Clock()
    streams = SharedStreams(clock, sync_interval=2.0)
    streams.join("old", "rooms-a")
    streams.plan("rooms-a", message(1, 1), ["old"])
    streams.join("new", "rooms-a")
    plan = streams.plan("rooms-a", message(2, 1), ["old", "new"])
    assert plan.synced == ["old"] and plan.alone == ["new"]
    clock.now += 2.0
    plan = streams.plan("rooms-a", message(3, 1), ["old", "new"])
    assert plan.synced == ["new", "old"] and plan.alone == []
    assert streams.streams["rooms-a"].syncs == 2


def test_a_skipped_frame_takes_a_client_off_the_stream():
    clock = Clock()
    streams = SharedStreams(clock, sync_interval=5.0)
    for client in ("a", "b"):
        streams.join(client, "rooms-a")
    streams.plan("rooms-a", message(1, 1), ["a", "b"])
    streams.plan("rooms-a", message(2, 1), ["a"])  # b is over budget: held
    assert not streams.is_synced("b") and streams.diverged == 1
    plan = streams.plan("rooms-a", message(3, 1), ["a", "b"])
    assert plan.alone == ["b"]
