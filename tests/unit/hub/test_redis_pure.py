"""The redis source's pure bits: its config, reader grouping, registry liveness
(clock passed in), and the replay source's cache/Redis split with a fake Redis."""

from __future__ import annotations

import asyncio

import pytest

from octoprint_fluxprint.core.liveness import (
    OFFLINE,
    ONLINE,
    STALE,
    Liveness,
    registry_online,
)
from octoprint_fluxprint.core.mirror import EventMirror, Row
from octoprint_fluxprint.hub import config as C
from octoprint_fluxprint.hub.identity import HubIdentity
from octoprint_fluxprint.hub.sources import redis_replay as RR
from octoprint_fluxprint.hub.sources.redis_parts import Groups

SHA = "ab" * 32


def parse(raw, env=None):
    return C.parse(raw, env or {})


# ~~ config


def test_redis_needs_no_printers_and_has_the_contract_defaults():
    cfg = parse({"source": "redis"})
    assert cfg.dynamic and cfg.printers == []
    r = cfg.redis
    assert (r.url, r.prefix, r.streams_per_read, r.block_ms, r.cache_events) == (
        "redis://127.0.0.1:6379/0",
        "fluxprint",
        256,
        1000,
        1000,
    )


def test_redis_url_from_the_environment_and_kept_out_of_reprs():
    url = "redis://:secret@10.0.0.5:6380/2"
    cfg = parse({"source": "redis"}, {"FLUXPRINT_HUB_REDIS_URL": url})
    assert cfg.redis.url == url
    assert "secret" not in repr(cfg.redis)


def test_redis_printers_are_an_allow_list_without_url_or_apikey():
    cfg = parse(
        {
            "source": "redis",
            "printers": [{"id": "a"}, {"id": "b"}],
            "auth": {"trusted": {"profile": "dashboard"}},
        }
    )
    assert not cfg.dynamic and [p.id for p in cfg.printers] == ["a", "b"]


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"source": "direct"}, "printers: the direct source needs at least one"),
        ({"printers": [{"id": "a", "apikey": "k"}]}, "printers.0.url: missing"),
        ({"source": "redis", "redis": {"prot": 1}}, "redis.prot: unknown key"),
        ({"source": "redis", "redis": {"url": "http://x"}}, "redis.url:"),
        (
            {"source": "redis", "redis": {"streams_per_read": 0}},
            "redis.streams_per_read:",
        ),
        ({"source": "redis", "redis": {"block_ms": 1}}, "redis.block_ms:"),
        ({"source": "kafka"}, "source:"),
        (
            {
                "source": "redis",
                "printers": [{"id": "a"}],
                "auth": {"tokens": [{"name": "t", "sha256": SHA, "printers": ["b"]}]},
            },
            "auth.tokens.0.printers: unknown printer 'b'",
        ),
        (
            {
                "source": "redis",
                "auth": {"tokens": [{"name": "t", "sha256": SHA, "printers": ["a b"]}]},
            },
            "auth.tokens.0.printers: unknown printer 'a b'",
        ),
    ],
)
def test_errors_name_the_key(raw, needle):
    with pytest.raises(C.ConfigError) as info:
        parse(raw)
    assert needle in str(info.value)


def test_tokens_may_name_printers_that_register_later():
    cfg = parse(
        {
            "source": "redis",
            "auth": {"tokens": [{"name": "t", "sha256": SHA, "printers": ["later"]}]},
        }
    )
    identity = HubIdentity(cfg)
    assert identity.tokens[0][1].printers == frozenset({"later"})
    # the fluxstudio trusted entry names none: every printer that registers
    assert identity.trusted.printers is None


# ~~ grouping


def test_printers_are_grouped_streams_per_read_to_a_reader():
    groups = Groups(3)
    assert [groups.add(f"p{i}") for i in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    assert groups.add("p4") == 1  # once
    assert groups.groups == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6"]]


# ~~ liveness from the registry (clock passed in)


def test_registry_online_follows_state_and_last_seen():
    now = 1_000_000
    assert registry_online({"lastSeen": now - 2000, "state": "online"}, now, 10)
    assert not registry_online({"lastSeen": now - 10_000}, now, 10)
    assert not registry_online({"lastSeen": now, "state": "offline"}, now, 10)
    assert not registry_online({"lastSeen": "x"}, now, 10)


def test_redis_link_liveness_stale_then_offline_then_online():
    live = Liveness(stale_after=3, offline_after=6)
    live.up(0.0)
    live.message(1.0)
    assert live.state(2.0) == ONLINE
    assert live.state(4.5) == STALE  # silent: no keyframe came
    live.message(5.0)
    assert live.state(5.1) == ONLINE
    live.down(6.0)  # Redis went away
    assert live.state(7.0) == STALE
    assert live.state(12.5) == OFFLINE
    live.up(13.0)  # Redis is back: the printer's publisher may not be yet
    assert live.state(13.1) == STALE
    live.message(14.0)  # something flows from it
    assert live.state(14.1) == ONLINE


def test_what_came_before_the_link_dropped_does_not_make_it_online():
    live = Liveness(stale_after=3, offline_after=6)
    live.up(0.0)
    live.message(1.0)
    live.down(1.5)
    live.up(2.0)  # back within stale_after of the last message: not online yet
    assert live.state(2.1) == STALE
    live.down(3.0)
    live.message(3.5)  # flowed while the registry still had it down (the readers
    live.up(4.0)  # came back before the poller): it counts
    assert live.state(4.1) == ONLINE


# ~~ the replay source


class FakeState:
    def __init__(self, last_seq: int):
        self.last_seq = last_seq


class FakeSource:
    def __init__(self, rows: list[Row]):
        self.rows = rows
        self.reads: list[tuple[int, int, int]] = []
        self.refreshed = 0

    async def read_durable(self, pid, cursor, upto, count):
        self.reads.append((cursor, upto, count))
        return [r for r in self.rows if cursor < r.seq <= upto][:count]

    async def refresh_oldest(self, pids):
        self.refreshed += 1


def rows(seqs):
    return [Row(s, "printer:job_started", {"seq": s}, 0) for s in seqs]


def make(seqs, cache_events, last_seq):
    source = FakeSource(rows(seqs))
    cache = EventMirror(cache_events)
    for row in rows(seqs):
        cache.append(row.seq, row.event, row.payload, 0)
    replay = RR.RedisReplay(source, "p", cache, FakeState(last_seq))
    replay.oldest = seqs[0]
    return source, cache, replay


def run(coro):
    return asyncio.run(coro)


def test_a_cursor_in_the_cache_never_reads_redis():
    source, _cache, replay = make(list(range(1, 21)), 5, 20)
    got = run(replay.read_async(17, 500))
    assert [r.seq for r in got] == [18, 19, 20] and source.reads == []
    assert replay.from_cache == 3


def test_an_older_cursor_reads_redis_up_to_the_cache_then_the_cache():
    source, cache, replay = make(list(range(1, 21)), 5, 20)
    assert cache.horizon() == 15
    got = run(replay.read_async(3, 500))
    assert [r.seq for r in got] == list(range(4, 21))
    assert source.reads == [(3, 15, 500)]
    assert (replay.from_redis, replay.from_cache) == (12, 5)
    # paged: a full Redis page continues from its last row
    got = run(replay.read_async(3, 4))
    assert [r.seq for r in got] == [4, 5, 6, 7]


def test_pages_from_redis_never_pass_the_relayed_top():
    # Redis holds more than this hub relayed (it is behind another hub): those come live
    source, cache, replay = make(list(range(1, 11)), 0, 6)
    assert cache.horizon() == 10  # no cache: the floor is the last relayed durable
    replay.cache = EventMirror(0)
    replay.cache.set_horizon(6)
    got = run(replay.read_async(2, 500))
    assert [r.seq for r in got] == [3, 4, 5, 6]


def test_horizon_is_what_redis_and_the_cache_retain():
    _source, _cache, replay = make(list(range(10, 21)), 5, 20)
    assert replay.horizon() == 9  # Redis's first entry - 1 (the cache floor is 15)
    replay.oldest = 18  # trimmed: the cache reaches further back
    assert replay.horizon() == 15
    replay.oldest = None  # nothing in Redis's durable stream
    assert replay.horizon() == 0


def test_catch_up_waits_for_the_hub_to_relay_a_cursor_from_ahead(monkeypatch):
    monkeypatch.setattr(RR, "CATCH_UP_S", 0.2)
    source, _cache, replay = make(list(range(1, 11)), 100, 10)

    async def ahead():
        task = asyncio.ensure_future(replay.catch_up(12))
        await asyncio.sleep(0.01)
        assert not task.done()
        replay.state.last_seq = 12
        replay.relayed(12)
        await asyncio.wait_for(task, 0.1)

        started = asyncio.get_running_loop().time()
        await replay.catch_up(50)  # never comes: bounded
        return asyncio.get_running_loop().time() - started

    waited = run(ahead())
    assert 0.15 < waited < 1.0
    assert replay._waiters == []
    # a cursor in the cache needs no round trip; one below it refreshes the oldest
    run(replay.catch_up(5))
    assert source.refreshed == 0
    replay.cache = EventMirror(2)
    for s in range(1, 11):
        replay.cache.append(s, "printer:job_started", {"seq": s}, 0)
    run(replay.catch_up(5))
    assert source.refreshed == 1


def test_check_a_redis_config(tmp_path, capsys):
    from octoprint_fluxprint.hub import cli

    path = tmp_path / "hub.yaml"
    path.write_text("source: redis\nredis: {prefix: farm}\n")
    assert cli.main(["--config", str(path), "--check"]) == 0
    assert "printers as they register" in capsys.readouterr().out
    path.write_text("source: redis\nredis: {block_ms: 5}\n")
    assert cli.main(["--config", str(path), "--check"]) == cli.EXIT_CONFIG
    assert "redis.block_ms" in capsys.readouterr().err


def test_a_new_printers_snapshot_starts_at_its_latest_status():
    from octoprint_fluxprint.hub.sources.redis_parts import snapshot_of

    def entry(seq, event):
        return (f"{seq}-0".encode(), {b"e": event.encode(), b"d": b"{}"})

    newest_first = [
        entry(9, "printer:temperature"),
        entry(8, "printer:job_started"),
        entry(7, "printer:status"),
        entry(6, "printer:temperature"),
        entry(5, "printer:status"),
    ]
    snapshot, start, top = snapshot_of(newest_first)
    assert [e[0] for e in snapshot] == [b"9-0", b"8-0", b"7-0"]
    assert (start, top) == (6, 9)  # relayed from the status on; the cache from 6
    assert snapshot_of(newest_first[:2]) == ([], 9, 9)  # no status: after the top
    assert snapshot_of([]) == ([], 0, 0)


# ~~ the registry heartbeat keeps a quiet printer online


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_a_heartbeat_that_moves_on_keeps_a_quiet_printer_fresh():
    from octoprint_fluxprint.core import streams as ST
    from octoprint_fluxprint.hub.sources.redis import RedisSource, _Printer

    now = [1_000_000]
    events = Recorder()
    source = RedisSource(parse({"source": "redis"}), events, wall_ms=lambda: now[0])
    source.up = True
    source.printers["p0"] = _Printer("p0", 0)

    def record(seen):
        return {b"p0": ST.registry_record("p0", "p0", "1", "i", seen, 5)}

    async def polls():
        await source._registry(record(now[0]))  # first seen: the link is up
        await source._registry(record(now[0]))  # the same beat: nothing new
        now[0] += 2000
        await source._registry(record(now[0]))  # a new beat: alive
        now[0] += 20_000
        await source._registry(record(now[0] - 20_000))  # no beat for 20 s: gone

    asyncio.run(polls())
    names = [c[0] for c in events.calls]
    assert names == ["on_link", "on_heartbeat", "on_link", "on_connect_failed"], names
    assert events.calls[0] == ("on_link", "p0", True)
    assert events.calls[2] == ("on_link", "p0", False)


def test_a_mirror_reset_is_empty_as_new():
    from octoprint_fluxprint.core.mirror import EventMirror

    m = EventMirror(max_events=2)
    for seq in (5, 6, 7):
        m.append(seq, "printer:job_started", {"seq": seq}, 0)
    assert m.horizon() == 5 and m.last_seq() == 7
    m.reset()  # the plugin reinstalled: its seqs start again
    assert (m.count(), m.horizon(), m.last_seq(), m.oldest_seq()) == (0, 0, 0, None)
    assert m.append(1, "printer:job_started", {"seq": 1}, 0)
    assert [r.seq for r in m.read_since(0)] == [1]


def test_a_record_of_another_install_is_a_reinstall():
    from octoprint_fluxprint.hub.sources.redis import reinstalled_as

    assert reinstalled_as("a", {"instance": "b"})
    assert not reinstalled_as("a", {"instance": "a"})
    assert not reinstalled_as("", {"instance": "b"})  # nothing known yet
    assert not reinstalled_as("a", {})  # a record without one says nothing
