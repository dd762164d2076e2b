"""The plugin's settings defaults and cleaning, and the OctoPrint version check."""

from __future__ import annotations

import pytest

from octoprint_fluxprint.core import compression, schema
from octoprint_fluxprint.plugin import compat, settings


def test_defaults_literal_matches_the_engine():
    defaults = settings.DEFAULTS
    assert list(defaults["channels"]) == list(schema.CHANNELS)
    assert all(defaults["channels"].values())
    assert defaults["websocket_compression"] == compression.DEFAULT_MODE
    for key in settings.INTERVAL_SETTINGS.values():
        assert 0 <= defaults[key] <= schema.MAX_INTERVAL


class FakeSettings:
    def __init__(self, values: dict):
        self.values = values

    def get(self, path):
        value = self.values
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def get_float(self, path):
        return float(self.get(path))

    def get_int(self, path):
        return int(self.get(path))

    def get_boolean(self, path):
        return bool(self.get(path))


def test_clean_never_raises_and_clamps():
    reader = settings.Reader(FakeSettings(settings.DEFAULTS), logger=None)
    cleaned = reader.clean(
        {
            "status_interval": "fast",
            "temperature_interval": -3,
            "websocket_compression": "zstd",
            "channels": {"status": 0, "bogus": True},
            "printer_id": "  " + "x" * 100,
            "event_log": {"max_events": "lots", "max_age_days": 2},
            "max_connections": 10**9,
        }
    )
    assert cleaned["status_interval"] == 5.0
    assert cleaned["temperature_interval"] == 0.0
    assert "websocket_compression" not in cleaned
    assert cleaned["channels"] == {"status": False}
    assert cleaned["printer_id"] == "x" * settings.MAX_PRINTER_ID
    assert cleaned["event_log"] == {"max_age_days": 2.0}
    assert cleaned["max_connections"] <= 10000


@pytest.mark.parametrize(
    ("version", "load", "says"),
    [
        ("1.11.8", True, None),
        ("2.0.0rc7", True, None),
        ("2.0.0", True, None),
        ("2.3.1", True, None),
        ("1.10.3", False, "needs OctoPrint 1.11 or newer"),
        ("3.0.0", True, "tested on OctoPrint 1.11 and 2.x"),
        ("not-a-version", True, "cannot tell"),
    ],
)
def test_version_check(version, load, says):
    ok, message = compat.check(version)
    assert ok is load
    if says is None:
        assert message is None
    else:
        assert says in message and version in message
