"""The thread hand-over: one wake-up per burst, order kept, nothing lost."""

from __future__ import annotations

import queue
import threading

from octoprint_fluxprint.core.handover import Handover


def test_one_wakeup_per_burst_and_order_kept():
    wakes: list = []
    seen: list = []
    h = Handover(wakes.append)
    for i in range(5):
        h.submit(seen.append, i)
    assert len(wakes) == 1 and len(h) == 5
    assert wakes[0]() == 5
    assert seen == [0, 1, 2, 3, 4]
    h.submit(seen.append, 5)  # after a drain the next call wakes again
    assert len(wakes) == 2
    wakes[1]()
    assert seen == [0, 1, 2, 3, 4, 5] and h.wakeups == 2


def test_a_failing_call_does_not_stop_the_rest(caplog):
    wakes: list = []
    seen: list = []
    h = Handover(wakes.append)
    h.submit(lambda: 1 / 0)
    h.submit(seen.append, "after")
    wakes[0]()
    assert seen == ["after"]
    assert "ZeroDivisionError" in caplog.text


def test_closed_loop_is_not_an_error_and_a_later_wake_is_retried():
    calls: list = []

    def wake(drain):
        calls.append(drain)
        if len(calls) == 1:
            raise RuntimeError("Event loop is closed")

    seen: list = []
    h = Handover(wake)
    h.submit(seen.append, 1)  # swallowed, nothing runs
    h.submit(seen.append, 2)  # tries again
    assert len(calls) == 2
    calls[1]()
    assert seen == [1, 2]


def test_many_producers_one_consumer_nothing_lost():
    # a real consumer thread woken through a queue, as the IOLoop is through
    # call_soon_threadsafe; producers race the drain's flag reset
    wake_q: queue.Queue = queue.Queue()
    h = Handover(wake_q.put)
    got: dict[int, list[int]] = {p: [] for p in range(4)}
    stop = object()

    def consumer():
        while True:
            drain = wake_q.get()
            if drain is stop:
                h.drain()
                return
            drain()

    t = threading.Thread(target=consumer)
    t.start()
    per = 20000

    def producer(p: int):
        for i in range(per):
            h.submit(got[p].append, i)

    threads = [threading.Thread(target=producer, args=(p,)) for p in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wake_q.put(stop)
    t.join(10)
    for p in range(4):
        assert got[p] == list(range(per)), p  # all of them, each producer in order
    assert len(h) == 0
    assert h.wakeups < 4 * per  # bursts share wake-ups
