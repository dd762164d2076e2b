"""The REST fallback's payloads (core/restapi.py, pure): the arguments, the resync
plan and the events page, the same at the plugin and the hub."""

from __future__ import annotations

import pytest

from octoprint_fluxprint.core import restapi as R
from octoprint_fluxprint.core.mirror import EventMirror, Row


def mirror(*seqs: int, horizon: int = 0) -> EventMirror:
    m = EventMirror()
    m.set_horizon(horizon)
    for seq in seqs:
        m.append(seq, "printer:job_paused", {"seq": seq, "printer": "p"}, seq * 10)
    return m


def test_arguments():
    assert R.events_args("0", None) == (0, R.DEFAULT_LIMIT)
    assert R.events_args("12", "3") == (12, 3)
    assert R.events_args(str(R.SEQ_MAX), "1000") == (R.SEQ_MAX, 1000)


@pytest.mark.parametrize(
    "since, limit, message",
    [
        (None, None, "since: required"),
        ("", None, "since: an integer"),
        ("-1", None, "since: an integer"),
        ("1.5", None, "since: an integer"),
        (" 1", None, "since: an integer"),
        ("1e3", None, "since: an integer"),
        (str(R.SEQ_MAX + 1), None, "since: an integer"),
        ("1" * 40, None, "since: an integer"),
        ("1", "0", "limit: an integer from 1 to 1000"),
        ("1", "1001", "limit: an integer from 1 to 1000"),
        ("1", "x", "limit: an integer"),
    ],
)
def test_bad_arguments_name_what_is_wrong(since, limit, message):
    with pytest.raises(R.BadArgument, match=message):
        R.events_args(since, limit)


def test_a_cursor_within_the_log_is_served():
    log = mirror(5, 6, 7, horizon=4)
    assert R.resync_body(4, log, issued=9) is None
    assert R.resync_body(7, log, issued=9) is None
    assert R.resync_body(9, log, issued=9) is None


def test_a_cursor_below_the_horizon_or_from_the_future_is_a_resync():
    log = mirror(5, 6, 7, horizon=4)
    assert R.resync_body(3, log, issued=9) == {
        "requested": 3,
        "oldestSeq": 5,
        "lastSeq": 7,
    }
    assert R.resync_body(10, log, issued=9)["requested"] == 10


def test_the_events_page():
    rows = [Row(s, "printer:job_paused", {"seq": s}, s) for s in (5, 6, 7)]
    page = R.events_page("p", rows, 2)
    assert page == {
        "printer": "p",
        "events": [
            ["printer:job_paused", {"seq": 5}],
            ["printer:job_paused", {"seq": 6}],
        ],
        "more": True,
        "resync": None,
    }
    assert R.events_page("p", rows, 3)["more"] is False
    resync = {"requested": 1, "oldestSeq": 5, "lastSeq": 7}
    assert R.events_page("p", [], 3, resync) == {
        "printer": "p",
        "events": [],
        "more": False,
        "resync": resync,
    }


def test_the_printer_entry_is_printer_printers_shape():
    assert R.printer_entry("p", "online", "connected", 9, True) == {
        "id": "p",
        "state": "online",
        "connection": "connected",
        "lastSeq": 9,
        "synced": True,
    }
