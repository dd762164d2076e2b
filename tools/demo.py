"""The demo: OctoPrint + Virtual Printer + FluxPrint, ready for a client, and a
FluxPrint hub in front of it, run from the hub as a user installs it (.hubvenv:
``pip install "<wheel>[hub]"`` in a venv of its own, tools/hubvenv.py).

Keeps its OctoPrint base folder in .demo/ (settings and keys survive restarts).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hubvenv  # noqa: E402
from octoserver import ADMIN, ADMIN_PASSWORD, OctoServer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--basedir", default=os.path.join(ROOT, ".demo"))
    args = parser.parse_args()

    server = OctoServer(args.basedir, host=args.host, port=args.port, autoconnect=True)
    print(f"Starting OctoPrint in {args.basedir} ...", flush=True)
    server.start()
    server.wait_state(("Operational",), 60)
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    hub_port = int(os.environ.get("HUB_PORT", "5001"))
    hub_cfg = os.path.join(args.basedir, "hub.yaml")
    with open(hub_cfg, "w") as f:
        f.write(
            f"listen: {{port: {hub_port}}}\n"
            f"printers:\n  - {{id: demo, url: '{url}', apikey: '{server.apikey}'}}\n"
        )
    hub_exe = hubvenv.ensure(log=lambda m: print(m, flush=True))
    hub = subprocess.Popen(
        [hub_exe, "--config", hub_cfg],
        stdout=open(os.path.join(args.basedir, "hub.log"), "ab"),
        stderr=subprocess.STDOUT,
        cwd=args.basedir,
    )
    print(
        f"""
FluxPrint is ready.

  OctoPrint UI   {url}/  (user {ADMIN}, password {ADMIN_PASSWORD})
  URL            {url}
  path           /plugin/fluxprint/socket.io/
  namespace      /ws/printing
  API key        {server.apikey}
  health         {url}/plugin/fluxprint/health

Node.js (socket.io-client 4):

  import {{ io }} from "socket.io-client";
  const socket = io("{url}/ws/printing", {{
    path: "/plugin/fluxprint/socket.io/",
    auth: {{ apikey: "{server.apikey}" }},
  }});
  socket.onAny((event, payload) => console.log(event, payload));

The FluxPrint hub (FluxStudio: ENABLE_FLUXPRINT=true FLUXPRINT_WS_URL=http://127.0.0.1:{hub_port})

  URL            http://127.0.0.1:{hub_port}  (path /socket.io/, no key from this machine)
  health         http://127.0.0.1:{hub_port}/health
  log            {os.path.join(args.basedir, "hub.log")}
  installed as   pip install "OctoPrint-FluxPrint[hub]" (the wheel of this tree) in {os.path.dirname(os.path.dirname(hub_exe))}

Ctrl-C stops OctoPrint and the hub. Its log: {os.path.join(args.basedir, "logs", "octoprint.log")}
""",
        flush=True,
    )

    stop = False

    def on_signal(signum, frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop:
            if server.proc is not None and server.proc.poll() is not None:
                print("OctoPrint exited:\n" + server.tail(), file=sys.stderr)
                return 1
            time.sleep(0.5)
    finally:
        hub.terminate()
        hub.wait(15)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
