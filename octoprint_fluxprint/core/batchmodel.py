"""The ``printer:batch`` event's model and the ``batch`` subscription's bounds. Pure.

A client that subscribes with ``{batch: ms}`` gets everything of its printers that
carries a seq as ``printer:batch {ts, items: [[event, payload], ...]}``, at most
once per tick (core/ticks.py builds the items; server/cohorts.py sends them).
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

MIN_BATCH_MS = 50
MAX_BATCH_MS = 10_000


class BatchEvent(BaseModel):
    """Opt-in (``printer:subscribe {batch: ms}``): everything of the client's
    printers that carries a seq, at most once per tick. Per printer, items are in
    seq order; a tick holds each printer's newest status, temperature and progress
    (older ones of the same tick are left out) and every durable event, never
    coalesced. Each item is ``[event, payload]``, the payload as that event has it
    on its own."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    ts: int = Field(ge=0, description="Epoch milliseconds at which the tick went out")
    items: list[tuple[str, dict[str, Any]]] = Field(
        description="[event, payload] pairs, in the order the events happened"
    )


def check_batch(value: Optional[int]) -> Optional[int]:
    """A tick in milliseconds: 0 (off) or MIN_BATCH_MS to MAX_BATCH_MS."""
    if value is None or value == 0 or MIN_BATCH_MS <= value <= MAX_BATCH_MS:
        return value
    raise PydanticCustomError(
        "batch",
        "batch is 0 (single events) or {lo} to {hi} ms, not {value}",
        {"lo": MIN_BATCH_MS, "hi": MAX_BATCH_MS, "value": value},
    )
