"""Issue #10 with real parts: FluxStudio's relay (tests/fluxstudio/relay.mjs, as its
sockets/printing-socket.js with only the plugin's ``path`` and ``auth: {apikey}``
added) and a browser of that relay (tests/fluxstudio/browser.mjs, as its
usePrintWebSocket hook), against the session's real OctoPrint and Virtual Printer.

Everything is checked on what the browser sees, except the one-status-on-connect
counts, which are about what reaches a client of the plugin (a direct client, and
the relay's upstream socket). Every FluxPrint payload a browser received is validated
against the shipped JSON Schema when the test ends.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import pytest
from harness.fluxstudio import Browser, Relay, fluxprint_records, from_fluxprint
from harness.validate import validate_records
from octoserver import gcode_file

from tests.harness.jobs import wait_job

pytestmark = pytest.mark.integration

DEFAULTS = {
    "status_interval": 5.0,
    "temperature_interval": 2.0,
    "progress_interval": 1.0,
    "status_keyframe": 0.0,
}
KEYFRAME = 5.0
SLACK = 1.5  # a keyframe due every 5 s arrives within 5 + this, through the relay
META = ("seq", "ts", "printer")


def set_settings(octo, **values: Any) -> dict:
    r = octo.api("POST", "/api/settings", json={"plugins": {"fluxprint": values}})
    assert r.status_code == 200, r.text
    return octo.api("GET", "/api/settings").json()["plugins"]["fluxprint"]


def body(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k not in META}


def report(artifacts_dir: str, name: str, data: dict) -> None:
    with open(os.path.join(artifacts_dir, name), "w") as f:
        json.dump(data, f, indent=2)
    print(f"\n{name}: {data}")


# ~~ fixtures


def wait_steady(octo, seconds: float = 6.0, timeout: float = 90.0) -> None:
    """Until the heaters' readings have not changed for ``seconds`` (more than the
    status interval): a printer still cooling down from an earlier test changes its
    status with every reading, and a status that changed is news, not a repeat."""
    samples = int(seconds) + 1  # the Virtual Printer reports every second here
    deadline = time.monotonic() + timeout
    history: list = []
    while time.monotonic() < deadline:
        r = octo.api("GET", f"/api/printer?history=true&limit={samples}")
        r.raise_for_status()
        history = [
            {h: (s[h]["actual"], s[h]["target"]) for h in ("tool0", "bed") if h in s}
            for s in r.json()["temperature"].get("history", [])
        ]
        if len(history) >= samples and all(h == history[-1] for h in history):
            return
        time.sleep(1.0)
    raise TimeoutError(f"temperatures not steady: {history}")


@pytest.fixture
def idle(octo):
    """An operational, idle printer with steady temperatures and the default
    settings, before and after."""
    octo.ensure_operational()
    set_settings(octo, **DEFAULTS)
    wait_steady(octo)
    time.sleep(0.5)  # let a settings save's room moves settle
    yield octo
    set_settings(octo, **DEFAULTS)
    octo.ensure_operational()


@pytest.fixture
def fluxstudio(octo, event_schema, artifacts_dir, request):
    """Factories for relays and browsers; stops them at the end and validates every
    FluxPrint payload the browsers received."""
    folder = os.path.join(artifacts_dir, "fluxstudio")
    os.makedirs(folder, exist_ok=True)
    made: list[tuple[str, Any]] = []
    test = request.node.name.replace("/", "_")

    def relay(**env: str) -> Relay:
        log = os.path.join(folder, f"{test}-relay{len(made)}.out")
        r = Relay.start(octo.url, octo.apikey, log, **env)
        made.append(("relay", r))
        return r

    def browser(r: Relay, **env: str) -> Browser:
        log = os.path.join(folder, f"{test}-browser{len(made)}.out")
        b = Browser.start(r.url, log, **env)
        made.append(("browser", b))
        return b

    yield relay, browser
    for kind, proc in reversed(made):
        if kind == "browser":
            proc.close()
        else:
            proc.stop()
    for kind, proc in made:
        if kind == "browser":
            validate_records(event_schema, fluxprint_records(proc.lines))
            problems = [
                (m["event"], m["view"]["problems"])
                for m in proc.lines
                if from_fluxprint(m)
                and m.get("event") != "printer:status"  # rows 6-8 of FIELDS.md
                and (m.get("view") or {}).get("problems")
            ]
            assert problems == [], problems


def received_at(line: dict) -> float:
    return line["t"] / 1000


# ~~ request_status, one status on connect, keyframes


def test_request_status_without_ack_and_one_status_on_connect(
    idle, fluxstudio, artifacts_dir
):
    relay_of, browser_of = fluxstudio
    relay = relay_of()
    up = relay.of("upstream_connect")[0]
    # the relay's own request_status on connect, with no ack, is answered too
    asked = relay.wait_for(lambda m: m.get("relay") == "request_status", 5)
    assert asked["from"] == "connect"
    time.sleep(3.2)
    first = [m for m in relay.forwarded("printer:status") if m["t"] - up["t"] <= 3000]
    # one status on connect, one answer: no duplicate room broadcast on top
    assert len(first) == 2, first
    assert first[0]["seq"] < first[1]["seq"]

    # a browser that joins later on an idle printer gets no status by itself
    # (status_keyframe 0: lean), only the relay's printer:connection
    browser = browser_of(relay)
    time.sleep(6.5)
    assert browser.events("printer:status") == []
    joined = browser.events("printer:connection")
    assert joined and joined[0]["payload"]["connected"] is True
    assert not from_fluxprint(joined[0])

    # the browser asks (usePrintWebSocket requestStatus): the relay asks FluxPrint
    # without an ack, and the answer arrives as a printer:status event
    mark = browser.mark()
    asked = browser.request_status()
    assert asked["sent"] is True
    answer = browser.wait_event("printer:status", timeout=5, after=mark)
    took = (answer["t"] - asked["t"]) / 1000
    assert answer["payload"]["state"]["text"] == "Operational"
    assert answer["payload"]["seq"] > first[-1]["seq"]
    assert answer["view"]["dashboard"]["isServiceAvailable"] is True
    assert answer["view"]["problems"] == []
    browser_sid = relay.of("browser_connect")[-1]["sid"]
    assert [m["from"] for m in relay.of("request_status")] == ["connect", browser_sid]
    time.sleep(1.0)
    assert len(browser.events("printer:status", mark)) == 1  # one answer, once
    report(
        artifacts_dir,
        "fluxstudio-request-status.json",
        {"answer_s": round(took, 3), "relay_statuses_first_3s": len(first)},
    )


def test_one_status_on_connect_direct(idle, clients):
    py = clients("python")
    node = clients("node")
    time.sleep(3.2)
    for client in (py, node):
        statuses = client.events("printer:status")
        assert len(statuses) == 1, [r["data"]["seq"] for r in statuses]
        assert client.events()[0]["event"] == "printer:status"


def test_status_keyframe_setting_reaches_late_joiners(idle, fluxstudio, artifacts_dir):
    octo = idle
    relay_of, browser_of = fluxstudio
    saved = set_settings(octo, status_keyframe=KEYFRAME)
    assert saved["status_keyframe"] == KEYFRAME
    try:
        relay = relay_of()
        time.sleep(2.0)  # the relay's connect statuses are long past
        firsts = []
        browsers = []
        for pause in (0.0, 1.0):  # two late joiners at different phases
            time.sleep(pause)
            b = browser_of(relay)
            joined = b.events("connect")[0]
            first = b.wait_event("printer:status", timeout=KEYFRAME + SLACK + 2)
            firsts.append(round((first["t"] - joined["t"]) / 1000, 3))
            browsers.append(b)
        assert all(f <= KEYFRAME + SLACK for f in firsts), firsts
        # and it goes on: a status at least every K s while nothing changes
        time.sleep(11.0)
        statuses = browsers[0].events("printer:status")
        times = [received_at(m) for m in statuses]
        spacing = [round(b - a, 3) for a, b in zip(times, times[1:])]
        assert len(statuses) >= 3, spacing
        assert all(g <= KEYFRAME + SLACK for g in spacing), spacing
        assert all(g >= KEYFRAME - 1.0 for g in spacing), spacing  # not more often
        bodies = [body(m["payload"]) for m in statuses]
        unchanged = sum(1 for a, b in zip(bodies, bodies[1:]) if a == b)
        assert unchanged >= 1  # keyframes repeat an unchanged status
        assert len({m["payload"]["seq"] for m in statuses}) == len(statuses)
        # nobody asked: the browsers never sent a request_status
        assert [m["from"] for m in relay.of("request_status")] == ["connect"]
    finally:
        set_settings(octo, status_keyframe=0)
    report(
        artifacts_dir,
        "fluxstudio-keyframe.json",
        {
            "status_keyframe_s": KEYFRAME,
            "late_joiner_first_status_s": firsts,
            "spacing_s": spacing,
            "unchanged_repeats": unchanged,
        },
    )


def test_keyframe_subscription_and_lean_default(idle, clients):
    """status_keyframe 0: a client that asks for keyframes gets them, one that does
    not gets no repeated status."""
    asking = clients("node")
    plain = clients("python")
    ack = asking.call("printer:subscribe", {"keyframe": KEYFRAME})
    assert ack["ok"] is True and ack["keyframe"] == KEYFRAME
    assert plain.call("printer:subscribe", {})["keyframe"] == 0
    mark_asking, mark_plain = asking.mark(), plain.mark()
    time.sleep(11.5)
    got = asking.events()[mark_asking:]
    statuses = [r for r in got if r["event"] == "printer:status"]
    assert len(statuses) >= 2, [r["event"] for r in got]
    times = [r["recv"] / 1000 for r in statuses]
    assert all(b - a <= KEYFRAME + SLACK for a, b in zip(times, times[1:]))
    lean = [r for r in plain.events()[mark_plain:] if r["event"] == "printer:status"]
    assert lean == []


# ~~ jobs, through the relay


def job_progress(browser: Browser, name: str, after: int = 0) -> list[dict]:
    return [
        m
        for m in browser.events("printer:progress", after)
        if m["payload"]["file"]["name"] == name
    ]


def check_job_event(line: dict, name: str) -> dict:
    event = line["payload"]
    assert event["filename"] == event["file"]["name"] == name
    assert event["timestamp"] == event["ts"]
    assert abs(event["timestamp"] - time.time() * 1000) < 120_000  # epoch ms
    view = line["view"]
    assert view["jobEvent"]["filename"] == name
    assert view["jobEvent"]["timestamp"] == event["ts"]
    assert view["problems"] == []
    return event


def progress_before(browser: Browser, line: dict, after: int) -> dict:
    """The last printer:progress the browser got before ``line``."""
    index = browser.lines.index(line)
    before = browser.events("printer:progress", after)
    before = [m for m in before if browser.lines.index(m) < index]
    assert before, "no printer:progress before the job event"
    return before[-1]["payload"]


def check_quiet_after(browser: Browser, line: dict, name: str) -> None:
    """No printer:progress after the job's event, for that job or any other, and
    the hook's derived progress stays null."""
    index = browser.lines.index(line)
    after = browser.events("printer:progress", index + 1)
    assert after == [], [m["payload"] for m in after]
    assert job_progress(browser, name, index + 1) == []
    state = browser.state()
    assert state["data"]["progress"] is None, state["data"]


def test_print_cancel_and_temperatures_through_the_relay(idle, fluxstudio, artifacts_dir):
    octo = idle
    relay_of, browser_of = fluxstudio
    relay = relay_of()
    browser = browser_of(relay)
    t_start = time.time()

    # a print that completes
    name = f"fluxstudio-{time.monotonic_ns()}.gcode"
    mark = browser.mark()
    octo.upload(name, gcode_file(1500), print_=True)
    done = browser.wait_event("printer:job_complete", timeout=90, after=mark)
    check_job_event(done, name)
    assert done["payload"]["printTime"] > 0
    assert done["view"]["progress"] is None
    progress = job_progress(browser, name, mark)
    completions = [
        m["payload"]["completion"]
        for m in progress
        if m["payload"]["completion"] is not None
    ]
    assert len(completions) >= 4, completions
    assert completions == sorted(completions) and completions[-1] > completions[0]
    last = progress_before(browser, done, mark)
    assert last["completion"] == 100 and last["seq"] < done["payload"]["seq"]
    assert any(
        m["payload"]["state"]["flags"]["printing"]
        for m in browser.events("printer:status", mark)
    )
    time.sleep(3.0)  # progress_interval is 1 s: anything held back would be out
    check_quiet_after(browser, done, name)

    # a print that is cancelled
    name = f"fluxstudio-cancel-{time.monotonic_ns()}.gcode"
    mark = browser.mark()
    octo.upload(name, gcode_file(8000), print_=True)
    browser.wait_event(
        "printer:progress",
        lambda p: p["file"]["name"] == name and (p["completion"] or 0) > 5,
        timeout=30,
        after=mark,
    )
    assert octo.api("POST", "/api/job", json={"command": "cancel"}).status_code == 204
    failed = browser.wait_event("printer:job_failed", timeout=30, after=mark)
    event = check_job_event(failed, name)
    assert event["reason"] == "cancelled" and failed["view"]["jobEvent"]["reason"]
    wait_job(octo, lambda s: s == "Operational", 30)
    last = progress_before(browser, failed, mark)
    assert last["file"]["name"] == name and last["seq"] < event["seq"]
    assert last["completion"] == pytest.approx(event["progress"], abs=0.01)
    time.sleep(3.0)
    check_quiet_after(browser, failed, name)
    callbacks = browser.state()["callbacks"]
    assert callbacks.count("onJobComplete") == 1 and callbacks.count("onJobFailed") == 1

    # temperatures all along: bed and tool0, about every 2 s
    temps = [m for m in browser.events("printer:temperature") if m["t"] / 1000 > t_start]
    times = [received_at(m) for m in temps]
    spacing = [round(b - a, 3) for a, b in zip(times, times[1:])]
    assert len(temps) >= 5, spacing
    assert all({"bed", "tool0"} <= set(m["payload"]) for m in temps)
    assert all(m["view"]["problems"] == [] for m in temps)
    assert all(g >= 1.5 for g in spacing), spacing
    assert 1.8 <= statistics.median(spacing) <= 2.8, spacing
    report(
        artifacts_dir,
        "fluxstudio-print.json",
        {
            "completions": completions,
            "temperature_spacing_median_s": statistics.median(spacing),
            "temperature_spacing_max_s": max(spacing),
            "temperatures": len(temps),
        },
    )


# ~~ printer connection, through the relay


def test_printer_disconnect_and_reconnect_through_the_relay(idle, fluxstudio):
    octo = idle
    relay_of, browser_of = fluxstudio
    relay = relay_of()
    browser = browser_of(relay)
    # the relay's own printer:connection to each new browser
    hello = browser.wait_event("printer:connection", timeout=5)
    assert hello["payload"]["connected"] is True and not from_fluxprint(hello)
    mark = browser.mark()
    octo.disconnect_printer()
    gone = browser.wait_event(
        "printer:connection",
        lambda p: "seq" in p and p["state"] == "disconnected",
        timeout=10,
        after=mark,
    )
    assert gone["view"]["dashboard"]["isServiceAvailable"] is False
    octo.connect_printer()
    back = browser.wait_event(
        "printer:connection",
        lambda p: "seq" in p and p["state"] == "connected",
        timeout=20,
        after=mark,
    )
    # the hook takes FluxPrint's connected flag as the service's availability
    assert back["view"]["dashboard"]["isServiceAvailable"] is True
    browser.wait_event(
        "printer:status",
        lambda p: p["state"]["text"] == "Operational",
        timeout=10,
        after=mark,
    )
    ours = [m for m in browser.events("printer:connection", mark) if from_fluxprint(m)]
    states = [m["payload"]["state"] for m in ours]
    assert states[0] == "disconnected" and states[-1] == "connected", states
    assert "connecting" in states
    for m in ours:
        p = m["payload"]
        assert p["connected"] is (p["state"] == "connected")
        assert p["timestamp"] == p["ts"]
        assert m["view"]["connectionEvent"]["connected"] is p["connected"]
        assert m["view"]["problems"] == []
    # the relay's own printer:connection (relay <-> FluxPrint) did not fire: the
    # relay's link never broke
    assert [
        m for m in browser.events("printer:connection", mark) if not from_fluxprint(m)
    ] == []
    assert relay.of("upstream_disconnect") == []
