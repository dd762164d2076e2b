"""bench.farm's processes: the synthetic load (bench.farmload) and the
``fluxprint-hub`` processes it feeds, each in its own process, the Redis server
(tools/redisserver.py), and the Node dashboards (bench.farmclients) spread over the
hubs, with the merging of the Node processes' figures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from typing import Any, Optional

import psutil
import requests
import yaml

from .farmclients import FarmClients
from .hub import free_ports
from .run import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
from redisserver import RedisServer  # noqa: E402, F401  (bench.farm's, from here)

PER_CLIENT = 10  # printers each client subscribes to
CLIENTS_PER_NODE = 500
DURABLE_EVERY = 10.0  # s between a synthetic printer's durable events
GROW_S = 60.0  # an overloaded machine: measure what connected by then


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


def fmt(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"
