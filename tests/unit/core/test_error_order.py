"""OctoPrint 2.0's PrintFailed against its Error event (issue 22's compat flake).

2.0 builds PrintFailed in ``on_printer_state_changed`` when the state turns to
ERROR, before the connector sets the error info (``error: "unknown"``), and fires
it from a thread of its own after ``file_manager.log_print``; the comm thread
fires PrinterStateChanged and then Error with the text. Usually Error reaches the
event bus first; when the finalize thread wins, PrintFailed comes before it. The
job_failed then waits for the Error's text (at most ``ERROR_WAIT`` s) and goes
out after the connection's error, as on 1.11."""

from __future__ import annotations

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.printer import ERROR_WAIT

from .test_octoprint2 import FILE, MSG, sent
from .test_printer import make_hub

PSC_ERROR = ("PrinterStateChanged", {"state_id": "ERROR", "state_string": "Error"})
FAILED = ("PrintFailed", {**FILE, "reason": "error", "error": "unknown", "time": 1.0})
ERROR = ("Error", {"error": MSG, "reason": "firmware", "connector": "serial"})
DISCONNECTED = ("Disconnected", {"connector": "serial"})
CLOSED = (
    "PrinterStateChanged",
    {"state_id": "CLOSED_WITH_ERROR", "state_string": "Offline after error"},
)


def printing():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, 0)
    hub.on_event("FileSelected", {**FILE, "owner": "admin"}, 0)
    hub.on_event("PrintStarted", dict(FILE), 0)
    return hub, sink, clock


def durable(sink):
    return [
        (e, p.get("state") or p.get("reason"))
        for e, p, _r, _t in sink.sent
        if e in (S.EV_CONNECTION, S.EV_JOB_FAILED)
    ]


def run(order):
    hub, sink, clock = printing()
    for name, payload in order:
        hub.on_event(name, dict(payload), clock.wall_ns())
    return hub, sink, clock


def test_print_failed_before_error_gets_the_errors_text():
    # the race: 2.0's finalize thread fired PrintFailed before the comm thread's Error
    for order in (
        [PSC_ERROR, FAILED, ERROR, DISCONNECTED, CLOSED],
        [FAILED, PSC_ERROR, ERROR, DISCONNECTED, CLOSED],
    ):
        hub, sink, clock = run(order)
        failed = sent(sink, S.EV_JOB_FAILED)
        assert len(failed) == 1, order
        assert failed[0]["error"] == MSG and failed[0]["user"] == "admin"
        # the connection's error first, then the job's end, as on 1.11
        assert durable(sink)[-2:] == [
            (S.EV_CONNECTION, "error"),
            (S.EV_JOB_FAILED, "error"),
        ]
        assert sink.timers == {}  # the wait was cancelled


def test_the_usual_order_is_not_held():
    hub, sink, clock = run([PSC_ERROR, ERROR, DISCONNECTED, CLOSED, FAILED])
    assert sent(sink, S.EV_JOB_FAILED)[0]["error"] == MSG
    assert sink.timers == {}


def test_a_failure_whose_error_never_comes_goes_out_after_the_wait():
    hub, sink, clock = run([PSC_ERROR, FAILED])
    assert sent(sink, S.EV_JOB_FAILED) == []
    sink.advance(ERROR_WAIT - 0.1)
    assert sent(sink, S.EV_JOB_FAILED) == []
    sink.advance(0.1)
    (failed,) = sent(sink, S.EV_JOB_FAILED)
    assert failed["error"] == "unknown"
    assert failed["seq"] > sent(sink, S.EV_CONNECTION)[-1]["seq"]


def test_a_held_failure_goes_out_before_the_next_job():
    hub, sink, clock = run([FAILED])
    hub.on_event("PrintStarted", {**FILE, "path": "b.gcode", "name": "b.gcode"}, 0)
    names = [e for e, *_ in sink.sent if e.startswith("printer:job_")]
    assert names[-2:] == [S.EV_JOB_FAILED, S.EV_JOB_STARTED]
    assert sink.timers == {}


def test_a_cancel_is_never_held():
    hub, sink, clock = printing()
    hub.on_event("PrintFailed", {**FILE, "reason": "cancelled", "time": 1.0}, 0)
    assert sent(sink, S.EV_JOB_FAILED)[0]["reason"] == "cancelled"
    assert sink.timers == {}


def test_shutdown_releases_a_held_failure_first():
    hub, sink, clock = run([FAILED])
    hub.shutdown()
    names = [e for e, *_ in sink.sent if e in (S.EV_JOB_FAILED, S.EV_CONNECTION)]
    assert names[-2:] == [S.EV_JOB_FAILED, S.EV_CONNECTION]
    assert sent(sink, S.EV_CONNECTION)[-1]["state"] == "disconnected"
