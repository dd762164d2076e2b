"""Cohorts as the engine runs them (server/cohorts.py, membership.py): batched
clients' ticks, a client joining in the middle of a tick, a lagging client
skipping ticks, clients moving between views. Real Engine, Delivery, cohorts,
Namespace and RelayedPrinters (the hub's); fakes only for the socket writes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.mirror import EventMirror
from octoprint_fluxprint.core.relay import RelayedPrinter
from octoprint_fluxprint.core.ticks import NEWEST_WINS
from octoprint_fluxprint.core.views import View
from octoprint_fluxprint.server.clock import Clock
from octoprint_fluxprint.server.engine import Engine
from octoprint_fluxprint.server.feeds import Feed
from octoprint_fluxprint.server.sessions import ClientInfo

from .test_resume_seam import FakeIOLoop


class FakeLink:
    mode = 2  # server/fanout.py's FRAMES: a websocket

    def __init__(self, sid: str):
        self.sid = sid

    def unsent(self) -> int:
        return 10  # a lagging client's socket still writes


class Writer:
    """server/fanout.py's Writer, recording frames per client; ``lagging``: the
    clients whose socket is not clear (their budget then decides)."""

    direct_writes = queued_writes = 0
    pace_until = 0.0

    def __init__(self) -> None:
        self.frames: dict[str, list[tuple[str, Any]]] = {}
        self.lagging: set[str] = set()
        self.sends = 0  # send() calls: builds shared by the clients of a cohort

    def link(self, member: Any) -> Any:
        return FakeLink(member.sid)

    def clear(self, member: Any, link: Any) -> bool:
        return member.sid not in self.lagging

    def measure(self, member: Any, link: Any) -> tuple[int, int]:
        return 0, 10

    def record(self, sid: str, encoded: str) -> None:
        event, payload = json.loads(encoded[encoded.index(",") + 1 :])
        self.frames.setdefault(sid, []).append((event, payload))

    def send(self, members, outs, stream, now, gate=None) -> int:
        self.sends += 1
        written = 0
        for m in members:
            for out in outs:
                if m.sid not in self.lagging or gate(m, None, out):
                    out.packet()
                    self.record(m.sid, out.encoded)
                    written += 1
        return written

    def write_private(self, link: Any, encoded: str, synced: bool = True) -> bool:
        self.record(link.sid, encoded)
        return True

    def decoded(self, sid: str) -> list[tuple[str, dict]]:
        """Every frame of a client, batches unpacked item by item."""
        out = []
        for event, payload in self.frames.get(sid, []):
            if event == S.EV_BATCH:
                out += [(e, p) for e, p in payload["items"]]
            else:
                out.append((event, payload))
        return out


def make_hub(printers=("a", "b")):
    engine = Engine(authenticate=lambda auth, environ: None)
    engine.namespace.multi = True
    engine.start(FakeIOLoop(asyncio.get_running_loop()))
    writer = engine.delivery.writer = engine.delivery.cohorts.writer = Writer()
    states = {}
    for pid in printers:
        mirror = EventMirror()
        state = states[pid] = RelayedPrinter(engine.feed_sink(pid, mirror), Clock(), pid)
        engine.add_feed(Feed(key=pid, state=state, log=mirror, blocking_log=False))
    return engine, states, writer


def connect(engine: Engine, sid: str, batch: int = 0, printers=None) -> None:
    info = engine.sessions.clients[sid] = ClientInfo(
        sid=sid, user="u", remote="127.0.0.1", since=0
    )
    keys = sorted(printers or engine.namespace.feeds)
    engine.namespace.membership.add(
        sid, "eio-" + sid, info, View.initial(keys, batch=batch), set()
    )
    for key in keys:
        engine.namespace._enter(sid, key, None)


class Plugin:
    """What the plugins relay: seqs per printer, statuses, telemetry, jobs."""

    def __init__(self, states: dict):
        self.states = states
        self.seq = dict.fromkeys(states, 0)

    def send(self, pid: str, event: str, **body) -> int:
        self.seq[pid] += 1
        payload = {**body, "seq": self.seq[pid], "ts": 1000 + self.seq[pid]}
        payload["printer"] = pid
        if event == S.EV_STATUS:
            payload.update(state={}, temperature={}, job={}, progress={}, connection={})
        self.states[pid].on_payload(event, payload)
        return self.seq[pid]


async def ticks(n: float = 1) -> None:
    await asyncio.sleep(0.06 * n)


def test_a_batch_decoded_item_by_item_is_what_a_single_event_client_got():
    async def scenario():
        engine, states, writer = make_hub()
        plugin = Plugin(states)
        for pid in states:
            plugin.send(pid, S.EV_STATUS)
        connect(engine, "single")
        connect(engine, "batched", batch=50)
        for i in range(40):
            pid = "ab"[i % 2]
            plugin.send(pid, S.EV_TEMPERATURE, tool0={"actual": i})
            if i % 7 == 0:
                plugin.send(pid, S.EV_JOB_PAUSED if i % 2 else S.EV_JOB_RESUMED)
            if i % 10 == 0:
                await ticks()
        await ticks(2)
        return writer

    writer = asyncio.run(scenario())
    single, batched = writer.decoded("single"), writer.decoded("batched")
    assert all(e == S.EV_BATCH for e, _ in writer.frames["batched"])
    assert len(writer.frames["batched"]) < len(writer.frames["single"]) / 4
    for pid in ("a", "b"):
        one = [(e, p["seq"]) for e, p in single if p["printer"] == pid]
        many = [(e, p["seq"]) for e, p in batched if p["printer"] == pid]
        assert [x for x in many if x[0] not in NEWEST_WINS] == [
            x for x in one if x[0] not in NEWEST_WINS
        ]
        seqs = [s for _e, s in many]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        newest = max(s for e, s in one if e == S.EV_TEMPERATURE)
        assert max(s for e, s in many if e == S.EV_TEMPERATURE) == newest


def test_clients_of_one_view_share_a_build_and_a_late_joiner_gets_its_own_first():
    async def scenario():
        engine, states, writer = make_hub()
        plugin = Plugin(states)
        plugin.send("a", S.EV_STATUS)
        for sid in ("c1", "c2", "c3"):
            connect(engine, sid, batch=50)
        await ticks(2)  # their statuses went, each in its own first tick
        writer.sends = 0
        plugin.send("a", S.EV_TEMPERATURE, tool0={"actual": 1})
        await ticks(2)
        shared_sends = writer.sends
        before = plugin.send("a", S.EV_TEMPERATURE, tool0={"actual": 2})
        connect(engine, "late", batch=50)  # in the middle of a tick
        after = plugin.send("a", S.EV_JOB_PAUSED)
        await ticks(2)
        return writer, shared_sends, before, after, engine

    writer, shared_sends, before, after, engine = asyncio.run(scenario())
    assert shared_sends == 1  # three clients, one build
    assert len(engine.delivery.cohorts.by_id) == 1
    late = [(e, p["seq"]) for e, p in writer.decoded("late") if p["printer"] == "a"]
    assert late[0][0] == S.EV_STATUS
    assert (S.EV_TEMPERATURE, before) not in late  # from before it joined
    assert (S.EV_JOB_PAUSED, after) in late
    assert [s for _e, s in late][1:] == sorted(s for _e, s in late[1:])


def test_a_lagging_client_skips_ticks_newest_telemetry_wins_no_durable_is_lost():
    async def scenario():
        engine, states, writer = make_hub(printers=("a",))
        plugin = Plugin(states)
        plugin.send("a", S.EV_STATUS)
        connect(engine, "fast", batch=50)
        connect(engine, "slow", batch=50)
        await ticks(2)
        writer.lagging.add("slow")
        frames_before = len(writer.frames["slow"])
        durable = []
        for i in range(10):
            plugin.send("a", S.EV_TEMPERATURE, tool0={"actual": i})
            if i in (3, 6):
                durable.append(plugin.send("a", S.EV_JOB_PAUSED))
            await ticks(0.5)
        skipped = len(writer.frames["slow"]) - frames_before
        last = plugin.send("a", S.EV_TEMPERATURE, tool0={"actual": 99})
        writer.lagging.discard("slow")
        await ticks(2)
        return writer, skipped, durable, last, frames_before

    writer, skipped, durable, last, frames_before = asyncio.run(scenario())
    assert skipped == 0  # nothing written while it lagged
    (catch_up,) = writer.frames["slow"][frames_before:]  # then one batch
    items = [(e, p["seq"]) for e, p in catch_up[1]["items"]]
    assert [s for e, s in items if e == S.EV_JOB_PAUSED] == durable
    assert [s for e, s in items if e == S.EV_TEMPERATURE] == [last]  # newest only
    fast = [p["seq"] for e, p in writer.decoded("fast") if e == S.EV_TEMPERATURE]
    assert len(fast) >= 5 and fast[-1] == last


def test_moving_views_keeps_what_the_tick_held_and_stopping_sends_it_at_once():
    async def scenario():
        engine, states, writer = make_hub()
        plugin = Plugin(states)
        plugin.send("a", S.EV_STATUS)
        plugin.send("b", S.EV_STATUS)
        connect(engine, "c", batch=1000)
        await ticks(3)  # its first tick: the statuses (a tenth of a tick in)
        first = len(writer.frames["c"])
        held_a = plugin.send("a", S.EV_JOB_PAUSED)
        plugin.send("b", S.EV_JOB_PAUSED)
        ack = await engine.namespace._on_subscribe("c", {"printers": ["a"]})
        await ticks(1)
        moved = len(writer.frames["c"]) - first  # the 1 s tick has not come yet
        ack2 = await engine.namespace._on_subscribe("c", {"batch": 0})
        return writer, ack, ack2, first, moved, held_a, engine

    writer, ack, ack2, first, moved, held_a, engine = asyncio.run(scenario())
    assert ack["ok"] and ack["batch"] == 1000 and ack["printers"] == ["a"]
    assert ack2["ok"] and ack2["batch"] == 0
    assert moved == 0
    (last,) = writer.frames["c"][first:]  # stopping: the tick's held items at once
    assert last[0] == S.EV_BATCH
    assert [(e, p["printer"], p["seq"]) for e, p in last[1]["items"]] == [
        (S.EV_JOB_PAUSED, "a", held_a)  # b is not watched any more: dropped
    ]
    assert len(engine.delivery.cohorts.by_id) == 1  # the old views' cohorts went
