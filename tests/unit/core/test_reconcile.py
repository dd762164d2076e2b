"""Closing what a restart cut (issue 22): the log's open job, how it ends once the
printer is seen, and what the printer state writes at shutdown. Pure: a fake sink
whose timers run on an injected clock."""

from __future__ import annotations

from typing import NamedTuple, Optional

import pytest

from octoprint_fluxprint.core import reconcile as R
from octoprint_fluxprint.core import schema as S

from .test_printer import make_hub

LOCAL = {"name": "a.gcode", "path": "a.gcode", "origin": "local", "size": 10}
SD = {"name": "b.gco", "path": "b.gco", "origin": "sdcard", "size": 99}


class Row(NamedTuple):
    ts: int
    event: str
    payload: dict


def job_row(event: str, ts: int, file: Optional[dict] = None, **extra) -> Row:
    file = file or LOCAL
    return Row(ts, event, {"file": file, "filename": file["name"], "user": "u", **extra})


def conn_row(state: str, ts: int) -> Row:
    return Row(ts, S.EV_CONNECTION, {"state": state, "connected": state == "connected"})


# ~~ the log's open job


def test_no_open_job_in_an_empty_or_closed_log():
    assert R.open_job([]) is None
    assert R.open_job([conn_row("connected", 1)]) is None
    for end in (S.EV_JOB_COMPLETE, S.EV_JOB_FAILED):
        rows = [job_row(S.EV_JOB_STARTED, 1), job_row(end, 2), conn_row("connected", 3)]
        assert R.open_job(rows) is None


def test_a_started_job_killed_mid_print():
    rows = [conn_row("connected", 0), job_row(S.EV_JOB_STARTED, 1000)]
    job = R.open_job(rows)
    assert job is not None
    assert job.file == LOCAL and job.user == "u" and job.streamed
    assert job.print_time is None  # when it stopped is not in the log
    assert not job.shut_down and not job.paused


def test_print_time_up_to_a_logged_disconnection_without_pauses():
    rows = [
        job_row(S.EV_JOB_STARTED, 1_000),
        job_row(S.EV_JOB_PAUSED, 11_000),
        job_row(S.EV_JOB_RESUMED, 21_000),
        conn_row("disconnected", 26_000),
    ]
    job = R.open_job(rows)
    assert job.print_time == 15.0 and job.shut_down and not job.paused


def test_a_paused_job_knows_its_print_time_even_when_killed():
    rows = [job_row(S.EV_JOB_STARTED, 1_000), job_row(S.EV_JOB_PAUSED, 4_500)]
    job = R.open_job(rows)
    assert job.paused and job.print_time == 3.5


def test_a_tail_that_starts_mid_job_has_its_file_but_no_print_time():
    rows = [job_row(S.EV_JOB_RESUMED, 5_000, SD), conn_row("error", 6_000)]
    job = R.open_job(rows)
    assert job.key == ("sdcard", "b.gco") and not job.streamed
    assert job.print_time is None and not job.shut_down


def test_the_last_job_counts_not_an_earlier_one():
    rows = [
        job_row(S.EV_JOB_STARTED, 1, SD),
        job_row(S.EV_JOB_FAILED, 2, SD),
        job_row(S.EV_JOB_STARTED, 3),
    ]
    assert R.open_job(rows).file == LOCAL


def test_last_connection():
    assert R.last_connection([]) is None
    rows = [conn_row("connected", 1), job_row(S.EV_JOB_STARTED, 2)]
    assert R.last_connection(rows) == "connected"


# ~~ the decision


def job(file=LOCAL, shut_down=False) -> R.OpenJob:
    return R.OpenJob(
        file=dict(file), user="u", paused=False, print_time=None, shut_down=shut_down
    )


def test_a_streamed_job_ends_at_the_first_look():
    r = R.Reconciler(job(), now=0.0)
    assert r.observe("disconnected", False, (None, None), 0.0) == R.Verdict(
        False, R.STOPPED
    )
    assert r.done and r.observe("connected", True, job().key, 1.0) is None
    assert R.Reconciler(job(shut_down=True), 0.0).observe(
        "disconnected", False, (None, None), 0.0
    ) == R.Verdict(False, R.SHUT_DOWN)


def test_the_same_file_printing_resumes_another_fails():
    assert R.Reconciler(job(SD), 0.0).observe(
        "connected", True, ("sdcard", "b.gco"), 1.0
    ) == R.Verdict(True)
    assert R.Reconciler(job(), 0.0).observe(
        "connected", True, ("local", "a.gcode"), 1.0
    ) == R.Verdict(True)
    assert R.Reconciler(job(SD), 0.0).observe(
        "connected", True, ("sdcard", "c.gco"), 1.0
    ) == R.Verdict(False, R.OTHER_FILE)


def test_a_printer_held_job_waits_for_the_grace_once_connected():
    r = R.Reconciler(job(SD), now=0.0, timeout=60, grace=10)
    assert r.observe("connecting", False, (None, None), 1.0) is None
    assert r.due() == 60.0
    assert r.observe("connected", False, (None, None), 5.0) is None
    assert r.due() == 15.0
    assert r.observe("connected", False, (None, None), 14.9) is None
    assert r.observe("connected", False, (None, None), 15.0) == R.Verdict(
        False, R.NOT_PRINTING
    )
    assert r.due() is None


def test_a_printer_held_job_fails_after_the_timeout_without_a_connection():
    r = R.Reconciler(job(SD), now=100.0, timeout=60, grace=10)
    assert r.observe("disconnected", False, (None, None), 159.9) is None
    assert r.observe("error", False, (None, None), 160.0) == R.Verdict(
        False, R.NO_CONNECTION
    )


def test_a_lost_connection_restarts_the_grace():
    r = R.Reconciler(job(SD), now=0.0, timeout=60, grace=10)
    r.observe("connected", False, (None, None), 1.0)
    r.observe("disconnected", False, (None, None), 5.0)
    assert r.due() == 60.0
    r.observe("connected", False, (None, None), 8.0)
    assert r.observe("connected", False, (None, None), 12.0) is None
    assert r.observe("connected", True, ("sdcard", "b.gco"), 13.0) == R.Verdict(True)


def test_cut_at_shutdown():
    assert R.cut_at_shutdown("local")
    assert not R.cut_at_shutdown("sdcard") and not R.cut_at_shutdown(None)


# ~~ the printer state writes it


def current(file=None, printing=False, connected=True):
    return {
        "state": {
            "text": "Printing" if printing else "Operational",
            "flags": {"operational": connected, "printing": printing},
        },
        "job": {"file": dict(file) if file else None, "user": None},
        "progress": {"completion": 40.0 if printing else None, "printTime": 12},
    }


def jobs(sink):
    return [(e, p) for e, p, _r, _t in sink.sent if e.startswith("printer:job_")]


def durable(sink):
    return [
        (e, p.get("state") or p.get("reason") or "")
        for e, p, _r, _t in sink.sent
        if e == S.EV_CONNECTION or e.startswith("printer:job_")
    ]


def test_a_killed_local_print_fails_at_startup():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    open_ = R.OpenJob(LOCAL, "u", False, 3.0, False)
    hub.restarted(open_, "connected")
    # the log said connected: the cut connection is logged, then the cut job
    assert durable(sink) == [
        (S.EV_CONNECTION, "disconnected"),
        (S.EV_JOB_FAILED, "interrupted"),
    ]
    ((_, failed),) = jobs(sink)
    S.JobFailedEvent.model_validate(failed)
    assert failed["error"] == R.STOPPED and failed["file"] == LOCAL
    assert failed["filename"] == "a.gcode" and failed["user"] == "u"
    assert failed["printTime"] == 3.0 and failed["progress"] is None
    assert failed["timestamp"] == failed["ts"]
    assert sink.timers == {}
    # the next print is a job of its own
    hub.on_event("PrintStarted", dict(LOCAL), clock.wall_ns())
    hub.on_event("PrintDone", {**LOCAL, "time": 5}, clock.wall_ns())
    assert [e for e, _ in jobs(sink)][1:] == [S.EV_JOB_STARTED, S.EV_JOB_COMPLETE]


def test_nothing_open_nothing_written():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    hub.restarted(None, "disconnected")
    hub.restarted(None, None)
    assert durable(sink) == []


def test_an_sd_print_that_went_on_resumes_and_ends_once():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    hub.restarted(R.OpenJob(SD, "u", False, None, True), "disconnected")
    assert jobs(sink) == [] and len(sink.timers) == 1  # the connect timeout
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    sink.advance(3)
    hub.on_current(current(SD, printing=True), clock.wall_ns())
    ((event, resumed),) = jobs(sink)
    assert event == S.EV_JOB_RESUMED and resumed["user"] == "u"
    assert resumed["file"] == SD and sink.timers == {}
    # OctoPrint's own end of it goes out once, with the job's user
    hub.on_event("PrintDone", {**SD, "time": 100}, clock.wall_ns())
    hub.on_event("PrintDone", {**SD, "time": 100}, clock.wall_ns())
    assert [e for e, _ in jobs(sink)] == [S.EV_JOB_RESUMED, S.EV_JOB_COMPLETE]
    assert jobs(sink)[-1][1]["user"] == "u"


def test_octoprints_own_start_of_the_same_sd_file_is_the_resume():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    hub.restarted(R.OpenJob(SD, "u", False, None, False), None)
    hub.on_event("PrintStarted", dict(SD), clock.wall_ns())
    assert [e for e, _ in jobs(sink)] == [S.EV_JOB_RESUMED]
    hub.on_event("PrintFailed", {**SD, "reason": "cancelled"}, clock.wall_ns())
    assert [e for e, _ in jobs(sink)] == [S.EV_JOB_RESUMED, S.EV_JOB_FAILED]


def test_another_print_started_ends_the_cut_one_first():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    hub.restarted(R.OpenJob(SD, "u", False, None, False), None)
    hub.on_event("PrintStarted", dict(LOCAL), clock.wall_ns())
    (failed, started) = jobs(sink)
    assert failed[0] == S.EV_JOB_FAILED and failed[1]["error"] == R.OTHER_FILE
    assert failed[1]["file"] == SD and started[0] == S.EV_JOB_STARTED


@pytest.mark.parametrize("connects", [False, True])
def test_an_sd_print_that_did_not_go_on_fails_on_the_clock(connects):
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    hub.restarted(R.OpenJob(SD, "u", False, None, False), None)
    if connects:
        sink.advance(20)
        hub.on_event("Connected", {"port": "V", "baudrate": 1}, clock.wall_ns())
        hub.on_current(current(), clock.wall_ns())
        sink.advance(R.REPORT_GRACE - 0.5)
        assert jobs(sink) == []
        sink.advance(0.5)
        want = R.NOT_PRINTING
    else:
        sink.advance(R.CONNECT_TIMEOUT - 0.5)
        assert jobs(sink) == []
        sink.advance(0.5)
        want = R.NO_CONNECTION
    ((event, failed),) = jobs(sink)
    assert event == S.EV_JOB_FAILED and failed["error"] == want
    assert sink.timers == {}


# ~~ shutdown


def printing_hub(file=LOCAL):
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    hub.on_event("PrintStarted", {**file, "user": "admin"}, clock.wall_ns())
    hub.on_current(current(file, printing=True), clock.wall_ns())
    return hub, sink, clock


def test_shutdown_mid_print_logs_the_disconnection_then_the_cut_job():
    hub, sink, clock = printing_hub()
    hub.shutdown()
    assert durable(sink)[-2:] == [
        (S.EV_CONNECTION, "disconnected"),
        (S.EV_JOB_FAILED, "interrupted"),
    ]
    failed = jobs(sink)[-1][1]
    S.JobFailedEvent.model_validate(failed)
    assert failed["error"] == R.SHUT_DOWN and failed["user"] == "admin"
    assert failed["progress"] == 40.0 and failed["printTime"] == 12
    # its last progress went out before it, none after
    names = [e for e, *_ in sink.sent]
    assert names.index(S.EV_JOB_FAILED) > max(
        i for i, e in enumerate(names) if e == S.EV_PROGRESS
    )
    # and a late PrintFailed from OctoPrint makes no second one
    hub.on_event("PrintFailed", {**LOCAL, "reason": "cancelled"}, clock.wall_ns())
    assert [e for e, _ in jobs(sink)].count(S.EV_JOB_FAILED) == 1


def test_shutdown_while_idle_logs_only_the_disconnection():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    hub.on_current(current(), clock.wall_ns())
    hub.shutdown()
    assert durable(sink) == [
        (S.EV_CONNECTION, "connected"),
        (S.EV_CONNECTION, "disconnected"),
    ]
    hub.shutdown()  # nothing more: already disconnected
    assert len(durable(sink)) == 2


def test_shutdown_leaves_a_printer_held_job_open():
    hub, sink, clock = printing_hub(SD)
    hub.shutdown()
    assert durable(sink)[-1] == (S.EV_CONNECTION, "disconnected")
    assert [e for e, _ in jobs(sink)] == [S.EV_JOB_STARTED]


def test_shutdown_before_a_decision_leaves_it_to_the_next_start():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("x")
    hub.on_current(current(connected=False), clock.wall_ns())
    hub.restarted(R.OpenJob(SD, "u", False, None, False), None)
    hub.shutdown()
    assert sink.timers == {} and jobs(sink) == []
