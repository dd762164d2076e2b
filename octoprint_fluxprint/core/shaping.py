"""Shaping OctoPrint's printer data into FluxPrint payloads: pure and cheap.

These run on the loop for every sample, so they return plain dicts and build no
models; ``schema`` describes the dicts they return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .schema import STATE_FLAGS


def as_num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        return int(value)
    return None


def as_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def shape_temperature(data: Mapping[str, Any], offsets: Mapping[str, Any]) -> dict:
    """``on_printer_add_temperature`` data -> {heater: {actual, target, offset}}.

    Heaters whose reading is entirely null (the printer does not have them) are left out.
    """
    out: dict[str, dict] = {}
    for key, value in data.items():
        if key == "time" or not isinstance(value, Mapping):
            continue
        actual = as_num(value.get("actual"))
        target = as_num(value.get("target"))
        if actual is None and target is None:
            continue
        offset = as_num(offsets.get(key)) if offsets else None
        out[key] = {"actual": actual, "target": target, "offset": offset or 0}
    return out


def with_offsets(temperature: Mapping[str, Mapping], offsets: Mapping[str, Any]) -> dict:
    return {
        key: {**value, "offset": (as_num(offsets.get(key)) if offsets else None) or 0}
        for key, value in temperature.items()
    }


EMPTY_FLAGS = dict.fromkeys(STATE_FLAGS, False) | {"closedOrError": True}


def shape_state(state: Optional[Mapping[str, Any]]) -> dict:
    if not state:
        return {"text": "Offline", "flags": dict(EMPTY_FLAGS), "error": None}
    flags = state.get("flags") or {}
    return {
        "text": as_str(state.get("text")) or "Unknown",
        "flags": {name: bool(flags.get(name, False)) for name in STATE_FLAGS},
        "error": as_str(state.get("error")) or None,
    }


def shape_job_file(file: Optional[Mapping[str, Any]]) -> dict:
    file = file or {}
    return {
        "name": as_str(file.get("name")),
        "path": as_str(file.get("path")),
        "origin": as_str(file.get("origin")),
        "size": as_int(file.get("size")),
    }


def shape_job(job: Optional[Mapping[str, Any]]) -> dict:
    job = job or {}
    return {
        "file": shape_job_file(job.get("file")),
        "estimatedPrintTime": as_num(job.get("estimatedPrintTime")),
        "user": as_str(job.get("user")),
    }


def shape_progress(
    progress: Optional[Mapping[str, Any]], state_text: str, job: Mapping[str, Any]
) -> dict:
    progress = progress or {}
    completion = as_num(progress.get("completion"))
    if completion is not None:
        completion = min(100.0, max(0.0, round(completion, 4)))
    file = job.get("file") or {}
    return {
        "completion": completion,
        "printTime": as_num(progress.get("printTime")),
        "printTimeLeft": as_num(progress.get("printTimeLeft")),
        "printTimeLeftOrigin": as_str(progress.get("printTimeLeftOrigin")),
        "filepos": as_int(progress.get("filepos")),
        "state": state_text,
        "file": {"name": file.get("name"), "path": file.get("path")},
    }


def shape_connection(
    state: str,
    port: Optional[str] = None,
    baudrate: Any = None,
    error: Optional[str] = None,
) -> dict:
    return {
        "state": state,
        "port": as_str(port),
        "baudrate": as_int(baudrate),
        "error": as_str(error) if state == "error" else None,
    }


def file_from_event(payload: Mapping[str, Any]) -> dict:
    return shape_job_file(payload)


def event_user(payload: Mapping[str, Any]) -> Optional[str]:
    return as_str(payload.get("user")) or as_str(payload.get("owner"))


def _clamp_percent(value: float) -> float:
    return min(100.0, max(0.0, round(value, 4)))


def failed_progress(payload: Mapping[str, Any]) -> Optional[float]:
    """Percent done of a failed job, from OctoPrint's PrintFailed payload.

    OctoPrint 1.11 is not consistent here: after an error ``progress`` is the
    0-1 fraction from the comm layer, after a cancel it is already an int percent.
    The file position over the size is exact where both are present.
    """
    pos, size = as_num(payload.get("fileposition")), as_num(payload.get("size"))
    if pos is not None and size:
        return _clamp_percent(pos / size * 100.0)
    number = as_num(payload.get("progress"))
    if number is None or number < 0:
        return None
    if payload.get("reason") == "cancelled":
        return _clamp_percent(number)
    return _clamp_percent(number * 100.0)
