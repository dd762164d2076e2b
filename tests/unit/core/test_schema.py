import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octoprint_fluxprint import schemas
from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core import schemadoc, shaping


def test_shipped_schema_is_generated_from_the_models():
    assert schemas.load() == json.loads(schemadoc.dump_schema()), (
        "run: python -m octoprint_fluxprint.schemas > octoprint_fluxprint/schemas/events.schema.json"
    )


def test_every_event_is_in_the_schema():
    shipped = schemas.load()
    assert set(shipped["events"]) == set(S.EVENT_MODELS)
    assert set(shipped["client_events"]) == {"printer:subscribe", "printer:unsubscribe"}


def test_seed_examples_are_subsets():
    # the seed document's printer:status example keys all exist in ours
    state = shaping.shape_state(
        {
            "text": "Printing",
            "flags": {"operational": True, "printing": True, "paused": False},
        }
    )
    assert {"text", "flags"} <= set(state)
    assert {"operational", "printing", "paused"} <= set(state["flags"])
    temps = shaping.shape_temperature(
        {
            "bed": {"actual": 60.5, "target": 60},
            "tool0": {"actual": 200.2, "target": 200},
        },
        {},
    )
    assert temps["bed"] == {"actual": 60.5, "target": 60, "offset": 0}
    progress = shaping.shape_progress(
        {"completion": 45.5, "printTime": 1234, "printTimeLeft": 1500}, "Printing", {}
    )
    assert {"completion", "printTime", "printTimeLeft", "state"} <= set(progress)


def test_shaping_tolerates_garbage():
    assert shaping.shape_state(None)["flags"]["closedOrError"] is True
    assert shaping.shape_state({"text": 5, "flags": None})["text"] == "Unknown"
    assert shaping.shape_job({"file": {"size": "big", "name": 3}})["file"] == {
        "name": None,
        "path": None,
        "origin": None,
        "size": None,
    }
    assert (
        shaping.shape_temperature({"time": 1, "x": 3, "tool0": {"actual": "hot"}}, {})
        == {}
    )
    assert (
        shaping.shape_progress({"completion": 140.0}, "Printing", {})["completion"]
        == 100.0
    )
    assert shaping.failed_progress({"reason": "error", "progress": 0.5}) == 50.0
    assert shaping.failed_progress({"reason": "cancelled", "progress": 2}) == 2.0
    assert (
        shaping.failed_progress(
            {"reason": "cancelled", "progress": 2, "fileposition": 50, "size": 200}
        )
        == 25.0
    )
    assert shaping.failed_progress({"reason": "error"}) is None


def test_subscribe_validation_messages():
    ok = S.parse_client_payload(
        S.SubscribeRequest, {"channels": ["temperature"], "intervals": {"temperature": 5}}
    )
    assert ok.channels == ["temperature"] and ok.intervals.temperature == 5
    assert S.parse_client_payload(S.SubscribeRequest, None).channels is None
    for bad, fragment in [
        ("x", "JSON object"),
        ([1], "JSON object"),
        ({"channels": ["nope"]}, "channels.0"),
        ({"channels": "status"}, "channels"),
        ({"intervals": {"temperature": -1}}, "intervals.temperature"),
        ({"intervals": {"temperature": 1e9}}, "intervals.temperature"),
        ({"intervals": {"temperature": "5"}}, "intervals.temperature"),
        ({"intervals": {"temperature": float("nan")}}, "intervals.temperature"),
        ({"intervals": {"jobs": 1}}, "intervals.jobs"),
        ({"extra": 1}, "extra"),
    ]:
        with pytest.raises(S.ClientError) as exc:
            S.parse_client_payload(S.SubscribeRequest, bad)
        assert fragment in str(exc.value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda c: (
            st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=10), c, max_size=5)
        ),
        max_leaves=30,
    )
)
def test_validator_never_crashes(payload):
    for model in (S.SubscribeRequest, S.UnsubscribeRequest):
        try:
            result = S.parse_client_payload(model, payload)
        except S.ClientError as exc:
            assert str(exc)
        else:
            assert result.channels is None or set(result.channels) <= set(S.CHANNELS)


@pytest.mark.parametrize("key", ["\n", "a\rb", "x" * 500, "\u2028", "\x00"])
def test_refusal_messages_stay_on_one_short_line(key):
    # found by the security property test: a key with a newline was echoed as is
    with pytest.raises(S.ClientError) as info:
        S.parse_client_payload(S.SubscribeRequest, {key: None})
    message = str(info.value)
    assert message.isprintable() and len(message) < 120, message
