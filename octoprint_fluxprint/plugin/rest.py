"""The plugin's REST fallback: the hub's routes and payloads (``hub/rest.py``) under
the plugin's blueprint, so a client polls both hosts the same way:

=================================================================  ====================
``GET /plugin/fluxprint/api/printers``                             ``printer:printers``
``GET /plugin/fluxprint/api/printers/<id>/status``                 ``printer:status``
``GET /plugin/fluxprint/api/printers/<id>/events?since=N&limit=M`` durable events
=================================================================  ====================

Credentials are OctoPrint's (an API key in ``X-Api-Key``, or the browser session),
and the user needs "FluxPrint: receive live printer data". OctoPrint runs Flask
handlers on its ``WsgiRequestHandler`` thread pool, never on the IOLoop, so the
event log's blocking SQLite read (``EventLog.read_since``, a read-only connection per
thread) happens there; the status is read as ``GET /api/plugin/fluxprint`` reads it
(the state is replaced, never mutated).
"""

from __future__ import annotations

from typing import Any

import flask
import octoprint.plugin

from ..core import restapi
from .identity import receive_permission


class RestRoutes:
    """A mixin of ``FluxPrintPlugin`` (a BlueprintPlugin): ``printer_state``, ``seq``
    and ``eventlog`` are the plugin's."""

    printer_state: Any
    seq: Any
    eventlog: Any

    def _rest_printer(self, printer: str) -> Any:
        if not receive_permission().can():
            flask.abort(403, description="permission denied")
        state = self.printer_state
        if state is None:
            flask.abort(503, description="FluxPrint is starting")
        if printer is not None and printer != state.printer_id:
            flask.abort(404, description=f"no such printer: {printer}")
        return state

    @octoprint.plugin.BlueprintPlugin.route("/api/printers", methods=["GET"])
    def rest_printers(self):
        state = self._rest_printer(None)
        last = self.seq.last if self.seq is not None else 0
        connection = state.connection["state"]
        entry = restapi.printer_entry(state.printer_id, "online", connection, last, True)
        return _json({"printers": [entry], "ts": state.clock.wall_ms()})

    @octoprint.plugin.BlueprintPlugin.route(
        "/api/printers/<printer>/status", methods=["GET"]
    )
    def rest_status(self, printer: str):
        return _json(self._rest_printer(printer).status_payload())

    @octoprint.plugin.BlueprintPlugin.route(
        "/api/printers/<printer>/events", methods=["GET"]
    )
    def rest_events(self, printer: str):
        state = self._rest_printer(printer)
        try:
            since, limit = restapi.events_args(
                flask.request.args.get("since"), flask.request.args.get("limit")
            )
        except restapi.BadArgument as exc:
            flask.abort(400, description=str(exc))
        log = self.eventlog
        if log is None:
            flask.abort(503, description="FluxPrint is starting")
        issued = self.seq.last if self.seq is not None else 0
        resync = restapi.resync_body(since, log, issued)
        if resync is not None:
            return _json(restapi.events_page(state.printer_id, [], limit, resync))
        # a Flask worker thread (not the IOLoop): the SQLite read may block here
        rows = log.read_since(since, limit + 1)
        return _json(restapi.events_page(state.printer_id, rows, limit))


def _json(body: dict) -> flask.Response:
    response = flask.jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
