"""A cohort as the rooms' subscriber (core/rooms.py ``place``, ``joined``,
``subscriber_of``): the rooms see one subscriber for many clients, and a client
joining it gets what a new client of the same rooms would get."""

from __future__ import annotations

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.views import View

from .test_printer import current, make_hub, ns, temps


def test_a_placed_cohort_is_in_exactly_its_views_rooms():
    hub, sink, _clock = make_hub()
    view = View.initial([""]).subscribed(
        S.SubscribeRequest(channels=["status"], intervals={"temperature": 4})
    )
    view = view.unsubscribed(S.UnsubscribeRequest(channels=["jobs"]))
    ack = hub.place("C", **view.placement())
    assert ack["intervals"]["temperature"] == 4.0
    assert {r for r, members in sink.rooms.items() if "C" in members} == {
        "status@5",
        "temperature@4",
        "progress@1",
        "connection",
    }
    hub.remove_client("C")
    assert not any("C" in members for members in sink.rooms.values())


def test_joining_a_cohort_gives_a_fresh_status_and_primes_its_room():
    hub, sink, clock = make_hub()
    hub.on_current(current(), ns(clock))
    hub.place("C", **View.initial([""]).placement())
    (first,) = hub.joined("C")
    (second,) = hub.joined("C")  # the next client of the cohort
    assert first[0] == second[0] == S.EV_STATUS
    assert second[1]["seq"] > first[1]["seq"]
    sink.sent.clear()
    hub.on_current(current(), ns(clock))  # nothing new: the room does not repeat it
    sink.advance(10)
    assert sink.events(S.EV_STATUS) == []


def test_delta_cohorts_give_each_new_client_the_bases():
    hub, sink, clock = make_hub(temperature=0.0)
    hub.on_current(current(), ns(clock))
    hub.on_temperature(temps(), ns(clock))
    view = View.initial([""]).subscribed(S.SubscribeRequest(delta=True))
    hub.place("C", **view.placement())
    hub.on_temperature(temps(30.0), ns(clock))  # the room's body: its base now
    hub.subscriber_of = lambda sid: "C" if sid == "x" else sid
    joined = dict(hub.joined("C"))
    assert set(joined) == {S.EV_STATUS, S.EV_TEMPERATURE}  # progress: none yet
    assert joined[S.EV_TEMPERATURE]["tool0"]["actual"] == 30.0
    assert "delta" not in joined[S.EV_TEMPERATURE]
    # after a replay, the client of C gets C's bases again (its deltas missed)
    assert {e for e, _p in hub.after_replay("x")} == set(joined)
