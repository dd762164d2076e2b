"""Checks recorded payloads against the JSON Schema shipped in the package."""

from __future__ import annotations

from typing import Any

import jsonschema


def validator(schema: dict, event: str) -> jsonschema.Draft202012Validator:
    # {"$ref": ...}, or {"anyOf": [full, delta]} for the events that have deltas
    return jsonschema.Draft202012Validator({**schema, **schema["events"][event]})


def validate_records(schema: dict, records: list[dict[str, Any]]) -> int:
    """Validates every FluxPrint event among ``records``; returns how many."""
    cache: dict[str, jsonschema.Draft202012Validator] = {}
    count = 0
    for record in records:
        event = record["event"]
        if event not in schema["events"]:
            raise AssertionError(f"event {event!r} is not in the shipped schema")
        v = cache.get(event) or cache.setdefault(event, validator(schema, event))
        errors = sorted(v.iter_errors(record["data"]), key=str)
        if errors:
            raise AssertionError(
                f"{event} payload invalid: {errors[0].message}: {record['data']}"
            )
        count += 1
    return count
