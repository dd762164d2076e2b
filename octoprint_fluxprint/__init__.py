"""FluxPrint: live printer state from OctoPrint over its own Socket.IO namespace.

Thin OctoPrint glue. The logic lives in ``schema``, ``coalesce``, ``subscriptions``,
``hub``, ``auth`` and ``seq`` (none of which import octoprint or socketio); the
Socket.IO/tornado side lives in ``transport``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import flask
import octoprint.plugin
from octoprint.access.permissions import Permissions
from octoprint.printer import PrinterCallback

from . import auth, compression, panel, ratelimit, schema
from .budget import Limits
from .eventlog import EventLog, FloorBound
from .hub import HANDLED_EVENTS, Hub
from .seq import FileBound, SeqAllocator
from .transport import Clock, Transport

__version__ = "0.1.0"

INTERVAL_SETTINGS = {
    "status": "status_interval",
    "temperature": "temperature_interval",
    "progress": "progress_interval",
}
MAX_PRINTER_ID = 64
SECURITY_SETTINGS = (
    "allowed_origins",
    "max_connections",
    "max_connections_per_user",
    "rate_limit",
    "max_message_bytes",
)


_now_ns = time.time_ns


class PrinterFeed(PrinterCallback):
    """Runs on OctoPrint's comm and state-monitor threads: hand over, nothing else."""

    def __init__(self, transport: Transport, hub: Hub):
        self._submit = transport.submit
        self._hub = hub

    def on_printer_add_temperature(self, data):
        self._submit(self._hub.on_temperature, data, _now_ns())

    def on_printer_send_current_data(self, data):
        self._submit(self._hub.on_current, data, _now_ns())


def clamp_interval(value: Any, fallback: float) -> float:
    return ratelimit.clamp_float(value, fallback, 0.0, schema.MAX_INTERVAL)


# settings groups of non-negative numbers: {group: {key: (type, minimum)}}
NUMERIC_GROUPS: dict[str, dict[str, tuple[type, float]]] = {
    "event_log": {"max_events": (int, 0), "max_age_days": (float, 0)},
    "client_budget": {
        "max_messages": (int, 1),
        "max_bytes": (int, 1024),
        "grace": (float, 0),
    },
}


def clean_numbers(values: Any, fields: dict[str, tuple[type, float]]) -> dict:
    """Keeps the keys whose values are numbers of the right range; drops the rest."""
    out: dict[str, Any] = {}
    if not isinstance(values, dict):
        return out
    for key, (kind, minimum) in fields.items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value != value or value < minimum:
            continue
        out[key] = kind(value)
    return out


class FluxPrintPlugin(
    octoprint.plugin.StartupPlugin,
    octoprint.plugin.ShutdownPlugin,
    octoprint.plugin.EventHandlerPlugin,
    octoprint.plugin.SettingsPlugin,
    octoprint.plugin.TemplatePlugin,
    octoprint.plugin.AssetPlugin,
    octoprint.plugin.SimpleApiPlugin,
    octoprint.plugin.BlueprintPlugin,
):
    def __init__(self):
        super().__init__()
        self.transport: Transport | None = None
        self.hub: Hub | None = None
        self.seq: SeqAllocator | None = None
        self.eventlog: EventLog | None = None
        self._feed: PrinterFeed | None = None

    def initialize(self):
        self.transport = Transport(authenticate=self._authenticate)
        self.transport.compression = self._compression()

    # ~~ StartupPlugin / ShutdownPlugin

    def on_startup(self, host, port):
        # the main thread's IOLoop: the one that will run (see README, design notes)
        from tornado.ioloop import IOLoop

        assert self.transport is not None
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
        self.hub = Hub(
            sink=self.transport,
            clock=Clock(),
            next_seq=self.seq.next,
            printer_id=self._printer_id(),
            intervals=self._intervals(),
        )
        self.hub.set_enabled(self._channels())
        # benchmark instrumentation, off unless FLUXPRINT_TRACE=1 (costs nothing when off)
        self.hub.trace = os.environ.get("FLUXPRINT_TRACE") == "1"
        self.transport.budgets.set_limits(self._budget_limits())
        self.transport.attach(
            IOLoop.current(),
            self.hub,
            eventlog=self.eventlog,
            last_seq=lambda: self.seq.last if self.seq else 0,
            history=self._printer.get_temperature_history,
        )
        self._seed()
        self._security_start(IOLoop.current())
        self._feed = PrinterFeed(self.transport, self.hub)
        self._printer.register_callback(self._feed)
        self._logger.info(
            "FluxPrint serving Socket.IO at path %s, namespace %s, printer id %r",
            schema.SOCKETIO_PATH,
            schema.NAMESPACE,
            self.hub.printer_id,
        )

    def _seed(self) -> None:
        """What the printer already is when the plugin starts."""
        assert self.transport is not None and self.hub is not None
        hub = self.hub
        state, port, baudrate, _profile = self._printer.get_current_connection()
        if self._printer.is_closed_or_error():
            name = "error" if self._printer.is_error() else "disconnected"
        elif self._printer.is_operational():
            name = "connected"
        else:
            name = "connecting"
        error = self._printer.get_state_string() if name == "error" else None
        hub.set_connection(name, port, baudrate, error, announce=False)
        hub.job_known_open(self._printer.is_printing() or self._printer.is_paused())
        self.transport.submit(hub.on_current, self._printer.get_current_data(), _now_ns())
        temps = self._printer.get_current_temperatures()
        if temps:
            self.transport.submit(hub.on_temperature, temps, _now_ns())

    def on_shutdown(self):
        if self._feed is not None:
            self._printer.unregister_callback(self._feed)
            self._feed = None
        transport = self.transport
        if transport is not None and transport.loop is not None and transport.clients:
            # OctoPrint has stopped the IOLoop by now: run it once more to say goodbye
            try:
                transport.loop.run_sync(
                    lambda: transport.close_all("shutdown"), timeout=5
                )
            except Exception:
                self._logger.exception("Could not say goodbye to the clients")
        if self.eventlog is not None:
            self.eventlog.close(10)

    # ~~ EventHandlerPlugin

    def on_event(self, event, payload):
        # the event thread: hand over, nothing else
        if (
            event in HANDLED_EVENTS
            and self.transport is not None
            and self.hub is not None
        ):
            self.transport.submit(self.hub.on_event, event, payload, _now_ns())

    # ~~ SettingsPlugin

    def get_settings_defaults(self):
        return {
            "printer_id": "",
            "status_interval": 5.0,
            "temperature_interval": 2.0,
            "progress_interval": 1.0,
            "channels": {channel: True for channel in schema.CHANNELS},
            "websocket_compression": compression.DEFAULT_MODE,
            "event_log": {"max_events": 10000, "max_age_days": 30},
            "client_budget": {"max_messages": 200, "max_bytes": 524288, "grace": 15.0},
            # security (README "Security"; clamped by ratelimit.limits_from_settings)
            "allowed_origins": [],
            "max_connections": 100,
            "max_connections_per_user": 20,
            "rate_limit": {"burst": 20, "per_second": 5.0, "disconnect_after": 50},
            "max_message_bytes": 16384,
        }

    def get_settings_version(self):
        return 1

    def get_settings_restricted_paths(self):
        return {"admin": [["printer_id"], *([key] for key in SECURITY_SETTINGS)]}

    def on_settings_save(self, data):
        # OctoPrint swallows exceptions here and still answers 200: clamp, never raise
        data = dict(data or {})
        for key in INTERVAL_SETTINGS.values():
            if key in data:
                current = self._settings.get_float([key])
                data[key] = clamp_interval(data[key], current)
        if (
            "websocket_compression" in data
            and data["websocket_compression"] not in compression.MODES
        ):
            data.pop("websocket_compression")
        if "channels" in data:
            channels = data["channels"] if isinstance(data["channels"], dict) else {}
            data["channels"] = {
                name: bool(channels[name]) for name in schema.CHANNELS if name in channels
            }
        if "printer_id" in data:
            value = data["printer_id"]
            data["printer_id"] = (
                value.strip()[:MAX_PRINTER_ID] if isinstance(value, str) else ""
            )
        for group, fields in NUMERIC_GROUPS.items():
            if group in data:
                data[group] = clean_numbers(data[group], fields)
        self._clean_security_settings(data)
        result = octoprint.plugin.SettingsPlugin.on_settings_save(self, data)
        if self.transport is not None and self.transport.loop is not None:
            self.transport.submit(self._apply_security)
        if self.transport is not None and self.hub is not None:
            self.transport.submit(
                self._apply_settings,
                self._intervals(),
                self._printer_id(),
                self._channels(),
            )
        return result

    def _apply_settings(
        self, intervals: dict[str, float], printer_id: str, channels: set[str]
    ) -> None:
        assert self.hub is not None and self.transport is not None
        self.hub.printer_id = printer_id
        self.hub.set_enabled(channels)
        self.hub.set_intervals(intervals)
        self.transport.compression = self._compression()
        self.transport.budgets.set_limits(self._budget_limits())

    def _budget_limits(self) -> Limits:
        defaults = Limits()
        try:
            return Limits(
                max_messages=self._settings.get_int(["client_budget", "max_messages"])
                or defaults.max_messages,
                max_bytes=self._settings.get_int(["client_budget", "max_bytes"])
                or defaults.max_bytes,
                grace=self._settings.get_float(["client_budget", "grace"])
                or defaults.grace,
            )
        except (TypeError, ValueError):
            self._logger.warning("Invalid client_budget settings, using the defaults")
            return defaults

    def _channels(self) -> set[str]:
        return {
            name
            for name in schema.CHANNELS
            if self._settings.get_boolean(["channels", name]) is not False
        }

    def _compression(self) -> str:
        mode = self._settings.get(["websocket_compression"])
        return mode if mode in compression.MODES else compression.DEFAULT_MODE

    def _intervals(self) -> dict[str, float]:
        defaults = self.get_settings_defaults()
        return {
            channel: clamp_interval(self._settings.get([key]), defaults[key])
            for channel, key in INTERVAL_SETTINGS.items()
        }

    def _printer_id(self) -> str:
        value = self._settings.get(["printer_id"])
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_PRINTER_ID]
        return socket.gethostname()

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
        if not self._receive_permission().can():
            flask.abort(403)
        if self.hub is None:
            flask.abort(503)
        # hub state is replaced, never mutated, so reading it off the loop is safe
        return flask.jsonify(self.hub.status_payload())

    # ~~ BlueprintPlugin

    def is_blueprint_protected(self):
        return False

    def is_blueprint_csrf_protected(self):
        return True

    @octoprint.plugin.BlueprintPlugin.route("/health", methods=["GET"])
    def health(self):
        # public and minimal; ?detail=1 adds counters, with the receive permission
        detail = flask.request.args.get("detail") in ("1", "true", "yes")
        if detail and not self._receive_permission().can():
            flask.abort(403)
        connected = False
        if self.hub is not None:
            connected = self.hub.connection["state"] == "connected"
        body = {
            "status": "ok",
            "version": self._plugin_version,
            "socketio": {
                "clients": self.transport.client_count() if self.transport else 0
            },
            "printer": {"connected": connected},
        }
        if detail:
            body["detail"] = self._security_detail()
        return flask.jsonify(body)

    # ~~ panel (settings panel: live clients table and health, pushed as plugin
    # messages at most once a second while someone has the FluxPrint tab open)

    PANEL_TICK_MS = 500

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
        if self.transport is None or self.transport.loop is None:
            flask.abort(503)
        self.transport.submit(self._panel_mark, token, bool(data.get("open", True)))
        return flask.jsonify({"ok": True, "lease": panel.LEASE})

    def _panel_permissions(self) -> list:
        # the table shows users and addresses: settings admins only
        return [Permissions.SETTINGS, self._receive_permission()]

    def _panel_mark(self, token: str, is_open: bool) -> None:
        # on the loop
        now = time.monotonic()
        feed = self._panel_feed()
        if is_open:
            feed.open(token, now)
            if self._panel_timer is None:
                from tornado.ioloop import PeriodicCallback

                self._panel_timer = PeriodicCallback(self._panel_tick, self.PANEL_TICK_MS)
                self._panel_timer.start()
            self._panel_tick()
        else:
            feed.close(token, now)
            if not feed.active(now):
                self._panel_stop()

    def _panel_feed(self) -> panel.PanelFeed:
        feed = getattr(self, "_panel", None)
        if feed is None:
            feed = self._panel = panel.PanelFeed()
            self._panel_timer = None
        return feed

    def _panel_stop(self) -> None:
        timer = getattr(self, "_panel_timer", None)
        if timer is not None:
            timer.stop()
            self._panel_timer = None

    def _panel_tick(self) -> None:
        # on the loop, every PANEL_TICK_MS while the panel is open
        feed = self._panel_feed()
        now = time.monotonic()
        if not feed.active(now):
            self._panel_stop()
            return
        if self.transport is None or self.hub is None:
            return
        hub = self.hub
        message = feed.tick(
            now,
            time.time_ns() // 1_000_000,
            self.transport.client_table(),
            hub.emitted,
            hub.last_temperature_ts,
            hub.connection,
        )
        if message is not None:
            self._plugin_manager.send_plugin_message(
                self._identifier, message, permissions=self._panel_permissions()
            )

    # ~~ softwareupdate hook

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

    # ~~ authentication (runs on the loop: in-memory look-ups only)

    def _authenticate(self, auth_payload: Any, environ: dict) -> auth.Decision:
        """An API key (auth payload, X-Api-Key header, apikey query parameter), else
        OctoPrint's browser session cookie (same origin only)."""
        cookie = "HTTP_COOKIE" in environ and auth.is_same_origin(environ)
        apikey, error = auth.extract_credentials(auth_payload, environ, cookie)
        if error:
            return auth.Decision(reason=error)
        if apikey is None:
            return self._authenticate_session(environ)
        decision = auth.decide(
            apikey,
            lambda key: self._key_cache.lookup(key, self._user_for_apikey),
            self._may_connect,
        )
        if not decision.ok:
            return decision
        return auth.Decision(
            user=decision.user, credential=auth.Credential("apikey", apikey)
        )

    def _authenticate_session(self, environ: dict) -> auth.Decision:
        found = self._session_of(environ)
        if found is None:
            return auth.Decision(reason=auth.MISSING)
        user_id, session_id = found
        credential = auth.Credential("session", session_id, user_id)
        return self._recheck(credential, auth.MISSING)

    def _session_of(self, environ: dict):
        """(user id, OctoPrint session id) from a valid, signed Flask session cookie
        of a logged-in user, or None. HMAC checks and dictionary look-ups only: no
        password hashing, no I/O."""
        handler = environ.get("tornado.handler")
        request = getattr(handler, "request", None)
        if request is None:
            return None
        try:
            from octoprint.server import app
            from octoprint.server.util.flask import validate_session_signature
            from octoprint.server.util.tornado import WsgiInputContainer

            with app.request_context(WsgiInputContainer.environ(request, body=b"")):
                session = app.session_interface.open_session(app, flask.request)
                if not session:
                    return None
                user_id = session.get("_user_id")
                session_id = session.get("usersession.id")
                signature = session.get("usersession.signature") or ""
                if not (isinstance(user_id, str) and isinstance(session_id, str)):
                    return None
                if not validate_session_signature(signature, user_id, session_id):
                    return None
                return user_id, session_id
        except Exception:
            self._logger.debug("Unreadable session cookie", exc_info=True)
            return None

    def _user_for_apikey(self, apikey: str):
        user = self._user_manager.find_user(apikey=apikey)
        if user is not None:
            return user
        for name, hook in self._plugin_manager.get_hooks(
            "octoprint.accesscontrol.keyvalidator"
        ).items():
            try:
                user = hook(apikey)
            except Exception:
                self._logger.exception("API key validator of plugin %s failed", name)
                continue
            if user is not None:
                return user
        return None

    def _may_connect(self, user) -> bool:
        return bool(user.has_permission(self._receive_permission()))

    @staticmethod
    def _receive_permission():
        # registered through octoprint.access.permissions; STATUS until it exists
        # (no "or": a flask-principal Permission's truth value evaluates it)
        permission = Permissions.find("PLUGIN_FLUXPRINT_RECEIVE")
        return Permissions.STATUS if permission is None else permission

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

    # ~~ security: the revocation sweep (on the loop, in-memory look-ups only)

    SWEEP_MS = 5000

    @property
    def _key_cache(self) -> auth.KeyCache:
        cache = getattr(self, "_fluxprint_key_cache", None)
        if cache is None:
            cache = self._fluxprint_key_cache = auth.KeyCache()
        return cache

    def _security_start(self, loop) -> None:
        from tornado.ioloop import PeriodicCallback

        self._apply_security()
        self._sweep_timer = PeriodicCallback(self._sweep, self.SWEEP_MS)
        loop.add_callback(self._sweep_timer.start)

    def _security_limits(self) -> ratelimit.Limits:
        values = {key: self._settings.get([key]) for key in SECURITY_SETTINGS}
        return ratelimit.limits_from_settings(values)

    def _apply_security(self) -> None:
        if self.transport is not None:
            self.transport.set_security(
                self._security_limits(),
                auth.normalize_origins(self._settings.get(["allowed_origins"])),
            )

    def _recheck(self, credential: auth.Credential, gone: str) -> auth.Decision:
        """Do these credentials still hold? No cache: fresh in-memory look-ups."""
        if credential.kind == "session":
            # find_user(userid, session) falls back to the plain user when the
            # session is gone: ask for the session itself
            manager = self._user_manager
            user = None
            if manager.validate_user_session(credential.user_id, credential.secret):
                user = manager.find_user(userid=credential.user_id)
        else:
            user = self._user_for_apikey(credential.secret)
        if user is None:
            return auth.Decision(reason=gone)
        decision = auth.decide("-", lambda _key: user, self._may_connect)
        if not decision.ok:
            return decision
        return auth.Decision(user=user, credential=credential)

    def _sweep(self) -> None:
        """Every SWEEP_MS: disconnects the clients whose key was revoked, whose
        session ended, whose user was deactivated, deleted or lost the permission;
        closes engine.io sessions that never joined; empties the key cache."""
        import asyncio

        transport = self.transport
        if transport is None:
            return
        self._key_cache.clear()
        for sid, info in list(transport.clients.items()):
            credential = info.credential
            if credential is None:
                continue
            gone = "session ended" if credential.kind == "session" else "API key revoked"
            try:
                decision = self._recheck(credential, gone)
            except Exception:
                self._logger.exception("Re-checking a client's credentials failed")
                continue
            if not decision.ok:
                asyncio.ensure_future(transport.drop(sid, decision.reason))
        asyncio.ensure_future(transport.reap(time.monotonic()))

    def _security_detail(self) -> dict:
        transport = self.transport
        limits = self._security_limits()
        return {
            "limits": {
                "max_connections": limits.max_connections,
                "max_connections_per_user": limits.max_connections_per_user,
                "max_message_bytes": limits.max_message_bytes,
                "rate_limit": limits.rate.as_dict(),
            },
            "allowed_origins": auth.normalize_origins(
                self._settings.get(["allowed_origins"])
            ),
            "security": transport.security_stats() if transport else {},
            "fanout": transport.fanout_stats() if transport else {},
        }

    def _clean_security_settings(self, data: dict) -> None:
        """Validates the security keys of a settings save in place (never raises)."""
        if "allowed_origins" in data:
            data["allowed_origins"] = auth.normalize_origins(data["allowed_origins"])
        current = self._security_limits()
        bounds = ratelimit.BOUNDS
        for key in ("max_connections", "max_connections_per_user", "max_message_bytes"):
            if key in data:
                data[key] = ratelimit.clamp_int(
                    data[key], getattr(current, key), *bounds[key]
                )
        if "rate_limit" in data:
            data["rate_limit"] = ratelimit.rate_config(
                data["rate_limit"], current.rate
            ).as_dict()

    # ~~ hooks

    def get_routes(self, server_routes, *args, **kwargs):
        assert self.transport is not None
        return [self.transport.route()]

    def get_body_sizes(self, current_max_body_sizes, *args, **kwargs):
        assert self.transport is not None
        return [self.transport.body_size()]


__plugin_name__ = "FluxPrint"
__plugin_version__ = __version__
__plugin_description__ = (
    "Pushes live printer state, temperatures, progress and job events to FluxStudio "
    "and other Socket.IO clients, on OctoPrint's own port."
)
__plugin_author__ = "FluxPrint developers"
__plugin_url__ = "https://github.com/fluxprint/OctoPrint-FluxPrint"
__plugin_license__ = "AGPL-3.0-or-later"
__plugin_pythoncompat__ = ">=3.9,<4"
__plugin_implementation__ = FluxPrintPlugin()
__plugin_hooks__ = {
    "octoprint.access.permissions": __plugin_implementation__.get_additional_permissions,
    "octoprint.server.http.routes": __plugin_implementation__.get_routes,
    "octoprint.server.http.bodysize": __plugin_implementation__.get_body_sizes,
    "octoprint.plugin.softwareupdate.check_config": __plugin_implementation__.get_update_information,
}
