"""deflate_shared: every frame a client gets, in every interleaving of joins,
leaves, skipped frames, per-client messages and time, inflates to what was sent,
through real zlib inflaters kept per client as a browser keeps them."""

from __future__ import annotations

import json
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.server.shared_deflate import TAIL, CohortStream

CLIENTS = ["c0", "c1", "c2", "c3", "c4"]
COHORTS = ["view-a", "view-b"]


class M:
    """What CohortStream reads and writes on a member (server/members.py)."""

    def __init__(self, name: str):
        self.name = name
        self.gen = self.seen = 0
        self.shared_ok = False

    def __repr__(self) -> str:
        return self.name


def standalone(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def message(i: int, temp: int) -> bytes:
    # status-like JSON: mostly the same keys and values, so the window pays off
    return json.dumps(
        {"seq": i, "ts": 1700000000000 + i, "printer": "p", "tool0": {"actual": temp}},
        separators=(",", ":"),
    ).encode()


def send(stream: CohortStream, data: bytes, members: list, now: float, inflaters):
    """One broadcast as server/fanout.py writes it; each member inflates it."""
    body = stream.body(data, members, now)
    alone = standalone(data)
    shared = 0
    for m in members:
        if m.shared_ok:
            assert body is not None
            got = inflaters[m.name].decompress(body + TAIL)
            shared += 1
        else:
            got = inflaters[m.name].decompress(alone + TAIL)
        assert got == data, (m, data)
    return shared


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
    now = 0.0
    streams = {c: CohortStream(sync_interval) for c in COHORTS}
    inflaters: dict[str, object] = {}
    members: dict[str, M] = {}
    cohort_of: dict[str, str] = {}
    n = 0
    for kind, a, b in ops:
        if kind == "join":
            if a not in inflaters:  # a new connection: a new inflater
                inflaters[a] = zlib.decompressobj(-zlib.MAX_WBITS)
                members[a] = M(a)
            cohort_of[a] = b
            members[a].gen = members[a].seen = 0  # what Cohort.add does
        elif kind == "leave":
            cohort_of.pop(a, None)
            inflaters.pop(a, None)
            members.pop(a, None)
        elif kind == "upgrade":
            # polling -> websocket: the same client gets a fresh inflater, and its
            # first frames on the websocket are its first on any stream
            if a in cohort_of:
                inflaters[a] = zlib.decompressobj(-zlib.MAX_WBITS)
                members[a].gen = members[a].seen = 0
        elif kind == "private":
            # per-client messages go with RSV1 clear: the inflater never sees them
            pass
        elif kind == "tick":
            now += a
        else:
            n += 1
            targets = [
                members[c] for c, co in cohort_of.items() if co == a and c not in b
            ]
            frames = streams[a].frames
            send(streams[a], message(n, n % 7), targets, now, inflaters)
            for c in b:  # skipped a frame of its stream: off it now
                if cohort_of.get(c) == a and streams[a].frames > frames:
                    assert not streams[a].synced(members[c])


def test_shared_frames_are_smaller_once_the_window_is_warm():
    stream = CohortStream(2.0)
    members = [M(c) for c in CLIENTS]
    inflaters = {c: zlib.decompressobj(-zlib.MAX_WBITS) for c in CLIENTS}
    sizes_shared, sizes_alone = [], []
    for i in range(200):
        data = message(i, i % 5)
        body = stream.body(data, members, 0.0)
        if i == 0:  # nobody synced yet: a sync point at once
            assert all(m.shared_ok for m in members)
        for m in members:
            assert inflaters[m.name].decompress(body + TAIL) == data
        sizes_shared.append(len(body))
        sizes_alone.append(len(standalone(data)))
    # the same JSON again and again: the shared window makes it a fraction
    assert sum(sizes_shared[10:]) * 2 < sum(sizes_alone[10:])
    assert stream.syncs == 1 and stream.frames == 200


def test_a_late_joiner_waits_for_the_next_sync_point_and_costs_the_others_one():
    stream = CohortStream(2.0)
    old, new = M("old"), M("new")
    inflaters = {m.name: zlib.decompressobj(-zlib.MAX_WBITS) for m in (old, new)}
    send(stream, message(1, 1), [old], 0.0, inflaters)
    assert send(stream, message(2, 1), [old, new], 1.0, inflaters) == 1
    assert old.shared_ok and not new.shared_ok
    assert send(stream, message(3, 1), [old, new], 2.0, inflaters) == 2
    assert stream.syncs == 2


def test_a_skipped_frame_takes_a_client_off_the_stream():
    stream = CohortStream(5.0)
    a, b = M("a"), M("b")
    inflaters = {m.name: zlib.decompressobj(-zlib.MAX_WBITS) for m in (a, b)}
    send(stream, message(1, 1), [a, b], 0.0, inflaters)
    send(stream, message(2, 1), [a], 0.0, inflaters)  # b is over budget: held
    assert stream.synced(a) and not stream.synced(b)
    send(stream, message(3, 1), [a, b], 1.0, inflaters)
    assert a.shared_ok and not b.shared_ok
    send(stream, message(4, 1), [a, b], 5.0, inflaters)  # the next sync point
    assert a.shared_ok and b.shared_ok and stream.synced(b)
