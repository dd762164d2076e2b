from octoprint_fluxprint.core.coalesce import Coalescer, Sample, slack


def s(body, ts=0):
    return Sample(body, ts)


def test_first_sample_goes_out_at_once():
    c = Coalescer(2.0)
    d = c.offer(s(1), now=10.0)
    assert d.send.body == 1 and d.arm_at is None


def test_samples_within_interval_are_held_newest_wins():
    c = Coalescer(2.0)
    c.offer(s(1), 10.0)
    d1 = c.offer(s(2), 10.5)
    # due at 12.0; the timer waits the slack past it for a fresher sample
    assert d1.send is None and d1.arm_at == 12.0 + slack(2.0)
    d2 = c.offer(s(3), 11.0)
    assert d2.send is None and d2.arm_at is None  # timer already armed
    fired = c.fire(12.05)
    assert fired.send.body == 3
    assert c.dropped == 1


def test_after_quiet_interval_sends_immediately():
    c = Coalescer(2.0)
    c.offer(s(1), 10.0)
    d = c.offer(s(2), 12.5)
    assert d.send.body == 2


def test_interval_zero_sends_everything():
    c = Coalescer(0)
    assert all(c.offer(s(i), 10.0).send.body == i for i in range(5))


def test_dedupe_suppresses_unchanged_but_temperature_mode_does_not():
    c = Coalescer(1.0, dedupe=True)
    c.offer(s({"a": 1}), 0.0)
    assert c.offer(s({"a": 1}), 5.0).send is None
    t = Coalescer(1.0, dedupe=False)
    t.offer(s({"a": 1}), 0.0)
    assert t.offer(s({"a": 1}), 5.0).send.body == {"a": 1}


def test_held_value_dropped_when_newest_equals_last_sent():
    c = Coalescer(2.0, dedupe=True)
    c.offer(s("A"), 0.0)
    c.offer(s("B"), 0.5)
    c.offer(s("A"), 1.0)  # back to what the client has
    assert c.fire(2.0).send is None


def test_force_sends_now_and_rearms_timer_later():
    c = Coalescer(2.0)
    c.offer(s(1), 0.0)
    assert c.offer(s(2), 0.5).arm_at == 2.05
    assert c.offer(s(3), 1.0, force=True).send.body == 3
    c.offer(s(4), 1.5)
    d = c.fire(2.05)  # the old timer: too early since the forced send at 1.0
    assert d.send is None and d.arm_at == 3.05
    assert c.fire(3.05).send.body == 4


def test_timer_firing_a_hair_early_still_sends():
    c = Coalescer(1.0)
    c.offer(s(1), 0.0)
    c.offer(s(2), 0.2)
    assert c.fire(0.9995).send.body == 2


def test_never_stale_every_last_value_is_delivered():
    c = Coalescer(1.0)
    sent = []
    timer = None
    for i in range(100):
        now = i * 0.13
        if timer is not None and timer <= now:
            d = c.fire(timer)
            timer = d.arm_at
            if d.send:
                sent.append(d.send.body)
        d = c.offer(s(i), now)
        if d.send:
            sent.append(d.send.body)
        if d.arm_at is not None:
            timer = d.arm_at
    while timer is not None:
        d = c.fire(timer)
        timer = d.arm_at
        if d.send:
            sent.append(d.send.body)
    assert sent[-1] == 99
    assert sent == sorted(sent)
