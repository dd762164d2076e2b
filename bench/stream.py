"""The fast-stream regime: the Virtual Printer streams a long file of short moves
at about 500 lines/s (so OctoPrint's comm thread and terminal log are busy, as on a
real print), and each kind of client is measured alone, one after another, at N
clients: FluxPrint in every websocket compression mode with full objects and with
deltas, OctoPrint's SockJS push in full (what OctoPrint's UI gets) and lean
(``subscribe`` with logs and messages off, as a dashboard would). Net CPU is
OctoPrint's CPU minus a zero-client window of the same stream measured right before
each kind; bytes are read off the clients' TCP sockets. OctoPrint runs on one core and
the load generator on the others (``--no-pin``: anywhere), so the clients' own work
does not take the core a broadcast is written from (docs/benchmarks.md, the tail).

    .venv/bin/python -m bench.stream             full run (~25 min), writes
                                                 bench/results/stream.json and the
                                                 stream section of docs/benchmarks.md
    .venv/bin/python -m bench.stream --smoke     N = 10, short windows (CI)
    .venv/bin/python -m bench.stream --repeat --modes deflate_shared --ns 100,500
                                                 the same kinds again on a fresh
                                                 OctoPrint, added to the JSON's repeats
    .venv/bin/python -m bench.stream --merge F   add the run in F as a repeat
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Optional

from .loadgen import LoadGen
from .run import (
    DEFAULT_INTERVALS,
    PRINTER_CONFIG,
    ROOT,
    gcode_file,
    log,
    machine,
    pin_apart,
    server,
    sweep_load,
)
from .streamreport import markdown, write_section

MODES = ("off", "deflate", "deflate_no_context_takeover", "deflate_shared")
SOCKJS_LEAN = {
    "state": {"logs": False, "messages": False},
    "events": True,
    "plugins": False,
}
# the Virtual Printer's per-line delay (its own work comes on top: about 500 lines/s)
STREAM_CONFIG = {
    **PRINTER_CONFIG,
    "plugins": {"virtual_printer": {"throttle": 0.0005}},
}
GCODE = "stream.gcode"
# clients in a Node process of their own beside the load, connected throughout
PROBE_CLIENTS = 5
JSON_OUT = os.path.join(ROOT, "bench", "results", "stream.json")
MD = os.path.join(ROOT, "docs", "benchmarks.md")


def kinds(modes: tuple[str, ...]) -> list[tuple[str, str, dict]]:
    """(label, loadgen mode, options); "set" carries the plugin setting."""
    out = []
    for mode in modes:
        out.append((f"fluxprint:{mode}", "fluxprint", {"set": mode}))
        out.append((f"fluxprint:{mode}+delta", "fluxprint", {"set": mode, "delta": True}))
    out.append(("sockjs:full", "sockjs", {}))
    out.append(("sockjs:lean", "sockjs", {"lean": True}))
    return out


def load_options(opt: dict) -> dict:
    if "set" in opt:
        return {"subscribe": {"delta": True}} if opt.get("delta") else {}
    return {"sockjsSubscribe": SOCKJS_LEAN} if opt.get("lean") else {}


def generator(srv: Any, kind: str, extra: dict) -> LoadGen:
    """A Node process of clients of one kind (FluxPrint: latencies from the server's
    trace table; SockJS: from its serverTime)."""
    if kind == "fluxprint":
        return LoadGen(
            kind, srv.url, apikey=srv.keys["viewer"], trace=srv.trace_rows, **extra
        )
    return LoadGen(kind, srv.url, auth=srv.passive_login(), **extra)


def lines_per_second(
    srv: Any, bytes_per_line: float, seconds: float = 5.0
) -> Optional[float]:
    def pos() -> Optional[int]:
        r = srv.api("GET", "/api/job")
        return (r.json().get("progress") or {}).get("filepos") if r.ok else None

    a = pos()
    time.sleep(seconds)
    b = pos()
    if a is None or b is None or b <= a:
        return None
    return (b - a) / bytes_per_line / seconds


def run(
    ns: list[int],
    window: float,
    modes: tuple[str, ...],
    lines: int,
    pinned: bool = True,
) -> dict:
    results: dict[str, Any] = {
        "meta": {
            "ns": ns,
            "window_s": window,
            "modes": list(modes),
            "lines": lines,
            "intervals": DEFAULT_INTERVALS,
            "sockjs_lean_subscribe": SOCKJS_LEAN,
            "machine": machine(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "pinned": False,
        },
        "kinds": {},
    }
    with tempfile.TemporaryDirectory(prefix="fluxprint-stream-") as work:
        # trace "table": latencies from the server's table, so the payloads and
        # the bytes counted are what a user gets (core/trace.py)
        with server(
            work,
            "stream",
            trace="table",
            fluxprint=DEFAULT_INTERVALS,
            config=STREAM_CONFIG,
        ) as srv:
            body = gcode_file(lines)
            srv.upload(GCODE, body)
            srv.ensure_printing(GCODE)
            time.sleep(3)
            per_line = len(body) / (lines + 6)
            results["meta"]["lines_per_second"] = lines_per_second(srv, per_line)
            log(f"stream: {results['meta']['lines_per_second']} lines/s")
            results["meta"]["probe_clients"] = PROBE_CLIENTS
            for label, kind, opt in kinds(modes):
                if "set" in opt:
                    srv.settings(websocket_compression=opt["set"])
                extra = load_options(opt)
                gen, probe = generator(srv, kind, extra), generator(srv, kind, extra)
                try:
                    if pinned:
                        results["meta"]["pinned"] = pin_apart(srv.pid, gen.proc.pid)
                        pin_apart(srv.pid, probe.proc.pid)
                    probe.grow(PROBE_CLIENTS)
                    results["kinds"][label] = sweep_load(
                        srv, gen, ns, window, GCODE, label, window, probe
                    )
                finally:
                    gen.close()
                    probe.close()
                time.sleep(2)
    results["budget"] = message_budget()
    return results


# ~~ what one message costs, by layer


def message_budget() -> dict:
    """Bytes per message of a printing printer's telemetry, by layer, from the real
    shaping code: payload, meta keys, Socket.IO and Engine.IO framing, the websocket
    header, and what deflate makes of it on its own and in a warm shared window."""
    import zlib

    from octoprint_fluxprint.core import schema as S
    from octoprint_fluxprint.core import shaping

    def compact(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"))

    def temp(i: int) -> dict:
        return shaping.shape_temperature(
            {
                "tool0": {"actual": 209.8 + (i % 5) / 10, "target": 210.0},
                "bed": {"actual": 59.9 + (i % 3) / 10, "target": 60.0},
            },
            {},
        )

    def progress(i: int) -> dict:
        return shaping.shape_progress(
            {
                "completion": 40 + i / 10,
                "printTime": 600 + i,
                "printTimeLeft": 900 - i,
                "printTimeLeftOrigin": "estimate",
                "filepos": 400000 + 40 * i,
            },
            "Printing",
            {"file": {"name": "benchy.gcode", "path": "benchy.gcode"}},
        )

    out = {}
    for event, body_of in ((S.EV_TEMPERATURE, temp), (S.EV_PROGRESS, progress)):
        shared = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
        sizes = []
        for i in range(60):
            body = body_of(i)
            meta = {
                "seq": 1_000_000 + i,
                "ts": 1_795_654_369_290 + 2000 * i,
                "printer": "octopi",
            }
            sio = "42" + S.NAMESPACE + "," + compact([event, {**body, **meta}])
            frame = sio.encode()
            ws = 2 if len(frame) < 126 else 4
            alone = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
            deflated = len(alone.compress(frame) + alone.flush(zlib.Z_SYNC_FLUSH)) - 4
            warm = len(shared.compress(frame) + shared.flush(zlib.Z_SYNC_FLUSH)) - 4
            sizes.append(
                {
                    "payload": len(compact(body)),
                    "meta": len(compact({**body, **meta})) - len(compact(body)),
                    "framing": len(frame) - len(compact({**body, **meta})),
                    "ws_header": ws,
                    "total": len(frame) + ws,
                    "deflate_alone": deflated + ws,
                    "deflate_shared_warm": warm + ws,
                }
            )
        steady = sizes[10:]
        out[event] = {k: sum(s[k] for s in steady) / len(steady) for k in steady[0]}
    return out


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--ns", default="10,100,500,1000")
    p.add_argument("--window", type=float, default=20.0)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--lines", type=int, default=400000)
    p.add_argument("--out", default=JSON_OUT)
    p.add_argument("--md", default=MD)
    p.add_argument("--report", action="store_true", help="the section from the JSON")
    p.add_argument(
        "--repeat",
        action="store_true",
        help="add this run to the --out JSON's repeats instead of replacing it",
    )
    p.add_argument(
        "--merge", metavar="FILE", help="add the run in FILE to the JSON's repeats"
    )
    p.add_argument(
        "--no-pin",
        action="store_true",
        help="leave OctoPrint and the load generator on any core",
    )
    args = p.parse_args(argv)
    if args.report:
        with open(args.out) as f:
            write_section(args.md, markdown(json.load(f)))
        return 0
    if args.merge:
        with open(args.merge) as f:
            return add_repeat(json.load(f), args.out, args.md)
    ns = [int(x) for x in args.ns.split(",")]
    modes = tuple(args.modes.split(","))
    if args.smoke:
        ns, window, lines = [10], 3.0, 20000
        modes = ("deflate_no_context_takeover", "deflate_shared")
    else:
        window, lines = args.window, args.lines
    results = run(ns, window, modes, lines, pinned=not args.no_pin)
    results["meta"]["smoke"] = args.smoke
    if args.repeat:
        return add_repeat(results, args.out, args.md)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    write_section(args.md, markdown(results))
    log(f"wrote {args.out} and the stream section of {args.md}")
    return 0


def add_repeat(run_: dict, out: str, md: str) -> int:
    """Keeps a run beside the full one (its kinds and meta, not its byte budget)."""
    with open(out) as f:
        results = json.load(f)
    entry = {"meta": run_["meta"], "kinds": run_["kinds"]}
    if entry in results.get("repeats", []):
        log(f"{out} already holds that run")
        return 0
    results.setdefault("repeats", []).append(entry)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    write_section(md, markdown(results))
    log(f"added a repeat to {out} ({len(results['repeats'])}) and to {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
