"""Benchmark instrumentation: when each message was produced and emitted.

``FLUXPRINT_TRACE=1`` puts ``{"trace": {"cb_ns", "emit_ns"}}`` into every payload
(the hub benchmarks read it through the hub). ``FLUXPRINT_TRACE=table`` keeps the
same two times in a bounded table beside the payloads instead, keyed by seq, so a
benchmark that counts bytes counts the bytes a user gets: two nanosecond clocks
are about 20 bytes per message that no compressor can shrink. The benchmark reads
the table off ``/plugin/fluxprint/health?trace=<since>`` and joins it with what
its clients received. Off (the default), neither costs anything.

Pure: the standard library only.
"""

from __future__ import annotations

from collections import deque

ROWS = 65536  # about 30 minutes of a printing printer at default intervals


class TraceTable:
    def __init__(self, maxlen: int = ROWS):
        self.rows: deque[tuple[int, int, int]] = deque(maxlen=maxlen)

    def record(self, seq: int, cb_ns: int, emit_ns: int) -> None:
        """Called on the loop as a message is stamped."""
        self.rows.append((seq, cb_ns, emit_ns))

    def since(self, seq: int) -> tuple[list[tuple[int, int, int]], int]:
        """Rows above ``seq``, oldest first, and the top seq recorded; safe from
        another thread (the copy is one C call under the GIL)."""
        rows = tuple(self.rows)
        top = rows[-1][0] if rows else seq
        return [r for r in rows if r[0] > seq], max(top, seq)


def mode(env_value: str | None) -> str:
    """``FLUXPRINT_TRACE`` as ``"inline"``, ``"table"`` or ``"off"``."""
    if env_value == "1":
        return "inline"
    if env_value == "table":
        return "table"
    return "off"
