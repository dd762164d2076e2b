"""The Python client's bookkeeping, without a server: exactly-once durable events,
resync, status, and the REST fallback against a local HTTP stub."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from octoprint_fluxprint.client import FluxPrintClient


def ev(seq, **kw):
    return {"seq": seq, "ts": 1, "printer": "p", **kw}


def test_durable_events_exactly_once():
    c = FluxPrintClient("http://127.0.0.1:1", "KEY", record=True, rest_interval=0)
    got = []
    c.on("printer:job_started", lambda p: got.append(p["seq"]))
    c.on("*", lambda e, p: got.append(e))
    assert c._auth() == {"apikey": "KEY"}
    c._handle("printer:job_started", ev(5))
    c._handle("printer:job_started", ev(5))  # replay overlap
    c._handle("printer:connection", ev(3, state="connected"))  # older: dropped
    c._handle("printer:temperature", ev(2))  # telemetry: seq not tracked
    c._handle("printer:job_started", ev(9))
    assert c.last_seq == 9 and c.duplicates == 2
    assert got == [
        5,
        "printer:job_started",
        "printer:temperature",
        9,
        "printer:job_started",
    ]
    assert c._auth() == {"apikey": "KEY", "last_seq": 9}
    assert [d["seq"] for d in c.durable()] == [5, 9]


def test_resync_moves_the_cursor_and_status_is_kept():
    c = FluxPrintClient("http://127.0.0.1:1", "KEY", last_seq=3, rest_interval=0)
    seen = []
    c.on("printer:resync", seen.append)
    c._handle("printer:resync", {"requested": 3, "oldestSeq": 50, "lastSeq": 70})
    assert c.last_seq == 70 and c.resyncs == 1 and seen
    c._handle("printer:job_complete", ev(70))
    assert c.duplicates == 1
    c._handle("printer:status", ev(71, state={}))
    assert c.status["seq"] == 71 and c.status_source == "socket"
    c._handle("printer:closing", {"reason": "shutdown"})
    assert c.closing_reasons == ["shutdown"]


def test_handler_errors_do_not_stop_dispatch():
    c = FluxPrintClient("http://127.0.0.1:1", "KEY", rest_interval=0)
    got = []
    c.on("printer:job_started", lambda p: 1 / 0)
    c.on("printer:job_started", lambda p: got.append(p["seq"]))
    c._handle("printer:job_started", ev(1))
    assert got == [1] and c.last_seq == 1


class Stub(BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802
        Stub.hits.append((self.path, self.headers.get("X-Api-Key")))
        body = json.dumps(ev(42, state={"text": "Operational"})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_rest_fallback_while_the_socket_cannot_connect():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    t = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    t.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    c = FluxPrintClient(
        url, "KEY", rest_interval=0.05, reconnect_delay=0.05, connect_timeout=1
    )
    statuses = []
    c.on("printer:status", statuses.append)
    try:
        c.start(wait=False)
        c.wait_for(lambda cl: cl.rest_polls >= 2, timeout=5)
        assert c.status["seq"] == 42 and c.status_source == "rest"
        assert statuses and not c.connected and c.connect_errors
        assert ("/api/plugin/fluxprint", "KEY") in Stub.hits
    finally:
        c.close()
        server.shutdown()
        server.server_close()
