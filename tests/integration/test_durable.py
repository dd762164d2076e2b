"""Issue #5 end to end, against a real OctoPrint with the Virtual Printer: durable
events, resume, resync, slow clients, faults and restarts.

Contract these tests hold the plugin to (see the phase-1 report):

- durable events (job_started/paused/resumed/complete/failed, connection) go to
  ``<data folder>/events.db`` before they are emitted;
- ``auth: {apikey, last_seq: N}`` and ``printer:subscribe {since: N}`` replay every
  durable event with seq > N, in order, then a fresh ``printer:status``, then live;
  ``printer:subscribe {history: minutes}`` answers with ``history`` (a list) in the ack;
- N older than the retention window (or newer than anything issued) gets
  ``printer:resync {requested, oldestSeq, lastSeq}`` then ``printer:status``;
- settings ``event_log: {max_events, max_age_days}`` and ``client_budget:
  {max_messages, max_bytes, grace}``; a client over budget for ``grace`` seconds is
  disconnected; on shutdown clients get ``printer:closing {reason}`` and are
  disconnected, and the log is flushed and closed.

One OctoPrint for the module, restarted in place by the restart and resync tests
(which run last). Everything is timed to keep the module at about three minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any, Optional

import psutil
import pytest
import requests

from octoprint_fluxprint.client import FluxPrintClient
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.harness.jobs import job_command, wait_job
from tests.tools.chaosproxy import ChaosProxy

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
BRIDGE = os.path.join(HERE, "resume_bridge.mjs")
NAMESPACE = "/ws/printing"
PATH = "/plugin/fluxprint/socket.io/"

FLUXPRINT = {
    "temperature_interval": 0,
    "client_budget": {"max_messages": 50, "max_bytes": 4096, "grace": 5},
}
CONFIG = {"serial": {"timeout": {"temperatureAutoreport": 1}}}


# ~~ helpers


class ResumeNode:
    """tests/integration/resume_bridge.mjs: Node socket.io-client that resumes."""

    def __init__(self, url: str, apikey: str, last_seq: Optional[int]):
        self.opts = {
            "url": url,
            "namespace": NAMESPACE,
            "path": PATH,
            "apikey": apikey,
            "lastSeq": last_seq,
            "transports": ["websocket"],
            "reconnectionDelay": 100,
        }
        self.lines: list[dict] = []
        self.cond = threading.Condition()
        self.proc: Optional[subprocess.Popen] = None
        self.stderr: list[str] = []

    def start(self) -> ResumeNode:
        self.proc = subprocess.Popen(
            ["node", BRIDGE, json.dumps(self.opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        self.wait(lambda n: n.connects() >= 1, 15)
        return self

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.lines.append(msg)
                self.cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait(self, pred, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = pred(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = [(m.get("type"), m.get("event")) for m in self.lines[-15:]]
                    raise TimeoutError(f"node: condition not met; last {tail}")
                self.cond.wait(min(left, 0.5))

    def events(self) -> list[dict]:
        return [m for m in self.lines if m["type"] == "event"]

    def durable(self) -> list[dict]:
        return [m for m in self.events() if m["event"] in DURABLE_EVENTS]

    def handled_seqs(self) -> list[int]:
        return [m["data"]["seq"] for m in self.durable() if not m["dup"]]

    def connects(self) -> int:
        return sum(1 for m in self.lines if m["type"] == "connect")

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            assert self.proc.stdin
            self.proc.stdin.write(json.dumps({"op": "close"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
        self.proc = None


def status_seq(octo) -> int:
    r = octo.api("GET", "/api/plugin/fluxprint")
    r.raise_for_status()
    return r.json()["seq"]


def start_print(octo, name: str, lines: int) -> None:
    from octoserver import gcode_file

    octo.upload(name, gcode_file(lines), print_=True)
    wait_job(octo, lambda s: s.startswith("Printing"), 20)


def fatal_error(octo) -> None:
    octo.send_gcode("!!DEBUG:trigger_fatal_error_marlin")


def wait_closed_or_error(octo, timeout: float = 20.0) -> None:
    octo.wait_state(("Error", "Offline", "Closed"), timeout, prefix=True)


def health_clients(octo) -> int:
    r = requests.get(octo.url + "/plugin/fluxprint/health", timeout=5)
    return r.json()["socketio"]["clients"]


def durable_of(client: FluxPrintClient) -> list[dict]:
    return client.durable()


def write_artifact(name: str, data: dict) -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folder = os.environ.get("FLUXPRINT_ARTIFACTS", os.path.join(root, "test-artifacts"))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as f:
        json.dump(data, f, indent=2)


def segments(node: ResumeNode) -> list[list[dict]]:
    """The events of each connection, in arrival order."""
    out: dict[int, list[dict]] = {}
    for m in node.events():
        out.setdefault(m["conn"], []).append(m)
    return [out[k] for k in sorted(out)]


def client(octo, **kw) -> FluxPrintClient:
    kw.setdefault("record", True)
    kw.setdefault("reconnect_delay", 0.2)
    kw.setdefault("rest_interval", 0.5)
    return FluxPrintClient(octo.url, octo.apikey, **kw)


def close_later(c: FluxPrintClient) -> None:
    """Closes the client off the test's thread, for the last tests, after which no
    client count matters: python-engineio 4.15's client can hang a ping period (30 s)
    in disconnect() (see tests/integration/test_restart.py's close)."""
    threading.Thread(target=c.close, daemon=True).start()


# ~~ the server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from octoserver import OctoServer

    octo = OctoServer(
        str(tmp_path_factory.mktemp("durable")), config=CONFIG, fluxprint=dict(FLUXPRINT)
    )
    octo.start()
    try:
        octo.connect_printer()
        yield octo
    finally:
        octo.stop()


@pytest.fixture
def operational(server):
    server.ensure_operational()
    yield server
    server.ensure_operational()


# ~~ chaos


def test_chaos_cuts_while_printing_resume_exactly_once(operational):
    octo = operational
    start = status_seq(octo)
    ref = client(octo, last_seq=start).start()
    proxy = ChaosProxy(("127.0.0.1", octo.port)).start()
    node = ResumeNode(proxy.url, octo.apikey, start).start()
    t0 = time.monotonic()
    try:
        proxy.start_random_cuts(0.15, 0.5, seed=5, refuse=0.1)
        # a print that completes
        start_print(octo, "chaos-complete.gcode", 300)
        wait_job(octo, lambda s: s == "Operational", 30)
        # one paused, resumed and cancelled
        start_print(octo, "chaos-cancel.gcode", 3000)
        time.sleep(1.0)
        job_command(octo, "pause", "pause")
        wait_job(octo, lambda s: s == "Paused", 15)
        time.sleep(0.5)
        job_command(octo, "pause", "resume")
        wait_job(octo, lambda s: s.startswith("Printing"), 15)
        time.sleep(0.5)
        job_command(octo, "cancel")
        wait_job(octo, lambda s: s == "Operational", 30)
        # one killed by a firmware error
        start_print(octo, "chaos-error.gcode", 3000)
        time.sleep(1.0)
        fatal_error(octo)
        wait_closed_or_error(octo)
        octo.connect_printer()
        # more connection events until the proxy has cut often enough
        while proxy.cut_events < 50 and time.monotonic() - t0 < 90:
            octo.disconnect_printer()
            octo.connect_printer()
        proxy.stop_random_cuts()
        assert proxy.cut_events >= 50, f"only {proxy.cut_events} cuts hit a connection"

        # the reference (never cut) and the Node client agree, exactly once, in order
        ref_seqs = lambda: [d["seq"] for d in ref.durable()]  # noqa: E731
        time.sleep(1.0)
        node.wait(lambda n: n.handled_seqs() == ref_seqs(), 20)
        seqs = node.handled_seqs()
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
        dups = [m["data"]["seq"] for m in node.durable() if m["dup"]]
        assert dups == [], "the server sent durable events the client had already"
        assert not [m for m in node.events() if m["event"] == "printer:resync"]
        assert node.connects() >= 10

        kinds = [(d["seq"], e) for e, d in ref.records if e in DURABLE_EVENTS]
        names = [e for _, e in kinds]
        failed = [d for e, d in ref.records if e == "printer:job_failed"]
        assert "printer:job_complete" in names
        assert "printer:job_paused" in names and "printer:job_resumed" in names
        assert sorted(f["reason"] for f in failed) == ["cancelled", "error"]
        assert any(
            e == "printer:connection" and d["state"] == "error" for e, d in ref.records
        )
        assert ref.duplicates == 0

        report = {
            "cuts": proxy.cut_events,
            "connections": node.connects(),
            "durable_delivered": len(seqs),
            "duplicates": len(dups),
            "gaps": len(set(ref_seqs()) - set(seqs)),
            "events_received": len(node.events()),
        }
        write_artifact("chaos.json", report)
        print(f"\nchaos: {report}")

        # every connection: replayed durable events, then a fresh status, then live
        for seg in segments(node):
            first = next((m for m in seg if m["event"] not in DURABLE_EVENTS), None)
            if first is not None:
                assert first["event"] == "printer:status", [m["event"] for m in seg[:5]]
    finally:
        proxy.stop_random_cuts()
        node.close()
        ref.close()
        proxy.stop()


# ~~ faults


def test_firmware_error_order_and_replay_by_subscribe(operational):
    octo = operational
    start = status_seq(octo)
    live = client(octo, last_seq=start).start()
    try:
        start_print(octo, "fault.gcode", 3000)
        time.sleep(1.0)
        fatal_error(octo)
        live.wait_for(
            lambda c: any(e == "printer:job_failed" for e, _ in c.records), timeout=20
        )
        wait_closed_or_error(octo)
        time.sleep(1.5)  # nothing more may come for this fault
        durable = [(e, d) for e, d in live.records if e in DURABLE_EVENTS]
        names = [e for e, _ in durable]
        assert names[0] == "printer:job_started"
        errors = [
            i
            for i, (e, d) in enumerate(durable)
            if e == "printer:connection" and d["state"] == "error"
        ]
        failed = [i for i, (e, d) in enumerate(durable) if e == "printer:job_failed"]
        assert len(errors) == 1 and len(failed) == 1, names
        assert errors[0] < failed[0]
        assert durable[failed[0]][1]["reason"] == "error"
        assert durable[errors[0]][1]["seq"] < durable[failed[0]][1]["seq"]
        assert names.count("printer:job_started") == 1
        assert live.duplicates == 0

        # a client that connects afresh and asks to catch up gets the same, in order,
        # then a fresh status; and the temperature history it asked for
        late = client(octo).start()
        try:
            late.wait_for(lambda c: c.status is not None, 10)  # the connect status
            mark = len(late.records)
            ack = late.subscribe(since=start, history=1)
            assert ack["ok"] is True
            assert isinstance(ack.get("history"), list) and ack["history"]
            late.wait_for(
                lambda c: any(e == "printer:status" for e, _ in c.records[mark:]),
                timeout=10,
            )
            after = late.records[mark:]
            replayed = []
            for e, d in after:
                if e == "printer:status":
                    break
                if e in DURABLE_EVENTS:
                    replayed.append((e, d))
            assert replayed == durable
            assert late.last_seq == durable[-1][1]["seq"]
        finally:
            late.close()
    finally:
        live.close()
        octo.connect_printer()


def test_resume_with_auth_last_seq_replays_then_status(operational):
    octo = operational
    start = status_seq(octo)
    octo.disconnect_printer()
    octo.connect_printer()
    c = client(octo, last_seq=start).start()
    try:
        c.wait_for(lambda cl: cl.status is not None, timeout=10)
        first_status = next(
            i for i, (e, _) in enumerate(c.records) if e == "printer:status"
        )
        before = [d for e, d in c.records[:first_status] if e in DURABLE_EVENTS]
        states = [d["state"] for d in before]
        assert "disconnected" in states and states[-1] == "connected"
        assert all(d["seq"] > start for d in before)
        assert [d["seq"] for d in before] == sorted(d["seq"] for d in before)
        assert c.status["seq"] > before[-1]["seq"]  # a fresh status
        # the REST snapshot is the same object as printer:status
        rest = c.fetch_status()
        assert set(rest) == set(c.status)
    finally:
        c.close()


# ~~ slow and stuck clients


@pytest.mark.engine
def test_stuck_client_is_bounded_and_does_not_delay_others(operational):
    octo = operational
    start = status_seq(octo)
    fast = client(octo, last_seq=start).start()
    proxy = ChaosProxy(("127.0.0.1", octo.port), server_rcvbuf=4096).start()
    slow = FluxPrintClient(
        proxy.url,
        octo.apikey,
        last_seq=start,
        record=True,
        reconnect_delay=0.2,
        rest_interval=0,
    )
    try:
        slow.start()
        zero = {"status": 0, "temperature": 0, "progress": 0}
        assert slow.subscribe(intervals=zero)["ok"]
        assert fast.subscribe(intervals=zero)["ok"]
        assert health_clients(octo) == 2
        start_print(octo, "slow.gcode", 30000)  # still printing after the stall
        mark = len(fast.records)
        fast_recv: list[float] = []
        fast.on("printer:temperature", lambda p: fast_recv.append(time.monotonic()))
        proxy.stall()  # the slow client stops reading
        t_stall = time.monotonic()
        time.sleep(5)
        job_command(octo, "pause", "pause")
        wait_job(octo, lambda s: s == "Paused", 15)
        time.sleep(2)
        job_command(octo, "pause", "resume")
        dropped_at = None
        process = psutil.Process(octo.pid)
        rss_before = process.memory_info().rss
        rss_peak = rss_before
        # watched until 10 s after the drop (the fast client and the memory after
        # it), or until 40 s if it never comes: the assert below wants it before 30
        while True:
            elapsed = time.monotonic() - t_stall
            if dropped_at is None and health_clients(octo) == 1:
                dropped_at = elapsed
            rss_peak = max(rss_peak, process.memory_info().rss)
            if elapsed >= (40 if dropped_at is None else max(dropped_at + 10, 20)):
                break
            time.sleep(0.5)
        watched = time.monotonic() - t_stall
        report = {
            "dropped_after_s": dropped_at,
            "rss_before_mib": round(rss_before / 2**20, 1),
            "rss_peak_mib": round(rss_peak / 2**20, 1),
        }
        write_artifact("slow-client.json", report)
        print(f"\nslow client: {report}")
        # nothing grows with the stuck client's slowness
        assert rss_peak - rss_before < 64 * 2**20, report
        # the server let go of the stuck client (budget, grace 5 s) well before
        # engine.io's own ping timeout would have (25 + 20 s), which is all that
        # happens without a budget while tornado's write buffer grows meanwhile
        assert dropped_at is not None and dropped_at < 30, dropped_at

        # the other client was never held up: telemetry kept arriving, in time
        stamps = [t for t in fast_recv if t >= t_stall]
        # temperatures come every second: at least two in three of them (40 in 60 s)
        assert len(stamps) >= int(watched * 2 / 3), (len(stamps), watched)
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        assert max(gaps) < 3.0, max(gaps)
        names = [e for e, _ in fast.records[mark:]]
        assert "printer:job_paused" in names and "printer:job_resumed" in names

        # back to reading: the slow client resumes and gets every durable event once
        proxy.unstall()
        job_command(octo, "cancel")
        wait_job(octo, lambda s: s == "Operational", 30)
        fast.wait_for(
            lambda c: any(e == "printer:job_failed" for e, _ in c.records[mark:]), 10
        )
        want = [d["seq"] for d in fast.durable()]
        slow.wait_for(lambda c: [d["seq"] for d in c.durable()] == want, timeout=30)
        assert slow.duplicates == 0
        assert slow.connects >= 2
    finally:
        proxy.unstall()
        slow.close()
        fast.close()
        proxy.stop()


# ~~ restart (same data folder)


def ensure_running(octo) -> None:
    if octo.proc is None:  # an earlier failure left it stopped
        octo.start()
        octo.connect_printer()
    octo.ensure_operational()


def test_restart_keeps_seq_monotonic_and_replays_across_it(server):
    octo = server
    ensure_running(octo)
    start = status_seq(octo)
    ref = client(octo, last_seq=start).start()
    watcher = client(octo, rest_interval=0, reconnect_delay=60)  # stays away after
    watcher.start()
    try:
        start_print(octo, "restart.gcode", 200)
        wait_job(octo, lambda s: s == "Operational", 30)
        ref.wait_for(lambda c: any(e == "printer:job_complete" for e, _ in c.records), 10)
        before = [d["seq"] for d in ref.durable()]
        top = status_seq(octo)

        assert octo.stop() in (0, -15)
        # a clean goodbye with a reason, then the disconnect
        assert watcher.closing_reasons, watcher.records[-5:]
        assert watcher.disconnect_reasons
        data = os.path.join(octo.basedir, "data", "fluxprint")
        assert os.path.exists(os.path.join(data, "events.db"))
        wal = os.path.join(data, "events.db-wal")
        assert not os.path.exists(wal) or os.path.getsize(wal) == 0, "log not closed"

        octo.start()
        octo.connect_printer()
        assert status_seq(octo) > top  # monotonic across the restart

        # a client that was away through the restart catches up from the log
        late = client(octo, last_seq=start).start()
        try:
            late.wait_for(lambda c: c.status is not None, 10)
            got = [d["seq"] for d in late.durable()]
            assert got[: len(before)] == before
            assert got == sorted(set(got))
        finally:
            close_later(late)
        # the reference reconnected by itself and lost nothing in between
        ref.wait_for(lambda c: c.connects >= 2, 30)
        time.sleep(1.0)
        assert ref.duplicates == 0
        seqs = [d["seq"] for d in ref.durable()]
        assert seqs[: len(before)] == before and seqs == sorted(set(seqs))
    finally:
        close_later(watcher)
        close_later(ref)
        ensure_running(octo)


# ~~ resync (restarts with a tiny retention)


def test_resync_when_older_than_retention(server):
    octo = server
    ensure_running(octo)
    start = status_seq(octo)
    octo.stop()
    octo.fluxprint = dict(FLUXPRINT, event_log={"max_events": 3, "max_age_days": 30})
    octo.start()
    try:
        octo.connect_printer()
        for _ in range(3):
            octo.disconnect_printer()
            octo.connect_printer()
        time.sleep(0.5)
        c = client(octo, last_seq=start).start()
        try:
            c.wait_for(lambda cl: cl.status is not None, 10)
            first = [e for e, _ in c.records]
            assert first[0] == "printer:resync", first[:5]
            resync = c.records[0][1]
            assert resync["requested"] == start
            assert resync["oldestSeq"] > start
            assert resync["lastSeq"] >= resync["oldestSeq"]
            # nothing replayed: the status follows straight away
            assert first[1] == "printer:status"
            assert c.last_seq == resync["lastSeq"]
            # and it is live again, exactly once
            octo.disconnect_printer()
            c.wait_for(
                lambda cl: any(
                    e == "printer:connection" and d["state"] == "disconnected"
                    for e, d in cl.records
                ),
                10,
            )
            assert c.duplicates == 0
        finally:
            close_later(c)

        # a seq from the future (another install's log) resyncs as well
        future = client(octo, last_seq=status_seq(octo) + 10_000).start()
        try:
            future.wait_for(lambda cl: cl.resyncs == 1 and cl.status is not None, 10)
        finally:
            close_later(future)
    finally:
        ensure_running(octo)
