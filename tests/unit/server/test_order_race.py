"""Replay, then status, then live (issue 22: on OctoPrint 2.0, one reconnect in 50
chaos cuts got a ``printer:progress`` before its fresh ``printer:status``).

The interleaving: a durable event waits in the ordered outbox for its commit, and
telemetry emitted meanwhile waits behind it. Whether a client gets a broadcast was
decided when it left the outbox, not when it was emitted: telemetry emitted while
the client was replaying (skipped then: its fresh status follows), or before it
joined, went out to it once the commit came, ahead of the status that the replay's
end (or the join) had queued behind it.

Real Engine, Delivery, Resumer, Namespace and PrinterState; the fakes of
test_resume_seam.py for python-socketio's room table, the socket writes and the
log's writer thread, which here commits only when the test says so."""

from __future__ import annotations

import asyncio
import threading

import pytest

from octoprint_fluxprint.core import schema as S
from octoprint_fluxprint.core.replay import DURABLE_EVENTS
from tests.unit.core.test_printer import current, temps
from tests.unit.server.test_resume_seam import (  # noqa: F401 (the fixture)
    connect,
    job_started,
    make_engine,
)

NOW_NS = 2_000_000_000_000_000_000


def telemetry(state) -> None:
    """A progress and a temperature (with their statuses: intervals are 0 here)."""
    state.on_current(current("Printing", printing=True, completion=10.0), NOW_NS)
    state.on_temperature(temps(200.0, 210.0), NOW_NS)


def first_live(messages: list[tuple[str, dict]]) -> list[str]:
    """The client's events from the first that is not durable on."""
    events = [e for e, _ in messages]
    live = [i for i, e in enumerate(events) if e not in DURABLE_EVENTS]
    return events[live[0] :] if live else []


@pytest.mark.parametrize("join", [True, False])
def test_telemetry_queued_during_the_replay_does_not_overtake_the_status(join):
    """join: a connect with ``auth.last_seq``; else ``printer:subscribe {since}`` of
    a client in its rooms already."""

    async def scenario():
        engine, state, log, received = make_engine(asyncio.get_running_loop())
        connect(engine, "c", masked=join)  # else in the rooms, with its status
        if not join:
            engine.delivery.send_to("c", S.EV_STATUS, state.status_payload())
        gate = threading.Event()
        log.on_read = gate.wait  # the replay's read waits for the test
        job_started(state)  # durable, not committed: the outbox waits for it
        namespace = engine.namespace
        if join:
            namespace._enter("c", "", 0)
            task = None
        else:
            feed = namespace.feeds[""]
            task = asyncio.ensure_future(
                namespace.resumer.resume(
                    "c", feed, 0, lambda: feed.state.after_replay("c")
                )
            )
        await asyncio.sleep(0.05)  # replaying: in the rooms, the read under way
        mark = len(received.get("c", []))
        telemetry(state)  # queued behind the durable event
        gate.set()  # the read returns (without the uncommitted row): replay done
        while ("c", "") in namespace.resumer.joining or (task and not task.done()):
            await asyncio.sleep(0.001)
        log.commit()
        log.call_back()  # the commit's on_durable: the outbox drains
        await asyncio.sleep(0.01)
        return received.get("c", [])[mark:]

    got = asyncio.run(scenario())
    events = [e for e, _ in got]
    assert "printer:job_started" in events
    assert first_live(got) == [S.EV_STATUS], events


def test_telemetry_queued_before_a_client_joins_does_not_precede_its_status():
    async def scenario():
        engine, state, log, received = make_engine(asyncio.get_running_loop())
        connect(engine, "old")  # in the printer's rooms through its cohort
        job_started(state)  # durable, not committed: the outbox waits for it
        telemetry(state)  # emitted to the room before "new" is in it
        connect(engine, "new", masked=True)  # the same view: the same cohort
        engine.namespace._enter("new", "", None)  # no cursor: status now
        telemetry(state)  # after the join: for both
        log.commit()
        log.call_back()
        await asyncio.sleep(0.01)
        return received.get("new", []), received.get("old", [])

    new, old = asyncio.run(scenario())
    assert first_live(new)[0] == S.EV_STATUS, [e for e, _ in new]
    # what came after its status it gets, and the others lose nothing
    assert [e for e, _ in new].count(S.EV_TEMPERATURE) == 1
    assert [e for e, _ in old].count(S.EV_TEMPERATURE) == 2
    assert [e for e, _ in old].count(S.EV_PROGRESS) == 1  # the second is a duplicate
