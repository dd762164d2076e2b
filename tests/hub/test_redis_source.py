"""The hub's redis source with real parts: a real ``redis-server``
(tools/redisserver.py), real hub processes (``source: redis``), python-socketio
clients, and a small synthetic writer that writes what a plugin would
(``core.streams``: a durable event into live + durable in one MULTI, status
keyframes every 2 s, telemetry, the registry's heartbeat and an announce, and a
back-fill of the durable events Redis lacks after a cut).

Shown: printers appear as they register (to a client connected before); replay
from the cache and from Redis; a resync for a cursor older than the durable
stream's first entry; a client moving from hub A to hub B with its cursors loses
and duplicates nothing, per-printer seqs strictly increasing; Redis kill -9 and
restart: the hub reconnects and the flow resumes; a silent printer goes stale, then
online again; ``/metrics`` parses. Counts go to test-artifacts/hub-redis.json."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any, Optional

import pytest
import redis
import requests
import socketio
from harness.fluxstudio import Proc
from octoserver import free_port
from prometheus_client.parser import text_string_to_metric_families
from redisserver import RedisServer

from octoprint_fluxprint.core import streams as ST
from tests.hub.conftest import HubClient, HubProcess

pytestmark = pytest.mark.integration

PREFIX = "farmtest"
HERE = os.path.dirname(os.path.abspath(__file__))


class Balancer:
    """A failover TCP balancer, in a thread: each new connection goes to the first
    backend that accepts it (so, after a hub dies, to the other). Nothing sticky
    is needed for websockets; the Node client's polling start works because every
    request goes to the same live hub (docs/hub.md: polling needs stickiness)."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.routed: dict[int, int] = {}
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._route, args=(conn,), daemon=True).start()

    def _route(self, conn: socket.socket) -> None:
        for port in self.ports:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                continue
            upstream.settimeout(None)
            self.routed[port] = self.routed.get(port, 0) + 1
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            return
        conn.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.server.close()


class SynthPrinter:
    """What one plugin's publisher writes, from a thread; ``paused`` makes it
    silent (no entries, no heartbeat)."""

    def __init__(self, url: str, pid: str, seq0: int = 0, instance: str = "synth"):
        self.pid = pid
        self.instance = instance
        self.r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
        self.seq = seq0
        self.durable: list[tuple[int, str, dict]] = []  # the plugin's log
        self.lock = threading.Lock()
        self.paused = False
        self.dirty = False  # a write failed: back-fill before the next
        self.announced = False
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.live = ST.live_key(PREFIX, pid)
        self.durable_key = ST.durable_key(PREFIX, pid)

    def start(self) -> SynthPrinter:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _payload(self, seq: int, body: dict) -> dict:
        return {**body, "seq": seq, "ts": int(time.time() * 1000), "printer": self.pid}

    def _write(self, event: str, body: dict, durable: bool) -> int:
        with self.lock:
            self.seq += 1
            seq = self.seq
            payload = self._payload(seq, body)
            if durable:
                self.durable.append((seq, event, payload))
            try:
                if self.dirty:
                    self._backfill()
                pipe = self.r.pipeline(transaction=True)
                fields = ST.encode(event, payload)
                pipe.xadd(self.live, fields, id=ST.entry_id(seq))
                if durable:
                    pipe.xadd(self.durable_key, fields, id=ST.entry_id(seq))
                pipe.execute()
            except redis.RedisError:
                self.dirty = True
            return seq

    def _backfill(self) -> None:
        top = self.r.xrevrange(self.durable_key, "+", "-", count=1)
        top_seq = ST.seq_of(top[0][0]) if top else 0
        pipe = self.r.pipeline(transaction=True)
        for seq, event, payload in self.durable:
            if seq > top_seq:
                fields = ST.encode(event, payload)
                pipe.xadd(self.live, fields, id=ST.entry_id(seq))
                pipe.xadd(self.durable_key, fields, id=ST.entry_id(seq))
        pipe.execute(raise_on_error=False)  # live may hold later statuses already
        self.dirty = False

    def event(self, event: str = "printer:job_started") -> int:
        return self._write(event, {"filename": f"f{self.seq}.gcode"}, True)

    def status(self) -> int:
        body = {
            "state": {"text": "Operational", "flags": {"operational": True}},
            "temperature": {},
            "job": {},
            "progress": {},
            "connection": {"state": "Operational"},
        }
        return self._write("printer:status", body, False)

    def heartbeat(self) -> None:
        record = ST.registry_record(
            self.pid,
            self.pid.upper(),
            "test",
            self.instance,
            int(time.time() * 1000),
            self.seq,
        )
        try:
            self.r.hset(ST.registry_key(PREFIX), self.pid, record)
            if not self.announced:
                self.r.xadd(
                    ST.announce_key(PREFIX),
                    {"id": self.pid},
                    maxlen=ST.ANNOUNCE_MAXLEN,
                    approximate=True,
                )
                self.announced = True
        except redis.RedisError:
            pass

    def _run(self) -> None:
        last_status = last_beat = last_temp = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if not self.paused:
                if now - last_beat >= 1.0:
                    self.heartbeat()
                    last_beat = now
                if now - last_status >= ST.KEYFRAME_S:
                    self.status()
                    last_status = now
                if now - last_temp >= 0.5:
                    self._write(
                        "printer:temperature", {"tool0": {"actual": 200.0}}, False
                    )
                    last_temp = now
            time.sleep(0.05)


def hub_config(url: str, **redis_extra: Any) -> dict:
    return {
        "source": "redis",
        "redis": {"url": url, "prefix": PREFIX, "block_ms": 500, **redis_extra},
        "auth": {"trusted": {"profile": "dashboard"}},
        "stale_after": 3,
        "offline_after": 6,
        "log_level": "DEBUG",
    }


def wait_for(check, timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


def seqs_increase(client: HubClient) -> bool:
    """Every message a client got carries, per printer, a strictly higher seq."""
    last: dict[str, int] = {}
    with client.lock:
        events = list(client.events)
    for _t, _event, data in events:
        if not isinstance(data, dict) or data.get("printer") in (None, "hub"):
            continue
        pid, seq = data["printer"], data.get("seq")
        if not isinstance(seq, int):
            continue
        if seq <= last.get(pid, 0):
            return False
        last[pid] = seq
    return True


def count(client_durable: list, log: list, since: int = 0) -> dict:
    got = [s for s, _e in client_durable if s > since]
    want = [s for s, _e, _p in log if s > since]
    return {
        "compared": len(want),
        "lost": len(set(want) - set(got)),
        "duplicated": len(got) - len(set(got)),
        "out_of_order": int(got != sorted(got)),
    }


def last_durable(client: HubClient, pid: str) -> int:
    rows = durable_of(client, pid)
    return rows[-1][0] if rows else 0


def joined(client: HubClient, pids: set) -> None:
    """Wait until the client has a status of each printer (it is in their rooms)."""
    wait_for(
        lambda: {s["printer"] for s in client.seen("printer:status")} >= pids,
        what=f"a status of {pids}",
    )


def durable_of(client: HubClient, pid: str) -> list[tuple[int, str]]:
    with client.lock:
        return [(s, e) for p, s, e in client.durable if p == pid]


def metrics(hub: HubProcess) -> dict[str, Any]:
    text = requests.get(hub.url + "/metrics", timeout=5).text
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


RESULTS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def rds(tmp_path_factory):
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def writers(rds):
    made: dict[str, SynthPrinter] = {}
    yield made
    for writer in made.values():
        writer.stop()


@pytest.fixture(scope="module")
def hubs(tmp_path_factory, rds):
    made: dict[str, HubProcess] = {}

    def start(name: str, **redis_extra: Any) -> HubProcess:
        hub = HubProcess(
            str(tmp_path_factory.mktemp(f"hub-{name}")),
            hub_config(rds.url, **redis_extra),
            free_port(),
        )
        hub.start()
        made[name] = hub
        return hub

    yield start
    for name, hub in made.items():
        t0 = time.monotonic()
        code = hub.stop()
        RESULTS.setdefault("hub_stops", {})[name] = [
            code,
            round(time.monotonic() - t0, 2),
        ]
    path = os.path.join(os.environ.get("FLUXPRINT_ARTIFACTS", "test-artifacts"))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "hub-redis.json"), "w") as f:
        json.dump(RESULTS, f, indent=2)


def test_refuses_connects_until_the_registry_was_read(tmp_path):
    hub = HubProcess(
        str(tmp_path), hub_config(f"redis://127.0.0.1:{free_port()}/0"), free_port()
    )
    hub.start()
    try:
        client = HubClient(hub.url)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.start()
        client.close()
        assert any("server is starting" in e for e in client.connect_errors), (
            client.connect_errors
        )
        assert hub.health()["redis"]["up"] is False
    finally:
        hub.stop()


def test_printers_appear_as_they_register(rds, writers, hubs):
    hub = hubs("a", cache_events=1000)
    client = HubClient(hub.url).start()
    try:
        wait_for(lambda: client.seen("printer:printers"), what="printer:printers")
        assert client.seen("printer:printers")[0]["printers"] == []
        for pid in ("p0", "p1"):
            writers[pid] = SynthPrinter(rds.url, pid).start()
        # joined at once: printer:printers names it, its snapshot status comes
        wait_for(
            lambda: (
                {
                    p["id"]
                    for m in client.seen("printer:printers")
                    for p in m["printers"]
                    if p["state"] == "online"
                }
                >= {"p0", "p1"}
            ),
            what="p0 and p1 online",
        )
        wait_for(
            lambda: {s["printer"] for s in client.seen("printer:status")} >= {"p0", "p1"},
            what="a status from each",
        )
        joined(client, {"p0", "p1"})
        seqs = [writers["p0"].event() for _ in range(5)]
        wait_for(lambda: [s for s, _e in durable_of(client, "p0")][-5:] == seqs)
        assert seqs_increase(client)
        stats = hub.health()["redis"]
        assert stats["up"] and stats["readers"] == 1 and stats["reads"] > 0
    finally:
        client.close()


def test_replay_from_the_cache_and_from_redis(rds, writers, hubs):
    hub_a = hubs("a2", cache_events=1000)
    hub_small = hubs("small", cache_events=3)
    for hub in (hub_a, hub_small):
        wait_for(lambda h=hub: set(h.health()["printers"]) >= {"p0", "p1"})
    w = writers["p0"]
    cursor = w.event()
    for hub in (hub_a, hub_small):
        wait_for(lambda h=hub: h.health()["redis"]["printers"] >= 2)
    written = [w.event() for _ in range(10)]
    # a hub started after them holds them too: its cache starts with the newest
    # durable events Redis has (a client moving to a fresh hub is served from memory)
    hub_fresh = hubs("fresh", cache_events=1000)
    out = {}
    for name, hub in (("cache", hub_a), ("redis", hub_small), ("fresh", hub_fresh)):
        wait_for(
            lambda h=hub: (
                requests.get(h.url + "/health").ok and _relayed(h, "p0") >= written[-1]
            ),
            what="the hub relayed the events",
        )
        client = HubClient(hub.url)
        client.cursors = {"p0": cursor}
        client.start()
        try:
            wait_for(lambda c=client: len(durable_of(c, "p0")) >= 10, what="replay")
            got = [s for s, _e in durable_of(client, "p0")]
            assert got[:10] == written, (name, got)
            assert not client.errors
            assert seqs_increase(client)
            stats = hub.health()["redis"]
            out[name] = stats
            if name != "redis":
                assert stats["replay_from_cache"] >= 10, stats
                assert stats["replay_from_redis"] == 0, stats
            else:
                assert stats["replay_from_redis"] >= 7
        finally:
            client.close()
    RESULTS["replay"] = {
        k: {x: v[x] for x in ("replay_from_cache", "replay_from_redis")}
        for k, v in out.items()
    }


def _relayed(hub: HubProcess, pid: str) -> int:
    client = HubClient(hub.url, printers=[pid]).start()
    try:
        wait_for(lambda: client.seen("printer:printers"))
        rows = [
            p for p in client.seen("printer:printers")[-1]["printers"] if p["id"] == pid
        ]
        return rows[0]["lastSeq"] if rows else 0
    finally:
        client.close()


def test_resync_for_a_cursor_older_than_redis_retains(rds, writers, hubs):
    hub = hubs("small2", cache_events=3)
    w = writers["p1"]
    old = w.event()
    for _ in range(8):
        w.event()
    # the plugin trims durable to the oldest its log keeps
    keep = w.durable[-4][0]
    w.r.xtrim(w.durable_key, minid=ST.entry_id(keep), approximate=False)
    wait_for(lambda: _relayed(hub, "p1") >= w.durable[-1][0])
    client = HubClient(hub.url)
    client.cursors = {"p1": old}
    client.start()
    try:
        wait_for(lambda: client.seen("printer:resync"), what="a resync")
        body = client.seen("printer:resync")[0]
        assert body["printer"] == "p1" and body["requested"] == old
        assert body["oldestSeq"] == keep
        # nothing partial was replayed
        assert not [s for s, _e in durable_of(client, "p1") if s <= w.durable[-1][0]]
        RESULTS["resync"] = body
    finally:
        client.close()


def test_a_client_moves_from_hub_a_to_hub_b(rds, writers, hubs):
    hub_a, hub_b = hubs("move-a"), hubs("move-b")
    for hub in (hub_a, hub_b):
        wait_for(lambda h=hub: h.health()["redis"]["printers"] >= 2)
    first = HubClient(hub_a.url).start()
    joined(first, {"p0", "p1"})
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for w in (writers["p0"], writers["p1"]):
                w.event("printer:job_paused")
            time.sleep(0.05)

    base = {pid: writers[pid].durable[-1][0] for pid in ("p0", "p1")}
    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_for(lambda: len(first.durable) > 20)
        hub_a.kill()
        first.close()  # what it had received from A is processed before its cursors
        time.sleep(0.3)
        second = HubClient(hub_b.url)
        with first.lock:
            second.cursors = dict(first.cursors)
        start_cursors = dict(second.cursors)
        second.start()
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join()
    try:
        counts = {}
        for pid in ("p0", "p1"):
            log = writers[pid].durable
            wait_for(lambda p=pid, lg=log: last_durable(second, p) == lg[-1][0])
            union = [
                d
                for d in durable_of(first, pid) + durable_of(second, pid)
                if d[0] > base[pid]
            ]
            # hub B sends nothing at or below the cursor it was given
            assert all(s > start_cursors[pid] for s, _e in durable_of(second, pid))
            counts[pid] = count(union, log, base[pid])
            assert counts[pid]["lost"] == 0 and counts[pid]["duplicated"] == 0, counts
            assert counts[pid]["out_of_order"] == 0, counts
        assert seqs_increase(first) and seqs_increase(second)
        RESULTS["move"] = counts
    finally:
        first.close()
        second.close()


def test_two_hubs_behind_a_failover_balancer(rds, writers, hubs, artifacts_dir):
    """A Node socket.io-client 4 dashboard (default transports: polling, then the
    upgrade) and a python one, through a balancer to hub A; SIGKILL A: both come
    back through the balancer to hub B by themselves, with their cursors."""
    hub_a, hub_b = hubs("lb-a"), hubs("lb-b")
    for hub in (hub_a, hub_b):
        wait_for(lambda h=hub: h.health()["redis"]["printers"] >= 2)
    lb = Balancer([hub_a.port, hub_b.port])
    node = Proc(
        os.path.join(HERE, "farm_client.mjs"),
        log_path=os.path.join(artifacts_dir, "hub-redis-node.out"),
        args=(json.dumps({"url": lb.url, "printers": ["p0", "p1"]}),),
    )
    py = HubClient(lb.url).start()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            for w in (writers["p0"], writers["p1"]):
                w.event("printer:job_resumed")
            time.sleep(0.1)

    thread = threading.Thread(target=load)
    try:
        node.wait_for(lambda m: m.get("type") == "subscribed", 15)
        joined(py, {"p0", "p1"})
        time.sleep(0.5)
        base = {pid: writers[pid].durable[-1][0] for pid in ("p0", "p1")}
        thread.start()
        time.sleep(1.5)
        hub_a.kill()
        killed = time.monotonic()
        node.wait_for(lambda m: m.get("type") == "connect" and m["conn"] == 2, 20)
        wait_for(lambda: py.connects >= 2, 20, "the python client back")
        reattached = time.monotonic() - killed
        time.sleep(1.5)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
    try:
        counts = {}
        for pid in ("p0", "p1"):
            log = writers[pid].durable
            last = log[-1][0]
            node.wait_for(
                lambda m, p=pid, t=last: (
                    m.get("type") == "durable" and m["printer"] == p and m["seq"] == t
                ),
                15,
            )
            wait_for(lambda p=pid, t=last: last_durable(py, p) == t)
            got_node = [
                (m["seq"], m["event"])
                for m in node.since()
                if m.get("type") == "durable" and m["printer"] == pid
            ]
            got_py = durable_of(py, pid)
            counts[pid] = {
                "node": count(got_node, log, base[pid]),
                "python": count(got_py, log, base[pid]),
            }
            for who in counts[pid].values():
                assert who["compared"] > 10 and who["lost"] == 0, counts
                assert who["duplicated"] == 0 and who["out_of_order"] == 0, counts
        assert seqs_increase(py)
        assert not [m for m in node.since() if m.get("event") == "printer:resync"]
        assert lb.routed.get(hub_b.port, 0) >= 2  # both came back through B
        RESULTS["balancer"] = {**counts, "reattached_s": round(reattached, 2)}
    finally:
        node.stop()
        py.close()
        lb.close()


def test_redis_kill_9_and_restart(rds, writers, hubs):
    hub = hubs("kill")
    wait_for(lambda: hub.health()["redis"]["printers"] >= 2)
    client = HubClient(hub.url).start()
    try:
        joined(client, {"p0", "p1"})
        w = writers["p0"]
        before = [w.event() for _ in range(3)]
        wait_for(lambda: last_durable(client, "p0") == before[-1])
        rds.kill()
        time.sleep(1.5)
        during = [w.event() for _ in range(3)]  # fail: back-filled later
        wait_for(lambda: hub.health()["redis"]["up"] is False, what="redis down")
        wait_for(
            lambda: any(s == "stale" and p == "p0" for _t, p, s in client.states),
            what="stale after redis went away",
        )
        down_at = time.monotonic()
        rds.start()
        after = [w.event() for _ in range(3)]
        wait_for(
            lambda: (
                durable_of(client, "p0") and durable_of(client, "p0")[-1][0] == after[-1]
            ),
            timeout=30,
            what="durable flow back",
        )
        back_s = time.monotonic() - down_at
        since = before[0] - 1
        result = count(durable_of(client, "p0"), w.durable, since)
        assert result["lost"] == 0 and result["duplicated"] == 0, (result, during)
        assert seqs_increase(client)
        wait_for(lambda: hub.health()["printers"].get("p0") == "online")
        RESULTS["redis_kill"] = {**result, "durable_back_s": round(back_s, 2)}
    finally:
        client.close()


def test_a_silent_printer_goes_stale_then_online(rds, writers, hubs):
    hub = hubs("silent")
    wait_for(lambda: hub.health()["printers"].get("p1") == "online")
    client = HubClient(hub.url).start()
    try:
        w = writers["p1"]
        w.paused = True
        t0 = time.monotonic()
        wait_for(
            lambda: any(p == "p1" and s == "stale" for _t, p, s in client.states),
            what="stale",
        )
        stale_s = time.monotonic() - t0
        w.paused = False
        wait_for(
            lambda: client.states[-1:] and _last_state(client, "p1") == "online",
            what="online again",
        )
        RESULTS["silent"] = {"stale_after_s": round(stale_s, 2)}
    finally:
        w.paused = False
        client.close()


def _last_state(client: HubClient, pid: str) -> Optional[str]:
    states = [s for _t, p, s in client.states if p == pid]
    return states[-1] if states else None


def test_a_malformed_entry_is_skipped_and_metrics_parse(rds, writers, hubs):
    # one printer per XREAD: two readers from the first registry read
    hub = hubs("metrics", streams_per_read=1)
    wait_for(lambda: hub.health()["redis"]["printers"] >= 2)
    client = HubClient(hub.url).start()
    try:
        joined(client, {"p0", "p1"})
        assert hub.health()["redis"]["readers"] == 2
        wait_for(lambda: set(hub.health()["printers"].values()) == {"online"})
        w = writers["p0"]
        with w.lock:  # what no plugin writes: the hub skips it, logs, carries on
            w.seq += 1
            w.r.xadd(w.live, {"e": "printer:status", "d": "{nope"}, id=f"{w.seq}-0")
        good = w.event()
        wait_for(lambda: last_durable(client, "p0") == good, what="the next event")
        assert hub.health()["redis"]["skipped"] >= 1
        assert "Skipped" in hub.tail(20000)
        found = wait_for(
            lambda: (m := metrics(hub)).get("fluxprint_messages_out_total") and m
        )
        states = {labels["state"]: v for labels, v in found["fluxprint_printers"]}
        assert states.get("online", 0) >= 1
        assert found["fluxprint_redis_up"][0][1] == 1
        assert found["fluxprint_redis_reads_total"][0][1] > 0
        assert found["fluxprint_bytes_out_total"][0][1] > 0
        assert found["fluxprint_clients"][0][1] >= 1
        assert "fluxprint_redis_lag_seconds" in found
        RESULTS["metrics"] = sorted(found)
    finally:
        client.close()


def test_a_cursor_for_a_printer_not_registered_yet_waits_for_it(rds, writers, hubs):
    # a farm's printers come and go: a client holding a cursor for one this hub
    # does not serve yet is admitted, and that cursor is used once it registers
    hub = hubs("late")
    wait_for(lambda: hub.health()["redis"]["printers"] >= 2)
    late = SynthPrinter(rds.url, "late")  # writes, not registered (no heartbeat yet)
    seen = late.event()
    missed = [late.event() for _ in range(3)]
    client = HubClient(hub.url)
    client.cursors = {"p0": writers["p0"].seq, "late": seen}
    client.start()
    try:
        joined(client, {"p0", "p1"})
        assert durable_of(client, "late") == []
        writers["late"] = late.start()  # registers: the hub finds it
        wait_for(
            lambda: [s for s, _e in durable_of(client, "late")] == missed,
            what="the events after the cursor, replayed when the printer appeared",
        )
        after = late.event()
        wait_for(lambda: last_durable(client, "late") == after, what="then live")
        assert seqs_increase(client)
    finally:
        client.close()


def _states(hub: HubProcess, pid: str, seconds: float) -> list[str]:
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(hub.health()["printers"].get(pid))
        time.sleep(0.1)
    return seen


def test_online_only_once_something_flows_after_redis_returns(rds, writers, hubs):
    """Redis back is not the printer back: its registry record still looks fresh,
    but until its publisher writes again the printer is stale, never online."""
    w = writers["l0"] = SynthPrinter(rds.url, "l0").start()
    hub = hubs("liveness")
    wait_for(lambda: hub.health()["printers"].get("l0") == "online", what="online")
    w.paused = True  # its publisher has not reconnected yet when Redis is back
    rds.stop()
    wait_for(lambda: hub.health()["redis"]["up"] is False, what="redis down")
    rds.start()
    wait_for(lambda: hub.health()["redis"]["up"] is True, what="redis up")
    seen = _states(hub, "l0", 2.0)
    assert "online" not in seen, seen
    w.paused = False  # it writes again
    wait_for(lambda: hub.health()["printers"].get("l0") == "online", what="flowing")
    RESULTS["liveness_after_redis"] = {"while_silent": sorted(set(seen))}


def test_a_reinstalled_printer_gets_its_clients_resynced_not_silence(rds, writers, hubs):
    """The same printer id, a new install (a new instance in the registry, a new
    log: its seqs start again far below what the hub relayed)."""
    old = writers["r0"] = SynthPrinter(rds.url, "r0", seq0=5000, instance="old").start()
    hub = hubs("reinstall")
    wait_for(lambda: hub.health()["printers"].get("r0") == "online", what="online")
    client = HubClient(hub.url).start()
    try:
        joined(client, {"r0"})
        before = [old.event() for _ in range(3)]
        wait_for(lambda: last_durable(client, "r0") == before[-1], what="old events")
        old.stop()
        # what the new install's publisher does (store/farmregistry.py): its
        # record and empty streams in one MULTI, then its own events
        new = SynthPrinter(rds.url, "r0", instance="new")
        pipe = new.r.pipeline(transaction=True)
        pipe.delete(new.live, new.durable_key)
        pipe.hset(
            ST.registry_key(PREFIX),
            "r0",
            ST.registry_record("r0", "R0", "test", "new", int(time.time() * 1000), 0),
        )
        pipe.execute()
        writers["r0"] = new.start()
        after = [new.event() for _ in range(3)]
        resync = wait_for(
            lambda: [m for m in client.seen("printer:resync") if m["printer"] == "r0"],
            what="printer:resync for r0",
        )[0]
        assert resync["lastSeq"] < before[0] <= resync["requested"], resync
        wait_for(
            lambda: {s for s, _e in durable_of(client, "r0")} >= set(after),
            what="the new install's events",
        )
        assert all(s > resync["lastSeq"] for s in after)
        # a client that connects now with an old cursor is resynced, not stalled
        late = HubClient(hub.url)
        late.cursors = {"r0": before[-1]}
        late.start()
        try:
            wait_for(lambda: late.seen("printer:resync"), timeout=10, what="late resync")
        finally:
            late.close()
        RESULTS["reinstall"] = {"resync": resync, "new_events": after}
    finally:
        client.close()


def test_redis_down_tells_each_client_once_not_once_per_printer(rds, writers, hubs):
    """Every printer's link goes down at once: one printer:printers per client,
    not one per printer (each a list of every printer: at 100 printers and 500
    clients that was 25 s of the hub's loop, bench.farm's outlier)."""
    many = [f"m{i}" for i in range(20)]
    for pid in many:
        writers[pid] = SynthPrinter(rds.url, pid).start()
    hub = hubs("many")
    wait_for(
        lambda: all(hub.health()["printers"].get(p) == "online" for p in many),
        what="all online",
    )
    client = HubClient(hub.url).start()
    try:
        wait_for(lambda: client.seen("printer:printers"), what="printer:printers")
        time.sleep(0.5)
        mark = len(client.seen("printer:printers"))
        rds.kill()
        wait_for(lambda: hub.health()["redis"]["up"] is False, what="redis down")
        time.sleep(1.0)
        lists = client.seen("printer:printers")[mark:]
        states = {p["id"]: p["state"] for p in lists[-1]["printers"]} if lists else {}
        assert 1 <= len(lists) <= 3, len(lists)
        assert all(states.get(p) == "stale" for p in many), states
        RESULTS["redis_down_lists"] = len(lists)
    finally:
        client.close()
        rds.start()
