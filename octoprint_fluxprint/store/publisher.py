"""The farm publisher: one dedicated thread that appends what the plugin emits for
the farm to Redis Streams (the layout is core/streams.py), with the sync redis-py
client. Never the comm, event or IOLoop thread: the loop only ``offer``s (a
non-blocking put into a bounded queue, store/farmqueue.py).

- Every message goes to ``<p>:<id>:live`` with ID ``<seq>-0``, trimmed by
  ``MINID ~`` to about ``LIVE_RETENTION_S``; durable events also go to
  ``<p>:<id>:durable`` in the same ``MULTI``/``EXEC`` (one per batch), and that
  stream is trimmed to the oldest seq the SQLite log still holds. An XADD refused
  because its ID is at or below the stream's top is an idempotent skip.
- On every (re)connect: a registry record of another install under this printer
  id (its ``instance`` differs: a reinstall with a new log, whose seqs start again)
  has its streams replaced by this one's; the durable stream's top is compared with
  what this publisher last wrote, as kept on disk (store/farmbelief.py; a lower
  top: Redis came back from an older snapshot, even while OctoPrint was down,
  counted in ``snapshot_rollbacks``), an announce entry is added, and every durable
  event of the SQLite log above that top (the newest ``durable_max``) is
  back-filled, merged by seq with what is queued, so the live stream gets strictly
  increasing seqs.
- The durable stream keeps at most about ``durable_max`` entries (``MAXLEN ~``),
  and never more than the SQLite log: Redis's memory is bounded by the farm's size,
  not by the plugin's log.
- A heartbeat (the registry record) every ``HEARTBEAT_S``; "offline" on stop.
- Reconnects with exponential backoff and jitter (core/backoff.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Callable, Optional

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..core import streams
from ..core.backoff import Backoff
from .farmbelief import Belief, redis_key
from .farmqueue import FarmQueue, Item, MinidRing, merge
from .farmregistry import Registration

_logger = logging.getLogger(__name__)

BATCH = 256  # messages per MULTI/EXEC
PAGE = 500  # rows per read of the SQLite log during a back-fill
SOCKET_TIMEOUT = 3.0
DUPLICATE = "equal or smaller than the target stream top item"


def is_duplicate(exc: BaseException) -> bool:
    """An XADD refused because its ID is at or below the stream's top."""
    return isinstance(exc, redis.ResponseError) and DUPLICATE in str(exc)


class Publisher:
    def __init__(
        self,
        url: str,
        printer_id: str,
        prefix: str = streams.DEFAULT_PREFIX,
        eventlog: Any = None,
        queue_max: int = 10_000,
        name: str = "",
        version: str = "",
        instance: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        heartbeat: float = streams.HEARTBEAT_S,
        backoff: Optional[Backoff] = None,
        durable_max: int = streams.DURABLE_MAX,
        folder: Optional[str] = None,
    ):
        self.url = url
        self.printer_id = streams.check_printer_id(printer_id)
        self.prefix = prefix
        self.eventlog = eventlog
        self.name = name or printer_id
        self.version = version
        self.instance = instance
        self.clock = clock
        self.wall_ms = wall_ms
        self.heartbeat_s = heartbeat
        # Redis back: this plugin's durable events flow within RECONNECT_CAP_S
        self.backoff = backoff or Backoff(base=0.25, cap=streams.RECONNECT_CAP_S)
        self.durable_max = max(1, int(durable_max))
        self.belief = Belief(folder, redis_key(url, prefix, self.printer_id), clock=clock)
        self.registration = Registration(
            prefix, self.printer_id, self.name, version, instance, eventlog, wall_ms
        )
        self.queue = FarmQueue(queue_max, clock)
        self.ring = MinidRing()
        self.live = streams.live_key(prefix, printer_id)
        self.durable = streams.durable_key(prefix, printer_id)
        self.state = "off"
        self.last_error: Optional[str] = None  # shown while the link is not up
        self.last_error_at: Optional[int] = None  # epoch ms, kept
        self.published = 0  # live entries written
        self.backfilled = 0  # durable events written from the SQLite log
        self.skipped = 0  # refused as at or below the top: already there
        self.errors = 0
        self.connects = 0
        self.snapshot_rollbacks = 0
        self.takeovers = 0  # another install's streams replaced
        self.redis_top: Optional[int] = None  # the durable top read at the connect
        self.written_durable = 0  # what we believe the durable stream's top is
        self.last_seq = 0  # the highest seq written to live
        self.cpu_seconds = 0.0  # this thread's CPU time (time.thread_time)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._client: Optional[redis.Redis] = None

    # ~~ any thread

    def offer(self, event: str, payload: dict, pending: bool = False) -> None:
        """The loop's hand-over: O(1), never blocks, never raises on a full queue.
        ``pending``: a durable event that goes out once the log committed it."""
        self.queue.put(event, payload, pending)

    def committed(self, seq: int) -> None:
        """The log committed ``seq`` (its writer thread): O(1), never blocks long."""
        self.queue.commit(seq)

    def start(self) -> None:
        self.state = "connecting"
        self._thread = threading.Thread(
            target=self._run, name="fluxprint-redis", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Says "offline" (best effort) and stops the thread; False if it did not
        finish within ``timeout``."""
        self._stop.set()
        self.queue.wake()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                _logger.warning("Redis publisher did not stop within %.1fs", timeout)
                return False
        self.state = "off"
        return True

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict:
        return {
            "state": self.state,
            "published": self.published,
            "backfilled": self.backfilled,
            "dropped": self.queue.dropped,
            "queue": len(self.queue),
            "redis_top": self.redis_top,
            "last_error": None if self.state == "up" else self.last_error,
            "last_error_at": self.last_error_at,
            "errors": self.errors,
            "snapshot_rollbacks": self.snapshot_rollbacks,
            "takeovers": self.takeovers,
            "skipped": self.skipped,
            "connects": self.connects,
            "last_seq": self.last_seq,
            "lag_s": round(self.queue.oldest_age(self.clock()), 3),
            "cpu_s": round(self.cpu_seconds, 4),
        }

    # ~~ the thread

    def _run(self) -> None:
        self.written_durable = max(self.written_durable, self.belief.load())
        try:
            self._loop()
        finally:
            self.belief.maybe_save(force=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.state != "down":
                self.state = "connecting"  # while down, it stays down until up
            up_at: Optional[float] = None
            client = self._new_client()
            self._client = client
            try:
                client.ping()
                self._on_connect(client)
                self.state = "up"
                up_at = self.clock()
                self._drain(client)
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
            finally:
                self._measure()
            if self._stop.is_set():
                if self.state == "up":
                    self._goodbye(client)
                client.close()
                break
            client.close()
            if up_at is not None:
                self.backoff.connected_for(self.clock() - up_at)
            self._stop.wait(self.backoff.next_delay())
        self._client = None

    def _new_client(self) -> redis.Redis:
        """A client with one connection and no silent reconnect: redis-py would
        retry, or re-make a dropped connection on the next command, and write to a
        Redis that came back (perhaps from an older snapshot) before it is checked.
        Here a second connect fails, and the loop starts over with ``_on_connect``."""
        made = [False]

        def on_connect(connection: Any) -> None:
            if made[0]:
                raise redis.ConnectionError("connection re-made: check Redis first")
            connection.on_connect()
            made[0] = True

        return redis.Redis.from_url(
            self.url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            redis_connect_func=on_connect,
        )

    def _failed(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if self.state != "down" or text != self.last_error:
            _logger.warning("Redis publisher: %s", text)
        self.state = "down"
        self._error(text)

    def _error(self, text: str) -> None:
        self.last_error = text
        self.last_error_at = self.wall_ms()

    def _measure(self) -> None:
        self.cpu_seconds = time.thread_time()

    def _on_connect(self, client: redis.Redis) -> None:
        self.connects += 1
        top = self.registration.durable_top(client)
        if self.registration.foreign(client, top):
            self.registration.take_over(client)
            self.takeovers += 1
            self.written_durable = self.last_seq = top = 0
            self.ring = MinidRing()
        self.redis_top = top
        if self.written_durable and top < self.written_durable:
            self.snapshot_rollbacks += 1
            _logger.warning(
                "Redis's durable stream %s ends at seq %d, below the %d this plugin"
                " wrote: it came back from an older snapshot; back-filling",
                self.durable,
                top,
                self.written_durable,
            )
        self.written_durable = top
        self.belief.set(top)
        self.registration.announce(client)
        self._heartbeat(client)
        self._backfill(client, top)

    def _drain(self, client: redis.Redis) -> None:
        next_beat = self.clock() + self.heartbeat_s
        while not self._stop.is_set():
            now = self.clock()
            if now >= next_beat:
                self._heartbeat(client)
                next_beat = now + self.heartbeat_s
            if self.queue.take_lost_durable():
                self._backfill(client, self.written_durable, flush=True)
            if self.queue.wait(max(0.0, next_beat - self.clock())):
                self._write(client, self.queue.pop_many(BATCH))
            self._measure()
        # stopping: what is queued goes out first (one batch: bounded time)
        self._write(client, self.queue.pop_many(BATCH))

    def _backfill(self, client: redis.Redis, after: int, flush: bool = False) -> None:
        """Every durable event of the log above ``after``, merged with the queue."""
        if self.eventlog is None:
            return
        if flush:
            self.eventlog.flush(2.0)  # a dropped event may not be committed yet
        batch: list[Item] = []
        for item in merge(self._log_items(after), self.queue):
            batch.append(item)
            if len(batch) >= BATCH:
                self._write(client, batch)
                batch = []
        self._write(client, batch)

    def _log_items(self, after: int) -> Iterator[Item]:
        """The log's durable events above ``after``: the newest ``durable_max`` (the
        durable stream keeps no more)."""
        newest: deque = deque(maxlen=self.durable_max)
        cursor = after
        while not self._stop.is_set():
            rows = self.eventlog.read_since(cursor, PAGE)
            newest.extend(rows)
            if len(rows) < PAGE:
                break
            cursor = rows[-1].seq
        for row in newest:
            # at = -1: from the log (counted as back-filled once written)
            yield Item(row.seq, row.event, row.payload, True, -1.0)

    def _write(self, client: redis.Redis, batch: list[Item]) -> None:
        if not batch:
            return
        now = self.clock()
        minid = self.ring.minid(now)
        pipe = client.pipeline(transaction=True)
        commands: list[tuple[Item, bool]] = []  # (item, is the durable stream)
        for item in batch:
            fields = streams.encode(item.event, item.payload)
            entry = streams.entry_id(item.seq)
            if minid is not None:
                pipe.xadd(self.live, fields, id=entry, minid=minid, approximate=True)
            else:
                pipe.xadd(self.live, fields, id=entry)
            commands.append((item, False))
            if item.durable:
                pipe.xadd(
                    self.durable,
                    fields,
                    id=entry,
                    maxlen=self.durable_max,
                    approximate=True,
                )
                commands.append((item, True))
        oldest = self.eventlog.oldest_seq() if self.eventlog is not None else None
        if oldest and any(item.durable for item in batch):
            pipe.xtrim(self.durable, minid=streams.entry_id(oldest), approximate=False)
        try:
            results = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            # written or not, unknown: re-sent after the reconnect (idempotent)
            self.queue.push_front([i for i in batch if i.at >= 0])
            raise
        for (item, durable), result in zip(commands, results):
            if isinstance(result, Exception):
                if is_duplicate(result):
                    self.skipped += 1
                else:
                    self.errors += 1
                    self._error(f"{type(result).__name__}: {result}")
                    _logger.error("Redis publisher: XADD %d: %s", item.seq, result)
                    continue
            elif durable:
                if item.at < 0:
                    self.backfilled += 1
            else:
                self.published += 1
            if durable:
                self.written_durable = max(self.written_durable, item.seq)
            else:
                self.last_seq = max(self.last_seq, item.seq)
        if self.last_seq:
            self.ring.note(now, self.last_seq)
        self.belief.set(self.written_durable)

    def _heartbeat(self, client: redis.Redis, state: str = "online") -> None:
        self.registration.heartbeat(client, self.last_seq, state)

    def _goodbye(self, client: redis.Redis) -> None:
        try:
            self._heartbeat(client, "offline")
        except (redis.RedisError, OSError) as exc:
            _logger.info("Redis publisher: could not say offline: %s", exc)
