"""The event log's SQLite file: its tables, opening and checking it, moving an
unusable one aside, and the one statement that prunes a seq range. No state: the
``EventLog`` keeps what these return."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Optional

_logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

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


@dataclass(frozen=True)
class Row:
    seq: int
    ts: int
    event: str
    payload: dict


class Unusable(Exception):
    pass


@dataclass(frozen=True)
class Opened:
    """What an opened file holds."""

    horizon: int
    oldest: Optional[int]
    newest: Optional[int]
    count: int


def connect(
    path: str, synchronous: str, fresh: bool, floor_seq: int
) -> tuple[sqlite3.Connection, Opened]:
    """Opens (and, unless ``fresh``, checks) the file; a new one gets ``floor_seq``
    as its horizon. Raises sqlite3.DatabaseError or Unusable."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30
    )
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            _logger.warning("Event log %s: journal mode is %s, not WAL", path, mode)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if not fresh:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise Unusable(f"integrity check failed: {check}")
        conn.executescript(_SCHEMA)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        version = meta.get("schema")
        if version is None:
            # a new file: nothing at or below the floor is known
            horizon = floor_seq
            conn.execute("BEGIN")
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
            )
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('horizon', ?)", (horizon,))
            conn.execute("COMMIT")
        elif version != SCHEMA_VERSION:
            raise Unusable(f"unknown schema version {version}")
        else:
            horizon = int(meta.get("horizon", 0))
        lo, hi, count = conn.execute(
            "SELECT MIN(seq), MAX(seq), COUNT(*) FROM events"
        ).fetchone()
    except BaseException:
        conn.close()
        raise
    return conn, Opened(horizon, lo, hi, count)


def move_aside(path: str, why: str) -> str:
    """Moves the file (with its -wal/-shm files) to ``<path>.corrupt-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = f"{path}.corrupt-{stamp}"
    n = 1
    while os.path.exists(target):
        n += 1
        target = f"{path}.corrupt-{stamp}-{n}"
    _logger.error(
        "Event log %s is unusable (%s); moved it to %s and starting a new one. "
        "Clients that saw earlier events will be asked to resync.",
        path,
        why,
        target,
    )
    for suffix in ("", "-wal", "-shm"):
        try:
            os.replace(path + suffix, target + suffix)
        except FileNotFoundError:
            pass
        except OSError:
            _logger.exception("Could not move %s aside", path + suffix)
            try:
                os.unlink(path + suffix)
            except OSError:
                pass
    return target


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(
        word in text for word in ("malformed", "not a database", "corrupt", "disk i/o")
    )


def delete_through(conn: sqlite3.Connection, cut: int) -> tuple[int, int]:
    """Inside a write transaction: drops every event at or below ``cut`` and raises
    the horizon to it. Returns (cut, rows deleted)."""
    before = conn.total_changes
    conn.execute("DELETE FROM events WHERE seq <= ?", (cut,))
    deleted = conn.total_changes - before
    conn.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'horizon'", (cut,))
    return cut, deleted


def insert(
    conn: sqlite3.Connection, rows: list[tuple], max_events: int, count: int
) -> tuple[int, int, int]:
    """One transaction: the rows (seq, ts, event, payload text) that are new, then
    the count prune. Returns (rows inserted, new horizon or 0, rows deleted)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO events (seq, ts, event, payload) VALUES (?, ?, ?, ?)",
            rows,
        )
        inserted = conn.total_changes - before
        cut = count_cut(conn, max_events, count + inserted)
        deleted = 0
        if cut is not None:
            cut, deleted = delete_through(conn, cut)
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        raise
    return inserted, cut or 0, deleted


def count_cut(conn: sqlite3.Connection, max_events: int, count: int) -> Optional[int]:
    """The seq to prune through once the table holds ``slack`` more than the limit
    (so each prune deletes a handful of rows), else None."""
    if not max_events:
        return None
    slack = max(1, min(1000, max_events // 10))
    if count < max_events + slack:
        return None
    row = conn.execute(
        "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?", (max_events,)
    ).fetchone()
    return None if row is None else row[0]


def prune_older(conn: sqlite3.Connection, cutoff_ms: int) -> tuple[Optional[int], int]:
    """One transaction: drops the events older than ``cutoff_ms`` and everything
    below them in seq. Returns (the new horizon or None, rows deleted)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        cut = conn.execute(
            "SELECT MAX(seq) FROM events WHERE ts < ?", (cutoff_ms,)
        ).fetchone()[0]
        deleted = 0
        if cut is not None:
            cut, deleted = delete_through(conn, cut)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return cut, deleted


def open_reader(path: str) -> sqlite3.Connection:
    return sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30
    )


def encode_row(seq: int, event: str, payload: dict, ts: int) -> tuple:
    """A row to insert; a payload JSON cannot hold is stored with str() values."""
    try:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(payload, separators=(",", ":"), default=str)
    return (int(seq), int(ts), event, text)


def read_rows(conn: sqlite3.Connection, seq: int, limit: int) -> list[Row]:
    """Committed events with seq > ``seq``, ascending, at most ``limit``."""
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
