"""``fluxprint-hub``: run the hub, check a config, or hash a token.

fluxprint-hub --config hub.yaml          run
fluxprint-hub --config hub.yaml --check  validate and exit (0 ok, 2 bad)
fluxprint-hub hash-token                 read a token on stdin, print its sha256
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Optional

from . import startup

if TYPE_CHECKING:  # pragma: no cover
    from .config import HubConfig

EXIT_CONFIG = 2
STOP_DUMP_S = 8.0
STOP_TASKS_S = 2.0


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        startup.check_packages()
    except startup.MissingPackage as exc:
        print(f"fluxprint-hub: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from . import config as C

    if argv[:1] == ["hash-token"]:
        token = sys.stdin.readline().strip()
        if not token:
            print("hash-token: give the token on stdin", file=sys.stderr)
            return EXIT_CONFIG
        print(C.hash_token(token))
        return 0
    parser = argparse.ArgumentParser(
        prog="fluxprint-hub", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", "-c", required=True, help="the hub's YAML file")
    parser.add_argument(
        "--check", action="store_true", help="validate the config and exit"
    )
    args = parser.parse_args(argv)
    try:
        cfg = C.load(args.config)
        startup.check_packages(cfg)
        prepared = startup.prepare(cfg)
    except startup.MissingPackage as exc:
        print(f"fluxprint-hub: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except C.ConfigError as exc:
        print(f"fluxprint-hub: bad config {args.config}:", file=sys.stderr)
        for line in str(exc).splitlines():
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        if cfg.dynamic:
            print(f"{args.config}: ok (source redis: printers as they register)")
        else:
            print(f"{args.config}: ok ({len(cfg.printers)} printer(s), {cfg.source})")
        return 0
    logging.basicConfig(
        level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("socketio").setLevel(logging.WARNING)
    logging.getLogger("engineio").setLevel(logging.WARNING)
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    try:
        asyncio.run(_serve(cfg, prepared))
    except OSError as exc:
        print(f"fluxprint-hub: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(cfg: HubConfig, prepared: startup.Prepared) -> None:
    from tornado.ioloop import IOLoop

    from .app import Hub

    hub = Hub(cfg, prepared)
    await hub.start(IOLoop.current())
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task] = []

    def request_stop() -> None:
        if not stopping:
            # a stop that hangs says where, in the log
            faulthandler.dump_traceback_later(STOP_DUMP_S, exit=False)
            stopping.append(asyncio.ensure_future(hub.stop()))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    await hub.stopped.wait()
    # every client is closed: what is left gets a bounded moment (asyncio.run would
    # wait for ever on a task that does not end when cancelled)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    if others:
        _done, pending = await asyncio.wait(others, timeout=STOP_TASKS_S)
        if pending:
            logging.getLogger("fluxprint.hub").warning(
                "Exiting with %d task(s) that ignored cancellation: %s",
                len(pending),
                "; ".join(repr(t)[:200] for t in pending),
            )
            logging.shutdown()
            faulthandler.cancel_dump_traceback_later()
            os._exit(0)
    faulthandler.cancel_dump_traceback_later()
