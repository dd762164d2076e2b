"""The resume seam as the engine runs it (issue 12, the chaos duplicate): the cause,
two interleavings of the event log's writer thread (COMMIT, then each event's
``on_durable`` hop to the loop), the replay's read in the executor, and the loop.

- duplicate: the read sees a row whose ``on_durable`` hop has not reached the loop
  yet; the replay sends it, finishes; then the hop delivers the same seq to the
  client's room again. Fixed: the session stays, live, after the replay, and
  ``offer_live`` drops what the replay sent.
- gap (a client connecting with ``auth.last_seq``): it joined its rooms only after
  the replay, so a durable event committed after the read's snapshot but delivered
  on the loop before the read returned was neither in the pages nor offered to the
  session. Fixed: it enters its rooms before the first read.

Real Engine, Delivery, cohorts, Resumer, Namespace, PrinterState and ReplaySession;
fakes only for the socket writes and the log's writer."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from typing import Any

import pytest

from octoprint_fluxprint.core.printer import PrinterState
from octoprint_fluxprint.core.views import View
from octoprint_fluxprint.server.clock import Clock
from octoprint_fluxprint.server.engine import Engine
from octoprint_fluxprint.server.sessions import ClientInfo
from octoprint_fluxprint.store.eventfile import Row

INTERVALS = {"status": 0.0, "temperature": 0.0, "progress": 0.0}


class FakeLog:
    """EventLog's contract: append queues; the writer COMMITs a batch, then calls each
    on_durable. Here the test decides when each of the two happens."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued: list[tuple] = []
        self.committed: list[Row] = []
        self.callbacks: list[Any] = []  # committed, on_durable not called yet
        self.on_read: Any = None  # runs in the executor, after the read's snapshot

    def append(self, seq, event, payload, ts, on_durable=None) -> None:
        with self.lock:
            self.queued.append((seq, event, payload, ts, on_durable))

    def commit(self) -> None:
        with self.lock:
            for seq, event, payload, ts, cb in self.queued:
                self.committed.append(
                    Row(seq, ts, event, json.loads(json.dumps(payload)))
                )
                self.callbacks.append(cb)
            self.queued.clear()

    def call_back(self) -> None:
        with self.lock:
            callbacks, self.callbacks = self.callbacks, []
        for cb in callbacks:
            cb()

    def read_since(self, seq: int, limit: int = 1000) -> list[Row]:
        with self.lock:
            rows = [r for r in self.committed if r.seq > seq][:limit]
        if self.on_read is not None:
            hook, self.on_read = self.on_read, None
            hook()
        return rows

    def horizon(self) -> int:
        return 0

    def oldest_seq(self):
        return self.committed[0].seq if self.committed else None

    def last_seq(self) -> int:
        return self.committed[-1].seq if self.committed else 0


class FakeIOLoop:
    """tornado's IOLoop.add_callback: thread-safe, FIFO, run later on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.asyncio_loop = loop

    def add_callback(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)


class FakeWriter:
    """server/fanout.py's Writer, recording (event, payload) per client."""

    direct_writes = queued_writes = 0
    pace_until = 0.0

    def __init__(self, received: dict[str, list[tuple[str, dict]]]):
        self.received = received

    def link(self, member: Any) -> Any:
        return member.sid

    def clear(self, member: Any, link: Any) -> bool:
        return True

    def measure(self, member: Any, link: Any) -> tuple[int, int]:
        return 0, 0

    def record(self, sid: str, encoded: str) -> None:
        event, payload = json.loads(encoded[encoded.index(",") + 1 :])
        self.received.setdefault(sid, []).append((event, payload))

    def send(self, members, outs, stream, now, gate=None) -> int:
        for m in members:
            for out in outs:
                out.packet()
                self.record(m.sid, out.encoded)
        return len(members) * len(outs)

    def write_private(self, link: Any, encoded: str, synced: bool = True) -> bool:
        self.record(link, encoded)
        return True


def make_engine(loop: asyncio.AbstractEventLoop):
    engine = Engine(authenticate=lambda auth, environ: None)
    received: dict[str, list[tuple[str, dict]]] = {}
    seq = itertools.count(1)
    state = PrinterState(
        sink=engine.delivery,
        clock=Clock(),
        next_seq=lambda: next(seq),
        printer_id="p",
        intervals=INTERVALS,
    )
    log = FakeLog()
    engine.attach(FakeIOLoop(loop), state, eventlog=log, last_seq=lambda: 10**9)
    engine.delivery.writer = engine.delivery.cohorts.writer = FakeWriter(received)
    return engine, state, log, received


def connect(engine: Engine, sid: str, masked: bool = False) -> None:
    """A client in the namespace (as _after_connect leaves it): in its view's
    cohort, the printer masked when it joins it by a replay."""
    info = engine.sessions.clients[sid] = ClientInfo(
        sid=sid, user="u", remote="127.0.0.1", since=0
    )
    engine.namespace.membership.add(
        sid, "eio-" + sid, info, View.initial([""]), {""} if masked else set()
    )


def durable_seqs(messages) -> list[int]:
    return [p["seq"] for e, p in messages if e.startswith("printer:job_")]


def job_started(state: PrinterState) -> None:
    state.on_event("PrintStarted", {"name": "a.gcode", "path": "a.gcode"}, 1_000_000)


async def resume(engine: Engine, sid: str, since: int, join: bool) -> None:
    """What the namespace does: a connect with a cursor (join) or a subscribe
    {since} of a client already in its rooms."""
    namespace = engine.namespace
    if join:
        namespace._enter(sid, "", since)
        await asyncio.sleep(0)
        while (sid, "") in namespace.resumer.joining:
            await asyncio.sleep(0.001)
    else:
        feed = namespace.feeds[""]
        await namespace.resumer.resume(
            sid, feed, since, lambda: feed.state.after_replay(sid)
        )


@pytest.mark.parametrize("join", [True, False])
def test_row_read_before_its_on_durable_hop_is_sent_once(join):
    """Writer: COMMIT of seq N, then (later) its on_durable hop. The resume's read
    sees N in between, and the replay finishes before the hop reaches the loop."""

    async def scenario():
        engine, state, log, received = make_engine(asyncio.get_running_loop())
        connect(engine, "c", masked=join)  # else subscribed, resumes with {since}
        job_started(state)  # seq N: queued for the writer, waiting in the outbox
        log.commit()  # committed; on_durable not called yet
        await resume(engine, "c", 0, join)
        kept = ("c", "") in engine.delivery.replaying  # its seam is not past yet
        log.call_back()  # the writer's on_durable -> loop.add_callback(_durable)
        await asyncio.sleep(0.01)
        member = engine.delivery.cohorts.members["c"]
        # the outbox went past the seam: the session retired, the client is plain
        retired = ("c", "") not in engine.delivery.replaying and not member.special
        seqs = durable_seqs(received.get("c", []))
        return seqs, engine.delivery.seam_duplicates, kept, retired

    seqs, dropped, kept, retired = asyncio.run(scenario())
    assert seqs == sorted(set(seqs)), f"duplicate durable event: {seqs}"
    assert len(seqs) == 1 and dropped == 1
    assert kept and retired


@pytest.mark.parametrize("join", [True, False])
def test_commit_and_hop_between_read_snapshot_and_read_return_is_not_lost(join):
    """The read takes its snapshot; then seq N is committed and its on_durable hop is
    queued on the loop ahead of the read's own completion."""

    async def scenario():
        engine, state, log, received = make_engine(asyncio.get_running_loop())
        connect(engine, "c", masked=join)
        job_started(state)  # seq N queued, not committed

        def writer_runs_now():
            log.commit()
            log.call_back()  # call_soon_threadsafe(_durable): ahead of the read's result

        log.on_read = writer_runs_now
        await resume(engine, "c", 0, join)
        await asyncio.sleep(0.01)
        return durable_seqs(received.get("c", []))

    seqs = asyncio.run(scenario())
    assert seqs == sorted(set(seqs)), f"duplicate durable event: {seqs}"
    assert len(seqs) == 1, f"durable event lost at the seam: {seqs}"


def test_a_joining_client_is_not_ready_until_its_status_is_out():
    async def scenario():
        engine, state, log, received = make_engine(asyncio.get_running_loop())
        connect(engine, "c", masked=True)
        gate = threading.Event()
        log.on_read = gate.wait  # the read blocks until we let it go
        engine.namespace._enter("c", "", 0)
        await asyncio.sleep(0.05)
        during = await engine.namespace._on_subscribe("c", {"intervals": {"status": 5}})
        gate.set()
        while ("c", "") in engine.namespace.resumer.joining:
            await asyncio.sleep(0.001)
        after = await engine.namespace._on_subscribe("c", {"intervals": {"status": 5}})
        return during, after, [e for e, _ in received.get("c", [])]

    during, after, events = asyncio.run(scenario())
    assert during == {"ok": False, "error": "not ready"}
    assert after["ok"] is True
    assert events[-1] == "printer:status"
