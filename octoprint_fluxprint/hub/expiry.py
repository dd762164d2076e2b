"""A JWT's client is closed the reconnectable way when its token expires:
``printer:closing {reason: "token expired"}``, then its transport ends
(``sessions.close_transport``), so it comes back with a fresh token and resumes
with its cursors. Needs no JWT library: the verifier (hub/jwtauth.py) hands the
expiry over in the client's credential.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..core import auth as A

TOKEN_EXPIRED = "token expired"


@dataclass(frozen=True, repr=False)
class JwtCredential(A.Credential):
    """A token's credential: when it stops holding (epoch s, leeway included)."""

    expires: float = 0.0


class TokenExpiry:
    """Closes each token's client the reconnectable way when the token expires.

    ``watch`` when a client has joined; ``sweep`` (the hub's reap) drops the timers
    of clients that left, so a disconnect storm leaves none behind."""

    def __init__(self, engine: Any, clock: Callable[[], float] = time.time):
        self.engine = engine
        self.clock = clock
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task] = set()  # the loop keeps weak references

    def watch(self, sid: str) -> None:
        info = self.engine.clients.get(sid)
        credential = getattr(info, "credential", None)
        if not isinstance(credential, JwtCredential):
            return
        delay = max(0.0, credential.expires - self.clock())
        old = self._timers.pop(sid, None)
        if old is not None:
            old.cancel()
        self._timers[sid] = asyncio.get_running_loop().call_later(
            delay, self._expire, sid, credential
        )

    def _expire(self, sid: str, credential: JwtCredential) -> None:
        self._timers.pop(sid, None)
        info = self.engine.clients.get(sid)
        if info is None or info.credential is not credential:
            return
        task = asyncio.ensure_future(
            self.engine.sessions.close_transport(sid, TOKEN_EXPIRED)
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def sweep(self) -> int:
        gone = [sid for sid in self._timers if sid not in self.engine.clients]
        for sid in gone:
            self._timers.pop(sid).cancel()
        return len(gone)

    def __len__(self) -> int:
        return len(self._timers)
