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

Imports neither octoprint nor socketio.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

_logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_MAX_EVENTS = 10_000
DEFAULT_MAX_AGE = 30 * 86400.0  # seconds

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

OnDurable = Callable[[], None]


@dataclass(frozen=True)
class Row:
    seq: int
    ts: int
    event: str
    payload: dict


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
        except (sqlite3.DatabaseError, _Unusable) as exc:
            self._move_aside(f"{type(exc).__name__}: {exc}")
            conn = self._connect_and_check(True)
        return conn

    def _connect_and_check(self, fresh: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                _logger.warning(
                    "Event log %s: journal mode is %s, not WAL", self.path, mode
                )
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if not fresh:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise _Unusable(f"integrity check failed: {check}")
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            version = meta.get("schema")
            if version is None:
                # a new file: nothing at or below the floor is known
                horizon = self.floor_seq
                conn.execute("BEGIN")
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('horizon', ?)", (horizon,)
                )
                conn.execute("COMMIT")
            elif version != SCHEMA_VERSION:
                raise _Unusable(f"unknown schema version {version}")
            else:
                horizon = int(meta.get("horizon", 0))
            lo, hi, count = conn.execute(
                "SELECT MIN(seq), MAX(seq), COUNT(*) FROM events"
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._horizon = horizon
            self._oldest = lo
            self._last = max(hi or 0, horizon)
            self._count = count
            self._last_appended = max(self._last_appended, self._last)
        return conn

    def _move_aside(self, why: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = f"{self.path}.corrupt-{stamp}"
        n = 1
        while os.path.exists(target):
            n += 1
            target = f"{self.path}.corrupt-{stamp}-{n}"
        _logger.error(
            "Event log %s is unusable (%s); moved it to %s and starting a new one. "
            "Clients that saw earlier events will be asked to resync.",
            self.path,
            why,
            target,
        )
        for suffix in ("", "-wal", "-shm"):
            try:
                os.replace(self.path + suffix, target + suffix)
            except FileNotFoundError:
                pass
            except OSError:
                _logger.exception("Could not move %s aside", self.path + suffix)
                try:
                    os.unlink(self.path + suffix)
                except OSError:
                    pass
        self.moved_aside.append(target)
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
        conn = self._reader()
        rows = conn.execute(
            "SELECT seq, ts, event, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (int(seq), int(limit)),
        ).fetchall()
        out = []
        for s, ts, event, payload in rows:
            try:
                data = json.loads(payload)
            except ValueError:
                _logger.error("Event log: undecodable payload for seq %d", s)
                continue
            out.append(Row(s, ts, event, data))
        return out

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
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=30
            )
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
        rows = []
        for seq, event, payload, ts, _cb in batch:
            try:
                text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError):
                text = json.dumps(payload, separators=(",", ":"), default=str)
            rows.append((int(seq), int(ts), event, text))
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
                if attempt == 1 and _is_corruption(exc):
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO events (seq, ts, event, payload) VALUES (?, ?, ?, ?)",
                rows,
            )
            inserted = conn.total_changes - before
            cut, deleted = self._prune_count(conn, self._count + inserted)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
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

    def _prune_count(self, conn: sqlite3.Connection, count: int) -> tuple[int, int]:
        """Inside the write transaction: drop the oldest events once the table holds
        ``slack`` more than the limit. Returns (new horizon or 0, rows deleted)."""
        if not self.max_events:
            return 0, 0
        slack = max(1, min(1000, self.max_events // 10))
        if count < self.max_events + slack:
            return 0, 0
        row = conn.execute(
            "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (self.max_events,),
        ).fetchone()
        if row is None:
            return 0, 0
        return self._delete_through(conn, row[0])

    def _delete_through(self, conn: sqlite3.Connection, cut: int) -> tuple[int, int]:
        before = conn.total_changes
        conn.execute("DELETE FROM events WHERE seq <= ?", (cut,))
        deleted = conn.total_changes - before
        conn.execute(
            "UPDATE meta SET value = MAX(value, ?) WHERE key = 'horizon'", (cut,)
        )
        return cut, deleted

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
            conn.execute("BEGIN IMMEDIATE")
            try:
                cut = conn.execute(
                    "SELECT MAX(seq) FROM events WHERE ts < ?", (cutoff,)
                ).fetchone()[0]
                deleted = 0
                if cut is not None:
                    cut, deleted = self._delete_through(conn, cut)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
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


class _Unusable(Exception):
    pass


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(
        word in text for word in ("malformed", "not a database", "corrupt", "disk i/o")
    )


class FloorBound:
    """Wraps seq.py's ``FileBound`` so the allocator never starts below what the event
    log already holds (for instance if seq.json was lost): ``load()`` returns the
    larger of the file's bound and ``log.last_seq()``."""

    def __init__(self, inner: Any, log: EventLog):
        self.inner = inner
        self.log = log

    def load(self) -> int:
        try:
            value = self.inner.load()
        except RuntimeError:
            _logger.exception("Sequence bound unreadable; continuing from the event log")
            value = 0
        return max(value, self.log.last_seq())

    def store(self, value: int) -> None:
        self.inner.store(value)


def rows_payloads(rows: Iterable[Row]) -> list[tuple[int, str, dict]]:
    """(seq, event, payload) triples, the shape the replay helper takes."""
    return [(r.seq, r.event, r.payload) for r in rows]
