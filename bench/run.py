"""The FluxPrint benchmark suite (issue #6).

    .venv/bin/python -m bench            full run (~15 min), writes bench/results/
                                         bench.json and docs/benchmarks.md + plots
    .venv/bin/python -m bench --smoke    N = 10, short windows, one OctoPrint (CI)
    .venv/bin/python -m bench --report   regenerate docs/benchmarks.md from the JSON

Phases (each against a real ``octoprint serve`` with the Virtual Printer, printing):
  sweep        FluxPrint at N clients, per websocket compression mode: latency,
               OctoPrint CPU and RSS, bytes (FLUXPRINT_TRACE=1)
  alternatives OctoPrint's SockJS push and 1 s REST polling at the same N, same run
  bandwidth    bytes per client-minute at the default intervals, idle and printing
  overhead     Virtual Printer streaming time: FluxPrint disabled / 0 / 500 clients
  callback     in-process comm-thread cost of on_printer_add_temperature
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any, Optional

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.octoserver import OctoServer, gcode_file  # noqa: E402

from . import callback as callback_bench  # noqa: E402
from .loadgen import LoadGen, Window, idle_window  # noqa: E402

MODES = ("off", "deflate", "deflate_no_context_takeover", "deflate_shared")
# latency/fan-out sweeps: temperature as fresh as the printer reports it; progress
# at SockJS's 500 ms push rate; status (full snapshot) at its default, state changes
# are sent at once whatever the interval
SWEEP_INTERVALS = {
    "temperature_interval": 0.0,
    "progress_interval": 0.5,
    "status_interval": 5.0,
}
DEFAULT_INTERVALS = {
    "temperature_interval": 2.0,
    "progress_interval": 1.0,
    "status_interval": 5.0,
}
# the plugin's connection limits (issue #3) default to 100 in all and 20 per user:
# the benchmark's clients are all one user
BENCH_LIMITS = {"max_connections": 5000, "max_connections_per_user": 5000}
PRINTER_CONFIG = {"serial": {"timeout": {"temperatureAutoreport": 1}}}
BUSY = (
    "Printing",
    "Starting",
    "Pausing",
    "Paused",
    "Resuming",
    "Finishing",
    "Cancelling",
)


def log(*args: Any) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


class BenchServer(OctoServer):
    """OctoServer run through bench.octolaunch (GC recorder) with the
    benchmark environment."""

    def __init__(self, basedir: str, trace: bool | str, **kw: Any):
        super().__init__(basedir, **kw)
        self.trace = trace
        self.gc_file = os.path.join(basedir, "bench-gc.json")

    def fanout(self) -> dict:
        """The plugin's own fan-out timing (health?detail=1)."""
        r = self.api("GET", "/plugin/fluxprint/health?detail=1")
        r.raise_for_status()
        return r.json()["detail"].get("fanout", {})

    def trace_rows(self, since: int) -> tuple[list, int]:
        """The plugin's trace table above ``since`` (FLUXPRINT_TRACE=table)."""
        r = self.api("GET", f"/plugin/fluxprint/health?trace={since}", timeout=60)
        r.raise_for_status()
        body = r.json()
        return body["trace"], body["top"]

    def gc_stats(self) -> dict:
        """Cumulative cyclic-GC runs of the OctoPrint process (bench.octolaunch)."""
        try:
            with open(self.gc_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def command(self) -> list[str]:
        cmd = super().command()
        i = cmd.index("octoprint")
        cmd[i] = "bench.octolaunch"
        return cmd

    def start(self, timeout: float = 120.0) -> None:
        saved = dict(os.environ)
        # "table": the times beside the payloads (core/trace.py), True: in them
        os.environ["FLUXPRINT_TRACE"] = (
            "table" if self.trace == "table" else "1" if self.trace else "0"
        )
        os.environ["FLUXPRINT_BENCH_GC"] = self.gc_file
        if GC_FREEZE["on"]:
            os.environ["FLUXPRINT_BENCH_GC_FREEZE"] = "1"
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (ROOT, saved.get("PYTHONPATH")) if p
        )
        try:
            super().start(timeout)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.pid)

    def settings(self, **fluxprint: Any) -> None:
        r = self.api("POST", "/api/settings", json={"plugins": {"fluxprint": fluxprint}})
        r.raise_for_status()
        time.sleep(0.3)  # applied on the loop

    def job_state(self) -> str:
        # an overloaded OctoPrint (SockJS at high N) can take long to answer
        return self.api("GET", "/api/job", timeout=90).json().get("state", "")

    def ensure_printing(self, name: str) -> None:
        if self.job_state().startswith(BUSY):
            return
        self.api(
            "POST", f"/api/files/local/{name}", json={"command": "select", "print": True}
        ).raise_for_status()
        deadline = time.monotonic() + 20
        while not self.job_state().startswith("Printing"):
            if time.monotonic() > deadline:
                raise TimeoutError("print did not start")
            time.sleep(0.1)

    def cancel(self) -> None:
        if self.job_state().startswith(BUSY):
            self.api("POST", "/api/job", json={"command": "cancel"})
            self.wait_state(("Operational",), 60)

    def passive_login(self) -> str:
        r = self.api("POST", "/api/login", json={"passive": True})
        r.raise_for_status()
        body = r.json()
        return f"{body['name']}:{body['session']}"


@contextlib.contextmanager
def server(
    workdir: str,
    name: str,
    trace: bool | str,
    fluxprint: Optional[dict] = None,
    disabled: tuple[str, ...] = (),
    config: Optional[dict] = None,
) -> Iterator[BenchServer]:
    srv = BenchServer(
        os.path.join(workdir, name),
        trace=trace,
        config=config or PRINTER_CONFIG,
        fluxprint=dict(BENCH_LIMITS, **(fluxprint or {})),
        disabled_plugins=disabled,
    )
    t0 = time.monotonic()
    srv.start()
    log(f"OctoPrint {name} up in {time.monotonic() - t0:.1f}s (pid {srv.pid})")
    try:
        srv.connect_printer()
        yield srv
    finally:
        srv.stop()


def pin(pid: int, cores: list[int]) -> None:
    """Every thread of ``pid`` on ``cores`` (threads started later inherit it)."""
    subprocess.run(
        ["taskset", "-a", "-p", "-c", ",".join(map(str, cores)), str(pid)],
        check=True,
        capture_output=True,
    )


def pin_apart(server_pid: int, generator_pid: int) -> bool:
    """OctoPrint on the first core, the load generator on the others. On a small
    machine the generator's burst of reads and inflates, right when a broadcast
    goes out, takes the core the loop thread is writing from: the fan-out's wall
    time doubles while its CPU time stays put (docs/benchmarks.md, the tail).
    Clients on other machines do not do that to a server. False with one core."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or not shutil.which("taskset"):
        return False
    try:
        pin(server_pid, cores[:1])
        pin(generator_pid, cores[1:])
    except subprocess.CalledProcessError as exc:  # not allowed here: run unpinned
        log(f"taskset: {exc.stderr.decode(errors='replace').strip()}; not pinned")
        for pid in (server_pid, generator_pid):
            with contextlib.suppress(subprocess.CalledProcessError):
                pin(pid, cores)
        return False
    return True


SETTLE = {"s": 2.0}
GC_FREEZE = {"on": False}


def settle(seconds: float) -> None:
    time.sleep(seconds * SETTLE["s"] / 2.0)


# ~~ derived figures


def cell(n: int, w: dict, base: dict, rss0: int) -> dict:
    gen = w["generators"][0]
    seconds = w["seconds"]
    minutes = seconds / 60
    base_rate = base["cpu_s"] / base["seconds"]
    net = max(0.0, w["cpu_s"] - base_rate * seconds)
    delivered = gen["messages"]
    updates = gen["updates"]
    clients = gen["clients"] or n
    return {
        "n": n,
        "clients": gen["clients"],
        "seconds": seconds,
        "messages": delivered,
        "updates": updates,
        "events": gen["events"],
        "errors": gen["errors"],
        "messages_per_client_s": delivered / clients / seconds,
        # the headline: temperature (interval 0, never coalesced); progress and status
        # are coalesced by design (0.5 s, 5 s), so their age includes that wait
        "latency_ms": gen["latency_by_event_ms"].get(
            "printer:temperature", gen["latency_ms"]
        ),
        "latency_all_ms": gen["latency_ms"],
        "latency_by_event_ms": gen["latency_by_event_ms"],
        "emit_latency_ms": gen["emit_latency_ms"],
        # to the client's TCP socket, without the load generator's inflate queue
        "wire_latency_ms": gen.get("wire_latency_ms"),
        "data_age_ms": gen["data_age_ms"],
        "cpu_s": w["cpu_s"],
        "cpu_core_fraction": w["cpu_s"] / seconds,
        "cpu_net_s": net,
        "cpu_net_core_fraction": net / seconds,
        "cpu_s_per_1000_messages": w["cpu_s"] / max(delivered, 1) * 1000,
        "cpu_net_s_per_1000_messages": net / max(delivered, 1) * 1000,
        "cpu_net_ms_per_update": net / max(updates, 1) * 1000,
        "cpu_net_ms_per_client_minute": net * 1000 / (clients * minutes),
        "rss": w["rss"],
        "rss_per_client": (w["rss"] - rss0) / n,
        "bytes_read": gen["bytes_read"],
        "bytes_written": gen["bytes_written"],
        "bytes_per_client_minute": gen["bytes_read"] / clients / minutes,
        "bytes_out_per_client_minute": gen["bytes_written"] / clients / minutes,
        "generator_cpu_core_fraction": gen["generator_cpu_s"] / seconds,
    }


def baseline(srv: BenchServer, seconds: float) -> dict:
    w = idle_window(srv.pid, seconds)
    return {
        "seconds": w["seconds"],
        "cpu_s": w["cpu_s"],
        "rss": w["rss"],
        "cpu_core_fraction": w["cpu_s"] / w["seconds"],
    }


def sweep_load(
    srv: BenchServer,
    gen: LoadGen,
    ns: list[int],
    window: float,
    gcode: str,
    label: str,
    base_window: Optional[float] = None,
    probe: Optional[LoadGen] = None,
) -> dict:
    """``probe``: a few clients of the same kind in a Node process of their own,
    connected throughout: the latency one client sees without queueing behind the
    load generator's other sockets (the cell's ``probe``)."""
    srv.ensure_printing(gcode)
    settle(2)
    base = baseline(srv, base_window or window)
    rss0 = base["rss"]
    cells = []
    for n in ns:
        try:
            c = _one_cell(srv, gen, n, window, gcode, base, rss0, probe)
        except Exception as exc:  # overloaded: record it, keep the run
            log(f"{label} N={n}: failed: {exc!r}")
            cells.append({"n": n, "error": repr(exc)})
            break
        cells.append(c)
        lat = c["latency_ms"]
        log(
            f"{label} N={n}: clients {c['clients']} msgs {c['messages']} "
            f"p50 {fmt(lat['p50'])} p99 {fmt(lat['p99'])} max {fmt(lat['max'])} ms, "
            f"cpu {c['cpu_core_fraction']:.2f} (net {c['cpu_net_core_fraction']:.2f}) core, "
            f"rss/client {c['rss_per_client'] / 1024:.1f} KiB, "
            f"{c['bytes_per_client_minute'] / 1024:.1f} KiB/client-min, "
            f"gen {c['generator_cpu_core_fraction']:.2f} core"
        )
    return {"baseline": base, "cells": cells}


def _one_cell(srv, gen, n, window, gcode, base, rss0, probe=None) -> dict:
    if True:
        srv.ensure_printing(gcode)
        grown = gen.grow(n)
        settle(2 + n / 500)
        srv.ensure_printing(gcode)
        gc0 = srv.gc_stats()
        fan0 = srv.fanout()
        w = Window(srv.pid, [gen] + ([probe] if probe else [])).measure(window)
        fan1 = srv.fanout()
        time.sleep(1.1)  # the recorder rewrites its file once a second
        c = cell(n, w, base, rss0)
        if probe is not None:
            p = w["generators"][1]
            c["probe"] = {
                k: p.get(k)
                for k in (
                    "clients",
                    "messages",
                    "errors",
                    "emit_latency_ms",
                    "latency_ms",
                    "wire_latency_ms",
                )
            }
        c["gc"] = gc_delta(gc0, srv.gc_stats())
        c["fanout_ms"] = fanout_delta(fan0, fan1)
        c["connect_seconds"] = grown["seconds"]
        c["connect_failed"] = grown["failed"]
        c["websocket_extensions"] = grown.get("extensions")
        return c


def fanout_delta(before: dict, after: dict) -> dict:
    """Server-side time per broadcast during a window: from the hub's emit to the
    last client's frame handed to the kernel (p50/p99/max ms), the loop thread's CPU
    time over it (cpu_p50/cpu_p99/cpu_max ms: wall well above CPU is waiting, for
    the GIL or a core), and the writes."""
    new = after.get("broadcasts", 0) - before.get("broadcasts", 0)
    recent = after.get("recent_ms", [])
    values = sorted(recent[-new:]) if new > 0 else []
    cpu = sorted(after.get("recent_cpu_ms", [])[-new:]) if new > 0 else []
    out: dict[str, Any] = {
        "broadcasts": new,
        "kept": len(values),
        "writes": after.get("writes", 0) - before.get("writes", 0),
        "direct_writes": after.get("direct_writes", 0) - before.get("direct_writes", 0),
        "queued_writes": after.get("queued_writes", 0) - before.get("queued_writes", 0),
    }
    if values:
        out["p50"] = values[len(values) // 2]
        out["p99"] = values[min(len(values) - 1, int(len(values) * 0.99))]
        out["max"] = values[-1]
    if cpu:
        out["cpu_p50"] = cpu[len(cpu) // 2]
        out["cpu_p99"] = cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))]
        out["cpu_max"] = cpu[-1]
    return out


def gc_delta(before: dict, after: dict) -> dict:
    """GC runs during a window, per generation: count, total and >10 ms pauses."""
    out = {}
    for g, a in (after.get("generations") or {}).items():
        b = (before.get("generations") or {}).get(g, {})
        out[g] = {k: a.get(k, 0) - b.get(k, 0) for k in ("runs", "total_ms", "over_10ms")}
        out[g]["max_ms_so_far"] = a.get("max_ms", 0.0)
    if "gen2_types" in after:  # FLUXPRINT_BENCH_GC_TYPES=1 (diagnostic)
        b2 = before.get("gen2_types", {})
        grown = {k: v - b2.get(k, 0) for k, v in after["gen2_types"].items()}
        out["gen2_total"] = after.get("gen2_total")
        out["gen2_grown"] = dict(sorted(grown.items(), key=lambda kv: -kv[1])[:15])
    return out


def fmt(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.1f}"


# ~~ phases


def phase_sweep(
    srv: BenchServer,
    mode: str,
    ns: list[int],
    window: float,
    gcode: str,
    base_window: Optional[float] = None,
) -> dict:
    srv.settings(websocket_compression=mode, **SWEEP_INTERVALS)
    gen = LoadGen("fluxprint", srv.url, apikey=srv.keys["viewer"])
    try:
        return sweep_load(srv, gen, ns, window, gcode, f"fluxprint[{mode}]", base_window)
    finally:
        gen.close()


def phase_alternatives(
    srv: BenchServer,
    ns_sockjs: list[int],
    ns_rest: list[int],
    window: float,
    gcode: str,
    base_window: Optional[float] = None,
) -> dict:
    out = {}
    auth = srv.passive_login()
    gen = LoadGen("sockjs", srv.url, auth=auth)
    try:
        out["sockjs"] = sweep_load(
            srv, gen, ns_sockjs, window, gcode, "sockjs", base_window
        )
    finally:
        gen.close()
    settle(2)
    gen = LoadGen("rest", srv.url, apikey=srv.keys["viewer"], pollInterval=1)
    try:
        out["rest"] = sweep_load(srv, gen, ns_rest, window, gcode, "rest", base_window)
    finally:
        gen.close()
    return out


def bw_entry(w: dict, i: int) -> dict:
    gen = w["generators"][i]
    minutes = w["seconds"] / 60
    clients = max(gen["clients"], 1)
    return {
        "clients": gen["clients"],
        "seconds": w["seconds"],
        "messages": gen["messages"],
        "events": gen["events"],
        "bytes_read": gen["bytes_read"],
        "bytes_written": gen["bytes_written"],
        "bytes_per_client_minute": gen["bytes_read"] / clients / minutes,
        "bytes_out_per_client_minute": gen["bytes_written"] / clients / minutes,
        "messages_per_client_minute": gen["messages"] / clients / minutes,
    }


def phase_bandwidth(
    srv: BenchServer, n: int, window: float, gcode: str, modes: tuple[str, ...]
) -> dict:
    """All loads at once (bytes are counted per socket, so they do not mix)."""
    srv.cancel()
    srv.settings(**DEFAULT_INTERVALS)
    gens: dict[str, LoadGen] = {}
    try:
        for mode in modes:
            srv.settings(websocket_compression=mode)
            gens[f"fluxprint:{mode}"] = g = LoadGen(
                "fluxprint", srv.url, apikey=srv.keys["viewer"]
            )
            g.grow(n)
            # the opt-in delta payloads (printer:subscribe {"delta": true})
            gens[f"fluxprint:{mode}+delta"] = g = LoadGen(
                "fluxprint", srv.url, apikey=srv.keys["viewer"], subscribe={"delta": True}
            )
            g.grow(n)
        srv.settings(websocket_compression="off")
        gens["sockjs"] = g = LoadGen("sockjs", srv.url, auth=srv.passive_login())
        g.grow(n)
        gens["rest"] = g = LoadGen("rest", srv.url, apikey=srv.keys["viewer"])
        g.grow(n)
        settle(3)
        out: dict = {"clients": n, "intervals": DEFAULT_INTERVALS}
        names = list(gens)
        for state in ("idle", "printing"):
            if state == "printing":
                srv.ensure_printing(gcode)
                settle(2)
            w = Window(srv.pid, list(gens.values())).measure(window)
            out[state] = {name: bw_entry(w, i) for i, name in enumerate(names)}
            log(
                f"bandwidth {state}: "
                + ", ".join(
                    f"{k} {v['bytes_per_client_minute'] / 1024:.1f}"
                    for k, v in out[state].items()
                )
                + " KiB/client-min"
            )
        return out
    finally:
        for g in gens.values():
            g.close()


def time_print(srv: BenchServer, name: str) -> float:
    srv.cancel()
    settle(1)
    t0 = time.monotonic()
    started_wall = time.time()
    srv.api(
        "POST", f"/api/files/local/{name}", json={"command": "select", "print": True}
    ).raise_for_status()
    seen = False
    while True:
        state = srv.job_state()
        if state.startswith(BUSY):
            seen = True
        elif seen or time.monotonic() - t0 > 10:
            break
        time.sleep(0.1)
    polled = time.monotonic() - t0
    # OctoPrint's own measurement (PrintStarted to PrintDone, a float in the file's
    # print history) instead of the 0.1 s resolution of the polling above
    for _ in range(20):
        r = srv.api("GET", f"/api/files/local/{name}")
        last = (r.json().get("prints") or {}).get("last") or {}
        if r.ok and last.get("printTime") and last.get("date", 0) >= started_wall - 1:
            return float(last["printTime"])
        time.sleep(0.1)
    log(f"no print history for {name}: using the polled time")
    return polled


def phase_overhead_enabled(srv: BenchServer, clients: int, lines: int, reps: int) -> dict:
    name = "overhead.gcode"
    srv.upload(name, gcode_file(lines))
    out: dict = {"enabled_0": [], f"enabled_{clients}": []}
    for _ in range(reps):
        out["enabled_0"].append(time_print(srv, name))
        log(f"print, enabled, 0 clients: {out['enabled_0'][-1]:.2f}s")
    srv.settings(temperature_interval=0.0)
    gen = LoadGen("fluxprint", srv.url, apikey=srv.keys["viewer"])
    try:
        gen.grow(clients)
        settle(2 + clients / 500)
        gen.window_start()
        cpu0 = _cpu(srv)
        t0 = time.monotonic()
        for _ in range(reps):
            out[f"enabled_{clients}"].append(time_print(srv, name))
            log(
                f"print, enabled, {clients} clients: {out[f'enabled_{clients}'][-1]:.2f}s"
            )
        out["loaded_cpu_core_fraction"] = (_cpu(srv) - cpu0) / (time.monotonic() - t0)
        w = gen.window_end()
        out["loaded_clients"] = w["clients"]
        out["loaded_messages"] = w["messages"]
    finally:
        gen.close()
    return out


def phase_overhead_disabled(srv: BenchServer, lines: int, reps: int) -> list[float]:
    name = "overhead.gcode"
    srv.upload(name, gcode_file(lines))
    times = []
    for _ in range(reps):
        times.append(time_print(srv, name))
        log(f"print, FluxPrint disabled: {times[-1]:.2f}s")
    return times


def _cpu(srv: BenchServer) -> float:
    t = srv.ps.cpu_times()
    return t.user + t.system


# ~~ machine


def machine() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except Exception:
            return "?"

    import octoprint
    import tornado

    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": version(["node", "--version"]),
        "octoprint": octoprint.__version__,
        "tornado": tornado.version,
        "python_socketio": importlib.metadata.version("python-socketio"),
        "python_engineio": importlib.metadata.version("python-engineio"),
        "socket_io_client": _npm_version("socket.io-client"),
    }


def _npm_version(name: str) -> str:
    try:
        with open(
            os.path.join(ROOT, "tests", "node", "node_modules", name, "package.json")
        ) as f:
            return json.load(f)["version"]
    except (OSError, KeyError, ValueError):
        return "?"


# ~~ main


def run(args: argparse.Namespace) -> dict:
    if not os.path.isdir(
        os.path.join(ROOT, "tests", "node", "node_modules", "socket.io-client")
    ):
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund"],
            cwd=os.path.join(ROOT, "tests", "node"),
            check=True,
        )
    started = time.time()
    SETTLE["s"] = args.settle
    t0 = time.monotonic()
    ns = [int(x) for x in args.ns.split(",")]
    ns_rest = [n for n in ns if n <= args.rest_max]
    ns_sockjs = [n for n in ns if n <= args.sockjs_max]
    modes = tuple(args.modes.split(","))
    results: dict = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "smoke": args.smoke,
            "load_before": os.getloadavg(),
            "machine": machine(),
            "ns": ns,
            "ns_rest": ns_rest,
            "ns_sockjs": ns_sockjs,
            "window_s": args.window,
            "modes": modes,
            "sweep_intervals": SWEEP_INTERVALS,
            "default_intervals": DEFAULT_INTERVALS,
            "virtual_printer": {
                "temperatureAutoreport_s": 1,
                "throttle_s_per_line": 0.01,
            },
            "compress_once_hook": True,
        },
        "sweep": {},
    }
    sweep_gcode = "sweep.gcode"
    workdir = tempfile.mkdtemp(prefix="fluxprint-bench-")
    try:
        body = gcode_file(args.sweep_lines)
        if args.one_server:
            with server(workdir, "all", trace=True) as srv:
                srv.upload(sweep_gcode, body)
                for mode in modes:
                    results["sweep"][mode] = phase_sweep(
                        srv, mode, ns, args.window, sweep_gcode, args.base_window
                    )
                srv.settings(websocket_compression="off", **DEFAULT_INTERVALS)
                results["alternatives"] = phase_alternatives(
                    srv, ns_sockjs, ns_rest, args.window, sweep_gcode, args.base_window
                )
                results["bandwidth"] = phase_bandwidth(
                    srv, args.bw_clients, args.bw_window, sweep_gcode, modes
                )
                srv.cancel()
                over = phase_overhead_enabled(
                    srv, args.overhead_clients, args.overhead_lines, args.overhead_reps
                )
        else:
            for mode in modes:
                with server(workdir, f"sweep-{mode}", trace=True) as srv:
                    srv.upload(sweep_gcode, body)
                    results["sweep"][mode] = phase_sweep(
                        srv, mode, ns, args.window, sweep_gcode, args.base_window
                    )
                    srv.cancel()
                _save_partial(args, results)
            with server(workdir, "alternatives", trace=False) as srv:
                srv.upload(sweep_gcode, body)
                results["bandwidth"] = phase_bandwidth(
                    srv, args.bw_clients, args.bw_window, sweep_gcode, modes
                )
                srv.settings(**DEFAULT_INTERVALS)
                results["alternatives"] = phase_alternatives(
                    srv, ns_sockjs, ns_rest, args.window, sweep_gcode, args.base_window
                )
                srv.cancel()
            with server(workdir, "overhead", trace=False) as srv:
                over = phase_overhead_enabled(
                    srv, args.overhead_clients, args.overhead_lines, args.overhead_reps
                )
        with server(workdir, "disabled", trace=False, disabled=("fluxprint",)) as srv:
            over["disabled"] = phase_overhead_disabled(
                srv, args.overhead_lines, args.overhead_reps
            )
        over["clients"] = args.overhead_clients
        over["lines"] = args.overhead_lines
        results["print_overhead"] = over
        log("callback micro-benchmark")
        results["callback"] = callback_bench.run(calls=args.callback_calls)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["load_after"] = os.getloadavg()
    results["meta"]["duration_s"] = time.monotonic() - t0
    from .analysis import analyse

    results["summary"] = analyse(results)
    return results


def _save_partial(args: argparse.Namespace, results: dict) -> None:
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".partial", "w") as f:
        json.dump(results, f, indent=1)


def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CI smoke: N=10, short windows, one OctoPrint",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="only regenerate the Markdown report from the JSON",
    )
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "bench.json"))
    p.add_argument("--md", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    p.add_argument("--img", default=os.path.join(ROOT, "docs", "img"))
    p.add_argument("--ns", default="1,10,100,500,1000")
    p.add_argument("--rest-max", type=int, default=500, help="largest N for REST polling")
    p.add_argument(
        "--sockjs-max",
        type=int,
        default=500,
        help="largest N for SockJS (1000 sessions overload OctoPrint on 2 cores)",
    )
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--window", type=float, default=15.0, help="seconds per measurement")
    p.add_argument("--bw-window", type=float, default=40.0)
    p.add_argument("--bw-clients", type=int, default=10)
    p.add_argument("--overhead-clients", type=int, default=500)
    p.add_argument("--overhead-lines", type=int, default=2500)
    p.add_argument("--overhead-reps", type=int, default=3)
    p.add_argument("--sweep-lines", type=int, default=60000)
    p.add_argument("--callback-calls", type=int, default=5000)
    p.add_argument("--one-server", action="store_true")
    p.add_argument(
        "--base-window",
        type=float,
        default=None,
        help="seconds for the 0-client baseline",
    )
    p.add_argument(
        "--settle", type=float, default=2.0, help="seconds to settle after connecting"
    )
    p.add_argument("--no-report", action="store_true", help="JSON only")
    p.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() in OctoPrint after start-up (bench.octolaunch)",
    )
    p.add_argument(
        "--sweep-only",
        action="store_true",
        help="re-run the sweep for --modes and merge it into the existing --out JSON",
    )
    p.add_argument(
        "--bandwidth-only",
        action="store_true",
        help="re-run the bandwidth phase for --modes into the existing --out JSON",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.ns = "10"
        args.window = 3.0
        args.base_window = 2.0
        args.settle = 0.5
        args.bw_window = 3.0
        args.bw_clients = 10
        args.overhead_clients = 10
        args.overhead_lines = 150
        args.overhead_reps = 1
        args.sweep_lines = 6000
        args.callback_calls = 500
        args.one_server = True
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse(argv)
    GC_FREEZE["on"] = args.gc_freeze
    if args.report:
        with open(args.out) as f:
            results = json.load(f)
    elif args.sweep_only or args.bandwidth_only:
        with open(args.out) as f:
            results = json.load(f)
        SETTLE["s"] = args.settle
        workdir = tempfile.mkdtemp(prefix="fluxprint-bench-")
        ns = [int(x) for x in args.ns.split(",")]
        modes = tuple(args.modes.split(","))
        try:
            for mode in modes if args.sweep_only else ():
                with server(workdir, f"sweep-{mode}", trace=True) as srv:
                    srv.upload("sweep.gcode", gcode_file(args.sweep_lines))
                    results["sweep"][mode] = phase_sweep(
                        srv, mode, ns, args.window, "sweep.gcode", args.base_window
                    )
                    srv.cancel()
            if args.bandwidth_only:
                with server(workdir, "bandwidth", trace=False) as srv:
                    srv.upload("sweep.gcode", gcode_file(args.sweep_lines))
                    results["bandwidth"] = phase_bandwidth(
                        srv, args.bw_clients, args.bw_window, "sweep.gcode", modes
                    )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        results["meta"].setdefault("rerun", []).append(
            {
                "phase": "bandwidth" if args.bandwidth_only else "sweep",
                "modes": args.modes,
                "at": time.strftime("%H:%M:%S"),
                "load": os.getloadavg(),
            }
        )
        from .analysis import analyse

        results["summary"] = analyse(results)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    else:
        results = run(args)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        log(f"results: {args.out}")
    if not args.no_report:
        from .report import write_report

        write_report(results, args.md, args.img)
        log(f"report: {args.md}")
    return 0
