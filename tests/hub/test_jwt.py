"""JWTs at a real hub (the wheel venv's fluxprint-hub) in front of the session's real
OctoPrint (as printers a and b), with tokens minted here by PyJWT the way
FluxStudio signs its users' (HS256 with its JWT_SECRET; id, email, exp), for the
python client and socket.io-client 4:

- every refusal is a clear connect_error: expired, bad signature (another key),
  alg none, wrong audience, wrong issuer, no printer; static hub tokens still work;
- a token for printer a that asks for b gets nothing of b;
- a token that expires while connected: printer:closing {reason: "token expired"}
  within 2 s of exp, the reconnectable close, then back with a fresh token and
  resumed with its cursors, no durable event lost (against the plugin's log).
"""

from __future__ import annotations

import ast
import time

import jwt
import pytest
from octoserver import free_port

from octoprint_fluxprint.hub.config import hash_token
from tests.hub.certs import ec_key
from tests.hub.conftest import HubClient, HubNode, HubProcess, compare, plugin_log
from tests.hub.test_auth import Probe, wait_refused

pytestmark = pytest.mark.integration

SECRET = "fluxstudio-jwt-secret-for-the-test-0123456789"  # FluxStudio's JWT_SECRET
STATIC = "a-static-hub-token"
AUD, ISS = "fluxprint-hub", "fluxstudio"


def mint(ttl: float = 300, key=SECRET, algorithm="HS256", **claims) -> str:
    body = {"id": "42", "email": "ada@example.com", "exp": int(time.time() + ttl)}
    return jwt.encode({**body, **claims}, key, algorithm=algorithm)


def token_for(*printers: str, ttl: float = 300, **claims) -> str:
    return mint(ttl, aud=AUD, iss=ISS, printers=list(printers), **claims)


@pytest.fixture
def hub(octo, tmp_path):
    octo.ensure_operational()
    printer = {"url": octo.url, "apikey": octo.apikey}
    cfg = {
        "printers": [{"id": "a", **printer}, {"id": "b", **printer}],
        "auth": {
            "trusted_networks": [],  # every client needs a credential
            "tokens": [{"name": "wall", "sha256": hash_token(STATIC), "printers": ["b"]}],
            "jwt": {"printers_claim": "printers", "audience": AUD, "issuer": ISS},
        },
    }
    proc = HubProcess(
        str(tmp_path / "hub"), cfg, free_port(), env={"FLUXPRINT_HUB_JWT_SECRET": SECRET}
    )
    proc.start()
    proc.wait_synced()
    yield proc
    proc.stop()
    log = proc.tail(10**7)
    assert SECRET not in log, "the JWT secret reached the hub's log"


def refusals(url: str) -> dict[str, tuple[str, str]]:
    """What each bad token gets, from the python client and from Node."""
    cases = {
        "expired": token_for("a", ttl=-30),
        "another key": mint(
            key="not FluxStudio's secret, but as long as it is",
            aud=AUD,
            iss=ISS,
            printers=["a"],
        ),
        "alg none": mint(key=None, algorithm="none", aud=AUD, iss=ISS, printers=["a"]),
        "ES256 for an HS256 hub": mint(
            key=ec_key(), algorithm="ES256", aud=AUD, iss=ISS, printers=["a"]
        ),
        "wrong audience": mint(aud="another-service", iss=ISS, printers=["a"]),
        "wrong issuer": mint(aud=AUD, iss="someone-else", printers=["a"]),
        "no printers claim": mint(aud=AUD, iss=ISS),
        "an unknown printer": token_for("zz"),
    }
    out = {}
    for name, token in cases.items():
        probe = Probe(url, auth={"token": token})
        node = HubNode(url, auth={"token": token}).start(wait=False)
        try:
            out[name] = (message(wait_refused(probe)), node.refused())
            assert not probe.sio.connected
        finally:
            probe.close()
            node.close()
    return out


def message(refusal: str) -> str:
    """python-socketio hands connect_error's data over as {"message": ...}."""
    data = ast.literal_eval(refusal) if refusal.startswith("{") else refusal
    return data["message"] if isinstance(data, dict) else data


EXPECTED = {
    "expired": "token expired",
    "another key": "invalid token: bad signature",
    "alg none": "invalid token: algorithm not allowed",
    "ES256 for an HS256 hub": "invalid token: algorithm not allowed",
    "wrong audience": "invalid token: wrong audience",
    "wrong issuer": "invalid token: wrong issuer",
    "no printers claim": "no printer for this credential: no printers claim in the token",
    "an unknown printer": "no printer for this credential",
}


def test_every_refusal_is_a_clear_connect_error(hub):
    got = refusals(hub.url)
    for name, (python, node) in got.items():
        assert python == node == EXPECTED[name], (name, python, node)
    print("refusals:", {name: python for name, (python, _n) in got.items()})


def test_a_token_for_a_sees_nothing_of_b_and_static_tokens_still_work(hub):
    scoped = Probe(hub.url, auth={"token": token_for("a")})
    node = HubNode(hub.url, auth={"token": token_for("a")}).start()
    static = Probe(hub.url, auth={"token": STATIC})
    everything = Probe(hub.url, auth={"token": token_for("*")})
    try:
        assert scoped.sio.connected and static.sio.connected and everything.sio.connected
        # asking for b: by cursor at connect, by subscribe on the python and Node side
        asks_b = Probe(hub.url, auth={"token": token_for("a"), "last_seq": {"b": 1}})
        assert "unknown printer in the cursors: b" in wait_refused(asks_b)
        node_b = HubNode(hub.url, auth={"token": token_for("a"), "last_seq": {"b": 1}})
        assert "unknown printer in the cursors: b" in node_b.start(wait=False).refused()
        node_b.close()
        ack = scoped.call("printer:subscribe", {"printers": ["b"]})
        assert ack["ok"] is False and "b" in ack["error"], ack
        assert node.call("printer:subscribe", {"printers": ["a", "b"]})["ok"] is False
        node.wait_for("printer:temperature", timeout=10)
        time.sleep(4)  # statuses every 2 s, temperatures every second
        of_b = [
            d
            for _e, d in scoped.events
            if isinstance(d, dict) and d.get("printer") not in (None, "a", "hub")
        ]
        assert of_b == [] and {
            d.get("printer") for d in node.payloads("printer:status")
        } == {"a"}
        assert scoped.printers() and all(p == ["a"] for p in scoped.printers())
        assert static.printers()[0] == ["b"]  # the static token's scope
        assert everything.printers()[0] == ["a", "b"]  # printers: ["*"]
        print(
            "scoped:",
            {"python_events": len(scoped.events), "node_events": len(node.records)},
        )
    finally:
        for probe in (scoped, static, everything):
            probe.close()
        node.close()


class ResumingClient(HubClient):
    """Resumes after the highest seq it saw per printer, as the README tells clients
    to (HubClient keeps only its durable events' seqs)."""

    def _any(self, event: str, data=None) -> None:
        super()._any(event, data)
        if isinstance(data, dict) and isinstance(data.get("seq"), int):
            pid = data.get("printer")
            if pid not in (None, "hub"):
                with self.lock:
                    self.cursors[pid] = max(data["seq"], self.cursors.get(pid, 0))


def test_expiry_closes_then_a_fresh_token_resumes_with_nothing_lost(hub, octo):
    log_before = plugin_log(octo.basedir)
    start = log_before[-1][0] if log_before else 0
    current = [token_for("a", ttl=6)]
    exp = jwt.decode(current[0], options={"verify_signature": False})["exp"]
    closings: list[tuple[float, dict]] = []
    client = ResumingClient(hub.url, auth=lambda: {"token": current[0]})
    client.sio.on(
        "printer:closing",
        lambda d: closings.append((time.time(), d)),
        namespace="/ws/printing",
    )
    # Node: a client that got its fresh token before the old one expired
    node_token = token_for("a", ttl=6)
    node_exp = jwt.decode(node_token, options={"verify_signature": False})["exp"]
    node = HubNode(hub.url, auth={"token": node_token}, reconnection=True)
    client.start()
    node.start()
    try:
        node.set_auth({"token": token_for("a", ttl=300)})
        deadline = exp + 5
        while not closings and time.time() < deadline:
            time.sleep(0.02)
        assert closings, "no printer:closing at exp"
        at, payload = closings[0]
        assert payload["reason"] == "token expired"
        assert exp - 0.05 <= at <= exp + 2.0, at - exp
        # away with its expired token: refused as such, while durable events happen
        deadline = time.monotonic() + 10
        while not any("token expired" in e for e in client.connect_errors):
            assert time.monotonic() < deadline, client.connect_errors
            time.sleep(0.05)
        octo.disconnect_printer()
        octo.connect_printer()
        connects = client.connects
        current[0] = token_for("a", ttl=300)  # the login's fresh token
        deadline = time.monotonic() + 15
        while client.connects == connects:
            assert time.monotonic() < deadline, client.connect_errors
            time.sleep(0.05)
        octo.ensure_operational()
        want = plugin_log(octo.basedir)
        deadline = time.monotonic() + 15
        while compare(client, "a", want, since=start)["lost"]:
            assert time.monotonic() < deadline, compare(client, "a", want, since=start)
            time.sleep(0.1)
        result = compare(client, "a", want, since=start)
        assert result["compared"] >= 2  # the disconnect and the connect at least
        assert result["lost"] == result["duplicated"] == result["out_of_order"] == 0
        assert not client.errors  # resumed, never resynced

        # Node: closed at its exp, reconnected by itself with the fresh token
        closing = node.wait_for("printer:closing", timeout=10)
        assert closing["reason"] == "token expired"
        node_at = [r["recv"] for r in node.events("printer:closing")][0] / 1000
        assert node_exp - 0.05 <= node_at <= node_exp + 2.0
        deadline = time.monotonic() + 10
        while not (node.disconnects and node.connected.is_set()):
            assert time.monotonic() < deadline, node.disconnects
            time.sleep(0.05)
        assert node.disconnects[0] == "transport close"
        # the status a reconnected client gets on connect: after the closing
        closed_at = [r["event"] for r in node.events()].index("printer:closing")
        node.wait_for("printer:status", after=closed_at + 1, timeout=10)
        print(
            "expiry:",
            {
                "closed_after_exp_s": round(at - exp, 3),
                "node_closed_after_exp_s": round(node_at - node_exp, 3),
                "refused_while_expired": sum(
                    "token expired" in e for e in client.connect_errors
                ),
                **result,
            },
        )
    finally:
        client.close()
        node.close()
