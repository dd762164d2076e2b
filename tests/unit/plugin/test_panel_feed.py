"""octoprint_fluxprint.panel: the live view's pure logic, with an injected clock."""

from __future__ import annotations

from octoprint_fluxprint.plugin import panel

CONNECTED = {"state": "connected"}


def tick(feed, now, emitted=0, table=(), last_temp=None, now_ms=None):
    return feed.tick(
        now,
        now_ms if now_ms is not None else int(now * 1000),
        list(table),
        emitted,
        last_temp,
        CONNECTED,
    )


def test_nothing_is_pushed_while_nobody_has_the_panel_open():
    feed = panel.PanelFeed()
    assert tick(feed, 0.0) is None
    assert tick(feed, 5.0) is None


def test_at_most_one_push_a_second():
    feed = panel.PanelFeed()
    feed.open("a", 0.0)
    pushed = [t / 10 for t in range(0, 35) if tick(feed, t / 10) is not None]
    assert pushed == [0.0, 1.0, 2.0, 3.0]


def test_two_viewers_do_not_double_the_rate():
    feed = panel.PanelFeed()
    feed.open("a", 0.0)
    assert tick(feed, 0.0) is not None
    feed.open("b", 0.2)
    assert tick(feed, 0.2) is None
    assert tick(feed, 1.0) is not None


def test_close_stops_pushes_only_when_the_last_viewer_leaves():
    feed = panel.PanelFeed()
    feed.open("a", 0.0)
    feed.open("b", 0.0)
    feed.close("a", 0.5)
    assert feed.active(0.5)
    assert tick(feed, 1.0) is not None
    feed.close("b", 1.5)
    assert not feed.active(1.5)
    assert tick(feed, 3.0) is None


def test_a_viewer_that_vanishes_expires_after_the_lease():
    feed = panel.PanelFeed(lease=30.0)
    feed.open("a", 0.0)
    assert feed.active(29.9)
    assert not feed.active(30.0)
    assert tick(feed, 31.0) is None
    # renewing keeps it open
    feed.open("b", 40.0)
    feed.open("b", 65.0)
    assert feed.active(90.0)
    assert not feed.active(95.0)


def test_viewer_tokens_are_bounded_and_validated():
    viewers = panel.Viewers()
    for i in range(panel.MAX_VIEWERS + 10):
        viewers.open(f"t{i}", i / 100)
    assert len(viewers) == panel.MAX_VIEWERS
    assert panel.valid_token("abc-DEF_123") == "abc-DEF_123"
    for bad in (None, "", " ", "a" * 65, "a b", "<x>", 5, {"a": 1}):
        assert panel.valid_token(bad) is None


def test_payload_rows_and_health():
    feed = panel.PanelFeed()
    feed.open("a", 0.0)
    table = [
        {
            "id": "late",
            "user": "bob",
            "remote": "10.0.0.2",
            "transport": "polling",
            "since": 200.0,
            "messages": 3,
            "channels": ["status", "jobs"],
            "intervals": {"status": 5.0},
        },
        {
            "id": "early",
            "user": "admin",
            "remote": "10.0.0.1",
            "transport": "websocket",
            "since": 100.0,
            "messages": 9,
        },
    ]
    message = tick(feed, 0.0, table=table, last_temp=7_000, now_ms=10_000)
    assert message["type"] == "panel"
    assert [r["id"] for r in message["clients"]] == ["early", "late"]
    assert message["clients"][0]["channels"] == []
    assert message["clients"][1] == {
        "id": "late",
        "user": "bob",
        "remote": "10.0.0.2",
        "transport": "polling",
        "since": 200.0,
        "messages": 3,
        "channels": ["status", "jobs"],
        "intervals": {"status": 5.0},
    }
    assert message["health"] == {
        "last_temperature_age": 3.0,
        "printer_connected": True,
        "connection": "connected",
        "events_per_second": 0.0,
    }
    none_yet = panel.health(None, {"state": "disconnected"}, 0.0, 1)
    assert none_yet["last_temperature_age"] is None
    assert none_yet["printer_connected"] is False


def test_events_per_second_over_a_sliding_window():
    feed = panel.PanelFeed()
    feed.open("a", 0.0)
    rates = []
    for second in range(0, 12):
        message = tick(feed, float(second), emitted=second * 4)
        rates.append(message["health"]["events_per_second"])
    assert rates[0] == 0.0
    assert all(rate == 4.0 for rate in rates[1:])
    # a reset counter (plugin reloaded) starts over instead of going negative
    message = tick(feed, 12.0, emitted=2)
    assert message["health"]["events_per_second"] == 0.0
    assert tick(feed, 13.0, emitted=6)["health"]["events_per_second"] == 4.0
