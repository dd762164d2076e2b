from octoprint_fluxprint.core.logthrottle import LogThrottle


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_key_and_window_then_the_count_held_back():
    clock = Clock()
    t = LogThrottle(60, clock)
    assert t.check(("1.2.3.4", "bad key")) == 0
    assert [t.check(("1.2.3.4", "bad key")) for _ in range(5)] == [None] * 5
    assert t.check(("1.2.3.4", "origin")) == 0  # another reason is another key
    assert t.check(("5.6.7.8", "bad key")) == 0
    clock.now = 59.9
    assert t.check(("1.2.3.4", "bad key")) is None
    clock.now = 60.0
    assert t.check(("1.2.3.4", "bad key")) == 6
    assert t.check(("1.2.3.4", "bad key")) is None


def test_the_table_is_bounded():
    clock = Clock()
    t = LogThrottle(60, clock, max_keys=100)
    for i in range(10_000):
        clock.now = i * 0.001
        assert t.check((f"10.0.0.{i}", "x")) == 0
    assert len(t) <= 100
    clock.now = 1000.0  # old entries are pruned first
    for i in range(50):
        t.check(("late", i))
    assert len(t) <= 100 and t.check(("late", 0)) is None
