"""Issue #10, reconnectable closes, against a real OctoPrint of this module's own
(restarted in place; the session's server is never restarted):

- a plain socket.io-client 4 (tests/integration/plain_client.mjs: default options,
  an auth callback with {apikey, last_seq}, no reconnect by hand) stays with the
  plugin through an OctoPrint restart: printer:closing {reason: "shutdown"}, a
  ``transport close`` (not ``io server disconnect``), back within its reconnection
  delay once OctoPrint answers, and no durable event lost against the plugin's own
  event log (``<data>/plugins/fluxprint/events.db``);
- FluxStudio's relay (tests/fluxstudio/relay.mjs) recovers from the restart by
  itself, its browser never leaving;
- a client over its outbound budget (stalled behind tests/tools/chaosproxy.py) is
  closed with a transport close and comes back by itself, losing nothing durable.

Measured numbers go to test-artifacts/reconnect-*.json and stdout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any, Optional

import pytest
import requests
from harness.fluxstudio import PLUGIN_PATH, Browser, Proc, Relay, from_fluxprint
from octoserver import gcode_file

from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.harness.jobs import job_command, wait_job
from tests.tools.chaosproxy import ChaosProxy

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
PLAIN = os.path.join(HERE, "plain_client.mjs")
NAMESPACE = "/ws/printing"
CONFIG = {"serial": {"timeout": {"temperatureAutoreport": 1}}}
# a small outbound budget, so a stalled client goes over it soon
FLUXPRINT = {"client_budget": {"max_messages": 50, "max_bytes": 4096, "grace": 5}}
ZERO = {"status": 0, "temperature": 0, "progress": 0}
RECONNECT_MARGIN_MS = 4000  # connect time on a busy machine, on top of the delay
FLUXSTUDIO_DELAY_MAX_MS = 10000  # printing-socket.js reconnectionDelayMax


class Plain(Proc):
    """plain_client.mjs; lines {"type": "connect" | "disconnect" | "event" | ...}."""

    @classmethod
    def start(
        cls,
        url: str,
        apikey: str,
        last_seq: Optional[int],
        log_path: Optional[str] = None,
        **opts: Any,
    ) -> Plain:
        args = {
            "url": url,
            "namespace": NAMESPACE,
            "path": PLUGIN_PATH,
            "apikey": apikey,
            "lastSeq": last_seq,
            **opts,
        }
        client = cls(PLAIN, log_path=log_path, args=(json.dumps(args),))
        try:
            client.wait_for(lambda m: m["type"] == "connect", 20)
        except Exception:
            client.stop()
            raise
        return client

    def of(self, kind: str, after: int = 0) -> list[dict]:
        return [m for m in self.since(after) if m["type"] == kind]

    def options(self) -> dict:
        return self.of("options")[0]

    def events(self, name: Optional[str] = None, conn: Optional[int] = None) -> list:
        return [
            m
            for m in self.of("event")
            if (name is None or m["event"] == name)
            and (conn is None or m["conn"] == conn)
        ]

    def durable(self) -> list[tuple[int, str]]:
        return [
            (m["data"]["seq"], m["event"])
            for m in self.of("event")
            if m["event"] in DURABLE_EVENTS
        ]

    def close(self) -> None:
        if self.alive:
            try:
                self.send({"op": "close"})
                self.p.wait(5)
            except Exception:
                pass
        self.stop()


# ~~ helpers


def status_seq(octo) -> int:
    r = octo.api("GET", "/api/plugin/fluxprint")
    r.raise_for_status()
    return r.json()["seq"]


def logged(octo, since: int) -> list[tuple[int, str]]:
    """The durable events the plugin wrote to its event log, seq > since."""
    path = os.path.join(octo.basedir, "data", "fluxprint", "events.db")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT seq, event FROM events WHERE seq > ? ORDER BY seq", (since,)
        ).fetchall()
    finally:
        db.close()
    return [(int(seq), event) for seq, event in rows]


def wait_lossless(
    client: Plain, octo, since: int, timeout: float = 30.0, last: str = ""
) -> list:
    """Waits until the client holds exactly the logged durable events after
    ``since``, each once, in order (and, with ``last``, until the log holds that
    event: OctoPrint's state can say Operational before the job's end is logged)."""
    deadline = time.monotonic() + timeout
    want: list = []
    got: list = []
    while time.monotonic() < deadline:
        want = logged(octo, since)
        if last and last not in [event for _, event in want]:
            time.sleep(0.3)
            continue
        got = [d for d in client.durable() if d[0] > since]
        if got == want:
            return want
        time.sleep(0.3)
    missing = sorted(set(want) - set(got))
    dups = len(got) - len(set(got))
    raise AssertionError(
        f"durable events differ: missing {missing}, duplicates {dups}, "
        f"got {got[-10:]}, logged {want[-10:]}"
    )


def health(octo, detail: bool = False) -> dict:
    if detail:
        r = octo.api("GET", "/plugin/fluxprint/health?detail=1")
    else:
        r = requests.get(octo.url + "/plugin/fluxprint/health", timeout=5)
    r.raise_for_status()
    return r.json()


def report(artifacts_dir: str, name: str, data: dict) -> None:
    with open(os.path.join(artifacts_dir, name), "w") as f:
        json.dump(data, f, indent=2)
    print(f"\n{name}: {data}")


def ensure_running(octo) -> None:
    if octo.proc is None:  # an earlier failure left it stopped
        octo.start()
        octo.connect_printer()
    octo.ensure_operational()


def restart(octo) -> tuple[float, float]:
    """Stops OctoPrint, starts it again; returns (stopped, up) in epoch ms, ``up``
    being when its HTTP API answered again."""
    code = octo.stop()
    assert code in (0, -15), f"OctoPrint exited with {code}"
    stopped = time.time() * 1000
    octo.start()
    return stopped, time.time() * 1000


# ~~ the server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from octoserver import OctoServer

    octo = OctoServer(
        str(tmp_path_factory.mktemp("reconnect")), config=CONFIG, fluxprint=FLUXPRINT
    )
    octo.start()
    try:
        octo.connect_printer()
        yield octo
    finally:
        octo.stop()


@pytest.fixture
def running(server):
    ensure_running(server)
    yield server
    ensure_running(server)


@pytest.fixture
def logs(artifacts_dir, request):
    folder = os.path.join(artifacts_dir, "reconnect")
    os.makedirs(folder, exist_ok=True)
    return lambda what: os.path.join(folder, f"{request.node.name}-{what}.out")


# ~~ restart


def test_plain_client_stays_connected_through_a_restart(running, logs, artifacts_dir):
    octo = running
    start = status_seq(octo)
    plain = Plain.start(octo.url, octo.apikey, start, logs("plain"))
    try:
        options = plain.options()
        assert options["reconnection"] is True
        delay_max = options["reconnectionDelayMax"]
        plain.wait_for(lambda m: m["type"] == "upgrade", 15)  # default: polling first
        # durable events before the restart
        octo.disconnect_printer()
        octo.connect_printer()
        before = wait_lossless(plain, octo, start)
        assert [e for _, e in before] == ["printer:connection"] * len(before)
        top = before[-1][0]

        mark = plain.mark()
        stopped, up = restart(octo)
        # the printer comes back at once: durable events while the client is away
        octo.api(
            "POST",
            "/api/connection",
            json={"command": "connect", "port": "VIRTUAL", "baudrate": 115200},
        ).raise_for_status()

        closing = [m for m in plain.of("event", mark) if m["event"] == "printer:closing"]
        assert [m["data"]["reason"] for m in closing] == ["shutdown"]
        gone = plain.of("disconnect", mark)
        assert [m["reason"] for m in gone] == ["transport close"], gone
        assert gone[0]["active"] is True  # socket.io-client will reconnect by itself
        assert closing[0]["recv"] <= gone[0]["recv"]

        back = plain.wait_for(lambda m: m["type"] == "connect", 30, mark)
        reconnect_ms = back["recv"] - up
        # its handshake presented the last durable seq it had seen: those before the
        # restart and what the clean shutdown committed before its goodbye (the
        # connection's disconnected)
        upto = next(
            i for i, m in enumerate(plain.since(mark)) if m["type"] == "disconnect"
        )
        shutdown = [
            (m["data"]["seq"], m["event"], m["data"].get("state"))
            for m in plain.since(mark)[:upto]
            if m["type"] == "event" and m["event"] in DURABLE_EVENTS
        ]
        assert [(e, st) for _, e, st in shutdown] == [
            ("printer:connection", "disconnected")
        ], shutdown
        seen = shutdown[0][0]
        assert seen > top
        auths = plain.of("auth", mark)
        assert auths and auths[-1]["last_seq"] == seen
        assert reconnect_ms < delay_max + RECONNECT_MARGIN_MS, reconnect_ms

        octo.wait_state(("Operational",), 30)
        time.sleep(1.0)
        got = wait_lossless(plain, octo, start)
        away = [d for d in got if d[0] > seen]
        assert away, "the printer's reconnection was not seen"
        # what came while it was away arrived first on the new connection (replay),
        # then a fresh status
        conn2 = plain.events(conn=back["conn"])
        first_status = next(
            i for i, m in enumerate(conn2) if m["event"] == "printer:status"
        )
        replayed = [
            (m["data"]["seq"], m["event"])
            for m in conn2[:first_status]
            if m["event"] in DURABLE_EVENTS
        ]
        assert replayed == away[: len(replayed)]
        plain.wait_for(
            lambda m: (
                m["type"] == "event"
                and m["event"] == "printer:temperature"
                and m["conn"] == back["conn"]
            ),
            15,
        )
        assert [m["reason"] for m in plain.of("disconnect")] == ["transport close"]
        assert health(octo)["socketio"]["clients"] == 1
    finally:
        plain.close()
    report(
        artifacts_dir,
        "reconnect-plain-client.json",
        {
            "reconnect_after_http_up_ms": reconnect_ms,
            "down_ms": round(up - stopped),
            "reconnection_delay_max_ms": delay_max,
            "attempts": len(plain.of("reconnect_attempt", mark)),
            "durable_before": len(before),
            "durable_while_away": len(away),
            "replayed_on_reconnect": len(replayed),
        },
    )


def test_fluxstudio_relay_recovers_from_a_restart_by_itself(running, logs, artifacts_dir):
    octo = running
    relay = Relay.start(octo.url, octo.apikey, logs("relay"))
    browser = Browser.start(relay.url, logs("browser"))
    try:
        browser.wait_event("printer:temperature", timeout=10)
        b_mark, r_mark = browser.mark(), relay.mark()
        stopped, up = restart(octo)
        gone = relay.of("upstream_disconnect", r_mark)
        assert [m["reason"] for m in gone] == ["transport close"], gone
        assert gone[0]["willReconnect"] is True
        dropped = [
            m
            for m in browser.events("printer:connection", b_mark)
            if not from_fluxprint(m)
        ]
        assert dropped and dropped[0]["payload"]["connected"] is False
        octo.connect_printer()

        back = relay.wait_for(
            lambda m: m.get("relay") == "upstream_connect",
            FLUXSTUDIO_DELAY_MAX_MS / 1000 + 20,
            r_mark,
        )
        reconnect_ms = back["t"] - up
        # the same socket came back: no second io() socket, no duplicate delivery
        assert len(relay.of("upstream_connecting")) == 1
        assert back["id"] == 1
        # the browser, which never left, is served again
        browser.wait_event(
            "printer:status",
            lambda p: p["state"]["text"] == "Operational",
            timeout=20,
            after=b_mark,
        )
        mark = browser.mark()
        temp = browser.wait_event("printer:temperature", timeout=10, after=mark)
        assert {"bed", "tool0"} <= set(temp["payload"])
        state = browser.state()
        assert state["dashboard"]["isServiceAvailable"] is True
        assert state["connectionStatus"]["connected"] is True
        assert [m["payload"] for m in browser.events("disconnect")] == []
        assert health(octo)["socketio"]["clients"] == 1
        seqs = [m["payload"]["seq"] for m in browser.since(b_mark) if from_fluxprint(m)]
        assert len(seqs) == len(set(seqs))
        assert reconnect_ms < FLUXSTUDIO_DELAY_MAX_MS + RECONNECT_MARGIN_MS
    finally:
        browser.close()
        relay.stop()
    report(
        artifacts_dir,
        "reconnect-fluxstudio-relay.json",
        {
            "reconnect_after_http_up_ms": reconnect_ms,
            "down_ms": round(up - stopped),
            "reconnection_delay_max_ms": FLUXSTUDIO_DELAY_MAX_MS,
            "connect_errors": len(relay.of("upstream_connect_error", r_mark)),
        },
    )


# ~~ over budget


@pytest.mark.engine
def test_over_budget_client_is_closed_and_comes_back(running, logs, artifacts_dir):
    octo = running
    start = status_seq(octo)
    closed_before = health(octo, detail=True)["detail"]["security"].get("closed", {})
    proxy = ChaosProxy(("127.0.0.1", octo.port), server_rcvbuf=4096).start()
    plain = Plain.start(
        proxy.url,
        octo.apikey,
        start,
        logs("plain"),
        transports=["websocket"],
        subscribe={"intervals": ZERO},
        # uncompressed: the byte budget's backlog builds at the rate this test is
        # timed for (a warm deflate_shared window makes frames ~8x smaller, so a
        # stalled client reaches max_bytes that much later)
        perMessageDeflate=False,
    )
    try:
        octo.upload("budget.gcode", gcode_file(30000), print_=True)
        wait_job(octo, lambda s: s.startswith("Printing"), 20)
        plain.wait_for(
            lambda m: m["type"] == "event" and m["event"] == "printer:job_started", 10
        )
        seen_before = max(seq for seq, _ in plain.durable())
        mark = plain.mark()
        proxy.stall()  # the client stops reading
        t_stall = time.monotonic()
        # durable events it misses meanwhile
        time.sleep(2.0)
        job_command(octo, "pause", "pause")
        wait_job(octo, lambda s: s == "Paused", 15)
        time.sleep(1.0)
        job_command(octo, "pause", "resume")
        reason = None
        while time.monotonic() - t_stall < 90:
            closed = health(octo, detail=True)["detail"]["security"].get("closed", {})
            new = [r for r in closed if closed[r] > closed_before.get(r, 0)]
            if new:
                reason = new[0]
                break
            time.sleep(0.5)
        dropped_after = time.monotonic() - t_stall
        assert reason is not None, "the stalled client was never closed"
        assert reason.startswith("slow client"), reason
        # the client has not noticed yet: nothing reaches it
        assert plain.of("disconnect", mark) == []
        proxy.unstall()
        t_unstall = time.time() * 1000

        gone = plain.wait_for(lambda m: m["type"] == "disconnect", 60, mark)
        assert gone["reason"] == "transport close", gone
        assert gone["active"] is True
        back = plain.wait_for(lambda m: m["type"] == "connect", 30, mark)
        auths = plain.of("auth", mark)
        assert auths[-1]["last_seq"] >= seen_before
        job_command(octo, "cancel")
        wait_job(octo, lambda s: s == "Operational", 30)
        got = wait_lossless(plain, octo, start, last="printer:job_failed")
        names = [e for _, e in got]
        assert "printer:job_paused" in names and "printer:job_resumed" in names
        assert "printer:job_failed" in names
        closing = [
            m["data"]["reason"]
            for m in plain.of("event", mark)
            if m["event"] == "printer:closing"
        ]
        assert [m["reason"] for m in plain.of("disconnect")] == ["transport close"]
    finally:
        proxy.unstall()
        plain.close()
        proxy.stop()
    report(
        artifacts_dir,
        "reconnect-over-budget.json",
        {
            "closed_after_stall_s": round(dropped_after, 1),
            "reason": reason,
            "disconnect_seen_after_unstall_ms": gone["recv"] - t_unstall,
            "reconnected_after_disconnect_ms": back["recv"] - gone["recv"],
            "closing_received": closing,
            "durable_checked": len(got),
        },
    )
