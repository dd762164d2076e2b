"""Driving a real OctoPrint's job from tests: its state, waiting for one, commands."""

from __future__ import annotations

import time
from typing import Callable, Optional


def job_state(octo) -> str:
    return octo.api("GET", "/api/job").json()["state"]


def wait_job(octo, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = job_state(octo)
        if predicate(state):
            return state
        time.sleep(0.1)
    raise TimeoutError(f"job state {state!r}")


def job_command(octo, command: str, action: Optional[str] = None) -> None:
    body = {"command": command, **({"action": action} if action else {})}
    octo.api("POST", "/api/job", json=body).raise_for_status()
