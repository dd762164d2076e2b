"""The real clock and the peer address: what a host passes in, and what tests fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any


class Clock:
    @staticmethod
    def monotonic() -> float:
        return time.monotonic()

    @staticmethod
    def wall_ms() -> int:
        return time.time_ns() // 1_000_000

    @staticmethod
    def wall_ns() -> int:
        return time.time_ns()


def remote_address(environ: Mapping[str, Any]) -> str:
    """The real peer: engineio's tornado driver puts 127.0.0.1 into REMOTE_ADDR."""
    handler = environ.get("tornado.handler")
    request = getattr(handler, "request", None)
    remote = getattr(request, "remote_ip", None)
    return remote or environ.get("REMOTE_ADDR") or "?"


def to_loop_time(when: float) -> float:
    # room deadlines are time.monotonic(); asyncio's loop.time() is monotonic too,
    # but convert explicitly in case a loop uses another clock
    loop = asyncio.get_running_loop()
    return loop.time() + (when - time.monotonic())
