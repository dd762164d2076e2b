"""The farm tap (plugin/farm.py): what the virtual farm subscriber receives is what
a client with the configured intervals receives, the delivery still gets every
broadcast once, and the tap's sid never reaches the delivery's rooms. Plus the
redis settings and the Prometheus collector."""

from __future__ import annotations

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.printer import PrinterState
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from octoprint_fluxprint.plugin import settings
from octoprint_fluxprint.plugin.farm import (
    OFF_STATS,
    TAP_SID,
    Farm,
    PublisherCollector,
    TapSink,
    instance_id,
)
from octoprint_fluxprint.store.publisher import Publisher
from tests.unit.core.fakes import FakeClock, FakeSink
from tests.unit.plugin.test_settings_compat import FakeSettings

INTERVALS = {"status": 5.0, "temperature": 2.0, "progress": 1.0}


class Recorder:
    def __init__(self):
        self.got: list[tuple[str, dict]] = []

    def offer(self, event: str, payload: dict, pending: bool = False) -> None:
        self.got.append((event, payload))

    def committed(self, seq: int) -> None:
        pass


def make(keyframe: float = 0.0):
    clock = FakeClock()
    inner = FakeSink(clock)
    tap = TapSink(inner)
    seq = iter(range(1, 10**6))
    state = PrinterState(tap, clock, lambda: next(seq), "p1", INTERVALS, keyframe)
    return clock, inner, tap, state


def temperature(clock, state, value: float) -> None:
    state.on_temperature({"tool0": {"actual": value, "target": 200.0}}, clock.wall_ns())


class FakeFarmPublisher(Recorder):
    pass


def subscribe_tap(state, tap) -> Recorder:
    recorder = Recorder()
    farm = Farm(state, tap, lambda fn, *a: fn(*a), None, "1.0", "inst")
    farm.publisher = recorder  # type: ignore[assignment]
    farm._subscribe(recorder)  # type: ignore[arg-type]
    return recorder


def test_tap_gets_what_a_configured_client_gets_and_the_delivery_once():
    clock, inner, tap, state = make()
    state.add_client("client-1")
    # a client that asks for the farm's keyframes shares the tap's rooms
    state.subscribe("client-1", S.SubscribeRequest(keyframe=2.0))
    recorder = subscribe_tap(state, tap)
    assert state.subs.rooms("client-1") == state.subs.rooms(TAP_SID)
    assert TAP_SID not in {sid for members in inner.rooms.values() for sid in members}
    assert tap.rooms == state.subs.rooms(TAP_SID)
    first_status = recorder.got[0]
    assert first_status[0] == S.EV_STATUS
    for step in range(20):
        temperature(clock, state, 20.0 + step)
        inner.advance(0.5)
    state.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    inner.advance(1.0)
    client = inner.delivered("client-1")
    tapped = [p for _, p in recorder.got[1:]]
    # same rooms as the client: the same broadcasts, the very same payload objects
    assert [p["seq"] for p in tapped] == [p["seq"] for p in client]
    assert all(a is b for a, b in zip(tapped, client))
    # seq strictly increasing: what the live stream needs
    seqs = [p["seq"] for _, p in recorder.got]
    assert seqs == sorted(set(seqs))
    # the durable event went to the delivery (which logs it) exactly once
    assert len(inner.events(S.EV_CONNECTION)) == 1
    assert [e for e, _ in recorder.got].count(S.EV_CONNECTION) == 1


def test_tap_gets_status_keyframes_while_the_printer_is_quiet():
    clock, inner, tap, state = make()
    recorder = subscribe_tap(state, tap)
    status_rooms = [r for r in tap.rooms if r.startswith("status")]
    assert len(status_rooms) == 1 and "/k" in status_rooms[0]
    inner.advance(30.0)
    keyframes = [p for e, p in recorder.got if e == S.EV_STATUS]
    # the keyframe is KEYFRAME_S but never below the status interval (5 s here)
    assert 5 <= len(keyframes) <= 7


def test_unsubscribed_tap_gets_nothing_and_leaves_no_rooms():
    clock, inner, tap, state = make()
    recorder = Recorder()
    farm = Farm(state, tap, lambda fn, *a: fn(*a), None, "1.0", "inst")
    farm.publisher = recorder  # type: ignore[assignment]
    farm._subscribe(recorder)  # type: ignore[arg-type]
    farm.publisher = None
    farm._unsubscribe()
    assert tap.rooms == set() and tap.target is None
    count = len(recorder.got)
    temperature(clock, state, 30.0)
    inner.advance(10.0)
    assert len(recorder.got) == count


def test_instance_id_is_stable(tmp_path):
    first = instance_id(str(tmp_path))
    assert len(first) == 32
    assert instance_id(str(tmp_path)) == first


def test_redis_settings_are_cleaned_and_read():
    reader = settings.Reader(FakeSettings({}), None)
    assert reader.redis() == ("", "fluxprint", 10000, 2000)
    cleaned = reader.clean(
        {
            "redis": {
                "url": "http://x",
                "prefix": "bad prefix",
                "queue_max": 10**9,
                "durable_max": 5,
            }
        }
    )
    assert cleaned["redis"] == {"queue_max": 1_000_000, "durable_max": 100}
    cleaned = reader.clean({"redis": {"url": " redis://h:6379/0 ", "prefix": "farm-1"}})
    assert cleaned["redis"] == {"url": "redis://h:6379/0", "prefix": "farm-1"}
    assert reader.clean({"redis": {"url": ""}})["redis"] == {"url": ""}
    assert reader.clean({"redis": "nope"})["redis"] == {}
    values = {
        "redis": {"url": "redis://h/1", "prefix": "p", "queue_max": 5, "durable_max": 500}
    }
    assert settings.Reader(FakeSettings(values), None).redis() == (
        "redis://h/1",
        "p",
        100,
        500,
    )
    assert settings.DEFAULTS["redis"] == {
        "url": "",
        "prefix": "fluxprint",
        "queue_max": 10000,
        "durable_max": 2000,
    }


def test_collector_reports_off_and_the_publisher_metrics():
    clock, inner, tap, state = make()
    farm = Farm(state, tap, lambda fn, *a: fn(*a), None, "1.0", "inst")
    assert farm.stats() == OFF_STATS
    names = {m.name: m for m in PublisherCollector(farm).collect()}
    assert set(names) >= {
        "fluxprint_redis_published",
        "fluxprint_redis_backfilled",
        "fluxprint_redis_dropped",
        "fluxprint_redis_queue",
        "fluxprint_redis_up",
        "fluxprint_redis_lag_seconds",
        "fluxprint_redis_publish_cpu_seconds",
    }
    assert names["fluxprint_redis_up"].samples[0].value == 0


def test_a_printer_id_redis_cannot_key_is_reported_not_raised():
    clock, inner, tap, state = make()
    farm = Farm(state, tap, lambda fn, *a: fn(*a), None, "1.0", "inst")
    farm.start("redis://127.0.0.1:1/0", "fluxprint", 100, 2000, "bad id!", "name")
    assert farm.publisher is None
    stats = farm.stats()
    assert stats["state"] == "off" and "printer id" in stats["last_error"]


class HeldLog:
    """An event log whose commits happen when the test says (the writer thread)."""

    def __init__(self, closed: bool = False):
        self.rows: list[tuple[int, str]] = []
        self.held: list = []
        self.closed = closed

    def append(self, seq, event, payload, ts, on_durable=None) -> bool:
        if self.closed:
            return False
        self.rows.append((seq, event))
        self.held.append(on_durable)
        return True

    def commit(self) -> None:
        held, self.held = self.held, []
        for callback in held:
            callback()


class LoggingSink(FakeSink):
    """The delivery's part the tap relies on: a durable event is appended to the
    log given (``log=``), the delivery's own otherwise, once."""

    def __init__(self, clock, log):
        super().__init__(clock)
        self.log = log
        self.released: list[int] = []

    def emit(self, event, payload, room, log=None) -> None:
        super().emit(event, payload, room)
        if event in DURABLE_EVENTS:
            seq = payload["seq"]
            (log or self.log).append(
                seq, event, payload, payload["ts"], lambda: self.released.append(seq)
            )


def committed_farm(log):
    clock = FakeClock()
    inner = LoggingSink(clock, log)
    tap = TapSink(inner)
    seq = iter(range(1, 10**6))
    state = PrinterState(tap, clock, lambda: next(seq), "p1", INTERVALS, 0.0)
    queue_owner = Publisher("redis://127.0.0.1:1/0", "p1", eventlog=log)
    farm = Farm(state, tap, lambda fn, *a: fn(*a), log, "1.0", "inst")
    farm.publisher = queue_owner
    farm._subscribe(queue_owner)
    return clock, inner, state, queue_owner.queue


def test_a_durable_event_reaches_the_publisher_only_once_committed():
    log = HeldLog()
    clock, inner, state, queue = committed_farm(log)
    assert [i.event for i in queue.pop_many(10)] == [S.EV_STATUS]
    state.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    temperature(clock, state, 21.0)  # telemetry after it waits behind it
    inner.advance(3.0)
    durable = [p["seq"] for e, p, _r, _t in inner.sent if e == S.EV_CONNECTION]
    assert len(durable) == 1 and log.rows == [(durable[0], S.EV_CONNECTION)]
    assert len(queue) >= 2 and not queue.ready()
    assert queue.pop_many(10) == [] and not queue.wait(0.01)
    log.commit()  # the writer thread: the publisher first, then the delivery's hop
    assert inner.released == durable
    out = queue.pop_many(10)
    assert out[0].event == S.EV_CONNECTION and out[0].seq == durable[0]
    assert [i.seq for i in out] == sorted(i.seq for i in out)
    assert any(i.event == S.EV_TEMPERATURE for i in out[1:])


def test_telemetry_below_a_pending_durable_event_goes_out_and_a_commit_can_come_first():
    log = HeldLog()
    clock, inner, state, queue = committed_farm(log)
    queue.pop_many(10)
    temperature(clock, state, 21.0)
    inner.advance(3.0)
    state.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    pending = log.rows[-1][0]
    before = queue.pop_many(10)
    assert before[0].event == S.EV_TEMPERATURE
    assert all(i.seq < pending and not i.durable for i in before)
    log.commit()
    assert [i.event for i in queue.pop_many(10)][0] == S.EV_CONNECTION
    # committed before the hand-over (the writer thread was quicker): ready at once
    queue.commit(10**6)
    state.on_event("Disconnected", {}, clock.wall_ns())
    assert S.EV_CONNECTION in [i.event for i in queue.pop_many(10)]


def test_a_durable_event_the_log_refused_never_reaches_the_publisher():
    log = HeldLog(closed=True)
    clock, inner, state, queue = committed_farm(log)
    queue.pop_many(10)
    state.on_event("Connected", {"port": "VIRTUAL", "baudrate": 115200}, clock.wall_ns())
    assert any(e == S.EV_CONNECTION for e, *_ in inner.sent)  # the clients' part
    assert not any(i.durable for i in queue.pop_many(10))
