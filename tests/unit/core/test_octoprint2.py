"""What OctoPrint 2.0.0rc7 drops and the printer state keeps (issue 12), with the event
sequences recorded from a real 2.0.0rc7 and 1.11.8 (FINDINGS-2.0.md): the same
payloads on both."""

from __future__ import annotations

from octoprint_fluxprint.core import schema as S

from .test_printer import make_hub

FILE = {"name": "a.gcode", "path": "a.gcode", "origin": "local", "size": 10}
MSG = "Thermal Runaway, system stopped! Heater_ID: bed - Printer halted. kill() called!"


def sent(sink, event):
    return [p for e, p, _room, _t in sink.sent if e == event]


def current(user=None, estimate=None, text="Printing", printing=True, error=None):
    return {
        "state": {
            "text": text,
            "flags": {
                "operational": printing,
                "printing": printing,
                "closedOrError": not printing and error is not None,
            },
            "error": error,
        },
        "job": {"file": dict(FILE), "estimatedPrintTime": estimate, "user": user},
        "progress": {"completion": 5.0},
    }


def test_upload_and_print_user_on_2_0():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    # 2.0: FileSelected names the owner, PrintStarted/PrintDone name nobody
    hub.on_event("FileSelected", {**FILE, "owner": "admin"}, clock.wall_ns())
    hub.on_event("PrintStarted", dict(FILE), clock.wall_ns())
    hub.on_current(current(user=None), clock.wall_ns())
    hub.on_event("PrintDone", {**FILE, "time": 3.0}, clock.wall_ns())
    assert sent(sink, S.EV_JOB_STARTED)[-1]["user"] == "admin"
    assert sent(sink, S.EV_JOB_COMPLETE)[-1]["user"] == "admin"
    assert hub.job["user"] == "admin"


def test_user_on_1_11_unchanged():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    owned = {**FILE, "owner": "admin", "user": "admin"}
    hub.on_event("FileSelected", owned, clock.wall_ns())
    hub.on_event("PrintStarted", owned, clock.wall_ns())
    hub.on_event("PrintPaused", {**FILE, "owner": "admin", "user": "other"}, 0)
    assert sent(sink, S.EV_JOB_STARTED)[-1]["user"] == "admin"
    assert sent(sink, S.EV_JOB_PAUSED)[-1]["user"] == "other"  # who paused


def test_another_files_owner_is_not_used():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    hub.on_event("FileSelected", {**FILE, "path": "b.gcode", "owner": "x"}, 0)
    hub.on_event("PrintStarted", dict(FILE), clock.wall_ns())
    assert sent(sink, S.EV_JOB_STARTED)[-1]["user"] is None


def test_firmware_error_on_2_0_text_user_and_state_error():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, 0)
    hub.on_event("FileSelected", {**FILE, "owner": "admin"}, 0)
    hub.on_event("PrintStarted", dict(FILE), 0)
    # 2.0's order: PrinterStateChanged(ERROR), Error, Disconnected,
    # PrinterStateChanged(CLOSED_WITH_ERROR), then PrintFailed with "unknown"
    hub.on_event("PrinterStateChanged", {"state_id": "ERROR", "state_string": "Error"}, 0)
    hub.on_event("Error", {"error": MSG, "reason": "firmware"}, 0)
    hub.on_event("Disconnected", {"connector": "serial"}, 0)
    hub.on_event(
        "PrinterStateChanged",
        {"state_id": "CLOSED_WITH_ERROR", "state_string": "Offline after error"},
        0,
    )
    hub.on_event(
        "PrintFailed", {**FILE, "reason": "error", "error": "unknown", "time": 1.0}, 0
    )
    failed = sent(sink, S.EV_JOB_FAILED)[-1]
    assert failed["error"] == MSG and failed["user"] == "admin"
    # 2.0's current data after the close: error ""
    offline = current(text="Offline after error", printing=False, error="")
    offline["state"]["flags"]["closedOrError"] = True
    offline["job"] = None
    hub.on_current(offline, clock.wall_ns())
    assert hub.state["error"] == MSG


def test_1_11_error_text_wins():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    hub.on_event("PrintStarted", {**FILE, "owner": "admin"}, 0)
    hub.on_event("Error", {"error": "other"}, 0)
    hub.on_event("PrintFailed", {**FILE, "reason": "error", "error": MSG}, 0)
    assert sent(sink, S.EV_JOB_FAILED)[-1]["error"] == MSG


def test_estimate_from_finished_analysis():
    hub, sink, clock = make_hub(status=0)
    hub.add_client("a")
    hub.on_current(current(user="admin"), clock.wall_ns())
    assert hub.job["estimatedPrintTime"] is None
    hub.on_event(
        "MetadataAnalysisFinished",
        {**FILE, "result": {"estimatedPrintTime": 226.8}},
        clock.wall_ns(),
    )
    hub.on_current(current(user="admin"), clock.wall_ns())
    assert hub.job["estimatedPrintTime"] == 226.8
    # OctoPrint's own value, where it has one, is kept
    hub.on_current(current(user="admin", estimate=100.0), clock.wall_ns())
    assert hub.job["estimatedPrintTime"] == 100.0
