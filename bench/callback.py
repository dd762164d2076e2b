"""In-process cost of ``PrinterFeed.on_printer_add_temperature`` on the calling
(comm) thread: the plugin's real Engine and PrinterState with a running tornado IOLoop in
another thread, as in OctoPrint."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from octoprint_fluxprint.core.printer import PrinterState
from octoprint_fluxprint.core.schema import NAMESPACE
from octoprint_fluxprint.plugin.feed import PrinterFeed
from octoprint_fluxprint.server.clock import Clock
from octoprint_fluxprint.server.engine import Engine


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    i = min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[i]


def temperature_data(i: int) -> dict:
    # what OctoPrint's comm thread hands to on_printer_add_temperature
    return {
        "time": int(time.time()),
        "tool0": {"actual": 200.0 + (i % 50) / 10, "target": 210.0},
        "bed": {"actual": 59.5 + (i % 10) / 10, "target": 60.0},
        "chamber": {"actual": None, "target": None},
    }


def run(calls: int = 5000, pace_s: float = 0.002, clients: int = 10) -> dict:
    from tornado.ioloop import IOLoop

    ready = threading.Event()
    holder: dict = {}

    def loop_thread() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        holder["loop"] = IOLoop.current()
        ready.set()
        holder["loop"].start()

    thread = threading.Thread(target=loop_thread, daemon=True)
    thread.start()
    ready.wait(10)
    loop = holder["loop"]

    transport = Engine(authenticate=lambda auth, environ: None)
    counter = itertools.count(1)
    hub = PrinterState(
        sink=transport.delivery,
        clock=Clock(),
        next_seq=lambda: next(counter),
        printer_id="bench",
        intervals={"status": 5.0, "temperature": 0.0, "progress": 1.0},
    )
    transport.attach(loop, hub)
    done = threading.Event()

    async def add_clients() -> None:
        # subscribed sids without sockets: the hub shapes, encodes and tries to send
        for i in range(clients):
            sid = await transport.sio.manager.connect(f"bench-eio-{i}", NAMESPACE)
            hub.add_client(sid)
        done.set()

    loop.add_callback(add_clients)
    done.wait(10)
    feed = PrinterFeed(transport, hub)
    samples = []
    data = [temperature_data(i) for i in range(100)]
    clock = time.perf_counter_ns
    for i in range(calls + 200):
        d = data[i % 100]
        t0 = clock()
        feed.on_printer_add_temperature(d)
        t1 = clock()
        if i >= 200:  # warm-up
            samples.append((t1 - t0) / 1000)
        if pace_s:
            time.sleep(pace_s)
    emitted = hub.emitted
    components = _components(loop, calls, pace_s)
    loop.add_callback(loop.stop)
    thread.join(5)
    return {
        "components": components,
        "calls": len(samples),
        "pace_s": pace_s,
        "hub_clients": clients,
        "hub_emitted": emitted,
        "p50_us": _pct(samples, 50),
        "p99_us": _pct(samples, 99),
        "max_us": max(samples),
        "mean_us": sum(samples) / len(samples),
    }


def _components(loop, calls: int, pace_s: float) -> dict:
    """The same measurement for the parts of the hand-over: what the comm thread pays
    for tornado's add_callback (asyncio call_soon_threadsafe: a self-pipe write that
    wakes the loop thread, which then takes the GIL) against a plain deque append."""
    import collections

    aio = loop.asyncio_loop
    queue: collections.deque = collections.deque()

    def noop(*args) -> None:
        pass

    variants = {
        "time_ns": lambda: time.time_ns(),
        "deque_append": lambda: queue.append((noop, 1, 2)),
        "call_soon_threadsafe_noop": lambda: aio.call_soon_threadsafe(noop, 1, 2),
        "tornado_add_callback_noop": lambda: loop.add_callback(noop, 1, 2),
    }
    out = {}
    clock = time.perf_counter_ns
    n = max(200, calls // 5)
    for name, fn in variants.items():
        samples = []
        for _ in range(n):
            t0 = clock()
            fn()
            samples.append((clock() - t0) / 1000)
            if pace_s:
                time.sleep(pace_s)
        queue.clear()
        out[name] = {"p50_us": _pct(samples, 50), "p99_us": _pct(samples, 99)}
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
