from octoprint_fluxprint.core.subscriptions import Subscriptions, room_name


def test_rooms_follow_effective_intervals():
    subs = Subscriptions({"status": 5, "temperature": 2, "progress": 1})
    assert subs.add("a") == {
        "status@5",
        "temperature@2",
        "progress@1",
        "jobs",
        "connection",
    }
    subs.subscribe("a", ["temperature"], {"temperature": 0.5, "progress": 10})
    assert subs.describe("a")["intervals"] == {
        "status": 5,
        "temperature": 2,
        "progress": 10,
    }
    rooms = subs.set_configured({"status": 5, "temperature": 3, "progress": 20})
    assert rooms["a"] >= {"temperature@3", "progress@20"}
    assert subs.unsubscribe("a", ["status", "jobs"]) == {
        "temperature@3",
        "progress@20",
        "connection",
    }
    assert subs.unsubscribe("a", None) == set()
    assert subs.remove("a") == set() and "a" not in subs


def test_room_names():
    assert room_name("jobs") == "jobs"
    assert room_name("temperature", 0.5) == "temperature@0.5"
    assert room_name("status", 5.0) == "status@5"
