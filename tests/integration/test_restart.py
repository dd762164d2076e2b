"""Issue 22: what a restart cut is closed. Real restarts of a real OctoPrint with
the Virtual Printer, one server for the module restarted in place (same data
folder): SIGTERM mid-print, SIGKILL mid-print, and a shutdown while idle.

- A clean shutdown commits the connection's ``disconnected`` (and, mid-print,
  ``job_failed {reason: "interrupted"}``: OctoPrint streams the file, so the print
  ends with it) to ``events.db`` before OctoPrint exits, and before the clients'
  ``printer:closing``.
- After a SIGKILL, the next start finds the log's job open and closes it: the cut
  connection's ``disconnected``, then ``job_failed {reason: "interrupted"}``.
- A client resuming with its cursor gets exactly one ``job_failed`` for the cut job.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time

import pytest

from octoprint_fluxprint.client import FluxPrintClient
from octoprint_fluxprint.core import reconcile as R
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.harness.jobs import wait_job
from tests.harness.validate import validate_records

pytestmark = pytest.mark.integration

CONFIG = {"serial": {"timeout": {"temperatureAutoreport": 1}}}
JOB_END = ("printer:job_complete", "printer:job_failed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from octoserver import OctoServer

    octo = OctoServer(str(tmp_path_factory.mktemp("restart")), config=CONFIG)
    octo.start()
    try:
        octo.connect_printer()
        yield octo
    finally:
        octo.stop()


@pytest.fixture
def running(server):
    if server.proc is None:  # an earlier failure left it stopped
        server.start()
    server.ensure_operational()
    yield server


# ~~ helpers


def log_rows(octo, after: int = 0) -> list[tuple[int, str, dict]]:
    """What events.db holds (committed), read as another process would."""
    path = os.path.join(octo.basedir, "data", "fluxprint", "events.db")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT seq, event, payload FROM events WHERE seq > ? ORDER BY seq", (after,)
        ).fetchall()
    finally:
        conn.close()
    return [(seq, event, json.loads(payload)) for seq, event, payload in rows]


def wait_log(octo, after: int, predicate, timeout: float = 20.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        rows = log_rows(octo, after)
        if predicate(rows):
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"events.db: {[(s, e) for s, e, _ in rows][-12:]}")
        time.sleep(0.2)


def kinds(rows) -> list[tuple[str, str]]:
    """(event, connection state or failure reason) of job and connection rows."""
    return [(e, p.get("state") or p.get("reason") or "") for _s, e, p in rows]


def status_seq(octo) -> int:
    r = octo.api("GET", "/api/plugin/fluxprint")
    r.raise_for_status()
    return r.json()["seq"]


def client(octo, **kw) -> FluxPrintClient:
    kw.setdefault("record", True)
    kw.setdefault("reconnect_delay", 0.2)
    kw.setdefault("reconnect_delay_max", 1.0)  # back soon after the restart
    kw.setdefault("connect_timeout", 3.0)
    kw.setdefault("rest_interval", 0)
    return FluxPrintClient(octo.url, octo.apikey, **kw)


def close(c: FluxPrintClient) -> None:
    """Closes the client off the test's thread: python-engineio 4.15's client can
    hang 30 s in disconnect() (its write loop may take the close packet and the
    end-of-queue marker before disconnect() sets the state it checks, then waits
    a ping period on the empty queue)."""
    threading.Thread(target=c.close, daemon=True).start()


def start_print(octo, name: str) -> None:
    from octoserver import gcode_file

    octo.upload(name, gcode_file(3000), print_=True)  # about 30 s
    wait_job(octo, lambda s: s.startswith("Printing"), 20)
    time.sleep(1.5)  # 1.5 s into the job, as in the issue


def kill(octo) -> None:
    assert octo.proc is not None
    os.killpg(octo.proc.pid, signal.SIGKILL)
    octo.proc.wait(10)
    octo.proc = None


def job_events(records, name: str) -> list[tuple[str, dict]]:
    return [
        (e, d)
        for e, d in records
        if e.startswith("printer:job_") and d["file"]["name"] == name
    ]


def resumed_after_restart(octo, cursor: int, name: str, event_schema) -> list:
    """A client that was away through the restart resumes with its cursor: the
    cut job's events, exactly once, in order."""
    late = client(octo, last_seq=cursor).start()
    try:
        late.wait_for(lambda c: c.status is not None, 15)
        assert late.duplicates == 0
        validate_records(event_schema, [{"event": e, "data": d} for e, d in late.records])
        got = job_events(late.records, name)
        seqs = [d["seq"] for d in late.durable()]
        assert seqs == sorted(set(seqs))
        return got
    finally:
        close(late)


# ~~ the three restarts


def test_sigterm_mid_print_commits_the_disconnection_and_the_cut_job(
    running, event_schema
):
    octo = running
    cursor = status_seq(octo)
    live = client(octo, last_seq=cursor).start()  # reconnects by itself after
    try:
        start_print(octo, "cut-term.gcode")
        # the plugin knows a second of print time (OctoPrint counts whole seconds
        # and reports them twice a second: 1.5 s into the job it may still say 0)
        live.wait_for(
            lambda c: any(
                e == "printer:progress" and (d.get("printTime") or 0) >= 1
                for e, d in c.records
            ),
            15,
        )
        assert octo.stop() in (0, -15)
        # committed before OctoPrint exited: the disconnection, then the cut job
        rows = log_rows(octo, cursor)
        assert kinds(rows)[-3:] == [
            ("printer:job_started", ""),
            ("printer:connection", "disconnected"),
            ("printer:job_failed", "interrupted"),
        ], kinds(rows)
        failed = rows[-1][2]
        assert failed["file"]["name"] == "cut-term.gcode"
        assert failed["error"] == R.SHUT_DOWN and failed["user"] == "admin"
        assert 0 < failed["progress"] < 100 and failed["printTime"] > 0
        # the live client heard them before the goodbye
        names = [e for e, _ in live.records]
        assert "printer:closing" in names, names[-8:]
        assert names.index("printer:closing") > max(
            i for i, (e, d) in enumerate(live.records) if e == "printer:job_failed"
        )
        top = rows[-1][0]

        octo.start()
        octo.connect_printer()
        after = log_rows(octo, top)
        # nothing more about the cut job: it was closed at the shutdown
        assert not [r for r in after if r[1].startswith("printer:job_")], kinds(after)
        got = resumed_after_restart(octo, cursor, "cut-term.gcode", event_schema)
        assert [(e, d.get("reason")) for e, d in got] == [
            ("printer:job_started", None),
            ("printer:job_failed", "interrupted"),
        ]
        live.wait_for(lambda c: c.connects >= 2, 30)
        assert live.duplicates == 0
        assert len(job_events(live.records, "cut-term.gcode")) == 2
    finally:
        close(live)


def test_sigkill_mid_print_is_closed_at_the_next_start(running, event_schema):
    octo = running
    cursor = status_seq(octo)
    start_print(octo, "cut-kill.gcode")
    kill(octo)
    rows = log_rows(octo, cursor)
    # nothing ended it: the process had no chance to
    assert kinds(rows)[-1] == ("printer:job_started", ""), kinds(rows)
    top = rows[-1][0]

    octo.start()
    after = wait_log(
        octo, top, lambda r: any(e == "printer:job_failed" for _s, e, _p in r)
    )
    # the cut connection, then the cut job, before the new connection's events
    assert kinds(after)[:2] == [
        ("printer:connection", "disconnected"),
        ("printer:job_failed", "interrupted"),
    ], kinds(after)
    failed = after[1][2]
    assert failed["file"]["name"] == "cut-kill.gcode" and failed["user"] == "admin"
    assert failed["error"] == R.STOPPED
    assert failed["progress"] is None and failed["printTime"] is None  # not logged
    octo.connect_printer()
    got = resumed_after_restart(octo, cursor, "cut-kill.gcode", event_schema)
    assert [(e, d.get("reason")) for e, d in got] == [
        ("printer:job_started", None),
        ("printer:job_failed", "interrupted"),
    ]
    # one end for every job the log holds
    every = log_rows(octo)
    started = [p["file"]["name"] for _s, e, p in every if e == "printer:job_started"]
    ended = [p["file"]["name"] for _s, e, p in every if e in JOB_END]
    assert started == ended


def test_shutdown_while_idle_writes_the_disconnection_and_nothing_else(running):
    octo = running
    cursor = status_seq(octo)
    watcher = client(octo, reconnect_delay=60).start()  # stays away after the goodbye
    try:
        watcher.wait_for(lambda c: c.status is not None, 10)
        assert octo.stop() in (0, -15)
        rows = log_rows(octo, cursor)
        assert kinds(rows) == [("printer:connection", "disconnected")], kinds(rows)
        # committed, and sent, before the goodbye
        names = [e for e, _ in watcher.records]
        assert names.index("printer:connection") < names.index("printer:closing")
        top = rows[-1][0]
    finally:
        close(watcher)
    octo.start()
    octo.connect_printer()
    after = log_rows(octo, top)
    # no spurious job_failed: only the new connection
    assert [k for k in kinds(after) if k[0] != "printer:connection"] == []
    assert kinds(after)[-1] == ("printer:connection", "connected")
    assert all(e in DURABLE_EVENTS for _s, e, _p in after)
