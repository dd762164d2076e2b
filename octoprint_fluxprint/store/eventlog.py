"""The durable event log: job and connection events, in SQLite, written by one
dedicated thread before they are emitted.

Designed for the hub on the IOLoop: ``append`` only puts the event on a queue and
returns; the writer thread commits in batches (one transaction for whatever queued up
meanwhile) and then calls each event's ``on_durable`` callback, in seq order, from the
writer thread (hop back to the loop from there). Nothing here ever runs on OctoPrint's
comm or event threads, and nothing blocks the loop on a slow SD card.

Retention is bounded by count and by age. Pruning deletes a seq range through the
primary key (``DELETE ... WHERE seq <= ?``): it runs when the table holds a few events
more than the limit (so each prune deletes a handful of rows) and, for age, at most
once per ``age_check_interval``. The highest seq ever pruned, the *horizon*, is kept
in the same transaction; a client that last saw a seq below it may have missed events
and must resync.

Reads (``read_since``) use their own read-only connection per thread (WAL mode lets
them run next to the writer); call them in an executor, never on the loop.
``oldest_seq``/``last_seq``/``horizon`` are in-memory and O(1).

A database that cannot be opened or fails its integrity check is moved aside (with
its -wal/-shm files) and a fresh one is started; the horizon of the fresh one is the
``floor_seq`` given (the seq allocator's bound at startup), so clients that saw events
from before are told to resync.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from typing import Callable, Optional

from . import eventfile
from .eventfile import Row

_logger = logging.getLogger(__name__)

DEFAULT_MAX_EVENTS = 10_000
DEFAULT_MAX_AGE = 30 * 86400.0  # seconds

OnDurable = Callable[[], None]


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class EventLog:
    """SQLite-backed log of durable events with a dedicated writer thread.

    :param path: the database file (created, with its folder, if missing)
    :param max_events: keep at most this many events (0: no count limit)
    :param max_age: keep events younger than this many seconds, by their ``ts``
        (0: no age limit)
    :param floor_seq: the horizon of a *new* database: no event at or below it is
        known (pass the seq allocator's bound at startup)
    :param wall_ms: clock for age pruning (epoch ms), injectable for tests
    :param monotonic: clock for the age-check cadence, injectable for tests
    :param batch_max: at most this many events per transaction
    :param age_check_interval: seconds between age prunes
    :param synchronous: SQLite ``synchronous`` pragma; FULL survives power loss
    """

    def __init__(
        self,
        path: str,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_age: float = DEFAULT_MAX_AGE,
        floor_seq: int = 0,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        monotonic: Callable[[], float] = time.monotonic,
        batch_max: int = 256,
        age_check_interval: float = 3600.0,
        synchronous: str = "FULL",
    ):
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("synchronous must be OFF, NORMAL, FULL or EXTRA")
        self.path = os.path.abspath(path)
        self.max_events = max(0, int(max_events))
        self.max_age = max(0.0, float(max_age))
        self.floor_seq = max(0, int(floor_seq))
        self._wall_ms = wall_ms
        self._monotonic = monotonic
        self.batch_max = max(1, int(batch_max))
        self.age_check_interval = age_check_interval
        self._synchronous = synchronous

        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()  # guards the cached numbers below
        self._last = 0  # highest committed seq
        self._oldest: Optional[int] = None  # lowest retained seq
        self._count = 0  # retained rows
        self._horizon = 0  # highest seq pruned (or unknown)
        self._last_appended = 0  # highest seq handed to append (caller's thread)
        self._closed = False
        self._generation = 0  # bumped when the file is replaced
        self._local = threading.local()
        self._next_age_check = 0.0
        # counters
        self.written = 0
        self.pruned = 0
        self.failures = 0
        self.batches = 0
        self.moved_aside: list[str] = []

        self._conn = self._open()
        self._thread = threading.Thread(
            target=self._run, name="fluxprint-eventlog", daemon=True
        )
        self._thread.start()

    # ~~ opening

    def _open(self) -> sqlite3.Connection:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fresh = not os.path.exists(self.path)
        try:
            conn = self._connect_and_check(fresh)
        except (sqlite3.DatabaseError, eventfile.Unusable) as exc:
            self._move_aside(f"{type(exc).__name__}: {exc}")
            conn = self._connect_and_check(True)
        return conn

    def _connect_and_check(self, fresh: bool) -> sqlite3.Connection:
        conn, opened = eventfile.connect(
            self.path, self._synchronous, fresh, self.floor_seq
        )
        with self._lock:
            self._horizon = opened.horizon
            self._oldest = opened.oldest
            self._last = max(opened.newest or 0, opened.horizon)
            self._count = opened.count
            self._last_appended = max(self._last_appended, self._last)
        return conn

    def _move_aside(self, why: str) -> None:
        self.moved_aside.append(eventfile.move_aside(self.path, why))
        with self._lock:
            self._generation += 1
            # whatever the old file held is gone: anything up to what we knew is lost
            self.floor_seq = max(self.floor_seq, self._last, self._last_appended)

    # ~~ API (any thread; append is meant for the loop)

    def append(
        self,
        seq: int,
        event: str,
        payload: dict,
        ts: int,
        on_durable: Optional[OnDurable] = None,
    ) -> bool:
        """Queues one event; returns at once. ``on_durable()`` runs on the writer
        thread after the commit (or after a write failed: the event must still go out
        live). Seqs must be appended in increasing order; do not mutate ``payload``
        afterwards. Returns False (and does not call back) once closed."""
        if self._closed:
            _logger.warning("Event log closed: %s #%d not logged", event, seq)
            return False
        if seq <= self._last_appended:
            _logger.error(
                "Event log: seq %d appended after %d; replay order may be wrong",
                seq,
                self._last_appended,
            )
        else:
            self._last_appended = seq
        self._queue.put((seq, event, payload, ts, on_durable))
        return True

    def read_since(self, seq: int, limit: int = 1000) -> list[Row]:
        """Committed events with seq > ``seq``, ascending, at most ``limit``. Blocks on
        the disk: call it off the loop (e.g. in an executor)."""
        return eventfile.read_rows(self._reader(), seq, limit)

    def read_last(self, limit: int) -> list[Row]:
        """The newest ``limit`` committed events, ascending (one read through the
        primary key). Blocks on the disk: call it off a running loop."""
        conn = self._reader()
        row = conn.execute(
            "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (max(0, int(limit) - 1),),
        ).fetchone()
        return eventfile.read_rows(conn, row[0] - 1 if row else -1, limit)

    def oldest_seq(self) -> Optional[int]:
        """The lowest retained seq (None when the log is empty)."""
        with self._lock:
            return self._oldest

    def last_seq(self) -> int:
        """The highest committed seq (at least the horizon)."""
        with self._lock:
            return self._last

    def horizon(self) -> int:
        """Events with seq <= this may be gone (pruned or lost): a client that last
        saw a seq below it must resync."""
        with self._lock:
            return self._horizon

    def count(self) -> int:
        with self._lock:
            return self._count

    def pending(self) -> int:
        return self._queue.qsize()

    def stats(self) -> dict:
        with self._lock:
            return {
                "path": self.path,
                "count": self._count,
                "oldest": self._oldest,
                "last": self._last,
                "horizon": self._horizon,
                "pending": self._queue.qsize(),
                "written": self.written,
                "pruned": self.pruned,
                "failures": self.failures,
                "batches": self.batches,
            }

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until everything appended so far is committed and called back."""
        if not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Flushes, stops the writer and closes the database. Idempotent. Returns
        False if the writer did not finish within ``timeout``."""
        if self._closed:
            return True
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        finished = not self._thread.is_alive()
        if finished:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                _logger.debug("checkpoint failed", exc_info=True)
            self._conn.close()
        else:
            _logger.error("Event log writer did not stop within %.1fs", timeout)
        reader = getattr(self._local, "conn", None)
        if reader is not None:
            reader.close()
            self._local.conn = None
        return finished

    # ~~ reading

    def _reader(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and getattr(local, "generation", -1) != self._generation:
            conn.close()
            conn = None
        if conn is None:
            conn = eventfile.open_reader(self.path)
            local.conn = conn
            local.generation = self._generation
        return conn

    # ~~ the writer thread

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: list[tuple] = []
            markers: list[_Flush] = []
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Flush):
                    markers.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= self.batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            self._maybe_prune_age()
            for marker in markers:
                marker.done.set()
        # anything that raced in behind the stop still gets written
        rest = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Flush):
                item.done.set()
            elif item is not _STOP:
                rest.append(item)
        if rest:
            self._write(rest)

    def _write(self, batch: list[tuple]) -> None:
        rows = [
            eventfile.encode_row(seq, event, payload, ts)
            for seq, event, payload, ts, _cb in batch
        ]
        ok = False
        for attempt in (1, 2):
            try:
                self._insert(rows)
                ok = True
                break
            except sqlite3.DatabaseError as exc:
                _logger.error(
                    "Event log: writing %d events failed (attempt %d): %s",
                    len(rows),
                    attempt,
                    exc,
                )
                if attempt == 1 and eventfile.is_corruption(exc):
                    self._recover(str(exc))
        if not ok:
            self.failures += len(rows)
        for item in batch:
            callback = item[4]
            if callback is None:
                continue
            try:
                callback()
            except Exception:
                _logger.exception("Event log: on_durable callback failed")

    def _insert(self, rows: list[tuple]) -> None:
        conn = self._conn
        inserted, cut, deleted = eventfile.insert(
            conn, rows, self.max_events, self._count
        )
        self.batches += 1
        self.written += inserted
        if inserted != len(rows):
            _logger.error(
                "Event log: %d of %d events had a seq already logged",
                len(rows) - inserted,
                len(rows),
            )
        with self._lock:
            self._count += inserted - deleted
            self._last = max(self._last, max(r[0] for r in rows))
            if cut:
                self._horizon = max(self._horizon, cut)
                self.pruned += deleted
            self._refresh_oldest(conn)

    def _refresh_oldest(self, conn: sqlite3.Connection) -> None:
        # caller holds self._lock; MIN over the primary key is one b-tree step
        self._oldest = conn.execute("SELECT MIN(seq) FROM events").fetchone()[0]

    def _maybe_prune_age(self) -> None:
        if not self.max_age:
            return
        now = self._monotonic()
        if now < self._next_age_check:
            return
        self._next_age_check = now + self.age_check_interval
        self._prune_age()

    def _prune_age(self) -> int:
        """Drops events older than ``max_age`` (and everything below them in seq).
        Writer thread only. Returns rows deleted."""
        if not self.max_age:
            return 0
        cutoff = self._wall_ms() - int(self.max_age * 1000)
        conn = self._conn
        try:
            cut, deleted = eventfile.prune_older(conn, cutoff)
        except sqlite3.Error as exc:
            _logger.error("Event log: pruning by age failed: %s", exc)
            return 0
        if deleted or cut is not None:
            with self._lock:
                self._count -= deleted
                self._horizon = max(self._horizon, cut)
                self.pruned += deleted
                self._refresh_oldest(conn)
        return deleted

    def _recover(self, why: str) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
        self._move_aside(why)
        try:
            self._conn = self._connect_and_check(True)
        except sqlite3.Error:
            _logger.exception("Event log: could not start a new database")
