"""What relays such as FluxStudio's read (issue "FluxStudio's shipped code"),
on the pure printer state: job and connection event fields, one status on
connect, status keyframes, and a job's last word being its job event."""

from __future__ import annotations

from octoprint_fluxprint.core import schema as S

from .test_printer import current, make_hub, ns, temps

JOB_PAYLOAD = {"name": "a.gcode", "path": "a.gcode", "origin": "local", "size": 10}


def start_job(hub, clock):
    hub.on_current(current("Printing", printing=True, completion=10.0), ns(clock))
    hub.on_event("PrintStarted", {**JOB_PAYLOAD, "owner": "admin"}, ns(clock))


def test_job_events_carry_filename_and_timestamp():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    start_job(hub, clock)
    hub.on_event("PrintDone", {**JOB_PAYLOAD, "time": 12.5}, ns(clock))
    for name in (S.EV_JOB_STARTED, S.EV_JOB_COMPLETE):
        (event,) = sink.events(name)
        assert event["filename"] == "a.gcode" == event["file"]["name"]
        assert event["timestamp"] == event["ts"]


def test_connection_events_carry_connected_and_timestamp():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    hub.on_event("Connecting", {}, ns(clock))
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, ns(clock))
    hub.on_event("Disconnected", {}, ns(clock))
    events = sink.events(S.EV_CONNECTION)
    assert [(e["state"], e["connected"]) for e in events] == [
        ("connecting", False),
        ("connected", True),
        ("disconnected", False),
    ]
    assert all(e["timestamp"] == e["ts"] for e in events)
    # the status keeps its connection object as it was: no event-only keys
    assert "connected" not in hub.status_body()["connection"]


def test_one_status_on_connect():
    hub, sink, clock = make_hub()
    hub.on_temperature(temps(), ns(clock))
    hub.on_current(current(), ns(clock))
    hub.add_client("a")
    sink.sent.clear()
    # the same state arrives again half a second later, as OctoPrint's monitor does
    sink.advance(0.5)
    hub.on_current(current(), ns(clock))
    hub.on_temperature(temps(), ns(clock))
    sink.advance(10)
    assert sink.events(S.EV_STATUS) == []
    # a change still goes out
    hub.on_current(current("Printing", printing=True), ns(clock))
    assert len(sink.events(S.EV_STATUS)) == 1


def test_keyframes_repeat_an_unchanged_status_only_for_clients_that_want_them():
    hub, sink, clock = make_hub(status=1.0)
    hub.on_current(current(), ns(clock))
    hub.add_client("lean")
    hub.add_client("relay")
    hub.add_client("delta")
    hub.subscribe("relay", S.SubscribeRequest(keyframe=5))
    hub.subscribe("delta", S.SubscribeRequest(keyframe=5, delta=True))
    sink.sent.clear()
    for _ in range(30):  # 30 s of an idle printer, its state re-reported every 0.5 s
        sink.advance(0.5)
        hub.on_current(current(), ns(clock))
        sink.advance(0.5)
    relay = [p for p in sink.delivered("relay", S.EV_STATUS)]
    assert 5 <= len(relay) <= 7  # one every 5 s
    assert sink.delivered("lean", S.EV_STATUS) == []
    # a delta room starts from one full status (its base); no keyframes after it
    assert len(sink.delivered("delta", S.EV_STATUS)) <= 1
    assert hub.describe("relay")["keyframe"] == 5.0
    seqs = [p["seq"] for p in relay]
    assert seqs == sorted(set(seqs))


def test_keyframe_default_from_settings_and_never_below_the_interval():
    hub, sink, clock = make_hub(status=5.0)
    hub.set_intervals({"status": 5.0, "temperature": 2.0, "progress": 1.0}, keyframe=2)
    hub.add_client("a")
    assert hub.describe("a")["keyframe"] == 5.0  # not sooner than the status interval
    hub.subscribe("a", S.SubscribeRequest(keyframe=0))
    assert hub.describe("a")["keyframe"] == 0.0


def test_a_keyframe_is_not_sent_while_statuses_flow():
    hub, sink, clock = make_hub(status=0.0)
    hub.add_client("a")
    hub.subscribe("a", S.SubscribeRequest(keyframe=3))
    sink.sent.clear()
    for i in range(20):  # a status change every second
        hub.on_temperature(temps(20.0 + i), ns(clock))
        sink.advance(1.0)
    group = next(g for g in hub.groups.values() if g.keyframe)
    assert group.keyframes == 0
    assert len(sink.delivered("a", S.EV_STATUS)) == 20


def test_a_jobs_last_word_is_its_job_event():
    hub, sink, clock = make_hub(progress=1.0)
    hub.add_client("a")
    start_job(hub, clock)
    sink.advance(1.0)
    hub.on_current(current("Printing", printing=True, completion=97.0), ns(clock))
    sink.advance(0.2)
    # held by the 1 s interval when the job ends
    hub.on_current(current("Printing", printing=True, completion=99.0), ns(clock))
    hub.on_event("PrintDone", {**JOB_PAYLOAD, "time": 30.0}, ns(clock))
    # OctoPrint goes on reporting the ended job: Finishing at 100 %, then Operational
    for text in ("Finishing", "Operational", "Operational"):
        sink.advance(1.0)
        hub.on_current(current(text, completion=100.0), ns(clock))
    sink.advance(5)
    names = [
        e for (e, _p, _r, _t) in sink.sent if e in (S.EV_PROGRESS, S.EV_JOB_COMPLETE)
    ]
    assert names[-1] == S.EV_JOB_COMPLETE
    last = sink.events(S.EV_PROGRESS)[-1]
    assert last["completion"] == 100.0 and last["printTimeLeft"] == 0
    assert last["printTime"] == 30.0
    # the status still follows the printer
    assert hub.status_body()["state"]["text"] == "Operational"
    # a new job's progress is news again
    start_job(hub, clock)
    sink.advance(1.0)
    hub.on_current(current("Printing", printing=True, completion=10.0), ns(clock))
    assert sink.events(S.EV_PROGRESS)[-1]["completion"] == 10.0


def test_a_cancelled_jobs_last_progress_is_where_it_stopped():
    hub, sink, clock = make_hub(progress=1.0)
    hub.add_client("a")
    start_job(hub, clock)
    sink.advance(1.0)
    hub.on_current(current("Cancelling", printing=False, completion=42.0), ns(clock))
    hub.on_event(
        "PrintFailed", {**JOB_PAYLOAD, "reason": "cancelled", "progress": 42}, ns(clock)
    )
    sink.advance(1.0)
    hub.on_current(current("Operational", completion=42.0), ns(clock))
    sink.advance(3)
    names = [e for (e, _p, _r, _t) in sink.sent if e in (S.EV_PROGRESS, S.EV_JOB_FAILED)]
    assert names[-1] == S.EV_JOB_FAILED
    assert sink.events(S.EV_PROGRESS)[-1]["completion"] == 42.0
    (failed,) = sink.events(S.EV_JOB_FAILED)
    assert failed["filename"] == "a.gcode" and failed["reason"] == "cancelled"
