"""The shipped JSON Schema (``schemas/events.schema.json``), built from the event
models of ``schema``: one definition per event name, deltas as ``anyOf``, and the
client events."""

from __future__ import annotations

import json
from typing import Any

from .schema import (
    BATCHED_EVENTS,
    DELTA_MODELS,
    EV_BATCH,
    EVENT_MODELS,
    NAMESPACE,
    SOCKETIO_PATH,
    SubscribeRequest,
    UnsubscribeRequest,
)


def events_json_schema() -> dict[str, Any]:
    """One JSON Schema document with a definition per event name."""
    defs: dict[str, Any] = {}
    events: dict[str, Any] = {}
    for name, model in EVENT_MODELS.items():
        schema = model.model_json_schema(
            ref_template="#/$defs/{model}", mode="serialization"
        )
        defs.update(schema.pop("$defs", {}))
        if "trace" in schema.get("required", ()):
            schema["required"].remove("trace")  # only present when tracing is on
        defs[model.__name__] = schema
        events[name] = {"$ref": f"#/$defs/{model.__name__}"}
    for name, model in DELTA_MODELS.items():
        schema = model.model_json_schema(
            ref_template="#/$defs/{model}", mode="serialization"
        )
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        events[name] = {"anyOf": [events[name], {"$ref": f"#/$defs/{model.__name__}"}]}
    # a batch's items: [event, payload], each payload as that event's own schema
    batch = defs[EVENT_MODELS[EV_BATCH].__name__]["properties"]["items"]
    batch["items"] = {
        "oneOf": [
            {
                "type": "array",
                "prefixItems": [{"const": name}, events[name]],
                "minItems": 2,
                "maxItems": 2,
            }
            for name in BATCHED_EVENTS
        ]
    }
    client: dict[str, Any] = {}
    for name, model in (
        ("printer:subscribe", SubscribeRequest),
        ("printer:unsubscribe", UnsubscribeRequest),
    ):
        schema = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
        client[name] = {"$ref": f"#/$defs/{model.__name__}"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fluxprint.invalid/schemas/events.schema.json",
        "title": "FluxPrint Socket.IO events",
        "description": f"Namespace {NAMESPACE}, path {SOCKETIO_PATH}",
        "events": events,
        "client_events": client,
        "$defs": defs,
    }


def dump_schema() -> str:
    return json.dumps(events_json_schema(), indent=2, sort_keys=True) + "\n"
