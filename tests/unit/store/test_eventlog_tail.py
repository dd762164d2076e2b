"""EventLog.read_last: the log's newest events, for the restart's reconciliation
(core/reconcile.py), read from a reopened file as the plugin does at startup."""

from __future__ import annotations

import time

from octoprint_fluxprint.store.eventlog import EventLog


def fill(path: str, seqs: list[int]) -> None:
    log = EventLog(path)
    now = time.time_ns() // 1_000_000
    for seq in seqs:
        log.append(seq, "printer:connection", {"seq": seq, "state": "connected"}, now)
    assert log.close(10)


def test_newest_rows_ascending(tmp_path):
    path = str(tmp_path / "events.db")
    fill(path, [2, 5, 9, 14, 20])
    log = EventLog(path)
    try:
        assert [r.seq for r in log.read_last(3)] == [9, 14, 20]
        assert [r.seq for r in log.read_last(100)] == [2, 5, 9, 14, 20]
        assert log.read_last(1)[0].payload == {"seq": 20, "state": "connected"}
        assert log.read_last(0) == []
    finally:
        log.close()


def test_an_empty_log(tmp_path):
    log = EventLog(str(tmp_path / "events.db"))
    try:
        assert log.read_last(256) == []
    finally:
        log.close()


def test_the_startup_read_of_a_full_log_costs_about_a_millisecond(tmp_path):
    path = str(tmp_path / "events.db")
    fill(path, list(range(1, 20_001, 2)))  # 10,000 events, the default retention
    log = EventLog(path)
    try:
        t0 = time.perf_counter()
        rows = log.read_last(256)
        took = time.perf_counter() - t0
        assert len(rows) == 256 and rows[-1].seq == 19_999
        print(f"\nread_last(256) of 10,000 events: {took * 1000:.2f} ms")
    finally:
        log.close()
