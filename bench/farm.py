"""The farm mode: synthetic plugins writing to Redis (bench/farmload.py: what N
FluxPrint publishers write, core/streams.py's layout), optionally real OctoPrints
publishing beside them, feeding 1 and 2 ``fluxprint-hub`` processes with the
``redis`` source, and Node dashboards (tests/farm/farm_clients.mjs, many sockets
per Node process) each subscribed to 10 printers, spread over the hubs.

Per cell (printers x clients x hubs): synthetic-write -> client latency p50/p99
(the write's wall time rides in the payload's ``trace.emit_ns``), deliveries/s and
per hub core (psutil CPU of the hub processes), hub RSS per client, Redis memory
(INFO memory, MEMORY USAGE per stream) and CPU (INFO cpu), bytes per client. Once
per run: recovery (hub SIGKILL -> its clients re-attached on the other hub; Redis
kill -9 and back -> durable flow at the clients), the plugin's added CPU for
publishing (two real OctoPrints printing, one publishing, one not), and FDM
Monster's model (one SockJS socket per OctoPrint + the whole farm's state to every
browser every 500 ms) from the real SockJS payload measured in the same run.

    .venv/bin/python -m bench.farm            full run (~15 min): bench/results/farm.json
                                              and the farm section of docs/benchmarks.md
    .venv/bin/python -m bench.farm --smoke    10 printers x 20 clients, 1 and 2 hubs (CI)
    .venv/bin/python -m bench.farm --report   the section from the JSON
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

import psutil
import requests
import yaml

from .farmclients import FarmClients
from .hub import free_ports
from .run import ROOT, gcode_file, log, machine, server
from .stream import write_section as _write_section

sys.path.insert(0, os.path.join(ROOT, "tools"))
from redisserver import RedisServer  # noqa: E402

from octoprint_fluxprint.core import streams  # noqa: E402

JSON_OUT = os.path.join(ROOT, "bench", "results", "farm.json")
MD = os.path.join(ROOT, "docs", "benchmarks.md")
BEGIN, END = "<!-- farm:begin -->", "<!-- farm:end -->"
PER_CLIENT = 10  # printers each client subscribes to
PROBES = 20  # of a cell's clients, real socket.io-client 4 (the others lean)
CLIENTS_PER_NODE = 500
DURABLE_EVERY = 10.0
GROW_S = 60.0  # an overloaded machine: measure what connected by then  # s between a synthetic printer's durable events
GCODE = "farm-bench.gcode"


class Load:
    """bench.farmload in its own process (its CPU is not the hub's)."""

    def __init__(self, url: str, printers: int):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.farmload",
                "--url",
                url,
                "--printers",
                str(printers),
                "--durable-every",
                str(DURABLE_EVERY),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.ids: list[str] = json.loads(self.proc.stdout.readline())["ids"]

    def stats(self) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class Hub:
    def __init__(self, workdir: str, redis_url: str):
        self.port = free_ports(1)[0]
        self.path = os.path.join(workdir, f"hub-{self.port}.yaml")
        cfg = {
            "listen": {"port": self.port},
            "source": "redis",
            "redis": {"url": redis_url},
            "auth": {"trusted": {"profile": "dashboard", "printers": ["*"]}},
            "limits": {"max_connections": 20000, "max_connections_per_user": 20000},
            "log_level": "WARNING",
        }
        with open(self.path, "w") as f:
            yaml.safe_dump(cfg, f)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, printers: int, timeout: float = 60) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "octoprint_fluxprint.hub", "--config", self.path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        states: dict = {}
        while time.monotonic() < deadline:
            try:
                states = requests.get(self.url + "/health", timeout=2).json()["printers"]
                online = [s for s in states.values() if s == "online"]
                if len(online) >= printers:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"hub: {len(states)} printers, wanted {printers}")

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def clients(self) -> int:
        try:
            return requests.get(self.url + "/health", timeout=10).json()["socketio"][
                "clients"
            ]
        except (requests.RequestException, ValueError, KeyError):
            return -1

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


def redis_cpu(r: Any) -> float:
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def stream_usage(r: Any, prefix: str, ids: list[str]) -> dict:
    """MEMORY USAGE per stream and per entry, over a sample of printers."""
    live = durable = live_n = durable_n = 0
    for pid in ids[:10]:
        lk, dk = streams.live_key(prefix, pid), streams.durable_key(prefix, pid)
        live += r.memory_usage(lk, samples=0) or 0
        live_n += r.xlen(lk)
        durable += r.memory_usage(dk, samples=0) or 0
        durable_n += r.xlen(dk)
    k = max(1, min(10, len(ids)))
    return {
        "live_stream_bytes": live // k,
        "live_entries": live_n // k,
        "live_entry_bytes": live // max(1, live_n),
        "durable_stream_bytes": durable // k,
        "durable_entries": durable_n // k,
        "durable_entry_bytes": durable // max(1, durable_n) if durable_n else None,
    }


def entry_bytes(r: Any, prefix: str = "benchprobe") -> dict:
    """Redis's bytes per entry at retention scale: a minute of one printer's live
    messages and 2,000 durable events, written with the load's payloads into scratch
    streams, MEMORY USAGE divided by the entries (stream overhead amortized)."""
    from .farmload import Printer

    p = Printer("probe0001", time.time())
    live, durable = f"{prefix}:live", f"{prefix}:durable"
    r.delete(live, durable)
    t = time.time()
    pipe = r.pipeline(transaction=False)
    n_live = n_durable = 0
    while n_live < 210 or n_durable < 2000:  # 60 s x 3.5/s; a durable-heavy log
        t += 0.05
        for event, payload, is_durable in p.due(t, 0.5):
            fields = streams.encode(event, payload)
            eid = streams.entry_id(payload["seq"])
            if is_durable and n_durable < 2000:
                pipe.xadd(durable, fields, id=eid)
                n_durable += 1
            elif not is_durable and n_live < 210:
                pipe.xadd(live, fields, id=eid)
                n_live += 1
    pipe.execute()
    out = {
        "live_entry_bytes": (r.memory_usage(live, samples=0) or 0) // n_live,
        "durable_entry_bytes": (r.memory_usage(durable, samples=0) or 0) // n_durable,
        "live_sample": n_live,
        "durable_sample": n_durable,
    }
    r.delete(live, durable)
    return out


def merge_counts(parts: list[dict]) -> dict:
    out: dict[str, int] = {}
    for part in parts:
        for k, v in part.items():
            out[k] = out.get(k, 0) + v
    return out


def pct_merge(stats: list[dict], key: str) -> dict:
    """Latency over several Node processes: counts summed, p50 the count-weighted
    mean of theirs, p95/p99/max the worst process's (an upper bound)."""
    parts = [s[key] for s in stats if s[key]["count"]]
    if not parts:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    n = sum(p["count"] for p in parts)
    return {
        "count": n,
        "p50": sum(p["p50"] * p["count"] for p in parts) / n,
        "p95": max(p["p95"] for p in parts),
        "p99": max(p["p99"] for p in parts),
        "max": max(p["max"] for p in parts),
    }


def open_clients(hubs: list[Hub], ids: list[str], n: int, **opts: Any) -> list:
    """n clients over ceil(n / CLIENTS_PER_NODE) Node processes: lean ones (plain ws,
    the same Socket.IO frames, see farm_clients.mjs) unless lean=False."""
    opts.setdefault("lean", True)
    procs = max(1, math.ceil(n / CLIENTS_PER_NODE))
    gens = []
    for k in range(procs):
        share = n // procs + (1 if k < n % procs else 0)
        gens.append(
            FarmClients(
                [h.url for h in hubs],
                pool=ids,
                per_client=PER_CLIENT,
                durable_lines=False,
                start=k,
                batch=100,
                **opts,
            )
        )
        gens[-1].send("grow", n=share, seconds=GROW_S)
    for g in gens:
        g.wait_for(lambda m: m["type"] == "grown", GROW_S + 60)
    return gens


def one_cell(
    hubs: list[Hub], r: Any, load: Load, ids: list[str], n: int, window: float
) -> dict:
    base_rss = sum(h.rss() for h in hubs)
    probes = min(PROBES, n // 2)
    gens = open_clients(hubs, ids, n - probes)
    gens += open_clients(hubs, ids, probes, lean=False)  # socket.io-client 4
    try:
        time.sleep(2 + n / 1000)
        for g in gens:
            g.window_start()
        cpu0 = [h.cpu() for h in hubs]
        node0 = [g.cpu_seconds() for g in gens]
        rcpu0 = redis_cpu(r)
        l0 = load.stats()
        t0 = time.monotonic()
        time.sleep(window)
        seconds = time.monotonic() - t0
        cpu = sum(h.cpu() - c for h, c in zip(hubs, cpu0))
        node = sum(g.cpu_seconds() - c for g, c in zip(gens, node0))
        rcpu = redis_cpu(r) - rcpu0
        l1 = load.stats()
        stats = [g.stats() for g in gens]
        rss = sum(h.rss() for h in hubs)
        admitted = sum(h.clients() for h in hubs)
    finally:
        for g in gens:
            g.close()
    deliveries = sum(s["messages"] for s in stats)
    connected = sum(s["connected"] for s in stats)  # the probes included
    probe_stats = stats[-1]
    stats = stats[:-1] or stats
    mem = r.info("memory")
    c = {
        "printers": len(ids),
        "hubs": len(hubs),
        "n": n,
        "clients": connected,
        "node_processes": len(gens),
        "seconds": seconds,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / seconds,
        "hub_cpu_cores": cpu / seconds,
        "deliveries_per_hub_core_s": deliveries / cpu if cpu > 0 else None,
        "hub_rss": rss,
        "hub_rss_per_client": (rss - base_rss) / max(1, connected),
        "latency_ms": pct_merge(stats, "latency_ms"),
        "probe_latency_ms": probe_stats["latency_ms"],
        "probes": probes,
        "bytes_per_client_s": sum(s["bytes_read"] for s in stats + [probe_stats])
        / max(1, connected)
        / seconds,
        "node_cpu_cores": node / seconds,
        "redis_cpu_cores": rcpu / seconds,
        "redis_used_memory": mem["used_memory"],
        "writes_per_s": (l1["written"] - l0["written"]) / seconds,
        "load_cpu_cores": (l1["cpu_s"] - l0["cpu_s"]) / seconds,
        "write_errors": l1["errors"] - l0["errors"],
        "resyncs": sum(s["resyncs"] for s in stats),
        "hub_clients": admitted,
        "disconnects": merge_counts([s.get("disconnects") or {} for s in stats]),
        "expected_deliveries_per_s": n * min(PER_CLIENT, len(ids)) * 3.5,
    }
    lat = c["latency_ms"]
    log(
        f"farm {len(ids)} printers x {n} clients, {len(hubs)} hub(s): "
        f"{c['deliveries_per_s']:.0f} deliveries/s, hubs {c['hub_cpu_cores']:.2f} core, "
        f"{fmt(c['deliveries_per_hub_core_s'], 0)}/core-s, p50 {fmt(lat['p50'])} "
        f"p99 {fmt(lat['p99'])} ms, {c['hub_rss_per_client'] / 1024:.0f} KiB/client"
    )
    return c


def recovery(
    work: str, redis: RedisServer, hubs: list[Hub], ids: list[str], n: int
) -> dict:
    """Hub SIGKILL -> its clients on the other hub; Redis kill -9 and back -> the
    first durable event at a client."""
    gens = open_clients(hubs, ids, n, jitter_ms=1000)
    out: dict[str, Any] = {"clients": n, "printers": len(ids)}
    try:
        time.sleep(2)
        for g in gens:
            g.window_start()
        killed = time.monotonic()
        hubs[0].kill()
        deadline = time.monotonic() + 60
        moved = n // 2
        while sum(g.stats()["reattached"] for g in gens) < moved:
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        out["hub_kill_all_reattached_s"] = round(time.monotonic() - killed, 2)
        st = [g.stats() for g in gens]
        out["reattach_ms"] = pct_merge(st, "reattach_ms")
        out["reattached"] = sum(s["reattached"] for s in st)
        out["moved"] = moved
        hubs[0].start(len(ids))

        redis.kill()
        time.sleep(2.0)
        for g in gens:
            g.window_start()
        start_ms = time.time() * 1000
        redis.start()
        back_ms = time.time() * 1000  # it answers PING (the hubs may be faster)
        deadline = time.monotonic() + 30
        first = None
        while time.monotonic() < deadline:
            t = [g.stats()["first_durable_t"] for g in gens]
            t = [x for x in t if x]
            if t:
                first = min(t)
                break
            time.sleep(0.1)
        out["redis_back_durable_ms"] = (
            None if first is None else max(0.0, first - back_ms)
        )
        out["redis_start_to_durable_ms"] = None if first is None else first - start_ms
        out["redis_start_to_ping_ms"] = back_ms - start_ms
        out["redis_down_s"] = 2.0
    finally:
        for g in gens:
            g.close()
    log(
        f"recovery: re-attach p50 {fmt(out['reattach_ms']['p50'])} p95 "
        f"{fmt(out['reattach_ms']['p95'])} ms; Redis back -> durable "
        f"{fmt(out['redis_back_durable_ms'])} ms"
    )
    return out


def plugin_cost(work: str, redis_url: str, window: float) -> dict:
    """Two real OctoPrints printing the same file, one publishing to Redis and one
    not: the difference of their CPU over the same window is the publishing cost."""
    from octoprint_fluxprint.plugin.settings import DEFAULTS

    if "redis" not in DEFAULTS:
        return {"available": False, "why": "this plugin has no redis publisher"}
    pub = {"printer_id": "real-pub", "redis": {"url": redis_url}}
    off = {"printer_id": "real-off"}
    with server(work, "real-pub", trace=True, fluxprint=pub) as a:
        with server(work, "real-off", trace=True, fluxprint=off) as b:
            for srv in (a, b):
                srv.upload(GCODE, gcode_file(200_000))
                srv.ensure_printing(GCODE)
            time.sleep(5)
            cpu0 = [s.ps.cpu_times() for s in (a, b)]
            t0 = time.monotonic()
            time.sleep(window)
            seconds = time.monotonic() - t0
            cpu1 = [s.ps.cpu_times() for s in (a, b)]
            health = a.api("GET", "/plugin/fluxprint/health?detail=1").json()
            sockjs = sockjs_payload(b, min(window, 10))
    used = [
        (c1.user + c1.system - c0.user - c0.system) / seconds
        for c0, c1 in zip(cpu0, cpu1)
    ]
    return {
        "available": True,
        "seconds": seconds,
        "publishing_cores": used[0],
        "not_publishing_cores": used[1],
        "added_cores": used[0] - used[1],
        "publisher": (health.get("detail") or health).get("redis"),
        "sockjs": sockjs,
    }


def sockjs_payload(srv: Any, window: float) -> dict:
    """One dashboard socket on OctoPrint's real SockJS (/sockjs), as FDM Monster holds
    per printer: bytes/s and the mean ``current`` message."""
    from .loadgen import LoadGen

    gen = LoadGen("sockjs", srv.url, auth=srv.passive_login())
    try:
        gen.grow(1)
        time.sleep(1)
        gen.window_start()
        time.sleep(window)
        w = gen.window_end()
    finally:
        gen.close()
    current = w["events"].get("current", 0)
    return {
        "seconds": w["seconds"],
        "bytes_per_s": w["bytes_read"] / w["seconds"],
        "current_per_s": current / w["seconds"],
        "bytes_per_current": w["bytes_read"] / current if current else None,
    }


def fdm_model(cells: list[dict], sockjs: Optional[dict], state_bytes: int) -> dict:
    """FDM Monster's traffic for the same farms: the server holds one SockJS socket
    per OctoPrint and sends the whole farm's state to every browser every 500 ms."""
    per_printer = (sockjs or {}).get("bytes_per_current") or state_bytes
    rows = []
    for c in cells:
        rows.append(
            {
                "printers": c["printers"],
                "browsers": c["n"],
                "server_in_bytes_per_s": c["printers"]
                * ((sockjs or {}).get("bytes_per_s") or 0),
                "browser_bytes_per_s": 2 * c["printers"] * per_printer,
                "server_out_bytes_per_s": 2 * c["printers"] * per_printer * c["n"],
                "fluxprint_bytes_per_client_s": c["bytes_per_client_s"],
            }
        )
    return {
        "per_printer_state_bytes": per_printer,
        "measured_sockjs": sockjs,
        "rows": rows,
    }


def run(
    printer_counts: list[int],
    ns: list[int],
    hub_counts: list[int],
    window: float,
    real: bool,
    recovery_at: tuple[int, int],
    two_hub_printers: tuple[int, ...] = (),
) -> dict:
    results: dict[str, Any] = {
        "meta": {
            "printers": printer_counts,
            "ns": ns,
            "hubs": hub_counts,
            "two_hub_printers": list(two_hub_printers),
            "window_s": window,
            "per_client": PER_CLIENT,
            "durable_every_s": DURABLE_EVERY,
            "machine": machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "cells": [],
    }
    with tempfile.TemporaryDirectory(prefix="fluxprint-farmbench-") as work:
        redis = RedisServer(os.path.join(work, "redis"))
        redis.start()
        r = redis.client()
        try:
            for count in printer_counts:
                r.flushall()
                load = Load(redis.url, count)
                try:
                    time.sleep(1)
                    for h in hub_counts:
                        if h > 1 and count not in two_hub_printers:
                            continue
                        hubs = [Hub(work, redis.url) for _ in range(h)]
                        try:
                            for hub in hubs:
                                hub.start(count)
                            for n in ns:
                                results["cells"].append(
                                    one_cell(hubs, r, load, load.ids, n, window)
                                )
                            if (count, h) == (recovery_at[0], 2):
                                results["recovery"] = recovery(
                                    work, redis, hubs, load.ids, recovery_at[1]
                                )
                        finally:
                            for hub in hubs:
                                hub.close()
                    results.setdefault("redis", {})[str(count)] = {
                        "used_memory": r.info("memory")["used_memory"],
                        **stream_usage(r, streams.DEFAULT_PREFIX, load.ids),
                    }
                finally:
                    load.close()
            results["entry_bytes"] = entry_bytes(r)
            results["plugin"] = (
                plugin_cost(work, redis.url, window)
                if real
                else {"available": False, "why": "not run (--no-real)"}
            )
        finally:
            redis.stop()
    results["fdm_monster_model"] = fdm_model(
        [c for c in results["cells"] if c["hubs"] == 1],
        results["plugin"].get("sockjs"),
        results["entry_bytes"]["live_entry_bytes"],
    )
    results["projection"] = projection(results)
    return results


def projection(results: dict) -> dict:
    """1,000 printers and 10,000 clients from the measured figures."""
    eb = results["entry_bytes"]
    live_rate = 1.0 + 2.0 + 1 / streams.KEYFRAME_S  # temperature, progress, status
    # durable events retained per printer: the plugin's default log cap (10,000), and
    # a busy farm printer's 30 days (12 prints a day x 5 durable events each)
    worst = streams.projected_bytes(
        1000, live_rate, eb["live_entry_bytes"], 10_000, eb["durable_entry_bytes"]
    )
    typical = streams.projected_bytes(
        1000, live_rate, eb["live_entry_bytes"], 1_800, eb["durable_entry_bytes"]
    )
    live_only = streams.projected_bytes(1000, live_rate, eb["live_entry_bytes"], 0, 0)
    # the cells that kept up (received >= 90 % of what the load sent): an overloaded
    # cell's figure is the machine's collapse, not the hub's rate
    per_core = sorted(
        c["deliveries_per_hub_core_s"]
        for c in steady(results["cells"])
        if c["deliveries_per_hub_core_s"]
    )
    rate = per_core[len(per_core) // 2] if per_core else None
    deliveries = 10_000 * PER_CLIENT * live_rate
    rss = [c["hub_rss_per_client"] for c in steady(results["cells"]) if c["n"] >= 500]
    return {
        "printers": 1000,
        "clients": 10_000,
        "live_rate_hz": live_rate,
        "redis_bytes": worst,
        "redis_bytes_30_days": typical,
        "redis_live_bytes": live_only,
        "entry_bytes": eb,
        "deliveries_per_s": deliveries,
        "deliveries_per_hub_core_s": rate,
        "hub_cores": deliveries / rate if rate else None,
        "hub_rss_per_client": max(rss) if rss else None,
        "bytes_per_client_s": max(
            (c["bytes_per_client_s"] for c in results["cells"]), default=None
        ),
    }


def steady(cells: list[dict]) -> list[dict]:
    return [
        c
        for c in cells
        if c["deliveries_per_s"] >= 0.9 * c.get("expected_deliveries_per_s", 0)
    ]


def recovery_only(printers: int, n: int) -> dict:
    """Recovery on fresh hubs and a fresh Redis (bench.farm --recovery P,N)."""
    with tempfile.TemporaryDirectory(prefix="fluxprint-farmbench-") as work:
        redis = RedisServer(os.path.join(work, "redis"))
        redis.start()
        load = Load(redis.url, printers)
        hubs = [Hub(work, redis.url) for _ in range(2)]
        try:
            for hub in hubs:
                hub.start(printers)
            return recovery(work, redis, hubs, load.ids, n)
        finally:
            for hub in hubs:
                hub.close()
            load.close()
            redis.stop()


def fmt(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    from .farmreport import markdown as md

    return md(results, BEGIN, END)


def write_section(md_path: str, section: str) -> None:
    _write_section(md_path, section, BEGIN, END)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--printers", default="10,100,200")
    p.add_argument("--ns", default="500,2000")
    p.add_argument("--hubs", default="1,2")
    p.add_argument(
        "--two-hub-printers", default="200", help="printer counts also run on 2 hubs"
    )
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--no-real", action="store_true", help="no real OctoPrints")
    p.add_argument("--out", default=JSON_OUT)
    p.add_argument("--md", default=MD)
    p.add_argument("--report", action="store_true", help="the section from the JSON")
    p.add_argument(
        "--recovery",
        metavar="PRINTERS,CLIENTS",
        help="only the recovery, on fresh hubs, into the existing --out JSON",
    )
    args = p.parse_args(argv)
    if args.recovery:
        printers, n = (int(x) for x in args.recovery.split(","))
        with open(args.out) as f:
            results = json.load(f)
        results["recovery"] = dict(recovery_only(printers, n), separate_run=True)
        results["projection"] = projection(results)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        write_section(args.md, markdown(results))
        return 0
    if args.report:
        with open(args.out) as f:
            write_section(args.md, markdown(json.load(f)))
        return 0
    if args.smoke:
        counts, ns, hubs, window = [10], [20], [1, 2], 3.0
        recovery_at, real, two = (10, 20), False, (10,)
    else:
        counts = [int(x) for x in args.printers.split(",")]
        ns = [int(x) for x in args.ns.split(",")]
        hubs = [int(x) for x in args.hubs.split(",")]
        window = args.window
        two = tuple(int(x) for x in args.two_hub_printers.split(","))
        recovery_at, real = (max(two), min(ns)), not args.no_real
    results = run(counts, ns, hubs, window, real, recovery_at, two)
    results["meta"]["smoke"] = args.smoke
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    write_section(args.md, markdown(results))
    log(f"wrote {args.out} and the farm section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
