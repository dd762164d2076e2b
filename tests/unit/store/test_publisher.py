"""The farm publisher against a real redis-server: both streams, idempotent
re-sends, the live MINID trim, rollback detection and the back-fill, the thread's
life (heartbeat, offline) and a Redis that is not there."""

from __future__ import annotations

import json
import os
import time

import pytest
from redisserver import free_port

from octoprint_fluxprint.core import streams
from octoprint_fluxprint.store.eventlog import EventLog
from octoprint_fluxprint.store.farmqueue import make_item
from octoprint_fluxprint.store.publisher import Publisher

TEMP = "printer:temperature"
JOB = "printer:job_started"
CONN = "printer:connection"


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def msg(seq: int) -> dict:
    return {"seq": seq, "ts": 1_700_000_000_000 + seq, "printer": "p1"}


def ids(client, key: str) -> list[int]:
    return [streams.seq_of(i) for i, _ in client.xrange(key)]


@pytest.fixture
def eventlog(tmp_path):
    log = EventLog(os.path.join(tmp_path, "events.db"), max_age=0)
    yield log
    log.close()


def log_durable(log: EventLog, seqs) -> None:
    for seq in seqs:
        log.append(seq, JOB, msg(seq), msg(seq)["ts"])
    assert log.flush(5)


def publisher(redis_server, eventlog=None, **kwargs) -> Publisher:
    return Publisher(redis_server.url, "p1", eventlog=eventlog, **kwargs)


def test_durable_events_go_to_both_streams_and_resend_is_a_skip(redis_server, redis_db):
    pub = publisher(redis_server)
    batch = [make_item(TEMP, msg(1)), make_item(JOB, msg(2)), make_item(TEMP, msg(3))]
    pub._write(redis_db, batch)
    assert ids(redis_db, "fluxprint:p1:live") == [1, 2, 3]
    assert ids(redis_db, "fluxprint:p1:durable") == [2]
    entry = redis_db.xrange("fluxprint:p1:durable")[0]
    decoded = streams.decode(*entry)
    assert decoded.event == JOB and decoded.payload == msg(2)
    assert (pub.published, pub.skipped, pub.written_durable) == (3, 0, 2)
    pub._write(redis_db, batch)  # the same again, as after a cut
    assert ids(redis_db, "fluxprint:p1:live") == [1, 2, 3]
    assert ids(redis_db, "fluxprint:p1:durable") == [2]
    assert (pub.published, pub.skipped, pub.errors) == (3, 4, 0)


def test_live_is_trimmed_to_about_the_retention(redis_server, redis_db):
    clock = FakeClock()
    pub = publisher(redis_server, clock=clock)
    seq = 0
    for _second in range(200):
        for _ in range(5):
            seq += 1
            pub._write(redis_db, [make_item(TEMP, msg(seq))])
        clock.now += 1.0
    kept = ids(redis_db, "fluxprint:p1:live")
    assert kept[-1] == 1000
    # MINID ~ trims whole nodes: about 60 s (300 entries) kept, never less
    assert 300 <= len(kept) < 600, len(kept)


def test_durable_is_trimmed_to_the_oldest_seq_of_the_log(
    redis_server, redis_db, tmp_path
):
    log = EventLog(os.path.join(tmp_path, "small.db"), max_events=3, max_age=0)
    try:
        log_durable(log, range(1, 11))
        pub = publisher(redis_server, log)
        pub._on_connect(redis_db)  # back-fills what the log holds
        oldest = log.oldest_seq()
        assert oldest is not None and oldest >= 8
        assert ids(redis_db, "fluxprint:p1:durable")[0] >= oldest
        assert ids(redis_db, "fluxprint:p1:durable")[-1] == 10
    finally:
        log.close()


def test_connect_backfills_merged_with_the_queue_in_seq_order(
    redis_server, redis_db, eventlog
):
    log_durable(eventlog, [2, 5, 8])
    pub = publisher(redis_server, eventlog)
    for seq, event in [(3, TEMP), (5, JOB), (6, TEMP), (9, TEMP), (10, CONN)]:
        pub.offer(event, msg(seq))
    pub._on_connect(redis_db)
    # the back-fill took what the queue held below its end
    assert ids(redis_db, "fluxprint:p1:live") == [2, 3, 5, 6, 8]
    assert pub.backfilled == 3
    pub._write(redis_db, pub.queue.pop_many(10))
    assert ids(redis_db, "fluxprint:p1:live") == [2, 3, 5, 6, 8, 9, 10]
    assert ids(redis_db, "fluxprint:p1:durable") == [2, 5, 8, 10]
    registry = streams.parse_registry(redis_db.hget("fluxprint:printers", "p1"))
    assert registry["state"] == "online" and registry["id"] == "p1"
    announced = redis_db.xrange("fluxprint:announce")
    assert [f[b"id"] for _, f in announced] == [b"p1"]


def test_rollback_is_detected_and_backfilled(redis_server, redis_db, eventlog):
    log_durable(eventlog, range(1, 7))
    pub = publisher(redis_server, eventlog)
    pub._on_connect(redis_db)
    assert pub.snapshot_rollbacks == 0
    assert ids(redis_db, "fluxprint:p1:durable") == [1, 2, 3, 4, 5, 6]
    # Redis comes back from a snapshot that had only 1..3
    redis_db.flushall()
    for seq in (1, 2, 3):
        fields = streams.encode(JOB, msg(seq))
        redis_db.xadd("fluxprint:p1:live", fields, id=streams.entry_id(seq))
        redis_db.xadd("fluxprint:p1:durable", fields, id=streams.entry_id(seq))
    pub._on_connect(redis_db)
    assert pub.snapshot_rollbacks == 1
    assert pub.redis_top == 3
    assert ids(redis_db, "fluxprint:p1:durable") == [1, 2, 3, 4, 5, 6]
    assert ids(redis_db, "fluxprint:p1:live") == [1, 2, 3, 4, 5, 6]
    # a plain reconnect is no rollback
    pub._on_connect(redis_db)
    assert pub.snapshot_rollbacks == 1


def test_a_fresh_publisher_does_not_call_an_old_redis_a_rollback(
    redis_server, redis_db, eventlog
):
    log_durable(eventlog, [1, 2])
    fields = streams.encode(JOB, msg(1))
    redis_db.xadd("fluxprint:p1:durable", fields, id="1-0")
    pub = publisher(redis_server, eventlog)
    pub._on_connect(redis_db)
    assert pub.snapshot_rollbacks == 0
    assert ids(redis_db, "fluxprint:p1:durable") == [1, 2]


def test_thread_publishes_heartbeats_and_says_offline(redis_server, redis_db, eventlog):
    pub = publisher(redis_server, eventlog, heartbeat=0.1, name="Printer One")
    pub.start()
    try:
        for seq in range(1, 21):
            pub.offer(CONN if seq % 5 == 0 else TEMP, msg(seq))
        deadline = time.monotonic() + 10
        while pub.published < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pub.state == "up"
        assert ids(redis_db, "fluxprint:p1:live") == list(range(1, 21))
        assert ids(redis_db, "fluxprint:p1:durable") == [5, 10, 15, 20]
        record = json.loads(redis_db.hget("fluxprint:printers", "p1"))
        assert record["name"] == "Printer One" and record["state"] == "online"
    finally:
        assert pub.stop(5)
    record = json.loads(redis_db.hget("fluxprint:printers", "p1"))
    assert record["state"] == "offline" and record["lastSeq"] == 20
    assert pub.stats()["cpu_s"] > 0


def test_no_redis_keeps_memory_bounded_and_reports_down():
    pub = Publisher(f"redis://127.0.0.1:{free_port()}/0", "p1", queue_max=50)
    pub.start()
    try:
        for seq in range(1, 1001):
            pub.offer(JOB if seq % 100 == 0 else TEMP, msg(seq))
        deadline = time.monotonic() + 10
        while pub.state != "down" and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = pub.stats()
        assert stats["state"] == "down"
        assert stats["queue"] == 50 and stats["dropped"] == 950
        assert "ConnectionError" in stats["last_error"]
        # the durable events are the last to go
        kept = [i.seq for i in pub.queue.pop_many(100)]
        assert all(s in kept for s in range(100, 1001, 100))
    finally:
        assert pub.stop(5)


def test_a_redis_restarted_between_writes_is_checked_before_the_next_write(
    redis_server, redis_db, eventlog
):
    """redis-py would silently re-make the connection; the publisher must not write
    to a Redis it has not checked (a restored snapshot would go unnoticed)."""
    log_durable(eventlog, [1, 2, 3])
    pub = publisher(redis_server, eventlog, heartbeat=0.1)
    pub.start()
    try:
        wait = time.monotonic() + 10
        while pub.written_durable < 3 and time.monotonic() < wait:
            time.sleep(0.02)
        assert pub.connects == 1
        redis_db.client_kill_filter(_type="normal", skipme=True)
        wait = time.monotonic() + 10
        while pub.connects < 2 and time.monotonic() < wait:
            time.sleep(0.02)
        assert pub.connects == 2
        assert pub.state in ("up", "connecting")
    finally:
        pub.stop(5)


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_belief_outlives_a_restart_and_finds_a_rollback_made_while_down(
    redis_server, redis_db, eventlog, tmp_path
):
    folder = str(tmp_path / "data")
    os.makedirs(folder)
    log_durable(eventlog, range(1, 7))
    first = publisher(redis_server, eventlog, folder=folder)
    first.start()
    wait_until(lambda: first.written_durable == 6)
    assert first.stop(5)  # OctoPrint stops; the belief is on disk
    # while it is down, Redis comes back from a snapshot that had only 1..3
    redis_db.delete("fluxprint:p1:live", "fluxprint:p1:durable")
    for seq in (1, 2, 3):
        fields = streams.encode(JOB, msg(seq))
        redis_db.xadd("fluxprint:p1:durable", fields, id=streams.entry_id(seq))
    second = publisher(redis_server, eventlog, folder=folder)
    second.start()
    try:
        wait_until(lambda: second.state == "up")
        assert second.snapshot_rollbacks == 1 and second.redis_top == 3
        assert ids(redis_db, "fluxprint:p1:durable") == [1, 2, 3, 4, 5, 6]
    finally:
        assert second.stop(5)
    # a publisher without the belief (memory only) would not have known
    third = publisher(redis_server, eventlog)
    redis_db.delete("fluxprint:p1:durable")
    third._on_connect(redis_db)
    assert third.snapshot_rollbacks == 0


def test_the_belief_is_per_redis_and_never_holds_credentials(tmp_path):
    from octoprint_fluxprint.store.farmbelief import Belief, redis_key

    a = redis_key("redis://user:secret@h:6379/0", "fluxprint", "p1")
    assert "secret" not in a and "user" not in a and "h:6379" in a
    Belief(str(tmp_path), a).set(42)
    assert Belief(str(tmp_path), a).load() == 42
    assert (
        Belief(str(tmp_path), redis_key("redis://other/0", "fluxprint", "p1")).load() == 0
    )
    (tmp_path / "redis_belief.json").write_text("not json")
    assert Belief(str(tmp_path), a).load() == 0  # unreadable: nothing is assumed


def test_another_installs_streams_are_replaced_not_silently_refused(
    redis_server, redis_db, eventlog
):
    """A reinstall with a new log: its seqs start again below the old streams' tops,
    where every XADD would be refused as a duplicate."""
    for seq in range(100, 106):
        fields = streams.encode(JOB, msg(seq))
        redis_db.xadd("fluxprint:p1:live", fields, id=streams.entry_id(seq))
        redis_db.xadd("fluxprint:p1:durable", fields, id=streams.entry_id(seq))
    old = streams.registry_record("p1", "p1", "1.0", "old-install", 1, 105)
    redis_db.hset("fluxprint:printers", "p1", old)
    log_durable(eventlog, [1, 2, 3])
    pub = publisher(redis_server, eventlog, instance="new-install")
    pub._on_connect(redis_db)
    assert pub.takeovers == 1 and pub.snapshot_rollbacks == 0
    assert ids(redis_db, "fluxprint:p1:durable") == [1, 2, 3]
    assert ids(redis_db, "fluxprint:p1:live") == [1, 2, 3]
    record = streams.parse_registry(redis_db.hget("fluxprint:printers", "p1"))
    assert record["instance"] == "new-install"
    pub._write(redis_db, [make_item(TEMP, msg(4))])
    assert ids(redis_db, "fluxprint:p1:live") == [1, 2, 3, 4] and pub.skipped == 0
    # its own record on a reconnect: nothing is replaced
    pub._on_connect(redis_db)
    assert pub.takeovers == 1 and ids(redis_db, "fluxprint:p1:durable") == [1, 2, 3]


def test_the_durable_stream_has_its_own_cap_below_the_log(
    redis_server, redis_db, eventlog
):
    log_durable(eventlog, range(1, 501))
    pub = publisher(redis_server, eventlog, durable_max=100)
    pub._on_connect(redis_db)
    # the back-fill writes the newest 100 only
    assert pub.backfilled == 100
    assert ids(redis_db, "fluxprint:p1:durable") == list(range(401, 501))
    for seq in range(501, 801):
        pub._write(redis_db, [make_item(JOB, msg(seq))])
    kept = ids(redis_db, "fluxprint:p1:durable")
    # MAXLEN ~ trims whole nodes: at least the cap, never the whole log
    assert kept[-1] == 800 and 100 <= len(kept) < 300, len(kept)


def test_last_error_is_shown_only_while_the_link_is_down():
    pub = Publisher(f"redis://127.0.0.1:{free_port()}/0", "p1")
    pub._failed(ConnectionError("refused"))
    stats = pub.stats()
    assert stats["state"] == "down" and "refused" in stats["last_error"]
    at = stats["last_error_at"]
    assert isinstance(at, int) and abs(at - time.time() * 1000) < 60_000
    pub.state = "up"
    stats = pub.stats()
    assert stats["last_error"] is None and stats["last_error_at"] == at
