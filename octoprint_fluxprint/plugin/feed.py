"""OctoPrint's threads into the engine: the printer callback (comm and
state-monitor threads) and the event handler (event thread) only hand over; the
shaping runs on the loop, in ``core.printer``."""

from __future__ import annotations

import time
from typing import Any

# OctoPrint 2.0.0rc7: a bare "from octoprint.printer import ..." is a circular
# import (octoprint.printer -> octoprint.filemanager -> ... -> octoprint.printer)
# unless the file manager comes first, as it does inside a running server
import octoprint.filemanager  # noqa: F401, I001
from octoprint.printer import PrinterCallback

from ..core.printer import HANDLED_EVENTS, PrinterState

_now_ns = time.time_ns


class PrinterFeed(PrinterCallback):
    """Runs on OctoPrint's comm and state-monitor threads: hand over, nothing else."""

    def __init__(self, engine: Any, printer: PrinterState):
        self._submit = engine.submit
        self._printer = printer

    def on_printer_add_temperature(self, data):
        self._submit(self._printer.on_temperature, data, _now_ns())

    def on_printer_send_current_data(self, data):
        self._submit(self._printer.on_current, data, _now_ns())

    def on_event(self, event: str, payload: Any) -> None:
        """From the plugin's ``on_event`` (the event thread): hand over too."""
        if event in HANDLED_EVENTS:
            self._submit(self._printer.on_event, event, payload, _now_ns())


def current_connection(printer: Any) -> tuple[Any, Any]:
    """(port, baudrate) of the printer's connection. OctoPrint 2.0: the public
    ``connection_state`` property (a dict: connector, port, baudrate, state, ...;
    ``get_current_connection()`` is deprecated there and serial-only); 1.11:
    ``get_current_connection()`` (state, port, baudrate, profile)."""
    state = getattr(printer, "connection_state", None)
    if isinstance(state, dict):
        return state.get("port"), state.get("baudrate")
    _state, port, baudrate, _profile = printer.get_current_connection()
    return port, baudrate


def seed(engine: Any, state: PrinterState, printer: Any) -> None:
    """What the printer already is when the plugin starts (on the main thread)."""
    port, baudrate = current_connection(printer)
    if printer.is_closed_or_error():
        name = "error" if printer.is_error() else "disconnected"
    elif printer.is_operational():
        name = "connected"
    else:
        name = "connecting"
    error = printer.get_state_string() if name == "error" else None
    state.set_connection(name, port, baudrate, error, announce=False)
    state.job_known_open(printer.is_printing() or printer.is_paused())
    engine.submit(state.on_current, printer.get_current_data(), _now_ns())
    temps = printer.get_current_temperatures()
    if temps:
        engine.submit(state.on_temperature, temps, _now_ns())
