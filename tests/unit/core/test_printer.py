import pytest

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.printer import PrinterState

from .fakes import FakeClock, FakeSink

NS = 1_000_000  # ns per ms


def make_hub(sink_class=FakeSink, **intervals):
    clock = FakeClock()
    sink = sink_class(clock)
    counter = iter(range(1, 10**9))
    conf = {"status": 5.0, "temperature": 2.0, "progress": 1.0}
    conf.update(intervals)
    hub = PrinterState(sink, clock, lambda: next(counter), "printer-1", conf)
    return hub, sink, clock


def temps(actual=20.0, target=0.0):
    return {
        "time": 1,
        "tool0": {"actual": actual, "target": target},
        "bed": {"actual": 21.0, "target": 0.0},
    }


def current(text="Operational", printing=False, completion=None, filepos=None):
    return {
        "state": {
            "text": text,
            "flags": {"operational": True, "printing": printing, "ready": not printing},
            "error": None,
        },
        "job": {
            "file": {"name": "a.gcode", "path": "a.gcode", "origin": "local", "size": 10},
            "estimatedPrintTime": 60,
            "user": "admin",
        },
        "progress": {
            "completion": completion,
            "filepos": filepos,
            "printTime": 1,
            "printTimeLeft": 2,
            "printTimeLeftOrigin": "estimate",
        },
        "offsets": {},
    }


def ns(clock):
    return clock.wall_ns()


def test_connect_gives_full_status_with_meta():
    hub, sink, clock = make_hub()
    status = hub.add_client("a")
    assert set(status) >= {
        "state",
        "temperature",
        "job",
        "progress",
        "connection",
        "seq",
        "ts",
        "printer",
    }
    assert status["printer"] == "printer-1" and status["seq"] == 1
    assert sink.rooms["temperature@2"] == {"a"}
    assert sink.rooms["jobs"] == {"a"} and sink.rooms["connection"] == {"a"}


def test_temperature_cadence_and_newest_wins():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    for i in range(10):  # a sample every 0.5 s for 5 s
        hub.on_temperature(temps(20 + i), ns(clock))
        sink.advance(0.5)
    sink.advance(2.0)  # let the held sample go
    sent = sink.events(S.EV_TEMPERATURE)
    gaps = [b["ts"] - a["ts"] for a, b in zip(sent, sent[1:])]
    times = [t for (e, _, _, t) in sink.sent if e == S.EV_TEMPERATURE]
    assert all(b - a >= 2.0 - 1e-9 for a, b in zip(times, times[1:]))
    assert sent[0]["tool0"]["actual"] == 20
    # newest wins: the report that arrives when the interval is up goes out at once
    # (not the one held half a second before it: core/coalesce.py, slack)
    assert [p["tool0"]["actual"] for p in sent] == [20, 24, 28, 29]
    assert all(g > 0 for g in gaps)


def test_identical_temperatures_are_still_sent_but_progress_is_not():
    hub, sink, clock = make_hub(temperature=0, progress=0)
    hub.add_client("a")
    for _ in range(3):
        hub.on_temperature(temps(), ns(clock))
        hub.on_current(current(completion=5.0), ns(clock))
        sink.advance(1)
    assert len(sink.events(S.EV_TEMPERATURE)) == 3
    assert len(sink.events(S.EV_PROGRESS)) == 1


def test_seq_strictly_increases_in_emission_order():
    hub, sink, clock = make_hub(temperature=0)
    hub.add_client("a")
    for i in range(20):
        hub.on_temperature(temps(i), ns(clock))
        hub.on_current(current(completion=float(i)), ns(clock))
        sink.advance(0.3)
    seqs = [p["seq"] for (_, p, _, _) in sink.sent]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_state_change_forces_status_immediately():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    hub.on_current(current(), ns(clock))
    sink.advance(0.1)
    before = len(sink.events(S.EV_STATUS))
    hub.on_current(current(text="Printing", printing=True), ns(clock))
    assert len(sink.events(S.EV_STATUS)) == before + 1
    assert sink.events(S.EV_STATUS)[-1]["state"]["text"] == "Printing"


def test_status_not_resent_unchanged():
    hub, sink, clock = make_hub(status=1)
    hub.add_client("a")
    hub.on_current(current(), ns(clock))
    for _ in range(5):
        sink.advance(1.5)
        hub.on_current(current(), ns(clock))
    assert len(sink.events(S.EV_STATUS)) == 1


def test_cancel_yields_one_job_failed_with_percent_progress():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    start = {
        "name": "a.gcode",
        "path": "a.gcode",
        "origin": "local",
        "size": 10,
        "user": "admin",
    }
    hub.on_event("PrintStarted", start, ns(clock))
    hub.on_event("PrintCancelled", {**start, "time": 3.0, "progress": 25}, ns(clock))
    failed = {**start, "time": 3.0, "progress": 25, "reason": "cancelled"}
    hub.on_event("PrintFailed", failed, ns(clock))
    hub.on_event("PrintFailed", failed, ns(clock))  # a stray duplicate
    events = sink.events(S.EV_JOB_FAILED)
    assert len(events) == 1
    assert events[0]["reason"] == "cancelled" and events[0]["progress"] == 25.0
    assert events[0]["error"] is None and events[0]["file"]["name"] == "a.gcode"
    assert sink.events(S.EV_JOB_STARTED)[0]["user"] == "admin"


def test_firmware_error_order_connection_then_job_failed():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    hub.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, ns(clock))
    hub.on_event("PrintStarted", {"name": "a", "path": "a"}, ns(clock))
    hub.on_event(
        "Error",
        {"error": "Printer halted. kill() called!", "reason": "firmware"},
        ns(clock),
    )
    hub.on_event("Disconnected", None, ns(clock))  # follows the error: not a new state
    hub.on_event(
        "PrinterStateChanged",
        {"state_id": "CLOSED_WITH_ERROR", "state_string": "Error"},
        ns(clock),
    )
    hub.on_event(
        "PrintFailed",
        {
            "name": "a",
            "path": "a",
            "reason": "error",
            "error": "Printer halted",
            "progress": 0.5,
            "time": 9,
        },
        ns(clock),
    )
    names = [e for (e, _, r, _) in sink.sent if r in ("jobs", "connection")]
    assert names == [S.EV_CONNECTION, S.EV_JOB_STARTED, S.EV_CONNECTION, S.EV_JOB_FAILED]
    conn = sink.events(S.EV_CONNECTION)
    assert [c["state"] for c in conn] == ["connected", "error"]
    assert conn[1]["error"].startswith("Printer halted")
    assert sink.events(S.EV_JOB_FAILED)[0]["reason"] == "error"


def test_connection_cycle():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    for name, payload in [
        ("Disconnected", None),
        ("Connecting", None),
        ("Connected", {"port": "VIRTUAL", "baudrate": 250000}),
    ]:
        hub.on_event(name, payload, ns(clock))
    states = [
        (c["state"], c["port"], c["baudrate"]) for c in sink.events(S.EV_CONNECTION)
    ]
    assert states == [("connecting", None, None), ("connected", "VIRTUAL", 250000)]


def test_subscribe_slower_interval_moves_room_never_faster():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    hub.add_client("b")
    ack = hub.subscribe("a", S.SubscribeRequest(intervals={"temperature": 5}))
    assert ack["intervals"]["temperature"] == 5
    ack = hub.subscribe("b", S.SubscribeRequest(intervals={"temperature": 0.1}))
    assert ack["intervals"]["temperature"] == 2.0
    assert sink.rooms["temperature@5"] == {"a"} and sink.rooms["temperature@2"] == {"b"}
    for _ in range(20):
        hub.on_temperature(temps(), ns(clock))
        sink.advance(0.5)
    assert len(sink.delivered("a", S.EV_TEMPERATURE)) < len(
        sink.delivered("b", S.EV_TEMPERATURE)
    )


def test_unsubscribe_and_groups_are_dropped():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    ack = hub.unsubscribe("a", S.UnsubscribeRequest(channels=["temperature"]))
    assert "temperature" not in ack["channels"]
    assert "temperature@2" not in hub.groups
    hub.unsubscribe("a", S.UnsubscribeRequest())
    assert hub.groups == {}
    hub.on_temperature(temps(), ns(clock))
    assert sink.delivered("a") == []


def test_settings_change_applies_live():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    hub.subscribe("a", S.SubscribeRequest(intervals={"progress": 3}))
    hub.set_intervals({"status": 5, "temperature": 0, "progress": 4})
    assert sink.rooms.get("temperature@0") == {"a"}
    assert sink.rooms.get("progress@4") == {"a"}  # max(requested 3, configured 4)
    assert not sink.rooms.get("temperature@2")


def test_disabled_channel_sends_nothing():
    hub, sink, clock = make_hub(temperature=0)
    hub.add_client("a")
    hub.set_enabled({"status", "progress", "jobs", "connection"})
    hub.on_temperature(temps(), ns(clock))
    assert sink.events(S.EV_TEMPERATURE) == []


def test_removing_client_cancels_timers():
    hub, sink, clock = make_hub()
    hub.add_client("a")
    hub.on_temperature(temps(1), ns(clock))
    hub.on_temperature(temps(2), ns(clock))
    assert sink.timers
    hub.remove_client("a")
    assert not sink.timers and hub.groups == {}


def test_null_heaters_are_left_out_and_offsets_applied():
    hub, sink, clock = make_hub(temperature=0)
    hub.add_client("a")
    hub.on_current({**current(), "offsets": {"tool0": 5}}, ns(clock))
    hub.on_temperature(
        {
            "time": 1,
            "tool0": {"actual": 200.0, "target": 210.0},
            "chamber": {"actual": None, "target": None},
        },
        ns(clock),
    )
    payload = sink.events(S.EV_TEMPERATURE)[-1]
    assert "chamber" not in payload
    assert payload["tool0"] == {"actual": 200.0, "target": 210.0, "offset": 5}


@pytest.mark.parametrize("trace", [False, True])
def test_trace_only_when_enabled(trace):
    hub, sink, clock = make_hub(temperature=0)
    hub.trace = trace
    hub.add_client("a")
    hub.on_temperature(temps(), 123 * NS)
    payload = sink.events(S.EV_TEMPERATURE)[-1]
    assert ("trace" in payload) is trace
    assert payload["ts"] == 123


def test_trace_table_keeps_the_times_beside_the_payload():
    from octoprint_fluxprint.core.trace import TraceTable

    hub, sink, clock = make_hub(temperature=0)
    hub.trace_table = TraceTable(maxlen=3)
    hub.add_client("a")
    for i in range(4):
        clock.now += 1.0
        hub.on_temperature(temps(actual=20.0 + i), (123 + i) * NS)
    sent = sink.events(S.EV_TEMPERATURE)
    assert all("trace" not in p for p in sent)
    rows, top = hub.trace_table.since(0)
    assert len(rows) == 3  # bounded: the oldest went
    assert top == sent[-1]["seq"]
    assert [r[0] for r in rows] == [p["seq"] for p in sent[-3:]]
    assert rows[-1][1] == 126 * NS  # the callback's time
    assert all(r[2] > 0 for r in rows)  # the emit time
    later, top2 = hub.trace_table.since(top)
    assert later == [] and top2 == top


def test_trace_mode_from_the_environment_value():
    from octoprint_fluxprint.core.trace import mode

    assert mode("1") == "inline" and mode("table") == "table"
    assert mode(None) == mode("0") == mode("yes") == "off"
