"""Synthetic farm plugins for bench.farm: one process writing to Redis what N
FluxPrint publishers would (core/streams.py's layout), with redis-py pipelines.

Per printer: an announce and a registry record at start, the registry heartbeat
every HEARTBEAT_S, a ``printer:status`` keyframe every KEYFRAME_S, temperature every
1 s, progress every 0.5 s (a printing printer), and every ``durable_every`` s a
durable event (job_paused / job_resumed alternately) written to live and durable in
one MULTI/EXEC. Every entry's ID is ``<seq>-0``; live is trimmed by MINID to about
LIVE_RETENTION_S, durable to the plugin's default cap (``streams.DURABLE_MAX``).
Payloads are shaped like the plugin's
(bench/synthetic.py) and carry the write's wall time: ``ts`` (ms) and
``trace.emit_ns``, so a client's receipt minus it is synthetic-write -> client.

While Redis is away the writes are dropped and counted (a real plugin queues and
back-fills: bench.farm times the flow, not the back-fill).

    python -m bench.farmload --url redis://127.0.0.1:6379/0 --printers 200
stdout: {"type": "ready", "ids": [...]}, then on a stdin line "stats":
    {"type": "stats", "written", "durable", "errors", "pipelines", "cpu_s"}
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import sys
import time
from typing import Any

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from octoprint_fluxprint.core import streams  # noqa: E402

TICK_S = 0.05
DURABLE_MAX = streams.DURABLE_MAX  # the plugin's redis.durable_max default

FLAGS = dict.fromkeys(("operational", "printing", "ready", "sdReady"), True) | {
    k: False
    for k in (
        "paused",
        "pausing",
        "resuming",
        "cancelling",
        "finishing",
        "error",
        "closedOrError",
    )
}
FILE = {
    "name": "synthetic.gcode",
    "path": "synthetic.gcode",
    "origin": "local",
    "size": 1_843_211,
}


class Printer:
    def __init__(self, pid: str, now: float):
        self.id = pid
        self.seq = 0
        self.started = now
        phase = random.random()
        self.next = {
            "temperature": now + phase,
            "progress": now + phase * 0.5,
            "status": now + phase * streams.KEYFRAME_S,
            "durable": now + 1 + phase * 10,
        }
        self.paused = False
        self.live_ring: collections.deque[tuple[float, int]] = collections.deque()
        self.durable_seqs: collections.deque[int] = collections.deque()

    def meta(self, body: dict) -> dict:
        self.seq += 1
        ns = time.time_ns()
        ms = ns // 1_000_000
        return {
            **body,
            "printer": self.id,
            "seq": self.seq,
            "ts": ms,
            "timestamp": ms,
            "trace": {"cb_ns": ns, "emit_ns": ns},
        }

    def temps(self) -> dict:
        wobble = round(random.random() / 5, 2)
        return {
            "tool0": {"actual": round(209.8 + wobble, 2), "target": 210.0, "offset": 0},
            "bed": {"actual": round(59.9 + wobble, 2), "target": 60.0, "offset": 0},
        }

    def progress(self, now: float) -> dict:
        elapsed = now - self.started
        return {
            "completion": round(elapsed % 600 / 6, 4),
            "filepos": int(elapsed * 3071),
            "printTime": int(elapsed),
            "printTimeLeft": int(600 - elapsed % 600),
            "printTimeLeftOrigin": "estimate",
            "file": {"name": FILE["name"], "path": FILE["path"], "origin": "local"},
        }

    def status(self, now: float) -> dict:
        return {
            "state": {"text": "Printing", "flags": FLAGS, "error": None},
            "temperature": self.temps(),
            "job": {"file": FILE, "estimatedPrintTime": 600.0, "user": "admin"},
            "progress": self.progress(now),
            "connection": {
                "state": "connected",
                "port": "VIRTUAL",
                "baudrate": 115200,
                "profile": "_default",
            },
        }

    def min_live(self, now: float) -> int:
        """The oldest seq the live stream keeps (about LIVE_RETENTION_S back)."""
        self.live_ring.append((now, self.seq))
        while self.live_ring and self.live_ring[0][0] < now - streams.LIVE_RETENTION_S:
            self.live_ring.popleft()
        return self.live_ring[0][1]

    def due(self, now: float, durable_every: float) -> list[tuple[str, dict, bool]]:
        out: list[tuple[str, dict, bool]] = []
        periods = {"temperature": 1.0, "progress": 0.5, "status": streams.KEYFRAME_S}
        for kind, period in periods.items():
            if now >= self.next[kind]:
                self.next[kind] += period
                if self.next[kind] < now:
                    self.next[kind] = now + period
                if kind == "temperature":
                    out.append(("printer:temperature", self.meta(self.temps()), False))
                elif kind == "progress":
                    out.append(("printer:progress", self.meta(self.progress(now)), False))
                else:
                    out.append(("printer:status", self.meta(self.status(now)), False))
        if durable_every > 0 and now >= self.next["durable"]:
            self.next["durable"] = now + durable_every
            self.paused = not self.paused
            event = "printer:job_paused" if self.paused else "printer:job_resumed"
            body = {"file": FILE, "filename": FILE["name"], "user": "admin"}
            out.append((event, self.meta(body), True))
        return out


class Load:
    def __init__(self, url: str, prefix: str, ids: list[str], durable_every: float):
        self.url = url
        self.prefix = prefix
        now = time.time()
        self.printers = [Printer(pid, now) for pid in ids]
        self.durable_every = durable_every
        self.r = self._client()
        self.stats = {"written": 0, "durable": 0, "errors": 0, "pipelines": 0}
        self.next_heartbeat = 0.0
        self.announced = False

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)

    def heartbeat(self, now: float, pipe: Any) -> None:
        records = {
            p.id: streams.registry_record(
                p.id, p.id, "synthetic", "farmload", int(now * 1000), p.seq
            )
            for p in self.printers
        }
        pipe.hset(streams.registry_key(self.prefix), mapping=records)
        if not self.announced:
            for p in self.printers:
                pipe.xadd(
                    streams.announce_key(self.prefix),
                    {"id": p.id},
                    maxlen=streams.ANNOUNCE_MAXLEN,
                    approximate=True,
                )

    def tick(self) -> None:
        now = time.time()
        pipe = self.r.pipeline(transaction=False)
        written = durable = 0
        ok = True
        heartbeat = now >= self.next_heartbeat
        if heartbeat:
            self.heartbeat(now, pipe)
        for p in self.printers:
            for event, payload, is_durable in p.due(now, self.durable_every):
                fields = streams.encode(event, payload)
                eid = streams.entry_id(payload["seq"])
                live = streams.live_key(self.prefix, p.id)
                minid = streams.entry_id(max(1, p.min_live(now)))
                if is_durable:
                    p.durable_seqs.append(payload["seq"])
                    if len(p.durable_seqs) > DURABLE_MAX:
                        p.durable_seqs.popleft()
                    # what is queued first (lower seqs), then the MULTI/EXEC
                    ok = self._run(pipe) and ok
                    pipe = self.r.pipeline(transaction=False)
                    tx = self.r.pipeline(transaction=True)
                    tx.xadd(live, fields, id=eid, minid=minid, approximate=True)
                    tx.xadd(
                        streams.durable_key(self.prefix, p.id),
                        fields,
                        id=eid,
                        minid=streams.entry_id(p.durable_seqs[0]),
                        approximate=True,
                    )
                    ok = self._run(tx) and ok
                    durable += 1
                else:
                    pipe.xadd(live, fields, id=eid, minid=minid, approximate=True)
                written += 1
        if self._run(pipe) and ok:
            self.stats["written"] += written
            self.stats["durable"] += durable
            if heartbeat:
                self.next_heartbeat = now + streams.HEARTBEAT_S
                self.announced = True

    def _run(self, pipe: Any) -> bool:
        try:
            pipe.execute()
            self.stats["pipelines"] += 1
            return True
        except redis.ResponseError:
            # an ID at or below the top (Redis came back from an older snapshot with
            # higher seqs, cannot happen here) or a trim race: counted
            self.stats["errors"] += 1
            return True
        except (redis.ConnectionError, redis.TimeoutError):
            self.stats["errors"] += 1
            self.r = self._client()
            return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", default=streams.DEFAULT_PREFIX)
    p.add_argument("--printers", type=int, default=10)
    p.add_argument("--first", type=int, default=0, help="ids syn<first>...")
    p.add_argument("--durable-every", type=float, default=10.0)
    args = p.parse_args(argv)
    ids = [f"syn{i:04d}" for i in range(args.first, args.first + args.printers)]
    load = Load(args.url, args.prefix, ids, args.durable_every)
    load.tick()
    print(json.dumps({"type": "ready", "ids": ids}), flush=True)
    next_tick = time.monotonic()
    while True:
        next_tick += TICK_S
        wait = max(0.0, next_tick - time.monotonic())
        ready, _, _ = select.select([sys.stdin], [], [], wait)
        if ready:
            line = sys.stdin.readline()
            if not line:
                return 0
            if line.strip() == "stats":
                t = os.times()
                out = dict(load.stats, type="stats", cpu_s=t.user + t.system)
                print(json.dumps(out), flush=True)
        if time.monotonic() >= next_tick:
            load.tick()
        if next_tick < time.monotonic() - 1:
            next_tick = time.monotonic()  # overloaded: skip, never pile up


if __name__ == "__main__":
    sys.exit(main())
