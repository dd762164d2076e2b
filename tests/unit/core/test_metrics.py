from octoprint_fluxprint.core.metrics import Durations


def test_durations_are_bounded_and_windowed():
    d = Durations(keep=3)
    for i in range(5):
        d.record(i / 1000, 10, i / 2000)
    out = d.as_dict()
    assert out["broadcasts"] == 5 and out["writes"] == 50
    assert out["recent_ms"] == [2.0, 3.0, 4.0] and out["max_ms"] == 4.0
    assert out["recent_cpu_ms"] == [1.0, 1.5, 2.0] and out["total_cpu_ms"] == 5.0
