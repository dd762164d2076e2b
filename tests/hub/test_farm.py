"""A farm with real parts: 3 OctoPrints (Virtual Printer, FluxPrint) behind one hub,
a Node socket.io-client 4 dashboard (tests/hub/farm_client.mjs) on p0 and p1 and a
python-socketio one on p1 and p2, both resuming with a cursor per printer.

1. SIGKILL p1's OctoPrint mid-print and restart it: both clients see p1 stale, then
   offline, then online in printer:printers.
2. SIGKILL the hub and restart it: both come back by themselves with their cursors.

After each, every client's durable events of each printer it watches are compared
with that plugin's own log (events.db): 0 lost, 0 duplicated, in order. The counts
go to test-artifacts/hub-farm.json."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from harness.fluxstudio import Proc
from harness.jobs import job_command
from harness.threads import parallel
from octoserver import OctoServer, free_port, gcode_file

from tests.hub.conftest import HubClient, HubProcess, plugin_log

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
IDS = ("p0", "p1", "p2")
NODE_SEES = ["p0", "p1"]
PY_SEES = ["p1", "p2"]
FAST = {"serial": {"timeout": {"temperatureAutoreport": 1}}}


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    octos = {
        pid: OctoServer(str(tmp_path_factory.mktemp(f"farm-{pid}")), config=FAST)
        for pid in IDS
    }

    def up(octo):
        octo.start()
        octo.connect_printer()

    try:
        parallel(up, octos.values())
        yield octos
    finally:
        for octo in octos.values():
            octo.stop()


def kill(octo: OctoServer) -> None:
    assert octo.proc is not None
    os.killpg(octo.proc.pid, signal.SIGKILL)
    octo.proc.wait(10)
    octo.proc = None


def node_durable(client: Proc) -> list[tuple[str, int, str]]:
    return [
        (m["printer"], m["seq"], m["event"])
        for m in client.since()
        if m.get("type") == "durable"
    ]


def counts(got, pid: str, log: list[tuple[int, str]], since: int) -> dict:
    mine = [(s, e) for p, s, e in got if p == pid and s > since]
    want = [(s, e) for s, e in log if s > since]
    seqs = [s for s, _ in mine]
    return {
        "compared": len(want),
        "lost": len(set(want) - set(mine)),
        "duplicated": len(seqs) - len(set(seqs)),
        "extra": len(set(mine) - set(want)),
        "out_of_order": int(seqs != sorted(seqs)),
    }


def check_all(octos, since, node, py, timeout: float = 30.0) -> dict:
    """Waits until every client holds every durable event of its printers (or the
    timeout), then returns the counts per client and printer."""
    deadline = time.monotonic() + timeout
    while True:
        logs = {pid: plugin_log(octos[pid].basedir) for pid in IDS}
        result = {}
        for name, got, sees in (
            ("node", node_durable(node), NODE_SEES),
            ("python", list(py.durable), PY_SEES),
        ):
            for pid in sees:
                result[f"{name}/{pid}"] = counts(got, pid, logs[pid], since[pid])
        if all(r["lost"] == 0 for r in result.values()) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def states_after(changes: list[tuple[float, str]], t0: float) -> list[str]:
    out: list[str] = []
    for t, state in changes:
        if t >= t0 and (not out or out[-1] != state):
            out.append(state)
    return out


def in_order(seen: list[str], wanted: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == w for s in it) for w in wanted)


def pause_resume(octo: OctoServer) -> None:
    job_command(octo, "pause", "pause")
    time.sleep(1.0)
    job_command(octo, "pause", "resume")


def test_farm_kill_an_octoprint_then_the_hub(farm, tmp_path, artifacts_dir):
    octos = farm
    for octo in octos.values():
        octo.ensure_operational()
    cfg = {
        "printers": [
            {"id": pid, "url": octo.url, "apikey": octo.apikey}
            for pid, octo in octos.items()
        ],
        "auth": {"trusted": {"profile": "dashboard"}},
        "stale_after": 3,
        "offline_after": 6,
    }
    hub = HubProcess(str(tmp_path), cfg, free_port())
    hub.start()
    hub.wait_synced()
    node = Proc(
        os.path.join(HERE, "farm_client.mjs"),
        log_path=os.path.join(artifacts_dir, "hub-farm-node.out"),
        args=(json.dumps({"url": hub.url, "printers": NODE_SEES}),),
    )
    py = HubClient(hub.url, printers=PY_SEES).start()
    report: dict = {}
    try:
        node.wait_for(lambda m: m.get("type") == "subscribed", 15)
        time.sleep(1.0)
        since = {
            pid: max([s for s, _ in plugin_log(o.basedir)] or [0])
            for pid, o in octos.items()
        }
        for pid, octo in octos.items():
            octo.upload(f"farm-{pid}.gcode", gcode_file(12000), print_=True)
        time.sleep(4)
        parallel(pause_resume, octos.values())

        # 1. an OctoPrint dies
        killed = time.monotonic()
        killed_ms = time.time() * 1000
        kill(octos["p1"])
        parallel(pause_resume, [octos["p0"], octos["p2"]])  # the others go on
        node.wait_for(
            lambda m: m.get("type") == "printers" and m["states"].get("p1") == "offline",
            20,
        )
        octos["p1"].start()
        octos["p1"].connect_printer()
        node.wait_for(
            lambda m: (
                m.get("type") == "printers"
                and m["recv"] > killed_ms
                and m["states"].get("p1") == "online"
                and m["states"].get("p0") == "online"
            ),
            30,
        )
        back = time.monotonic() - killed
        node_p1 = states_after(
            [
                (m["recv"] / 1000, m["states"]["p1"])
                for m in node.since()
                if m.get("type") == "printers" and "p1" in m["states"]
            ],
            killed_ms / 1000,
        )
        py_p1 = states_after([(t, s) for t, p, s in py.states if p == "p1"], killed)
        assert in_order(node_p1, ["stale", "offline", "online"]), node_p1
        assert in_order(py_p1, ["stale", "offline", "online"]), py_p1
        octo_kill = check_all(octos, since, node, py)
        report["octoprint_kill"] = {
            "counts": octo_kill,
            "p1_states_node": node_p1,
            "p1_states_python": py_p1,
            "p1_online_again_s": round(back, 1),
        }

        # 2. the hub dies
        nmark = node.mark()
        py_connects = py.connects
        hub.kill()
        hub_killed = time.monotonic()
        parallel(pause_resume, [octos["p0"], octos["p2"]])  # while no hub listens
        hub.start()
        node.wait_for(lambda m: m.get("type") == "subscribed", 30, nmark)
        node_back = time.monotonic() - hub_killed
        deadline = time.monotonic() + 30
        while py.connects == py_connects:
            assert time.monotonic() < deadline, "the python client did not come back"
            time.sleep(0.1)
        py_back = time.monotonic() - hub_killed
        auths = [m["last_seq"] for m in node.since(nmark) if m.get("type") == "auth"]
        assert auths and set(NODE_SEES) <= set(auths[-1]), auths  # cursors per printer
        hub.wait_synced()
        for pid in ("p0", "p2"):
            job_command(octos[pid], "cancel")  # a last durable event, live
        hub_kill = check_all(octos, since, node, py)
        report["hub_kill"] = {
            "counts": hub_kill,
            "node_back_s": round(node_back, 1),
            "python_back_s": round(py_back, 1),
            "node_cursors": auths[-1],
        }
        for phase in (octo_kill, hub_kill):
            for key, c in phase.items():
                assert c["lost"] == 0 and c["duplicated"] == 0, (key, c)
                assert c["extra"] == 0 and c["out_of_order"] == 0, (key, c)
                assert c["compared"] >= 3, (key, c)
        assert py.errors == []  # no resync: the hub's mirror served every cursor
        assert [m for m in node.since() if m.get("event") == "printer:resync"] == []
    finally:
        total = {
            phase: {
                "events_compared": sum(c["compared"] for c in r["counts"].values()),
                "lost": sum(c["lost"] for c in r["counts"].values()),
                "duplicated": sum(c["duplicated"] for c in r["counts"].values()),
            }
            for phase, r in report.items()
        }
        report["totals"] = total
        with open(os.path.join(artifacts_dir, "hub-farm.json"), "w") as f:
            json.dump(report, f, indent=2)
        print("\nhub-farm:", json.dumps(report, indent=1))
        node.stop()
        py.close()
        hub.stop()
        for octo in octos.values():
            if octo.proc is not None:
                octo.ensure_operational()
