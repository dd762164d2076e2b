"""Batches (printer:subscribe {batch: ms}) with real parts: two real OctoPrints
(Virtual Printer, FluxPrint) behind a ``fluxprint-hub``, and at the plugin itself.

At the hub, side by side: a single-event python-socketio client, a python client
that subscribes {batch: 250}, a socket.io-client 4 one (tests/hub/batch_client.mjs)
with {batch: 100}, and a "wall" whose token's profile batches from the connect. Both
printers print, pause, resume, cancel, disconnect and reconnect. Then:

- decoded item by item, each batched client's durable events per printer are the
  single client's, in order; its seqs per printer strictly increase;
- a batch holds at most one status, temperature and progress per printer, and it
  is the newest: no newer one of that printer was observed a margin before the tick
  went out;
- after the subscribe's ack (the wall: from the connect) every printer message comes
  in a batch, at most about one per tick;
- the hub stops, both printers make durable events while it is away, it comes back:
  the batched clients resume with their cursors (the replay comes in batches) and,
  against each plugin's own log, lose and duplicate nothing;
- every payload validates against the shipped JSON Schema.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Optional

import pytest
import socketio
from harness.fluxstudio import Proc
from harness.jobs import job_command, wait_job
from harness.validate import validate_records
from octoserver import OctoServer, free_port, gcode_file

from octoprint_fluxprint.core.ticks import NEWEST_WINS
from octoprint_fluxprint.hub.config import hash_token
from tests.hub.conftest import DURABLE, NS, HubProcess, plugin_log

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
FAST = {"serial": {"timeout": {"temperatureAutoreport": 1}}}
WALL_TOKEN = "wall-token-for-the-batch-test"
IDS = ("p0", "p1")
# what the single-event client got this long before a tick went out, the tick had
MARGIN_S = 0.3


class Recorder:
    """A python-socketio client that keeps every message as it came (batches
    decoded item by item on demand) and resumes with a cursor per printer, batch
    items included."""

    def __init__(self, url: str, path: str = "/socket.io/", **kw: Any):
        self.url, self.path = url, path
        self.base_auth: dict = kw.pop("auth", {})
        self.subscribe: Optional[dict] = kw.pop("subscribe", None)
        self.frames: list[tuple[float, str, Any]] = []
        self.acks: list[dict] = []
        self.cursors: dict[str, int] = {}
        self.lock = threading.Lock()
        self.sio = socketio.Client(reconnection_delay=0.5, reconnection_delay_max=2)
        self.sio.on("*", self._any, namespace=NS)
        self.sio.on("connect", self._connect, namespace=NS)

    def start(self) -> Recorder:
        self.sio.connect(
            self.url,
            socketio_path=self.path,
            namespaces=[NS],
            transports=["websocket"],
            auth=self._auth,
            wait_timeout=10,
        )
        return self

    def _auth(self) -> dict:
        auth = dict(self.base_auth)
        if self.cursors:
            auth["last_seq"] = dict(self.cursors)
        return auth

    def _connect(self) -> None:
        if self.subscribe is not None:
            self.sio.emit(
                "printer:subscribe", self.subscribe, namespace=NS, callback=self._ack
            )

    def _ack(self, ack: dict) -> None:
        with self.lock:
            self.acks.append(ack)
            self.frames.append((time.time(), "~ack", ack))

    def _any(self, event: str, data: Any = None) -> None:
        with self.lock:
            self.frames.append((time.time(), event, data))
            for e, p in items_of(event, data):
                if e in DURABLE:
                    self.cursors[p["printer"]] = max(
                        p["seq"], self.cursors.get(p["printer"], 0)
                    )

    def records(self) -> list[dict]:
        with self.lock:
            return [{"event": e, "data": d} for _t, e, d in self.frames if e[0] != "~"]

    def close(self) -> None:
        self.sio.disconnect()


def items_of(event: str, data: Any) -> list[tuple[str, Any]]:
    if event == "printer:batch":
        return [(e, p) for e, p in data["items"]]
    if isinstance(data, dict) and "seq" in data and "printer" in data:
        return [(event, data)]
    return []


def decoded(frames: list[tuple[float, str, Any]]) -> list[tuple[str, dict]]:
    return [x for _t, e, d in frames for x in items_of(e, d)]


def durable(frames, pid: str) -> list[tuple[int, str]]:
    return [
        (p["seq"], e) for e, p in decoded(frames) if e in DURABLE and p["printer"] == pid
    ]


def node_frames(proc: Proc) -> list[tuple[float, str, Any]]:
    return [
        (m["recv"] / 1000, m["event"], m["data"])
        for m in proc.since()
        if m.get("type") == "frame"
    ]


@pytest.fixture(scope="module")
def second_octo(tmp_path_factory):
    octo = OctoServer(str(tmp_path_factory.mktemp("batch-p1")), config=FAST)
    octo.start()
    try:
        octo.connect_printer()
        yield octo
    finally:
        octo.stop()


@pytest.fixture
def hub(octo, second_octo, tmp_path):
    octos = {"p0": octo, "p1": second_octo}
    for o in octos.values():
        o.ensure_operational()
    cfg = {
        "printers": [
            {"id": pid, "url": o.url, "apikey": o.apikey} for pid, o in octos.items()
        ],
        "auth": {
            "trusted": {"profile": "dashboard"},
            "tokens": [
                {"name": "wall", "sha256": hash_token(WALL_TOKEN), "profile": "wall"}
            ],
        },
        "profiles": {"wall": {"batch": 250}},
    }
    proc = HubProcess(str(tmp_path), cfg, free_port())
    proc.start()
    proc.wait_synced()
    yield proc, octos
    proc.stop()
    for o in octos.values():
        o.ensure_operational()


def activity(octos: dict) -> None:
    """On every printer: a print that completes, one paused, resumed and
    cancelled; on p1 a disconnect and a reconnect."""
    for pid, o in octos.items():
        o.upload(f"batch-{pid}-{time.monotonic_ns()}.gcode", gcode_file(150), print_=True)
    for o in octos.values():
        wait_job(o, lambda s: s.startswith("Operational"), timeout=60)
    for pid, o in octos.items():
        o.upload(f"batch-long-{pid}-{time.monotonic_ns()}.gcode", gcode_file(6000), True)
    for o in octos.values():
        wait_job(o, lambda s: s.startswith("Printing"), timeout=30)
    time.sleep(2)
    for o in octos.values():
        job_command(o, "pause", "pause")
    for o in octos.values():
        wait_job(o, lambda s: s.startswith("Paused"), timeout=30)
        job_command(o, "pause", "resume")
    time.sleep(2)
    for o in octos.values():
        job_command(o, "cancel")
    for o in octos.values():
        wait_job(o, lambda s: s.startswith("Operational"), timeout=60)
    octos["p1"].disconnect_printer()
    octos["p1"].connect_printer()


def quiet(recorders: list, procs: list, seconds: float = 3.0) -> None:
    """Waits until nothing durable arrived for ``seconds`` at any client."""

    def count() -> int:
        n = sum(len(durable(r.frames, pid)) for r in recorders for pid in IDS)
        return n + sum(len(durable(node_frames(p), pid)) for p in procs for pid in IDS)

    last, since = count(), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()


def check_batches(frames, single_frames, tick_s: float, name: str) -> dict:
    """Newest telemetry per printer in each batch, seqs rising per printer, and
    about one batch per tick. "Newest": the single-event client (beside it, on the
    same hub) got no newer one of that printer well before the tick went out."""
    times = [t for t, e, _d in frames if e == "printer:batch"]
    single = [(t, e, p) for t, ev, d in single_frames for e, p in items_of(ev, d)]
    coalesced = 0
    for _t, e, d in frames:
        if e != "printer:batch":
            continue
        seen = set()
        for event, p in d["items"]:
            key = (p["printer"], event)
            if event in NEWEST_WINS:
                assert key not in seen, f"{name}: two {key} in one batch"
                seen.add(key)
                newer = [
                    q["seq"]
                    for t, ev, q in single
                    if ev == event
                    and q["printer"] == p["printer"]
                    and q["seq"] > p["seq"]
                    and t < d["ts"] / 1000 - MARGIN_S
                ]
                assert not newer, (name, event, p["printer"], p["seq"], newer)
        coalesced += len(d["items"]) - len(seen)
    for pid in IDS:
        seqs = [p["seq"] for _e, p in decoded(frames) if p["printer"] == pid]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), (name, pid)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    # at most one per tick (a subscribe, a resume may add one)
    assert len(times) <= span / tick_s + 3, (name, len(times), span)
    return {"batches": len(times), "span_s": round(span, 1)}


def test_batches_carry_what_single_events_carry(hub, event_schema, artifacts_dir):
    proc, octos = hub
    single = Recorder(proc.url).start()
    batched = Recorder(proc.url, subscribe={"batch": 250}).start()
    wall = Recorder(proc.url, auth={"token": WALL_TOKEN}).start()
    node = Proc(
        os.path.join(HERE, "batch_client.mjs"),
        log_path=os.path.join(artifacts_dir, "hub-batch-node.out"),
        args=(json.dumps({"url": proc.url, "batch": 2000, "printers": list(IDS)}),),
    )
    try:
        node.wait_for(lambda m: m.get("type") == "subscribed", 15)
        deadline = time.monotonic() + 10
        while not batched.acks and time.monotonic() < deadline:
            time.sleep(0.1)
        assert batched.acks[0]["ok"] and batched.acks[0]["batch"] == 250
        bad = batched.sio.call("printer:subscribe", {"batch": 20}, namespace=NS)
        assert bad == {
            "ok": False,
            "error": "invalid batch: batch is 0 (single events) or 50 to 10000 ms, not 20",
        }
        activity(octos)
        quiet([single, batched, wall], [node])

        report = {}
        for name, frames, tick in (
            ("python", batched.frames, 0.25),
            ("wall", wall.frames, 0.25),
            ("node", node_frames(node), 2.0),
        ):
            for pid in IDS:
                want = durable(single.frames, pid)
                assert len(want) >= 6, (pid, want)
                assert durable(frames, pid) == want, (name, pid)
            report[name] = check_batches(frames, single.frames, tick, name)
        # after the ack every printer message came batched; the wall from the start
        acked = next(i for i, f in enumerate(batched.frames) if f[1] == "~ack")
        after = {e for _t, e, _d in batched.frames[acked:]}
        assert after <= {"printer:batch", "printer:printers", "~ack"}, after
        assert {e for _t, e, _d in wall.frames} == {"printer:batch", "printer:printers"}
        statuses = [p for e, p in decoded(wall.frames) if e == "printer:status"]
        assert {p["printer"] for p in statuses[:2]} == set(IDS)  # its join, batched
        for r in (single, batched, wall):
            validate_records(event_schema, r.records())
        validate_records(
            event_schema, [{"event": e, "data": d} for _t, e, d in node_frames(node)]
        )

        # the hub goes away, durable events happen, it comes back: resumes
        mark = {pid: max(s for s, _e in durable(single.frames, pid)) for pid in IDS}
        proc.stop()
        for pid, o in octos.items():
            o.upload(
                f"batch-away-{pid}-{time.monotonic_ns()}.gcode", gcode_file(100), True
            )
        for o in octos.values():
            wait_job(o, lambda s: s.startswith("Operational"), timeout=60)
        proc.start()
        proc.wait_synced()
        logs = {
            pid: [
                (s, e) for s, e in plugin_log(o.basedir) if s > mark[pid] and e in DURABLE
            ]
            for pid, o in octos.items()
        }
        clients = {"python": batched, "wall": wall}

        def got(pid: str) -> dict:
            out = {n: durable(r.frames, pid) for n, r in clients.items()}
            out["node"] = durable(node_frames(node), pid)
            return {n: [x for x in v if x[0] > mark[pid]] for n, v in out.items()}

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            len(v) >= len(logs[pid]) for pid in IDS for v in got(pid).values()
        ):
            time.sleep(0.5)
        quiet([batched, wall], [node])
        for pid in IDS:
            assert logs[pid], pid
            for name, mine in got(pid).items():
                assert mine == logs[pid], (name, pid, mine, logs[pid])
            report.setdefault("resumed", {})[pid] = len(logs[pid])
        print(f"\nbatches: {report}")
    finally:
        node.stop()
        for r in (single, batched, wall):
            r.close()


def test_batches_at_the_plugin(octo, event_schema):
    """The same engine at the plugin: a client that asks for ticks gets its durable
    events in batches, as an unbatched client gets them one by one; a status asked
    for without an ack comes in its next batch."""
    octo.ensure_operational()
    auth = {"apikey": octo.apikey}
    path = "/plugin/fluxprint/socket.io/"
    single = Recorder(octo.url, path=path, auth=auth).start()
    batched = Recorder(octo.url, path=path, auth=auth, subscribe={"batch": 200}).start()
    try:
        deadline = time.monotonic() + 10
        while not batched.acks and time.monotonic() < deadline:
            time.sleep(0.1)
        assert batched.acks[0]["batch"] == 200
        octo.upload(f"batch-plugin-{time.monotonic_ns()}.gcode", gcode_file(150), True)
        wait_job(octo, lambda s: s.startswith("Printing"), timeout=30)
        batched.sio.emit("printer:request_status", namespace=NS)
        wait_job(octo, lambda s: s.startswith("Operational"), timeout=60)
        quiet([single, batched], [], 2.0)
        pid = decoded(single.frames)[0][1]["printer"]
        want = [(s, e) for s, e in durable(single.frames, pid)]
        assert len(want) >= 2 and durable(batched.frames, pid) == want
        acked = next(i for i, f in enumerate(batched.frames) if f[1] == "~ack")
        assert {e for _t, e, _d in batched.frames[acked:]} <= {"printer:batch", "~ack"}
        seqs = [p["seq"] for _e, p in decoded(batched.frames)]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        statuses = [
            p for e, p in decoded(batched.frames[acked:]) if e == "printer:status"
        ]
        assert statuses  # the answer to request_status, in a batch
        for r in (single, batched):
            validate_records(event_schema, r.records())
    finally:
        single.close()
        batched.close()
