"""Property-based tests (hypothesis) of the client payload validator
(schema.parse_client_payload with SubscribeRequest / UnsubscribeRequest) and of the
wire checks in front of it: any JSON a client can send is either accepted as a
well-typed request or refused with a short ClientError, never anything else."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.server import wire

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
channel_names = st.sampled_from(list(S.CHANNELS)) | st.text(max_size=12)
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "channels": st.lists(channel_names, max_size=8) | json_values,
        "intervals": st.dictionaries(
            st.sampled_from(["status", "temperature", "progress", "bogus"]),
            st.floats() | st.integers(-10, 10**6) | st.text(max_size=5) | st.none(),
            max_size=4,
        )
        | json_values,
        "since": json_values,
        "history": json_values,
        "extra": json_values,
    },
)


def check(model, payload):
    try:
        request = S.parse_client_payload(model, payload)
    except S.ClientError as exc:
        message = str(exc)
        assert message and len(message) < 300
        assert "\n" not in message
        return None
    # accepted: every field is well-typed and in range
    if request.channels is not None:
        assert all(c in S.CHANNELS for c in request.channels)
        assert len(request.channels) <= len(S.CHANNELS)
    intervals = getattr(request, "intervals", None)
    if intervals is not None:
        for name in S.INTERVAL_CHANNELS:
            value = getattr(intervals, name)
            assert value is None or (
                isinstance(value, float)
                and math.isfinite(value)
                and 0 <= value <= S.MAX_INTERVAL
            )
    return request


@settings(max_examples=400, deadline=None)
@given(json_values | near_valid)
def test_any_json_is_accepted_well_typed_or_refused_cleanly(payload):
    # what arrives went through JSON: only JSON types
    payload = json.loads(json.dumps(payload))
    check(S.SubscribeRequest, payload)
    check(S.UnsubscribeRequest, payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(S.CHANNELS)), max_size=5, unique=True))
def test_valid_channel_lists_are_accepted(channels):
    request = check(S.SubscribeRequest, {"channels": channels})
    assert request is not None and list(request.channels) == channels


@settings(max_examples=200, deadline=None)
@given(st.floats(0, S.MAX_INTERVAL))
def test_valid_intervals_are_accepted(seconds):
    request = check(S.SubscribeRequest, {"intervals": {"temperature": seconds}})
    assert request is not None and request.intervals.temperature == seconds


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=40),
    st.lists(json_values, max_size=4),
)
def test_event_frames_either_pass_the_wire_checks_or_are_refused(name, args):
    frame = "42" + S.NAMESPACE + "," + json.dumps([name, *args])
    error = wire.check_eio_text(frame, 16384)
    assert error in (None, wire.TOO_LARGE)
    data_error = wire.check_event_data([name, *args])
    if data_error is None:
        assert isinstance(name, str) and 0 < len(name) <= wire.MAX_EVENT_NAME
        assert name not in wire.RESERVED_EVENTS and len(args) <= 2
