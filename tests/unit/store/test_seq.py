import json
import threading

import pytest

from octoprint_fluxprint.store.seq import FileBound, SeqAllocator


def inline(fn):
    fn()


def test_numbers_increase_and_survive_restart(tmp_path):
    store = FileBound(str(tmp_path / "seq.json"))
    a = SeqAllocator(store, block=10, spawn=inline)
    first = [a.next() for _ in range(25)]
    assert first == list(range(1, 26))
    b = SeqAllocator(store, block=10, spawn=inline)  # a restart, even after a crash
    assert b.next() > first[-1]


def test_bound_is_persisted_before_numbers_are_used(tmp_path):
    store = FileBound(str(tmp_path / "seq.json"))
    a = SeqAllocator(store, block=100, spawn=inline)
    for _ in range(180):
        n = a.next()
        assert store.load() >= n


def test_background_reservation_does_not_block_and_inline_fallback(tmp_path):
    store = FileBound(str(tmp_path / "seq.json"))
    pending = []
    a = SeqAllocator(store, block=4, spawn=pending.append)  # reservations never run
    values = [a.next() for _ in range(20)]
    assert values == list(range(1, 21))
    assert store.load() >= 20  # the inline fallback persisted
    for job in pending:  # late reservations must never lower the bound
        job()
    assert store.load() >= 20


def test_threads_never_share_a_number(tmp_path):
    a = SeqAllocator(FileBound(str(tmp_path / "seq.json")), block=50)
    out = []
    lock = threading.Lock()

    def work():
        got = [a.next() for _ in range(500)]
        with lock:
            out.extend(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(out)) == 2000


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "seq.json"
    path.write_text("{not json")
    with pytest.raises(RuntimeError, match="unreadable"):
        SeqAllocator(FileBound(str(path)))
    path.write_text(json.dumps({"reserved": -3}))
    with pytest.raises(RuntimeError, match="no valid bound"):
        SeqAllocator(FileBound(str(path)))
