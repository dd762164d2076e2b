"""FluxPrint's settings: the defaults (one literal dict and its version), reading
them into the engine's terms, and cleaning what a settings save sends. Cleaning
never raises: OctoPrint swallows exceptions in ``on_settings_save`` and answers 200
anyway, so a bad value is clamped or dropped instead."""

from __future__ import annotations

import re
import socket
from typing import Any, NamedTuple

from ..core import auth, compression, ratelimit, schema, streams
from ..core.budget import Limits

SETTINGS_VERSION = 1

DEFAULTS: dict[str, Any] = {
    "printer_id": "",
    "status_interval": 5.0,
    "temperature_interval": 2.0,
    "progress_interval": 1.0,
    # printer:status at least every this many s even when unchanged (0: on change
    # only); for relays whose late joiners cannot ask (FluxStudio's: 5)
    "status_keyframe": 0.0,
    "channels": {
        "status": True,
        "temperature": True,
        "progress": True,
        "jobs": True,
        "connection": True,
    },
    "websocket_compression": "deflate_shared",
    "event_log": {"max_events": 10000, "max_age_days": 30},
    "client_budget": {"max_messages": 200, "max_bytes": 524288, "grace": 15.0},
    # security (README "Security"; clamped by ratelimit.limits_from_settings)
    "allowed_origins": [],
    "max_connections": 100,
    "max_connections_per_user": 20,
    "rate_limit": {"burst": 20, "per_second": 5.0, "disconnect_after": 50},
    "max_message_bytes": 16384,
    # the print farm (docs/farm.md): publish to Redis Streams; "" is off. Admin only
    # (the URL may hold a password)
    "redis": {
        "url": "",
        "prefix": "fluxprint",
        "queue_max": 10000,
        "durable_max": streams.DURABLE_MAX,
    },
}

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
# settings groups of non-negative numbers: {group: {key: (type, minimum)}}
NUMERIC_GROUPS: dict[str, dict[str, tuple[type, float]]] = {
    "event_log": {"max_events": (int, 0), "max_age_days": (float, 0)},
    "client_budget": {
        "max_messages": (int, 1),
        "max_bytes": (int, 1024),
        "grace": (float, 0),
    },
}


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
QUEUE_BOUNDS = (100, 1_000_000)
DURABLE_BOUNDS = (100, 1_000_000)  # redis.durable_max: the durable stream's cap


class RedisSettings(NamedTuple):
    url: str  # "": publishing is off
    prefix: str
    queue_max: int
    durable_max: int


def clamp_interval(value: Any, fallback: float) -> float:
    return ratelimit.clamp_float(value, fallback, 0.0, schema.MAX_INTERVAL)


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


def valid_redis_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith(REDIS_SCHEMES)


def clean_redis(values: Any) -> dict:
    """The redis group of a save: a URL of redis://, rediss:// or unix:// (or "",
    off), a prefix like a printer id, a queue bound; anything else is dropped."""
    out: dict[str, Any] = {}
    if not isinstance(values, dict):
        return out
    url = values.get("url")
    if url == "" or url is None and "url" in values:
        out["url"] = ""
    elif valid_redis_url(url):
        out["url"] = url.strip()
    prefix = values.get("prefix")
    if isinstance(prefix, str) and REDIS_PREFIX.match(prefix.strip()):
        out["prefix"] = prefix.strip()
    for key, bounds in (("queue_max", QUEUE_BOUNDS), ("durable_max", DURABLE_BOUNDS)):
        if key in values:
            out[key] = ratelimit.clamp_int(values[key], DEFAULTS["redis"][key], *bounds)
    return out


class Reader:
    """The settings in the engine's terms; ``settings`` is OctoPrint's
    ``PluginSettings`` (or anything with its getters)."""

    def __init__(self, settings: Any, logger: Any):
        self._settings = settings
        self._logger = logger

    def intervals(self) -> dict[str, float]:
        return {
            channel: clamp_interval(self._settings.get([key]), DEFAULTS[key])
            for channel, key in INTERVAL_SETTINGS.items()
        }

    def keyframe(self) -> float:
        value = self._settings.get(["status_keyframe"])
        return clamp_interval(value, DEFAULTS["status_keyframe"])

    def channels(self) -> set[str]:
        return {
            name
            for name in schema.CHANNELS
            if self._settings.get_boolean(["channels", name]) is not False
        }

    def compression(self) -> str:
        mode = self._settings.get(["websocket_compression"])
        return mode if mode in compression.MODES else compression.DEFAULT_MODE

    def printer_id(self) -> str:
        value = self._settings.get(["printer_id"])
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_PRINTER_ID]
        return socket.gethostname()

    def budget_limits(self) -> Limits:
        defaults = Limits()
        get_int, get_float = self._settings.get_int, self._settings.get_float
        try:
            return Limits(
                max_messages=get_int(["client_budget", "max_messages"])
                or defaults.max_messages,
                max_bytes=get_int(["client_budget", "max_bytes"]) or defaults.max_bytes,
                grace=get_float(["client_budget", "grace"]) or defaults.grace,
            )
        except (TypeError, ValueError):
            self._logger.warning("Invalid client_budget settings, using the defaults")
            return defaults

    def security_limits(self) -> ratelimit.Limits:
        values = {key: self._settings.get([key]) for key in SECURITY_SETTINGS}
        return ratelimit.limits_from_settings(values)

    def allowed_origins(self) -> list[str]:
        return auth.normalize_origins(self._settings.get(["allowed_origins"]))

    def redis(self) -> RedisSettings:
        """The farm's Redis; url "" is off."""
        defaults = DEFAULTS["redis"]

        def get(key: str) -> Any:
            return self._settings.get(["redis", key])

        url, prefix = get("url"), get("prefix")
        return RedisSettings(
            url.strip() if valid_redis_url(url) else "",
            prefix
            if isinstance(prefix, str) and REDIS_PREFIX.match(prefix)
            else defaults["prefix"],
            ratelimit.clamp_int(get("queue_max"), defaults["queue_max"], *QUEUE_BOUNDS),
            ratelimit.clamp_int(
                get("durable_max"), defaults["durable_max"], *DURABLE_BOUNDS
            ),
        )

    def clean(self, data: Any) -> dict:
        """A settings save, validated (never raises)."""
        data = dict(data or {})
        for key in (*INTERVAL_SETTINGS.values(), "status_keyframe"):
            if key in data:
                data[key] = clamp_interval(data[key], self._settings.get_float([key]))
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
        if "redis" in data:
            data["redis"] = clean_redis(data["redis"])
        self._clean_security(data)
        return data

    def _clean_security(self, data: dict) -> None:
        if "allowed_origins" in data:
            data["allowed_origins"] = auth.normalize_origins(data["allowed_origins"])
        current = self.security_limits()
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
