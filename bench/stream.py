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
JSON_OUT = os.path.join(ROOT, "bench", "results", "stream.json")
MD = os.path.join(ROOT, "docs", "benchmarks.md")
BEGIN, END = "<!-- stream:begin -->", "<!-- stream:end -->"


def kinds(modes: tuple[str, ...]) -> list[tuple[str, str, dict]]:
    """(label, loadgen mode, options); "set" carries the plugin setting."""
    out = []
    for mode in modes:
        out.append((f"fluxprint:{mode}", "fluxprint", {"set": mode}))
        out.append((f"fluxprint:{mode}+delta", "fluxprint", {"set": mode, "delta": True}))
    out.append(("sockjs:full", "sockjs", {}))
    out.append(("sockjs:lean", "sockjs", {"lean": True}))
    return out


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
            for label, kind, opt in kinds(modes):
                if "set" in opt:
                    srv.settings(websocket_compression=opt["set"])
                    extra = {"subscribe": {"delta": True}} if opt.get("delta") else {}
                    gen = LoadGen(
                        kind,
                        srv.url,
                        apikey=srv.keys["viewer"],
                        trace=srv.trace_rows,
                        **extra,
                    )
                else:
                    extra = {"sockjsSubscribe": SOCKJS_LEAN} if opt.get("lean") else {}
                    gen = LoadGen(kind, srv.url, auth=srv.passive_login(), **extra)
                if pinned:
                    results["meta"]["pinned"] = pin_apart(srv.pid, gen.proc.pid)
                try:
                    results["kinds"][label] = sweep_load(
                        srv, gen, ns, window, GCODE, label, base_window=window
                    )
                finally:
                    gen.close()
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


# ~~ report


def _f(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(results: dict) -> str:
    meta = results["meta"]
    L = [BEGIN, "", "## Fast stream: bytes and tail against SockJS lean\n"]
    L.append(
        "Generated by `python -m bench.stream` (bench/stream.py) from "
        "bench/results/stream.json. The Virtual Printer streams a file of short moves "
        f"at {_f(meta.get('lines_per_second'), 0)} lines/s (the Virtual Printer's most "
        "here, even with its per-line delay at 0.5 ms); default intervals; each "
        "kind alone, one after another, windows of "
        f"{meta['window_s']:.0f} s; net CPU is OctoPrint's CPU minus the same stream "
        "with nobody connected, measured right before each kind. Per client-minute. "
        + (
            "OctoPrint ran on one core, the load generator on the other(s). "
            if meta.get("pinned")
            else "OctoPrint and the load generator shared the cores. "
        )
        + "Latency *to the socket*: from the server's emit (FluxPrint) or "
        "`serverTime` (SockJS, 1 ms resolution) to the last bytes the client's TCP "
        "socket had read when the message was decoded; *decoded*: to the message "
        "event, after the load generator's inflate queue (one Node process for every "
        "client). *Fan-out*: the server's time from emit to the last client's frame "
        "handed to the kernel, and the loop thread's CPU time in it.\n"
    )
    rows = []
    kinds_ = results["kinds"]
    for n in meta["ns"]:
        for label, block in kinds_.items():
            cell = next((c for c in block["cells"] if c.get("n") == n), None)
            if not cell or "error" in cell:
                rows.append([label, n, "failed", "", "", "", "", "", ""])
                continue
            # from the server's emit (FluxPrint, trace) or its serverTime (SockJS)
            # to the client: what the intervals hold back is not latency
            lat = (
                cell["emit_latency_ms"]
                if label.startswith("fluxprint")
                else cell["latency_all_ms"]
            )
            wire = cell.get("wire_latency_ms") or {}
            fan = cell.get("fanout_ms") or {}
            rows.append(
                [
                    label,
                    n,
                    _f(cell["cpu_net_ms_per_client_minute"]),
                    _f(cell["bytes_per_client_minute"] / 1000),
                    _f(cell["rss_per_client"] / 1024),
                    f"{_f(wire.get('p50'))} / {_f(wire.get('p99'))}",
                    f"{_f(lat.get('p50'))} / {_f(lat.get('p99'))}",
                    f"{_f(fan.get('p99'))} / {_f(fan.get('cpu_p99'))}"
                    if label.startswith("fluxprint")
                    else "–",
                    _gc(cell),
                ]
            )
    head = [
        "kind",
        "N",
        "net CPU ms",
        "wire KB",
        "RSS/client KiB",
        "to the socket p50 / p99 ms",
        "decoded p50 / p99 ms",
        "fan-out p99 wall / CPU ms",
        "full GCs",
    ]
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    L.extend("| " + " | ".join(str(x) for x in r) + " |" for r in rows)
    L.append("")
    L.append(
        "Ratios, FluxPrint against SockJS at the same N (bytes against lean, CPU against full):\n"
    )
    L.append("| kind | N | wire bytes / SockJS lean | net CPU / SockJS full |")
    L.append("|---|---|---|---|")
    for n in meta["ns"]:
        lean = _cell(kinds_, "sockjs:lean", n)
        full = _cell(kinds_, "sockjs:full", n)
        for label in kinds_:
            if not label.startswith("fluxprint"):
                continue
            c = _cell(kinds_, label, n)
            if not (c and lean and full):
                continue
            b = c["bytes_per_client_minute"] / max(lean["bytes_per_client_minute"], 1)
            cpu = c["cpu_net_ms_per_client_minute"] / max(
                full["cpu_net_ms_per_client_minute"], 1e-9
            )
            L.append(f"| {label} | {n} | {b:.2f} | {cpu:.2f} |")
    L.append("")
    budget = results.get("budget") or {}
    if budget:
        L.append("Bytes per message by layer (steady state of a printing printer):\n")
        L.append(
            "| event | payload | meta keys | Socket.IO + Engine.IO framing | ws header | total | deflate alone | deflate shared (warm) |"
        )
        L.append("|---|---|---|---|---|---|---|---|")
        for event, b in budget.items():
            L.append(
                f"| {event} | {b['payload']:.0f} | {b['meta']:.0f} | {b['framing']:.0f} | "
                f"{b['ws_header']:.0f} | {b['total']:.0f} | {b['deflate_alone']:.0f} | "
                f"{b['deflate_shared_warm']:.0f} |"
            )
        L.append("")
    L.append(END)
    return "\n".join(L)


def _gc(cell: dict) -> str:
    """Full (generation 2) collections in the window, and their longest pause."""
    g2 = (cell.get("gc") or {}).get("2") or {}
    if not g2:
        return "–"
    return f"{g2.get('runs', 0)} ({_f(g2.get('total_ms'), 0)} ms)"


def _cell(kinds_: dict, label: str, n: int) -> Optional[dict]:
    block = kinds_.get(label)
    if not block:
        return None
    c = next((c for c in block["cells"] if c.get("n") == n), None)
    return None if not c or "error" in c else c


def write_section(md_path: str, section: str, begin: str = BEGIN, end: str = END) -> None:
    text = open(md_path).read() if os.path.exists(md_path) else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    with open(md_path, "w") as f:
        f.write(text)


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
        "--no-pin",
        action="store_true",
        help="leave OctoPrint and the load generator on any core",
    )
    args = p.parse_args(argv)
    if args.report:
        with open(args.out) as f:
            write_section(args.md, markdown(json.load(f)))
        return 0
    ns = [int(x) for x in args.ns.split(",")]
    modes = tuple(args.modes.split(","))
    if args.smoke:
        ns, window, lines = [10], 3.0, 20000
        modes = ("deflate_no_context_takeover", "deflate_shared")
    else:
        window, lines = args.window, args.lines
    results = run(ns, window, modes, lines, pinned=not args.no_pin)
    results["meta"]["smoke"] = args.smoke
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    write_section(args.md, markdown(results))
    log(f"wrote {args.out} and the stream section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
