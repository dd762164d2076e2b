"""The plugin's side of the print farm: what one virtual farm subscriber receives,
handed to the Redis publisher (store/publisher.py).

The printer state's sink is wrapped in a ``TapSink``: for the tap's own sid it
keeps the rooms itself (python-socketio's manager never hears of it) and, for a
broadcast to a room the tap is in, hands the very payload the clients get to the
publisher after the delivery has it (the delivery logs durable events, once). The
tap subscribes like a client with the plugin's configured intervals and a status
keyframe every ``streams.KEYFRAME_S``.

Durable means committed: a durable event the tap gets is handed over *pending*, and
the delivery appends it to the log through a ``CommitWatch`` that tells the
publisher once SQLite has committed it (on the log's writer thread, no loop hop):
Redis, like the plugin's own clients, never has a durable event the log lacks.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any, Callable, Optional, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..core import schema as S
from ..core import streams
from ..core.replay import DURABLE_EVENTS
from ..store.publisher import Publisher

_logger = logging.getLogger(__name__)

# never a python-socketio sid (those are URL-safe base64 of 20 chars)
TAP_SID = "~fluxprint-farm"
OFF_STATS = {
    "state": "off",
    "published": 0,
    "backfilled": 0,
    "dropped": 0,
    "queue": 0,
    "redis_top": None,
    "last_error": None,
    "last_error_at": None,
    "snapshot_rollbacks": 0,
}


class Target(Protocol):
    """Where the tap hands over (``store.publisher.Publisher``)."""

    def offer(self, event: str, payload: dict, pending: bool = False) -> None: ...

    def committed(self, seq: int) -> None: ...


class CommitWatch:
    """The log the delivery appends one durable event to: the plugin's own, with the
    publisher told of the commit before the delivery's own ``on_durable`` runs."""

    __slots__ = ("log", "target", "accepted")

    def __init__(self, log: Any, target: Target):
        self.log = log
        self.target = target
        self.accepted = False

    def append(
        self,
        seq: int,
        event: str,
        payload: dict,
        ts: int,
        on_durable: Optional[Callable[[], None]] = None,
    ) -> bool:
        target = self.target

        def durable() -> None:  # the writer thread, after the commit
            target.committed(seq)
            if on_durable is not None:
                on_durable()

        self.accepted = bool(self.log.append(seq, event, payload, ts, durable))
        return self.accepted


class TapSink:
    """A ``core.rooms.Sink`` around the delivery that captures what the tap's sid
    would receive."""

    def __init__(self, inner: Any, sid: str = TAP_SID):
        self.inner = inner
        self.sid = sid
        self.rooms: set[str] = set()
        self.target: Optional[Target] = None
        self.eventlog: Any = None  # the plugin's log (set by Farm)

    def emit(self, event: str, payload: dict, room: str) -> None:
        target = self.target if room in self.rooms else None
        if target is None:
            self.inner.emit(event, payload, room)
        elif event in DURABLE_EVENTS and self.eventlog is not None:
            # to Redis once committed; never if the log refused it (closed)
            watch = CommitWatch(self.eventlog, target)
            self.inner.emit(event, payload, room, log=watch)
            if watch.accepted:
                target.offer(event, payload, True)
        else:
            self.inner.emit(event, payload, room)
            target.offer(event, payload)

    def send_to(self, sid: str, event: str, payload: dict) -> None:
        if sid != self.sid:
            self.inner.send_to(sid, event, payload)
        elif self.target is not None:
            self.target.offer(event, payload)

    def enter_room(self, sid: str, room: str) -> None:
        if sid == self.sid:
            self.rooms.add(room)
        else:
            self.inner.enter_room(sid, room)

    def leave_room(self, sid: str, room: str) -> None:
        if sid == self.sid:
            self.rooms.discard(room)
        else:
            self.inner.leave_room(sid, room)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        return self.inner.call_at(when, callback)

    def cancel(self, handle: Any) -> None:
        self.inner.cancel(handle)


def instance_id(folder: str) -> str:
    """A stable per-install id, kept in the plugin's data folder."""
    path = os.path.join(folder, "instance_id")
    try:
        with open(path) as f:
            value = f.read().strip()
        if value:
            return value
    except OSError:
        pass
    value = uuid.uuid4().hex
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w") as f:
            f.write(value + "\n")
    except OSError:
        _logger.warning("Could not keep the instance id in %s", path)
    return value


class Farm:
    """The publisher's life in the plugin. ``start``/``stop``/``reconfigure`` run
    on any thread but the loop's (``stop`` joins a thread); the tap's subscription
    is changed on the loop through ``submit``."""

    def __init__(
        self,
        state: Any,
        tap: TapSink,
        submit: Callable[..., None],
        eventlog: Any,
        version: str,
        instance: str,
    ):
        self.state = state
        self.tap = tap
        self.submit = submit
        self.eventlog = eventlog
        self.version = version
        self.instance = instance
        self.publisher: Optional[Publisher] = None
        self.config: Optional[tuple] = None
        self.error: Optional[str] = None  # why publishing is off despite a url
        self._lock = threading.Lock()
        tap.eventlog = eventlog
        # the publisher's belief about Redis is kept beside the log
        path = getattr(eventlog, "path", None)
        self.folder = os.path.dirname(path) if isinstance(path, str) else None

    def start(
        self,
        url: str,
        prefix: str,
        queue_max: int,
        durable_max: int,
        printer_id: str,
        name: str,
    ) -> None:
        with self._lock:
            self._stop_locked()
            self.config = (url, prefix, queue_max, durable_max, printer_id, name)
            self.error = None
            if not url:
                return
            try:
                publisher = Publisher(
                    url,
                    printer_id,
                    prefix=prefix,
                    eventlog=self.eventlog,
                    queue_max=queue_max,
                    durable_max=durable_max,
                    folder=self.folder,
                    name=name,
                    version=self.version,
                    instance=self.instance,
                )
            except (ValueError, streams.StreamError) as exc:
                _logger.error("Redis publishing is off: %s", exc)
                self.error = str(exc)
                return
            self.publisher = publisher
            publisher.start()
            self.submit(self._subscribe, publisher)
            _logger.info("Publishing printer %r to Redis (prefix %r)", printer_id, prefix)

    def reconfigure(self, *config: Any) -> None:
        """A settings save (``start``'s arguments): restarts the publisher, off the
        caller's thread, if what it publishes to changed."""
        if config == self.config:
            return
        threading.Thread(
            target=self.start, args=config, name="fluxprint-redis-restart", daemon=True
        ).start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stop_locked(timeout)

    def _stop_locked(self, timeout: float = 5.0) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is None:
            return
        self.submit(self._unsubscribe)
        publisher.stop(timeout)

    # ~~ on the loop

    def _subscribe(self, publisher: Publisher) -> None:
        if self.publisher is not publisher:
            return  # stopped or replaced meanwhile
        state, sid = self.state, self.tap.sid
        self.tap.target = publisher
        if sid in state.subs:
            state.remove_client(sid)
        status = state.add_client(sid)
        # a status keyframe every KEYFRAME_S (or the status interval, if longer)
        state.subscribe(sid, S.SubscribeRequest(keyframe=streams.KEYFRAME_S))
        publisher.offer(S.EV_STATUS, status)

    def _unsubscribe(self) -> None:
        if self.publisher is not None:
            return  # restarted meanwhile: the new one subscribed
        self.tap.target = None
        self.state.remove_client(self.tap.sid)

    # ~~ introspection (any thread)

    def stats(self) -> dict:
        publisher = self.publisher
        if publisher is not None:
            return publisher.stats()
        return {**OFF_STATS, "last_error": self.error}


class PublisherCollector:
    """Prometheus metrics of the Redis publisher (read when scraped)."""

    def __init__(self, farm: Farm):
        self.farm = farm

    def collect(self) -> Iterator[Any]:
        stats = self.farm.stats()
        for name, key, doc in (
            ("published", "published", "Live entries written to Redis"),
            ("backfilled", "backfilled", "Durable events back-filled from the log"),
            ("dropped", "dropped", "Messages dropped from the full queue"),
            ("snapshot_rollbacks", "snapshot_rollbacks", "Redis found behind"),
            ("publish_cpu_seconds", "cpu_s", "CPU time of the publisher thread"),
        ):
            metric = CounterMetricFamily(f"fluxprint_redis_{name}", doc)
            metric.add_metric([], stats.get(key) or 0)
            yield metric
        for name, value, doc in (
            (
                "last_error_timestamp_seconds",
                (stats.get("last_error_at") or 0) / 1000,
                "When the publisher last failed (0: never)",
            ),
            ("queue", stats.get("queue") or 0, "Messages waiting for Redis"),
            ("up", 1 if stats["state"] == "up" else 0, "1 while Redis is connected"),
            ("lag_seconds", stats.get("lag_s") or 0.0, "Age of the oldest queued"),
        ):
            gauge = GaugeMetricFamily(f"fluxprint_redis_{name}", doc)
            gauge.add_metric([], value)
            yield gauge
