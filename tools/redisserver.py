"""A real Debian ``redis-server`` for the farm's tests, benchmark and demo: its own
port and directory, AOF on with ``appendfsync everysec`` (as docs/farm.md
recommends), and the ways it dies in production: a clean restart, ``kill -9``, and
coming back from an older RDB snapshot."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from typing import Optional

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, workdir: str, port: Optional[int] = None, aof: bool = True):
        self.workdir = workdir
        self.port = port or free_port()
        self.aof = aof
        self.proc: Optional[subprocess.Popen] = None
        self.log = os.path.join(workdir, "redis.log")
        os.makedirs(workdir, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def command(self) -> list[str]:
        return [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self.workdir,
            "--dbfilename", "dump.rdb",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", "everysec",
            "--save", "",  # snapshots only when a test asks (snapshot())
            "--logfile", self.log,
            "--daemonize", "no",
        ]  # fmt: skip

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.tail()}")
            try:
                with self.client(socket_timeout=1) as c:
                    if c.ping():
                        # loading an AOF or RDB answers LOADING until it is done
                        return
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                time.sleep(0.05)
        raise RuntimeError(f"redis-server not up in {timeout}s: {self.tail()}")

    def tail(self, lines: int = 20) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """A clean shutdown: SHUTDOWN (the AOF is flushed)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """``kill -9``: whatever the last second's fsync did not write is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, hard: bool = False, down_for: float = 0.0) -> None:
        self.kill() if hard else self.stop()
        time.sleep(down_for)
        self.start()

    def snapshot(self, name: str = "older.rdb") -> str:
        """SAVE now and keep a copy: what ``restore`` brings back."""
        with self.client() as c:
            c.save()
        kept = os.path.join(self.workdir, name)
        shutil.copyfile(os.path.join(self.workdir, "dump.rdb"), kept)
        return kept

    def restore(self, snapshot: str, down_for: float = 0.0) -> None:
        """Dies (kill -9) and comes back holding only ``snapshot``: its AOF is lost
        with the machine, as when a replica or backup is promoted."""
        self.kill()
        shutil.rmtree(os.path.join(self.workdir, "appendonlydir"), ignore_errors=True)
        shutil.copyfile(snapshot, os.path.join(self.workdir, "dump.rdb"))
        time.sleep(down_for)
        # with AOF on and no AOF, redis 7.0 starts empty: load the RDB with AOF off,
        # then turn AOF on (it rewrites the AOF from the loaded data)
        aof, self.aof = self.aof, False
        try:
            self.start()
        finally:
            self.aof = aof
        if aof:
            with self.client() as c:
                c.config_set("appendonly", "yes")
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    p = c.info("persistence")
                    if p["aof_enabled"] and not (
                        p["aof_rewrite_in_progress"] or p["aof_rewrite_scheduled"]
                    ):
                        break
                    time.sleep(0.05)

    def info(self, section: str = "default") -> dict:
        with self.client() as c:
            return c.info(section)
