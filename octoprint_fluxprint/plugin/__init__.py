"""The OctoPrint host: FluxPrint's engine inside OctoPrint, fed by the printer
callback and the event bus, mounted on OctoPrint's own port.

Loaded by ``octoprint_fluxprint.__plugin_load__``; this is the only package that
imports octoprint (with ``feed`` and ``identity`` beside it).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import flask
import octoprint.plugin
from octoprint.access.permissions import Permissions

from ..core import schema, trace
from ..core.printer import PrinterState
from ..server.clock import Clock
from ..server.engine import Engine
from ..store.eventlog import EventLog
from ..store.seq import FileBound, FloorBound, SeqAllocator
from . import panel, restart, settings
from .farm import Farm, PublisherCollector, TapSink, instance_id
from .feed import PrinterFeed, seed
from .identity import Identity, receive_permission
from .panel_push import PanelPush
from .rest import RestRoutes


class FluxPrintPlugin(
    octoprint.plugin.StartupPlugin,
    octoprint.plugin.ShutdownPlugin,
    octoprint.plugin.EventHandlerPlugin,
    octoprint.plugin.SettingsPlugin,
    octoprint.plugin.TemplatePlugin,
    octoprint.plugin.AssetPlugin,
    octoprint.plugin.SimpleApiPlugin,
    octoprint.plugin.BlueprintPlugin,
    RestRoutes,  # the REST fallback: /plugin/fluxprint/api/printers... (plugin/rest.py)
):
    def __init__(self):
        super().__init__()
        self.engine: Engine | None = None
        self.printer_state: PrinterState | None = None
        self.seq: SeqAllocator | None = None
        self.eventlog: EventLog | None = None
        self.identity: Identity | None = None
        self._feed: PrinterFeed | None = None
        self._panel: PanelPush | None = None
        self._farm: Farm | None = None
        self._prom: Any = None

    def initialize(self):
        self.config = settings.Reader(self._settings, self._logger)
        self.identity = Identity(self._user_manager, self._plugin_manager)
        self.engine = Engine(authenticate=self.identity.authenticate)
        self.engine.compression = self.config.compression()

    # ~~ StartupPlugin / ShutdownPlugin

    def on_startup(self, host, port):
        # the main thread's IOLoop: the one that will run (see README, design notes)
        from tornado.ioloop import IOLoop

        assert self.engine is not None and self.identity is not None
        loop = IOLoop.current()
        data = self.get_plugin_data_folder()
        bound = FileBound(os.path.join(data, "seq.json"))
        try:
            floor = bound.load()
        except RuntimeError:
            self._logger.exception(
                "Sequence bound unreadable; the event log sets the floor"
            )
            floor = 0
        self.eventlog = EventLog(
            os.path.join(data, "events.db"),
            max_events=self._settings.get_int(["event_log", "max_events"]) or 0,
            max_age=(self._settings.get_float(["event_log", "max_age_days"]) or 0)
            * 86400,
            floor_seq=floor,
        )
        self.seq = SeqAllocator(FloorBound(bound, self.eventlog))
        # what a virtual farm subscriber gets goes to Redis too (plugin/farm.py)
        tap = TapSink(self.engine.delivery)
        state = self.printer_state = PrinterState(
            sink=tap,
            clock=Clock(),
            next_seq=self.seq.next,
            printer_id=self.config.printer_id(),
            intervals=self.config.intervals(),
            keyframe=self.config.keyframe(),
        )
        state.set_enabled(self.config.channels())
        # benchmark instrumentation, off unless FLUXPRINT_TRACE is 1 or table
        # (core/trace.py; costs nothing when off)
        trace_mode = trace.mode(os.environ.get("FLUXPRINT_TRACE"))
        state.trace = trace_mode == "inline"
        if trace_mode == "table":
            state.trace_table = trace.TraceTable()
        self.engine.budgets.set_limits(self.config.budget_limits())
        self.engine.attach(
            loop,
            state,
            eventlog=self.eventlog,
            last_seq=lambda: self.seq.last if self.seq else 0,
            history=self._printer.get_temperature_history,
        )
        seed(self.engine, state, self._printer)
        restart.reconcile_at_startup(self.engine, state, self.eventlog)
        self._apply_security()
        self.identity.start_sweep(loop, self.engine)
        self._feed = PrinterFeed(self.engine, state)
        self._printer.register_callback(self._feed)
        self._farm = Farm(
            state,
            tap,
            self.engine.submit,
            self.eventlog,
            self._plugin_version,
            instance_id(data),
        )
        self._farm.start(*self._redis_config())
        self._logger.info(
            "FluxPrint serving Socket.IO at path %s, namespace %s, printer id %r",
            schema.SOCKETIO_PATH,
            schema.NAMESPACE,
            state.printer_id,
        )

    def on_shutdown(self):
        if self._feed is not None:
            self._printer.unregister_callback(self._feed)
            self._feed = None
        # OctoPrint has stopped the IOLoop by now: see plugin/restart.py
        restart.shutdown(self.engine, self.printer_state, self.eventlog, self._farm)

    # ~~ EventHandlerPlugin

    def on_event(self, event, payload):
        # the event thread: hand over, nothing else
        if self._feed is not None:
            self._feed.on_event(event, payload)

    # ~~ SettingsPlugin

    def get_settings_defaults(self):
        return copy.deepcopy(settings.DEFAULTS)

    def get_settings_version(self):
        return settings.SETTINGS_VERSION

    def get_settings_restricted_paths(self):
        return {
            "admin": [
                ["printer_id"],
                ["redis"],
                *([key] for key in settings.SECURITY_SETTINGS),
            ]
        }

    def on_settings_save(self, data):
        # OctoPrint swallows exceptions here and still answers 200: clamp, never raise
        data = self.config.clean(data)
        result = octoprint.plugin.SettingsPlugin.on_settings_save(self, data)
        engine = self.engine
        if engine is not None and engine.loop is not None:
            engine.submit(self._apply_security)
        if engine is not None and self.printer_state is not None:
            engine.submit(
                self._apply_settings,
                self.config.intervals(),
                self.config.keyframe(),
                self.config.printer_id(),
                self.config.channels(),
            )
        if self._farm is not None:
            # a changed url, prefix or printer id restarts the publisher (a thread)
            self._farm.reconfigure(*self._redis_config())
        return result

    def _redis_config(self) -> tuple:
        redis = self.config.redis()  # url, prefix, queue_max, durable_max
        printer_id = self.config.printer_id()
        name = self._settings.global_get(["appearance", "name"])
        name = name if isinstance(name, str) and name.strip() else printer_id
        return (*redis, printer_id, name.strip())

    def _apply_settings(
        self,
        intervals: dict[str, float],
        keyframe: float,
        printer_id: str,
        channels: set[str],
    ) -> None:
        # on the loop
        assert self.printer_state is not None and self.engine is not None
        self.printer_state.printer_id = printer_id
        self.printer_state.set_enabled(channels)
        self.printer_state.set_intervals(intervals, keyframe)
        self.engine.compression = self.config.compression()
        self.engine.budgets.set_limits(self.config.budget_limits())

    def _apply_security(self) -> None:
        if self.engine is not None:
            self.engine.set_security(
                self.config.security_limits(), self.config.allowed_origins()
            )

    # ~~ TemplatePlugin

    def get_template_configs(self):
        return [{"type": "settings", "custom_bindings": True, "name": "FluxPrint"}]

    def get_template_vars(self):
        return {
            "socketio_path": schema.SOCKETIO_PATH,
            "namespace": schema.NAMESPACE,
            "max_interval": schema.MAX_INTERVAL,
            "channels": list(schema.CHANNELS),
        }

    # ~~ AssetPlugin

    def get_assets(self):
        return {
            "js": ["js/fluxprint.js"],
            "css": ["css/fluxprint.css"],
            "less": ["less/fluxprint.less"],
        }

    # ~~ SimpleApiPlugin

    def is_api_protected(self):
        return True

    def on_api_get(self, request):
        if not receive_permission().can():
            flask.abort(403)
        if self.printer_state is None:
            flask.abort(503)
        # the state is replaced, never mutated, so reading it off the loop is safe
        return flask.jsonify(self.printer_state.status_payload())

    def get_api_commands(self):
        return {"panel": ["token"]}

    def on_api_command(self, command, data):
        if command != "panel":
            return None
        if not all(p.can() for p in self._panel_permissions()):
            flask.abort(403)
        token = panel.valid_token(data.get("token"))
        if token is None:
            flask.abort(400, description="token: 1 to 64 letters, digits, - or _")
        if self.engine is None or self.engine.loop is None:
            flask.abort(503)
        self.engine.submit(self._panel_mark, token, bool(data.get("open", True)))
        return flask.jsonify({"ok": True, "lease": panel.LEASE})

    def _panel_permissions(self) -> list:
        # the table shows users and addresses: settings admins only
        return [Permissions.SETTINGS, receive_permission()]

    def _panel_mark(self, token: str, is_open: bool) -> None:
        # on the loop
        if self._panel is None:
            self._panel = PanelPush(self.engine, self._panel_send, self._panel_extra)
        self._panel.mark(token, is_open)

    def _panel_extra(self) -> dict:
        return {"redis": self._redis_stats()}

    def _redis_stats(self) -> dict:
        return self._farm.stats() if self._farm is not None else {"state": "off"}

    def _panel_send(self, message: dict) -> None:
        self._plugin_manager.send_plugin_message(
            self._identifier, message, permissions=self._panel_permissions()
        )

    # ~~ BlueprintPlugin

    def is_blueprint_protected(self):
        return False

    def is_blueprint_csrf_protected(self):
        return True

    @octoprint.plugin.BlueprintPlugin.route("/health", methods=["GET"])
    def health(self):
        # public and minimal; ?detail=1 adds counters, with the receive permission
        detail = flask.request.args.get("detail") in ("1", "true", "yes")
        prometheus = flask.request.args.get("format") == "prometheus"
        if (detail or prometheus) and not receive_permission().can():
            flask.abort(403)
        if prometheus:
            return self._prometheus()
        since = flask.request.args.get("trace")
        if since is not None:
            return self._trace_rows(since)
        connected = False
        if self.printer_state is not None:
            connected = self.printer_state.connection["state"] == "connected"
        body = {
            "status": "ok",
            "version": self._plugin_version,
            "socketio": {"clients": self.engine.client_count() if self.engine else 0},
            "printer": {"connected": connected},
        }
        if detail:
            body["detail"] = self._health_detail()
        return flask.jsonify(body)

    def _trace_rows(self, since: str):
        """``?trace=<seq>``: the benchmark's trace table above that seq."""
        if not receive_permission().can():
            flask.abort(403)
        table = self.printer_state.trace_table if self.printer_state else None
        if table is None:
            flask.abort(404, description="tracing is off (FLUXPRINT_TRACE=table)")
        try:
            after = int(since or 0)
        except ValueError:
            flask.abort(400, description="trace: a seq (an integer) is expected")
        rows, top = table.since(after)
        return flask.jsonify({"trace": rows, "top": top})

    def _health_detail(self) -> dict:
        engine = self.engine
        limits = self.config.security_limits()
        return {
            "limits": {
                "max_connections": limits.max_connections,
                "max_connections_per_user": limits.max_connections_per_user,
                "max_message_bytes": limits.max_message_bytes,
                "rate_limit": limits.rate.as_dict(),
            },
            "allowed_origins": self.config.allowed_origins(),
            "security": engine.security_stats() if engine else {},
            "fanout": engine.fanout_stats() if engine else {},
            "redis": self._redis_stats(),
        }

    def _prometheus(self):
        from ..server import prom

        if self.engine is None or self._farm is None:
            flask.abort(503)
        if self._prom is None:
            registry = prom.registry_for(self.engine, "plugin")
            registry.register(PublisherCollector(self._farm))
            self._prom = registry
        body, content_type = prom.render(self._prom)
        return flask.Response(body, content_type=content_type)

    # ~~ hooks

    def get_additional_permissions(self, *args, **kwargs):
        from octoprint.access import READONLY_GROUP, USER_GROUP

        # the groups that have STATUS by default (admins have every permission)
        return [
            {
                "key": "RECEIVE",
                "name": "receive live printer data",
                "description": "Connect to FluxPrint's Socket.IO namespace and read "
                "its REST snapshot and detailed health",
                "roles": ["receive"],
                "default_groups": [USER_GROUP, READONLY_GROUP],
            }
        ]

    def get_routes(self, server_routes, *args, **kwargs):
        assert self.engine is not None
        return [self.engine.route()]

    def get_body_sizes(self, current_max_body_sizes, *args, **kwargs):
        assert self.engine is not None
        return [self.engine.body_size()]

    def get_update_information(self, *args, **kwargs):
        return {
            "fluxprint": {
                "displayName": "FluxPrint",
                "displayVersion": self._plugin_version,
                "type": "github_release",
                "user": "fluxprint",
                "repo": "OctoPrint-FluxPrint",
                "current": self._plugin_version,
                "pip": "https://github.com/fluxprint/OctoPrint-FluxPrint/archive/{target_version}.zip",
            }
        }
