"""The publisher's pure parts: the bounded queue and its drop policy, the MINID
ring and the merge of a back-fill with the queue (store/farmqueue.py)."""

from __future__ import annotations

from octoprint_fluxprint.store.farmqueue import FarmQueue, Item, MinidRing, merge

TEMP = "printer:temperature"
JOB = "printer:job_started"


class FakeClock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def msg(seq: int) -> dict:
    return {"seq": seq, "ts": seq * 10, "printer": "p1"}


def seqs(items) -> list[int]:
    return [i.seq for i in items]


def test_pops_lowest_seq_across_telemetry_and_durable():
    q = FarmQueue(10)
    for seq, event in [(1, TEMP), (2, JOB), (3, TEMP), (4, TEMP), (5, JOB)]:
        q.put(event, msg(seq))
    assert seqs(q.pop_many(10)) == [1, 2, 3, 4, 5]
    assert q.pop() is None


def test_overflow_drops_oldest_telemetry_first():
    q = FarmQueue(3)
    q.put(TEMP, msg(1))
    q.put(JOB, msg(2))
    q.put(TEMP, msg(3))
    q.put(TEMP, msg(4))  # drops 1
    q.put(TEMP, msg(5))  # drops 3
    assert len(q) == 3
    assert q.dropped == 2 and q.dropped_durable == 0
    assert not q.take_lost_durable()
    assert seqs(q.pop_many(10)) == [2, 4, 5]


def test_overflow_of_durable_only_drops_the_oldest_and_asks_for_a_backfill():
    q = FarmQueue(2)
    for seq in (1, 2, 3):
        q.put(JOB, msg(seq))
    assert seqs(q.pop_many(10)) == [2, 3]
    assert q.dropped_durable == 1
    assert q.take_lost_durable() is True
    assert q.take_lost_durable() is False


def test_push_front_keeps_order_and_the_bound():
    q = FarmQueue(4)
    for seq in (1, 2, 3, 4):
        q.put(TEMP if seq % 2 else JOB, msg(seq))
    taken = q.pop_many(2)
    q.put(TEMP, msg(5))
    q.put(TEMP, msg(6))
    q.push_front(taken)  # 6 items for 4 places: the oldest telemetry goes
    assert len(q) == 4
    assert seqs(q.pop_many(10)) == [2, 4, 5, 6]


def test_oldest_age_is_the_lag():
    clock = FakeClock(10.0)
    q = FarmQueue(5, clock)
    assert q.oldest_age(clock()) == 0.0
    q.put(TEMP, msg(1))
    clock.now = 12.5
    q.put(JOB, msg(2))
    assert q.oldest_age(13.0) == 3.0
    q.pop()
    assert q.oldest_age(13.0) == 0.5


def test_merge_orders_by_seq_and_sends_a_seq_once():
    q = FarmQueue(100)
    for seq, event in [(4, TEMP), (5, JOB), (7, TEMP), (9, JOB), (12, TEMP)]:
        q.put(event, msg(seq))
    log = [Item(s, JOB, msg(s), True, -1.0) for s in (2, 3, 5, 8, 9)]
    out = list(merge(log, q))
    assert seqs(out) == [2, 3, 4, 5, 7, 8, 9]
    # the same seq in both: the log's copy goes, once
    assert [i.at for i in out if i.seq in (5, 9)] == [-1.0, -1.0]
    # above the back-fill's end stays queued for the normal drain
    assert seqs(q.pop_many(10)) == [12]


def test_merge_of_an_empty_backfill_leaves_the_queue():
    q = FarmQueue(10)
    q.put(TEMP, msg(1))
    assert list(merge([], q)) == []
    assert len(q) == 1


def test_minid_ring_answers_the_seq_published_retention_ago():
    ring = MinidRing(retention=60.0, step=1.0)
    assert ring.minid(0.0) is None
    for t in range(0, 120):
        ring.note(float(t), t * 10)  # seq 10 per second
        ring.note(t + 0.5, t * 10 + 5)  # within the step: not sampled
    assert len(ring) == 120
    assert ring.minid(59.0) is None
    assert ring.minid(70.0) == 100  # published at t=10
    assert ring.minid(70.0) == 100  # asked again: the same, never lower
    assert ring.minid(119.0) == 590
    assert len(ring) <= 62  # bounded by retention / step


def test_a_pending_durable_event_holds_back_what_follows_until_its_commit():
    q = FarmQueue(10)
    q.put(TEMP, msg(1))
    q.put(JOB, msg(2), pending=True)
    q.put(TEMP, msg(3))
    assert q.ready()
    assert seqs(q.pop_many(10)) == [1]
    assert not q.ready() and q.pop_many(10) == [] and len(q) == 2
    assert q.wait(0.0) is False
    q.commit(1)  # below it: still waiting
    assert q.pop_many(10) == []
    q.commit(2)
    assert q.wait(0.0) is True
    assert seqs(q.pop_many(10)) == [2, 3]


def test_a_commit_before_the_put_and_telemetry_is_never_pending():
    q = FarmQueue(10)
    q.commit(5)
    q.put(JOB, msg(4), pending=True)  # committed already (the writer was quicker)
    q.put(TEMP, msg(6), pending=True)  # telemetry waits for nothing
    assert seqs(q.pop_many(10)) == [4, 6]


def test_merge_takes_pending_items_the_log_already_holds():
    q = FarmQueue(10)
    q.put(TEMP, msg(1))
    q.put(JOB, msg(2), pending=True)
    q.put(JOB, msg(5), pending=True)
    log = [Item(2, JOB, msg(2), True, -1.0), Item(3, JOB, msg(3), True, -1.0)]
    out = list(merge(log, q))
    assert seqs(out) == [1, 2, 3] and out[1].at == -1.0
    assert len(q) == 1 and not q.ready()  # 5: not in the log yet, still pending


def test_wake_ends_a_wait_with_only_pending_items():
    import threading

    q = FarmQueue(10)
    q.put(JOB, msg(1), pending=True)
    done = []
    t = threading.Thread(target=lambda: done.append(q.wait(5.0)))
    t.start()
    for _ in range(100):  # until the thread is in its wait
        q.wake()
        t.join(0.02)
        if done:
            break
    assert done == [False]
