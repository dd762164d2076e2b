"""Synthetic FluxPrint plugins for the hub benchmark: one process, one Socket.IO
server per printer (its own port, the plugin's path and namespace), speaking the
plugin's protocol as the hub's direct source uses it: ``auth: {apikey, last_seq}``,
a status on connect, ``printer:subscribe`` and ``printer:request_status`` answered,
and a printing printer's telemetry (temperature every second, progress twice a
second, a status every 2 s) with increasing seqs and ``trace`` timestamps.

    python -m bench.synthetic 5101 5102 ...    prints {"ready": [ports]} when up
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import socketio
import tornado.web

NS = "/ws/printing"
PATH = "plugin/fluxprint/socket.io"


class Printer:
    def __init__(self, port: int):
        self.port = port
        self.seq = 0
        self.sio = socketio.AsyncServer(async_mode="tornado", cors_allowed_origins="*")
        self.sio.on("connect", self.on_connect, namespace=NS)
        self.sio.on("printer:subscribe", self.on_subscribe, namespace=NS)
        self.sio.on("printer:request_status", self.on_request_status, namespace=NS)
        self.started = time.time()

    def meta(self, body: dict) -> dict:
        self.seq += 1
        now = time.time_ns()
        return {
            **body,
            "seq": self.seq,
            "ts": now // 1_000_000,
            "printer": f"synthetic-{self.port}",
            "trace": {"cb_ns": now, "emit_ns": now},
        }

    def status(self) -> dict:
        flags = dict.fromkeys(
            ("operational", "printing", "ready", "sdReady"), True
        ) | dict.fromkeys(
            ("paused", "pausing", "resuming", "cancelling", "finishing", "error"), False
        )
        flags["closedOrError"] = False
        return self.meta(
            {
                "state": {"text": "Printing", "flags": flags, "error": None},
                "temperature": self.temps(),
                "job": {"file": {"name": "synthetic.gcode"}, "estimatedPrintTime": 600},
                "progress": self.progress(),
                "connection": {"state": "connected", "port": "VIRTUAL"},
            }
        )

    def temps(self) -> dict:
        wobble = (time.time() % 3) / 10
        return {
            "tool0": {"actual": 209.8 + wobble, "target": 210.0, "offset": 0},
            "bed": {"actual": 59.9 + wobble, "target": 60.0, "offset": 0},
        }

    def progress(self) -> dict:
        elapsed = time.time() - self.started
        return {
            "completion": round(elapsed % 600 / 6, 4),
            "filepos": int(elapsed * 4000),
            "printTime": int(elapsed),
            "printTimeLeft": int(600 - elapsed % 600),
            "file": {"name": "synthetic.gcode", "path": "synthetic.gcode"},
        }

    async def on_connect(self, sid, environ, auth=None):
        await self.sio.emit("printer:status", self.status(), to=sid, namespace=NS)

    async def on_subscribe(self, sid, data=None):
        return {"ok": True}

    async def on_request_status(self, sid, data=None):
        status = self.status()
        await self.sio.emit("printer:status", status, to=sid, namespace=NS)
        return {"ok": True, "status": status}

    async def run(self) -> None:
        tick = 0
        while True:
            await asyncio.sleep(0.5)
            tick += 1
            await self.sio.emit(
                "printer:progress", self.meta(self.progress()), namespace=NS
            )
            if tick % 2 == 0:
                await self.sio.emit(
                    "printer:temperature", self.meta(self.temps()), namespace=NS
                )
            if tick % 4 == 0:
                await self.sio.emit("printer:status", self.status(), namespace=NS)


async def main(ports: list[int]) -> None:
    printers = [Printer(p) for p in ports]
    for printer in printers:
        base = socketio.get_tornado_handler(printer.sio)

        class Handler(base):
            async def open(self, *args, **kwargs):
                self.set_nodelay(True)  # as the plugin's websockets (server/fanout.py)
                await super().open(*args, **kwargs)

        app = tornado.web.Application([(rf"/{PATH}/", Handler)])
        app.listen(printer.port, address="127.0.0.1")
        asyncio.ensure_future(printer.run())
    print(json.dumps({"ready": ports}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main([int(p) for p in sys.argv[1:]]))
