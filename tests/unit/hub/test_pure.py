"""The hub's pure pieces: the relayed printer, the mirror, liveness, backoff,
cursors; with fake clocks and sinks."""

from __future__ import annotations

import pytest

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.backoff import Backoff
from octoprint_fluxprint.core.liveness import OFFLINE, ONLINE, STALE, Liveness
from octoprint_fluxprint.core.mirror import EventMirror
from octoprint_fluxprint.core.relay import RelayedPrinter
from octoprint_fluxprint.core.replay import Plan, parse_cursors, plan_resume
from tests.unit.core.fakes import FakeClock, FakeSink


def payload(seq, ts=1000, **body):
    return {**body, "seq": seq, "ts": ts, "printer": "plugin-name"}


def make():
    clock = FakeClock()
    sink = FakeSink(clock)
    return clock, sink, RelayedPrinter(sink, clock, "a")


def test_relays_payloads_as_they_are_and_drops_repeats():
    _clock, sink, state = make()
    state.add_client("c1")
    sink.sent.clear()
    temp = payload(5, tool0={"actual": 20.0, "target": 0.0, "offset": 0})
    assert state.on_payload(S.EV_TEMPERATURE, temp)
    assert not state.on_payload(S.EV_TEMPERATURE, temp)  # a replay overlap
    assert not state.on_payload(S.EV_TEMPERATURE, payload(4))
    event, sent, room, _ = sink.sent[-1]
    assert event == S.EV_TEMPERATURE and sent["seq"] == 5 and sent["ts"] == 1000
    assert sent["printer"] == "a"  # the hub's id for it
    assert room.startswith("temperature@")
    assert state.duplicates == 2 and state.last_seq == 5


def test_durable_events_go_to_their_room():
    _clock, sink, state = make()
    state.add_client("c1")
    state.on_payload(S.EV_JOB_COMPLETE, payload(9, filename="x.gcode"))
    assert sink.sent[-1][0] == S.EV_JOB_COMPLETE and sink.sent[-1][2] == "jobs"
    assert sink.sent[-1][1]["seq"] == 9


def test_status_for_new_clients_is_the_latest_as_relayed():
    _clock, _sink, state = make()
    state.on_payload(
        S.EV_STATUS,
        payload(
            3,
            state={"text": "Operational"},
            temperature={},
            job={},
            progress={},
            connection={"state": "connected"},
        ),
    )
    state.on_payload(S.EV_TEMPERATURE, payload(4, ts=2000, bed={"actual": 60}))
    status = state.add_client("c1")
    # its own seq: below everything relayed after the join (not a repeat of 4)
    assert status["seq"] == 3 and status["printer"] == "a"
    assert status["state"] == {"text": "Operational"}


def test_status_before_anything_is_relayed_is_well_formed():
    _clock, _sink, state = make()
    status = state.status_payload()
    assert status["connection"]["state"] == "disconnected" and status["seq"] >= 1


def test_keyframes_are_relayed_statuses_never_made_up():
    clock, sink, state = make()
    asked = []
    state.ask_status = lambda: asked.append(clock.now)
    state.on_payload(S.EV_STATUS, payload(3, state={"text": "Operational"}))
    state.add_client("c1")
    state.subscribe("c1", S.SubscribeRequest(keyframe=5.0, intervals={"status": 10}))
    sink.sent.clear()
    sink.advance(10.1)  # (the keyframe: not below the interval) the plugin is silent:
    assert [s for s in sink.sent if s[0] == S.EV_STATUS] == [] and len(asked) == 1
    # nothing made up, the plugin asked; its next status goes through at once
    state.on_payload(S.EV_STATUS, payload(7, ts=2000, state={"text": "Operational"}))
    statuses = [s for s in sink.sent if s[0] == S.EV_STATUS]
    assert [s[1]["seq"] for s in statuses] == [7]
    assert statuses[0][2].startswith("status@")


def test_mirror_is_bounded_and_reads_like_the_log():
    mirror = EventMirror(max_events=3)
    durable = []
    for seq in (2, 4, 6, 8):
        mirror.append(
            seq, "printer:job_started", {"seq": seq}, 0, lambda: durable.append(1)
        )
    assert not mirror.append(8, "x", {}, 0)  # at or below the top: ignored
    assert len(durable) == 4
    assert [r.seq for r in mirror.read_since(0)] == [4, 6, 8]
    assert [r.seq for r in mirror.read_since(4, limit=1)] == [6]
    assert mirror.oldest_seq() == 4 and mirror.last_seq() == 8 and mirror.horizon() == 2
    # a client behind what the mirror holds gets a resync, as from the plugin
    assert plan_resume(1, mirror.horizon(), 8) is Plan.RESYNC
    assert plan_resume(2, mirror.horizon(), 8) is Plan.REPLAY


def test_mirror_horizon_from_a_plugin_resync():
    mirror = EventMirror()
    mirror.set_horizon(99)
    assert mirror.horizon() == 99 and mirror.last_seq() == 99
    assert not mirror.append(50, "x", {}, 0)
    assert mirror.append(100, "x", {}, 0)


def test_liveness_stale_then_offline_then_online():
    live = Liveness(stale_after=5, offline_after=10)
    assert live.state(0) == OFFLINE  # never connected
    live.up(0)
    assert live.state(0.5) == STALE  # linked, nothing came yet
    live.message(1)
    assert live.state(1) == ONLINE
    live.message(4)
    assert live.state(8.9) == ONLINE and live.state(9.1) == STALE  # silent
    live.message(10)
    live.down(11)  # the link dropped: stale until a reconnect fails
    assert live.state(11.5) == STALE
    live.connect_failed(12)
    assert live.state(12) == OFFLINE
    live.up(30)
    assert live.state(30) == STALE
    live.message(30.5)
    assert live.state(30.5) == ONLINE


def test_liveness_offline_after_a_long_cut_without_a_failure():
    live = Liveness(stale_after=5, offline_after=10)
    live.up(0)
    live.down(1)
    assert live.state(10.9) == STALE and live.state(11) == OFFLINE


def test_backoff_grows_caps_jitters_and_resets():
    values = iter([0.0, 1.0, 0.5] + [0.0] * 20)
    b = Backoff(base=0.5, cap=4, jitter=0.5, rand=lambda: next(values))
    assert b.next_delay() == 0.5
    assert b.next_delay() == 0.5  # 1.0 at full jitter
    assert b.next_delay() == 1.5  # 2.0 * 0.75
    delays = [b.next_delay() for _ in range(6)]
    assert max(delays) == 4
    b.connected_for(3)
    assert b.attempts > 0
    b.connected_for(10)
    assert b.attempts == 0


def test_cursors_parse():
    assert parse_cursors(None) is None
    assert parse_cursors(7) == 7
    assert parse_cursors({"a": 1, "b": 0}) == {"a": 1, "b": 0}
    for bad in ({"a": -1}, {"a": True}, {"": 1}, {"a": 1.5}, "3", -1):
        with pytest.raises(ValueError):
            parse_cursors(bad)


def test_subscribe_request_takes_printers_and_cursors():
    req = S.parse_client_payload(
        S.SubscribeRequest, {"printers": ["a"], "since": {"a": 3}}
    )
    assert req.printers == ["a"] and req.since == {"a": 3}
    assert S.parse_client_payload(S.SubscribeRequest, {"since": 4}).since == 4
    with pytest.raises(S.ClientError):
        S.parse_client_payload(S.SubscribeRequest, {"since": {"a": "x"}})


def test_an_unchanged_status_is_not_relayed_again_but_reaches_who_waits():
    """A quiet printer's link asks for a status every 2 s (direct source): the
    answers carry fresh seqs but the same body, and go to no status room; a client
    owed the plugin's next status still gets it."""
    _clock, sink, state = make()
    state.add_client("c1")
    body = {"state": {"text": "Offline"}, "connection": {"state": "disconnected"}}
    state.on_payload(S.EV_STATUS, payload(3, **body))
    assert [e["seq"] for e in sink.events(S.EV_STATUS)] == [3]
    state.on_payload(S.EV_STATUS, payload(4, ts=3000, **body))
    assert [e["seq"] for e in sink.events(S.EV_STATUS)] == [3]
    state.status_later("c1")
    state.on_payload(S.EV_STATUS, payload(5, ts=5000, **body))
    assert [e["seq"] for e in sink.events(S.EV_STATUS)] == [3, 5]
    changed = {**body, "state": {"text": "Operational"}}
    state.on_payload(S.EV_STATUS, payload(6, ts=7000, **changed))
    assert [e["seq"] for e in sink.events(S.EV_STATUS)] == [3, 5, 6]


def test_a_cohort_in_the_rooms_serves_its_clients_statuses_owed():
    """Clients are in the rooms through their cohort (server/cohorts.py): a status
    owed after a replay goes through the cohort's status room, or straight to the
    client when its cohort's room did not take it."""
    _clock, sink, state = make()
    cohort_of = {"x": "C", "y": "D"}
    state.subscriber_of = lambda sid: cohort_of.get(sid, sid)
    state.place("C", channels=S.CHANNELS, requested={})
    state.place("D", channels=["jobs"], requested={})  # no status room
    assert state.joined("C") == [(S.EV_STATUS, state.add_status())]
    state.after_replay("x")
    state.after_replay("y")
    sink.sent.clear()
    state.on_payload(
        S.EV_STATUS,
        payload(4, state={}, temperature={}, job={}, progress={}, connection={}),
    )
    rooms = [(room, p["seq"]) for _e, p, room, _t in sink.sent]
    assert ("status@0", 4) in rooms  # x gets it through C's room
    assert ("@y", 4) in rooms and ("@x", 4) not in rooms
    state.remove_client("C")
    assert "C" not in state.subs and not sink.rooms.get("status@0")


def test_a_profile_may_batch_its_clients_within_bounds():
    from octoprint_fluxprint.hub import config as C
    from octoprint_fluxprint.hub.identity import HubIdentity

    base = {
        "printers": [{"id": "mk4", "url": "http://o", "apikey": "k"}],
        "auth": {"tokens": [{"name": "w", "sha256": "a" * 64, "profile": "wall"}]},
    }
    cfg = C.parse({**base, "profiles": {"wall": {"batch": 250}}}, env={})
    assert cfg.profile("wall").batch == 250 and cfg.profile("dashboard").batch == 0
    identity = HubIdentity(cfg)
    assert identity.tokens[0][1].batch == 250 and identity.trusted.batch == 0
    for bad in (20, 20_000, 2.5, "250"):
        with pytest.raises(C.ConfigError) as err:
            C.parse({**base, "profiles": {"wall": {"batch": bad}}}, env={})
        assert str(err.value).startswith("profiles.wall.batch: ")
    with pytest.raises(C.ConfigError, match="batch is 0 .single events. or 50 to 10000"):
        C.parse({**base, "profiles": {"wall": {"batch": 20}}}, env={})
