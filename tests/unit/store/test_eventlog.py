"""The durable event log: commit before callback, batching, replay reads, retention,
restart, corruption recovery, shutdown."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest

from octoprint_fluxprint.store.eventlog import EventLog
from octoprint_fluxprint.store.seq import FileBound, FloorBound, SeqAllocator

DAY_MS = 86_400_000


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_700_000_000_000
        self.mono = 100.0

    def wall_ms(self) -> int:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


@pytest.fixture
def clocks():
    return Clocks()


@pytest.fixture
def make(tmp_path, clocks):
    logs = []

    def factory(**kw):
        kw.setdefault("wall_ms", clocks.wall_ms)
        kw.setdefault("monotonic", clocks.monotonic)
        kw.setdefault("max_age", 0)  # most tests use tiny ts values
        log = EventLog(str(tmp_path / "events.db"), **kw)
        logs.append(log)
        return log

    yield factory
    for log in logs:
        log.close()


def payload(seq: int, **extra) -> dict:
    return {"seq": seq, "ts": 1, "printer": "p", **extra}


def test_append_returns_at_once_and_calls_back_after_commit(make, tmp_path):
    log = make()
    seen = []
    gate = threading.Event()

    def cb(seq):
        def inner():
            # committed: another connection sees the row
            with sqlite3.connect(str(tmp_path / "events.db")) as c:
                rows = c.execute(
                    "SELECT seq FROM events WHERE seq = ?", (seq,)
                ).fetchall()
            seen.append((seq, rows == [(seq,)], threading.current_thread().name))
            if seq == 3:
                gate.set()

        return inner

    for seq in (1, 2, 3):
        assert log.append(seq, "printer:job_started", payload(seq), 1000 + seq, cb(seq))
    assert gate.wait(5)
    assert [s for s, _, _ in seen] == [1, 2, 3]
    assert all(ok for _, ok, _ in seen)
    assert {t for _, _, t in seen} == {"fluxprint-eventlog"}
    assert log.last_seq() == 3 and log.oldest_seq() == 1 and log.count() == 3


def test_read_since_returns_rows_in_order_with_payloads(make):
    log = make()
    for seq in (5, 7, 9, 12):
        log.append(seq, "printer:connection", payload(seq, state="connected"), seq)
    assert log.flush(5)
    rows = log.read_since(6, limit=10)
    assert [r.seq for r in rows] == [7, 9, 12]
    assert rows[0].event == "printer:connection"
    assert rows[0].payload == payload(7, state="connected")
    assert [r.seq for r in log.read_since(0, limit=2)] == [5, 7]
    assert log.read_since(12) == []


def test_commits_are_batched(make):
    log = make()
    block = threading.Event()
    log.append(1, "printer:job_started", payload(1), 1, lambda: block.wait(5))
    for seq in range(2, 102):
        log.append(seq, "printer:job_started", payload(seq), seq)
    block.set()
    assert log.flush(5)
    assert log.count() == 101
    # the first batch is seq 1 alone; the hundred queued behind it go in very few
    assert log.batches <= 3


def test_callbacks_in_order_even_when_one_raises(make):
    log = make()
    order = []

    def boom():
        order.append("boom")
        raise RuntimeError("callback failure must not stop the writer")

    log.append(1, "e", payload(1), 1, boom)
    log.append(2, "e", payload(2), 2, lambda: order.append(2))
    assert log.flush(5)
    assert order == ["boom", 2]


def test_restart_keeps_events_and_last_seq(tmp_path, clocks):
    path = str(tmp_path / "events.db")
    log = EventLog(path, wall_ms=clocks.wall_ms, max_age=0)
    for seq in (3, 4, 8):
        log.append(seq, "printer:job_complete", payload(seq), seq)
    assert log.close()
    log2 = EventLog(path, wall_ms=clocks.wall_ms, max_age=0)
    try:
        assert log2.last_seq() == 8 and log2.oldest_seq() == 3 and log2.count() == 3
        assert [r.seq for r in log2.read_since(3)] == [4, 8]
        assert log2.horizon() == 0
    finally:
        log2.close()


def test_count_retention_prunes_oldest_and_raises_horizon(make):
    log = make(max_events=10)
    for seq in range(1, 101):
        log.append(seq, "e", payload(seq), seq)
    assert log.flush(5)
    # never more than limit + slack; the newest are kept
    assert 10 <= log.count() <= 11
    rows = log.read_since(0, 100)
    assert rows[-1].seq == 100
    assert [r.seq for r in rows] == list(range(rows[0].seq, 101))
    assert log.oldest_seq() == rows[0].seq
    assert log.horizon() == rows[0].seq - 1
    assert log.pruned == 100 - log.count()


def test_count_prune_deletes_only_a_few_rows_each_time(make):
    log = make(max_events=1000)
    for seq in range(1, 1101):
        log.append(seq, "e", payload(seq), seq)
        if seq % 50 == 0:
            log.flush(5)
    assert log.flush(5)
    assert 1000 <= log.count() < 1100


def test_age_retention(make, clocks):
    log = make(max_age=30 * 86400, age_check_interval=60)
    now = clocks.wall
    log.append(1, "e", payload(1), now - 40 * DAY_MS)
    log.append(2, "e", payload(2), now - 31 * DAY_MS)
    log.append(3, "e", payload(3), now - 29 * DAY_MS)
    log.append(4, "e", payload(4), now)
    assert log.flush(5)
    # the first batch ran the age check (nothing was due before)
    assert [r.seq for r in log.read_since(0)] == [3, 4]
    assert log.horizon() == 2
    # 2 more days: seq 3 ages out, but only at the next check
    clocks.wall += 2 * DAY_MS
    log.append(5, "e", payload(5), clocks.wall)
    assert log.flush(5)
    assert log.oldest_seq() == 3
    clocks.mono += 61
    assert log.flush(5)
    assert [r.seq for r in log.read_since(0)] == [4, 5]
    assert log.horizon() == 3 and log.oldest_seq() == 4


def test_age_prune_cuts_by_seq_even_if_clock_went_back(make, clocks):
    log = make(max_age=86400, age_check_interval=0)
    now = clocks.wall
    log.append(1, "e", payload(1), now)
    log.append(2, "e", payload(2), now - 2 * DAY_MS)  # wall clock jumped back
    log.append(3, "e", payload(3), now)
    assert log.flush(5)
    # no holes: everything at or below the old event goes, horizon covers it
    assert [r.seq for r in log.read_since(0)] == [3]
    assert log.horizon() == 2


def test_horizon_survives_restart(tmp_path, clocks):
    path = str(tmp_path / "events.db")
    log = EventLog(path, max_events=3, wall_ms=clocks.wall_ms, max_age=0)
    for seq in range(1, 20):
        log.append(seq, "e", payload(seq), seq)
    log.close()
    log2 = EventLog(path, max_events=3, wall_ms=clocks.wall_ms, max_age=0)
    try:
        assert log2.horizon() >= 15
        assert log2.horizon() == log2.oldest_seq() - 1
    finally:
        log2.close()


def test_new_database_starts_at_the_floor(make):
    log = make(floor_seq=500)
    assert log.horizon() == 500 and log.last_seq() == 500 and log.oldest_seq() is None


def test_floor_only_applies_to_a_new_database(tmp_path, clocks):
    path = str(tmp_path / "events.db")
    log = EventLog(path, wall_ms=clocks.wall_ms, max_age=0)
    log.append(1, "e", payload(1), 1)
    log.close()
    log2 = EventLog(path, floor_seq=100_000, wall_ms=clocks.wall_ms, max_age=0)
    try:
        assert log2.horizon() == 0 and log2.last_seq() == 1
    finally:
        log2.close()


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_corrupt_file_is_moved_aside(tmp_path, clocks, content, caplog):
    path = tmp_path / "events.db"
    path.write_bytes(content)
    log = EventLog(str(path), floor_seq=42, wall_ms=clocks.wall_ms, max_age=0)
    try:
        assert log.moved_aside and os.path.exists(log.moved_aside[0])
        assert open(log.moved_aside[0], "rb").read() == content
        assert "unusable" in caplog.text
        assert log.horizon() == 42 and log.count() == 0
        log.append(43, "e", payload(43), 1)
        assert log.flush(5)
        assert [r.seq for r in log.read_since(0)] == [43]
    finally:
        log.close()


def test_unknown_schema_version_is_moved_aside(tmp_path, clocks):
    path = str(tmp_path / "events.db")
    log = EventLog(path, wall_ms=clocks.wall_ms, max_age=0)
    log.close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
    log2 = EventLog(path, wall_ms=clocks.wall_ms, max_age=0)
    try:
        assert len(log2.moved_aside) == 1
    finally:
        log2.close()


def test_unreadable_in_the_middle_recovers(make, tmp_path):
    log = make(floor_seq=0)
    log.append(1, "e", payload(1), 1)
    assert log.flush(5)
    # the file is clobbered under the writer (a failing SD card)
    log._conn.close()
    with open(tmp_path / "events.db", "wb") as f:
        f.write(b"garbage" * 1000)
    os.unlink(tmp_path / "events.db-wal") if os.path.exists(
        tmp_path / "events.db-wal"
    ) else None
    log._conn = sqlite3.connect(
        str(tmp_path / "events.db"), isolation_level=None, check_same_thread=False
    )
    called = []
    log.append(2, "e", payload(2), 2, lambda: called.append(2))
    assert log.flush(5)
    assert called == [2]  # the event still goes out live
    assert log.moved_aside
    # the new file knows nothing below what was appended: clients must resync
    assert log.horizon() >= 2
    log.append(3, "e", payload(3), 3)
    assert log.flush(5)
    assert [r.seq for r in log.read_since(log.horizon())] == [3]


def test_flush_and_close_write_everything(tmp_path, clocks):
    path = str(tmp_path / "events.db")
    log = EventLog(path, wall_ms=clocks.wall_ms, max_age=0)
    called = []
    for seq in range(1, 51):
        log.append(seq, "e", payload(seq), seq, lambda s=seq: called.append(s))
    assert log.close(5)
    assert called == list(range(1, 51))
    assert not log.append(51, "e", payload(51), 51)  # closed: refused
    assert log.close()  # idempotent
    assert not os.path.exists(path + "-wal") or os.path.getsize(path + "-wal") == 0
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 50


def test_wal_mode_and_reads_while_writing(make, tmp_path):
    log = make()
    with sqlite3.connect(str(tmp_path / "events.db")) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    stop = threading.Event()
    errors = []

    def reader():
        last = 0
        while not stop.is_set():
            try:
                rows = log.read_since(0, 10_000)
            except Exception as exc:  # pragma: no cover
                errors.append(exc)
                return
            seqs = [r.seq for r in rows]
            if seqs != sorted(seqs) or (seqs and seqs[-1] < last):
                errors.append(seqs)
            last = seqs[-1] if seqs else 0

    t = threading.Thread(target=reader)
    t.start()
    for seq in range(1, 500):
        log.append(seq, "e", payload(seq), seq)
    assert log.flush(10)
    stop.set()
    t.join(5)
    assert not errors


def test_out_of_order_append_is_logged(make, caplog):
    log = make()
    log.append(5, "e", payload(5), 5)
    log.append(4, "e", payload(4), 4)
    assert log.flush(5)
    assert "appended after" in caplog.text


def test_duplicate_seq_is_ignored(make, caplog):
    log = make()
    log.append(5, "e", payload(5, v=1), 5)
    log.append(5, "e", payload(5, v=2), 5)
    assert log.flush(5)
    assert [r.payload["v"] for r in log.read_since(0)] == [1]
    assert log.count() == 1


def test_floor_bound_keeps_the_allocator_above_the_log(tmp_path, clocks):
    log = EventLog(str(tmp_path / "events.db"), wall_ms=clocks.wall_ms, max_age=0)
    try:
        for seq in (10, 20):
            log.append(seq, "e", payload(seq), seq)
        assert log.flush(5)
        # seq.json lost: the allocator must not start at 1 again
        alloc = SeqAllocator(
            FloorBound(FileBound(str(tmp_path / "seq.json")), log),
            block=10,
            spawn=lambda fn: fn(),
        )
        assert alloc.next() == 21
    finally:
        log.close()


def test_payload_that_is_not_json_is_stored_as_text(make):
    log = make()
    log.append(1, "e", {"seq": 1, "odd": {1, 2}.__class__.__name__, "x": float("nan")}, 1)
    assert log.flush(5)
    assert log.count() == 1
