"""Views (core/views.py): what a client receives, as the key of its cohort."""

from __future__ import annotations

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.subscriptions import Subscriptions
from octoprint_fluxprint.core.views import View


def sub(**kw) -> S.SubscribeRequest:
    return S.parse_client_payload(S.SubscribeRequest, kw)


def test_the_same_requests_make_the_same_view_whatever_their_order():
    base = View.initial(["b", "a"])
    one = base.subscribed(sub(intervals={"temperature": 2})).subscribed(sub(batch=250))
    two = base.subscribed(sub(batch=250)).subscribed(sub(intervals={"temperature": 2}))
    assert one == two and hash(one) == hash(two)
    assert one.batch == 250 and one.requested() == {"temperature": 2.0}
    assert one != base and one.with_feeds(["a"]) != one


def test_a_profile_sets_keyframe_and_batch_and_a_request_overrides_them():
    view = View.initial(["a"], keyframe=5.0, batch=250)
    assert (view.keyframe, view.batch) == (5.0, 250)
    assert View.initial(["a"], keyframe=0, batch=None) == View.initial(["a"])
    later = view.subscribed(sub(batch=0, keyframe=0))
    assert (later.keyframe, later.batch) == (0.0, 0)
    assert later.subscribed(sub()).batch == 0  # omitted: kept


def test_views_fold_requests_as_per_client_subscriptions_do():
    """A cohort placed with a view's subscription gets the rooms a client gets
    from the same requests one by one (core/subscriptions.py)."""
    requests = [
        ("sub", sub(channels=["status"], intervals={"status": 3})),
        ("unsub", S.UnsubscribeRequest(channels=["jobs", "temperature"])),
        ("sub", sub(channels=["temperature"], delta=True, keyframe=4)),
        ("sub", sub(intervals={"progress": 2, "temperature": None})),
    ]
    configured = {"status": 1.0, "temperature": 0.5, "progress": 0.0}
    per_client = Subscriptions(configured, keyframe=7.0)
    per_client.add("c")
    view = View.initial(["a"])
    for kind, request in requests:
        if kind == "sub":
            intervals = request.intervals.model_dump() if request.intervals else None
            per_client.subscribe(
                "c", request.channels, intervals, request.delta, request.keyframe
            )
            view = view.subscribed(request)
        else:
            per_client.unsubscribe("c", request.channels)
            view = view.unsubscribed(request)
        placed = Subscriptions(configured, keyframe=7.0)
        placed.place("cohort", **view.placement())
        assert placed.rooms("cohort") == per_client.rooms("c")
        assert placed.describe("cohort") == per_client.describe("c")


def test_unsubscribing_everything_and_what_a_view_wants():
    view = View.initial(["a", "b"]).unsubscribed(S.UnsubscribeRequest(channels=["jobs"]))
    assert view.wants("a", S.EV_STATUS, S.CHANNEL_OF_EVENT)
    assert not view.wants("a", S.EV_JOB_STARTED, S.CHANNEL_OF_EVENT)
    assert not view.wants("c", S.EV_STATUS, S.CHANNEL_OF_EVENT)
    assert view.wants("a", S.EV_RESYNC, S.CHANNEL_OF_EVENT)  # no channel: kept
    assert view.unsubscribed(S.UnsubscribeRequest()).channels == frozenset()
