"""The shipped JSON Schema of every FluxPrint event (``events.schema.json``),
generated from the pydantic models in ``core.schema`` by ``core.schemadoc``:

    python -m octoprint_fluxprint.schemas > octoprint_fluxprint/schemas/events.schema.json
"""

from __future__ import annotations

import json
import os

PATH = os.path.join(os.path.dirname(__file__), "events.schema.json")


def load() -> dict:
    with open(PATH, encoding="utf-8") as f:
        return json.load(f)
