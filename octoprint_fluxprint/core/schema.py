"""Event schema: the names, the pydantic models of every payload, and the JSON
Schema built from them.

The models describe the plain dicts that ``shaping`` builds, generate
``schemas/events.schema.json`` and validate what clients send.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic.fields import FieldInfo

from .batchmodel import MAX_BATCH_MS, MIN_BATCH_MS, BatchEvent, check_batch

NAMESPACE = "/ws/printing"
SOCKETIO_PATH = "/plugin/fluxprint/socket.io/"

CHANNELS = ("status", "temperature", "progress", "jobs", "connection")
# channels whose pushes are spaced by an interval; jobs and connection are never delayed
INTERVAL_CHANNELS = ("status", "temperature", "progress")
MAX_INTERVAL = 3600.0

STATE_FLAGS = (
    "operational",
    "printing",
    "paused",
    "pausing",
    "resuming",
    "cancelling",
    "finishing",
    "ready",
    "error",
    "closedOrError",
    "sdReady",
)

EV_STATUS = "printer:status"
EV_TEMPERATURE = "printer:temperature"
EV_PROGRESS = "printer:progress"
EV_JOB_STARTED = "printer:job_started"
EV_JOB_PAUSED = "printer:job_paused"
EV_JOB_RESUMED = "printer:job_resumed"
EV_JOB_COMPLETE = "printer:job_complete"
EV_JOB_FAILED = "printer:job_failed"
EV_CONNECTION = "printer:connection"
EV_RESYNC = "printer:resync"
EV_CLOSING = "printer:closing"
EV_PRINTERS = "printer:printers"  # the hub only
EV_BATCH = "printer:batch"  # opt-in: printer:subscribe {batch: ms}
MAX_HISTORY_MINUTES = 30.0  # what OctoPrint keeps by default (temperature.cutoff)

CHANNEL_OF_EVENT = {
    EV_STATUS: "status",
    EV_TEMPERATURE: "temperature",
    EV_PROGRESS: "progress",
    EV_JOB_STARTED: "jobs",
    EV_JOB_PAUSED: "jobs",
    EV_JOB_RESUMED: "jobs",
    EV_JOB_COMPLETE: "jobs",
    EV_JOB_FAILED: "jobs",
    EV_CONNECTION: "connection",
}
# what a batch carries (core/batchmodel.py): everything of a printer with a seq
BATCHED_EVENTS = (*CHANNEL_OF_EVENT, "printer:resync")


# ~~ models of what the server sends


class Payload(BaseModel):
    """Server payloads: every field is always present (null where unknown)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Meta(Payload):
    """Keys stamped on every payload."""

    seq: int = Field(ge=1, description="Strictly increasing per printer, across restarts")
    ts: int = Field(ge=0, description="Epoch milliseconds at which the data was observed")
    printer: str = Field(description="This instance's printer id")
    trace: Optional[dict[str, int]] = Field(
        None,
        description="Benchmark instrumentation only (FLUXPRINT_TRACE=1): cb_ns, emit_ns",
    )


class HeaterReading(Payload):
    model_config = ConfigDict(extra="forbid")
    actual: Optional[float]
    target: Optional[float]
    offset: float = 0


class StateFlags(Payload):
    model_config = ConfigDict(extra="forbid")
    operational: bool
    printing: bool
    paused: bool
    pausing: bool
    resuming: bool
    cancelling: bool
    finishing: bool
    ready: bool
    error: bool
    closedOrError: bool
    sdReady: bool


class State(Payload):
    text: str
    flags: StateFlags
    error: Optional[str] = None


class JobFile(Payload):
    name: Optional[str] = None
    path: Optional[str] = None
    origin: Optional[str] = None
    size: Optional[int] = None


class ProgressFile(Payload):
    name: Optional[str] = None
    path: Optional[str] = None


class Job(Payload):
    file: JobFile
    estimatedPrintTime: Optional[float] = None
    user: Optional[str] = None


class Progress(Payload):
    completion: Optional[float] = Field(None, ge=0, le=100)
    printTime: Optional[float] = None
    printTimeLeft: Optional[float] = None
    printTimeLeftOrigin: Optional[str] = None
    filepos: Optional[int] = None
    state: str
    file: ProgressFile


ConnectionStateName = Literal["connecting", "connected", "disconnected", "error"]


class Connection(Payload):
    state: ConnectionStateName
    port: Optional[str] = None
    baudrate: Optional[int] = None
    error: Optional[str] = None


class TemperatureEvent(Meta):
    """One key per heater present (tool0…toolN, bed, chamber, custom heaters)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, HeaterReading]  # type: ignore[assignment]


class StatusEvent(Meta):
    state: State
    temperature: dict[str, HeaterReading]
    job: Job
    progress: Progress
    connection: Connection


class ProgressEvent(Meta, Progress):
    pass


class JobEvent(Meta):
    file: JobFile
    filename: Optional[str] = Field(None, description="The file's name (file.name)")
    user: Optional[str] = None
    timestamp: int = Field(ge=0, description="Epoch milliseconds, the same as ts")


class JobCompleteEvent(JobEvent):
    printTime: Optional[float] = None


class JobFailedEvent(JobEvent):
    reason: Literal["error", "cancelled", "interrupted"]
    error: Optional[str] = None
    progress: Optional[float] = Field(None, ge=0, le=100)
    printTime: Optional[float] = None


class ConnectionEvent(Meta, Connection):
    connected: bool = Field(description='state == "connected"')
    timestamp: int = Field(ge=0, description="Epoch milliseconds, the same as ts")


class ResyncEvent(Meta):
    """The ``last_seq`` a client presented is older than what the log retains (or
    unknown here): rebuild state from the status that follows."""

    requested: int
    oldestSeq: Optional[int] = None
    lastSeq: int


class ClosingEvent(Meta):
    """Sent right before the server ends a client's connection, with the reason.
    For a shutdown or an over-budget client only the transport closes, so standard
    clients reconnect and resume by themselves; a revoked, deactivated or flooding
    client is disconnected at the Socket.IO level and is not expected back."""

    reason: str


class PrinterEntry(Payload):
    id: str = Field(description="The printer id, as in every payload's printer")
    state: Literal["online", "stale", "offline"] = Field(description="The hub's link")
    connection: Optional[str] = Field(description="OctoPrint's serial link, if known")
    lastSeq: int = Field(ge=0, description="The highest seq the hub relayed")
    synced: bool = Field(description="The hub's mirror holds the plugin's log")


class PrintersEvent(Payload):
    """The hub only: the printers a client may see, on connect and on change."""

    printers: list[PrinterEntry]
    ts: int = Field(ge=0, description="Epoch milliseconds")


# ~~ deltas (opt-in: printer:subscribe {"delta": true})


class Delta(Meta):
    """Only the top-level fields that changed since the previous message of this
    event on this connection (whole values, not merged further down), plus
    ``removed`` for fields that are gone. Apply it to the last full message and
    the deltas since; a full message (no ``delta`` key) replaces the state."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)
    delta: Literal[True]
    removed: list[str] = Field(
        default_factory=list, description="Top-level fields that no longer exist"
    )


def _delta_of(full: type[BaseModel]) -> type[BaseModel]:
    """``full``'s own fields, each optional (absent when unchanged), on ``Delta``."""
    fields: dict[str, Any] = {
        name: (Optional[info.annotation], FieldInfo.merge_field_infos(info, default=None))
        for name, info in full.model_fields.items()
        if name not in Meta.model_fields
    }
    return create_model(full.__name__.replace("Event", "Delta"), __base__=Delta, **fields)


class TemperatureDelta(Delta):
    # heaters are extra keys, as in TemperatureEvent
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, HeaterReading]  # type: ignore[assignment]


DELTA_MODELS: dict[str, type[BaseModel]] = {
    EV_STATUS: _delta_of(StatusEvent),
    EV_TEMPERATURE: TemperatureDelta,
    EV_PROGRESS: _delta_of(ProgressEvent),
}


EVENT_MODELS: dict[str, type[BaseModel]] = {
    EV_STATUS: StatusEvent,
    EV_TEMPERATURE: TemperatureEvent,
    EV_PROGRESS: ProgressEvent,
    EV_JOB_STARTED: JobEvent,
    EV_JOB_PAUSED: JobEvent,
    EV_JOB_RESUMED: JobEvent,
    EV_JOB_COMPLETE: JobCompleteEvent,
    EV_JOB_FAILED: JobFailedEvent,
    EV_CONNECTION: ConnectionEvent,
    EV_RESYNC: ResyncEvent,
    EV_CLOSING: ClosingEvent,
    EV_PRINTERS: PrintersEvent,
    EV_BATCH: BatchEvent,
}


# ~~ models of what clients send


class ClientError(ValueError):
    """A client payload that does not validate; its message goes into the ack."""


Channel = Literal["status", "temperature", "progress", "jobs", "connection"]
MAX_PRINTERS = 1000
Seq = Annotated[int, Field(ge=0, le=2**63 - 1, strict=True)]
PrinterId = Annotated[str, Field(min_length=1, max_length=64)]


class Intervals(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    status: Optional[float] = Field(None, ge=0, le=MAX_INTERVAL, allow_inf_nan=False)
    temperature: Optional[float] = Field(None, ge=0, le=MAX_INTERVAL, allow_inf_nan=False)
    progress: Optional[float] = Field(None, ge=0, le=MAX_INTERVAL, allow_inf_nan=False)


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: Optional[list[Channel]] = Field(None, max_length=len(CHANNELS))
    intervals: Optional[Intervals] = None
    since: Optional[Union[Seq, dict[PrinterId, Seq]]] = Field(
        None,
        description=(
            "Replay durable events after this seq; at a hub, one cursor per printer"
            " ({printerId: seq})"
        ),
    )
    printers: Optional[list[PrinterId]] = Field(
        None,
        max_length=MAX_PRINTERS,
        description="Hub only: the printers to receive (default: all the client may see)",
    )
    history: Optional[float] = Field(
        None,
        ge=0,
        le=MAX_HISTORY_MINUTES,
        allow_inf_nan=False,
        description="Minutes of temperature history to return in the ack",
    )
    keyframe: Optional[float] = Field(
        None,
        ge=0,
        le=MAX_INTERVAL,
        allow_inf_nan=False,
        description=(
            "Seconds: printer:status at least this often, even when nothing changed"
            " (for relays whose late joiners cannot ask); 0: only on change. Not"
            " below the status interval; delta subscribers get nothing extra"
        ),
    )
    delta: Optional[bool] = Field(
        None,
        strict=True,
        description=(
            "true: printer:status, printer:temperature and printer:progress come as"
            " deltas (only the top-level fields that changed, nothing when nothing"
            " did), each channel starting from a full message; false: full objects"
            " again (the default)"
        ),
    )
    batch: Optional[int] = Field(
        None,
        strict=True,
        description=(
            f"Milliseconds ({MIN_BATCH_MS} to {MAX_BATCH_MS}): everything with a seq"
            " comes as printer:batch, at most once per tick; 0: single events again"
        ),
    )
    _batch = field_validator("batch")(check_batch)


class UnsubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channels: Optional[list[Channel]] = Field(None, max_length=len(CHANNELS))


def _loc_part(part: Any) -> str:
    """A key from the client's payload, printable on one line and short."""
    text = str(part)
    if not (text.isprintable() and len(text) <= 40):
        text = json.dumps(text[:40])  # escapes control characters
    return text


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(_loc_part(p) for p in err.get("loc", ())) or "payload"
    return f"invalid {where}: {err.get('msg', 'invalid value')}"


def parse_client_payload(model: type[BaseModel], data: Any) -> Any:
    """Validate what a client sent; ``None`` means "no payload". Raises ClientError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ClientError("payload must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ClientError(_first_error(exc)) from None
