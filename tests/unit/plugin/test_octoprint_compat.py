"""The connection look-up on both OctoPrint versions, without OctoPrint running."""

from __future__ import annotations

import warnings

from octoprint_fluxprint.plugin.feed import current_connection


class Printer111:
    def get_current_connection(self):
        return "Operational", "VIRTUAL", 115200, {"id": "_default"}


class Printer20:
    @property
    def connection_state(self):
        return {"connector": "serial", "port": "VIRTUAL", "baudrate": 115200}

    def get_current_connection(self):  # deprecated in 2.0
        warnings.warn("deprecated", DeprecationWarning, stacklevel=2)
        return "Operational", "VIRTUAL", 115200, None


class Printer20Offline:
    connection_state = {"state": "Offline"}


def test_1_11():
    assert current_connection(Printer111()) == ("VIRTUAL", 115200)


def test_2_0_uses_connection_state_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert current_connection(Printer20()) == ("VIRTUAL", 115200)
    assert current_connection(Printer20Offline()) == (None, None)
