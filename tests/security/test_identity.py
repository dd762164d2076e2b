"""Issue #3, identity and authorization, against the session's real OctoPrint: every
way in (user key in auth/header/query, application key through the Application Keys
workflow, browser session cookie), every refusal with its message, the permission,
and revocation disconnecting live sockets."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from harness.clients import NODE_DIR, NodeClient, PyClient
from octoserver import NOSTATUS, VIEWER

from .conftest import (
    browser_login,
    cookie_header,
    health_detail,
    wait_until,
)
from .rawio import polling_refusal

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "node", "fluxstudio_appkey.mjs")


def refused(client, timeout=10.0) -> str:
    client.start(wait=False)
    with pytest.raises((ConnectionError, TimeoutError)):
        client.wait_connected(timeout=timeout)
    client.close()
    return client.connect_error


def closing_reason(client, timeout=30.0) -> str:
    data = client.wait_for("printer:closing", timeout=timeout)
    wait_until(lambda: client.disconnects, 10)
    assert client.disconnects, "not disconnected after printer:closing"
    return data["reason"]


# ~~ ways in


@pytest.mark.parametrize(
    "kind,where",
    [
        ("python", "auth"),
        ("python", "header"),
        ("python", "query"),
        ("node", "auth"),
        ("node", "header"),
    ],
)
def test_user_key(octo, kind, where):
    key = octo.keys[VIEWER]
    url, auth, headers = octo.url, None, {}
    if where == "auth":
        auth = {"apikey": key}
    elif where == "header":
        headers = {"X-Api-Key": key}
    else:
        url = f"{octo.url}?apikey={key}"
    cls = PyClient if kind == "python" else NodeClient
    client = cls(url, auth=auth, headers=headers)
    try:
        client.start()
        assert client.wait_for("printer:status", timeout=5)["state"]["text"]
    finally:
        client.close()


def test_query_key_node(octo):
    # socket.io-client: io(url, {query: {apikey}}) -> ?apikey=... on every request
    env = dict(os.environ)
    script = (
        'import { io } from "socket.io-client";'
        f'const s = io("{octo.url}/ws/printing", {{path: "/plugin/fluxprint/socket.io/",'
        f' query: {{apikey: "{octo.keys[VIEWER]}"}}, transports: ["polling"], reconnection: false}});'
        's.on("printer:status", () => { console.log("status"); s.close(); process.exit(0); });'
        's.on("connect_error", (e) => { console.log(e.message); process.exit(1); });'
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.strip() == "status", out.stdout + out.stderr


def _node_env(tmp: str) -> str:
    """The example file in a folder whose node_modules is the test bridge's."""
    os.symlink(os.path.join(NODE_DIR, "node_modules"), os.path.join(tmp, "node_modules"))
    target = os.path.join(tmp, "fluxstudio_appkey.mjs")
    with open(EXAMPLE) as src, open(target, "w") as dst:
        dst.write(src.read())
    return target


def _pending_token(octo, user, app):
    r = octo.api("GET", "/api/plugin/appkeys", user=user)
    assert r.status_code == 200, r.text
    for token, pending in r.json()["pending"].items():
        if pending["app_id"] == app:
            return token
    return None


def test_application_key_workflow_and_revocation(octo):
    """The real workflow (probe, request, approve, poll), then the key connects, and
    revoking it disconnects the live socket with a reason."""
    app = f"FluxStudio-py-{int(time.time())}"
    assert requests.get(octo.url + "/plugin/appkeys/probe", timeout=5).status_code == 204
    r = requests.post(
        octo.url + "/plugin/appkeys/request",
        json={"app": app, "user": "admin"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    app_token = r.json()["app_token"]
    poll = octo.url + f"/plugin/appkeys/request/{app_token}"
    assert requests.get(poll, timeout=5).status_code == 202
    user_token = wait_until(lambda: _pending_token(octo, "admin", app), 5)
    assert user_token
    r = octo.api(
        "POST", f"/plugin/appkeys/decision/{user_token}", json={"decision": True}
    )
    assert r.status_code == 204, r.text
    r = requests.get(poll, timeout=5)
    assert r.status_code == 200, r.text
    appkey = r.json()["api_key"]
    assert appkey not in (octo.keys.values())

    client = PyClient(octo.url, auth={"apikey": appkey})
    client.start()
    client.wait_for("printer:status", timeout=5)

    r = octo.api("POST", "/api/plugin/appkeys", json={"command": "revoke", "app": app})
    assert r.status_code in (200, 204), r.text
    t0 = time.monotonic()
    assert closing_reason(client, timeout=60) == "API key revoked"
    assert time.monotonic() - t0 < 60
    assert refused(PyClient(octo.url, auth={"apikey": appkey})) == "invalid API key"
    # the key appears in no log line
    assert appkey not in octo.octoprint_log()


def test_node_example_obtains_a_key_and_is_disconnected_on_revocation(octo):
    """The README's Node example, run as it is: it requests a key, the viewer approves
    it through the API (as OctoPrint's dialog would), it connects; revocation reaches
    it as printer:closing."""
    app = f"FluxStudio-node-{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        script = _node_env(tmp)
        env = dict(
            os.environ, OCTOPRINT_URL=octo.url, APP_NAME=app, OCTOPRINT_USER=VIEWER
        )
        proc = subprocess.Popen(
            ["node", script], cwd=tmp, env=env, stdout=subprocess.PIPE, text=True
        )
        lines: list[dict] = []

        def read():
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass

        threading.Thread(target=read, daemon=True).start()
        try:
            assert wait_until(lambda: any(m["type"] == "pending" for m in lines), 20)
            token = wait_until(lambda: _pending_token(octo, VIEWER, app), 10)
            assert token
            r = octo.api(
                "POST",
                f"/plugin/appkeys/decision/{token}",
                user=VIEWER,
                json={"decision": True},
            )
            assert r.status_code == 204, r.text
            status = wait_until(
                lambda: next((m for m in lines if m["type"] == "status"), None), 20
            )
            assert status and status["state"], lines
            r = octo.api(
                "POST",
                "/api/plugin/appkeys",
                user=VIEWER,
                json={"command": "revoke", "app": app},
            )
            assert r.status_code in (200, 204), r.text
            closing = wait_until(
                lambda: next((m for m in lines if m["type"] == "closing"), None), 60
            )
            assert closing == {"type": "closing", "reason": "API key revoked"}, lines
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_browser_session_cookie(octo, transport):
    """A logged-in OctoPrint browser session, from OctoPrint's own origin."""
    session = browser_login(octo, VIEWER, "fluxprint-pass")
    headers = {"Cookie": cookie_header(session), "Origin": octo.url}
    client = PyClient(octo.url, headers=headers, transports=[transport])
    try:
        client.start()
        client.wait_for("printer:status", timeout=5)
        # logging out ends the session, and the socket with it
        r = session.post(octo.url + "/api/logout", timeout=10)
        assert r.status_code in (200, 204), r.text
        assert closing_reason(client, timeout=60) == "session ended"
    finally:
        client.close()
    assert refused(PyClient(octo.url, headers=headers)) == "missing credentials"


def test_session_cookie_from_a_foreign_origin_is_refused(octo):
    session = browser_login(octo, VIEWER, "fluxprint-pass")
    headers = {"Cookie": cookie_header(session), "Origin": "http://127.0.0.1:1"}
    assert polling_refusal(octo.port, None, headers) == "origin not allowed"
    # the same cookie from OctoPrint's own origin is fine
    headers["Origin"] = octo.url
    assert polling_refusal(octo.port, None, headers) is None
    session.post(octo.url + "/api/logout", timeout=10)


def test_forged_session_cookie_is_refused(octo):
    session = browser_login(octo, VIEWER, "fluxprint-pass")
    cookie = cookie_header(session).replace("session_P", "x_session_P")
    forged = cookie + f"; session_P{octo.port}=eyJfdXNlcl9pZCI6ImFkbWluIn0.AAAA.BBBB"
    assert refused(PyClient(octo.url, headers={"Cookie": forged})) == (
        "missing credentials"
    )
    session.post(octo.url + "/api/logout", timeout=10)


# ~~ refusals


@pytest.mark.parametrize("kind", ["python", "node"])
@pytest.mark.parametrize(
    "case,expected",
    [
        ("none", "missing credentials"),
        ("bogus", "invalid API key"),
        ("nostatus", "permission denied"),
        ("malformed", "malformed credentials"),
        ("origin", "origin not allowed"),
    ],
)
def test_refusals_say_why(octo, kind, case, expected):
    auth = {
        "none": None,
        "bogus": {"apikey": "0" * 32},
        "nostatus": {"apikey": octo.keys[NOSTATUS]},
        "malformed": {"apikey": "caf\u00e9\n"},
        "origin": {"apikey": octo.keys[VIEWER]},
    }[case]
    headers = {"Origin": "https://evil.example"} if case == "origin" else {}
    if kind == "python" and headers:
        # python-socketio's websocket transport sends its own Origin as well: raw
        # long-polling carries exactly the one a browser would
        assert polling_refusal(octo.port, auth, headers) == expected
        return
    cls = PyClient if kind == "python" else NodeClient
    client = cls(octo.url, auth=auth, headers=headers)
    assert refused(client) == expected
    assert client.events() == []


def test_too_many_connections(octo, security, temp_user):
    # a fresh user: sockets other tests left to engine.io's ping timeout don't count
    user = temp_user()
    security(max_connections_per_user=2)
    made = [PyClient(octo.url, auth={"apikey": user.apikey}) for _ in range(2)]
    try:
        for client in made:
            client.start()
        assert refused(PyClient(octo.url, auth={"apikey": user.apikey})) == (
            "too many connections"
        )
        # another user is not affected by the viewer's cap
        other = PyClient(octo.url, auth={"apikey": octo.apikey})
        other.start()
        other.close()
        total = health_detail(octo)["security"]["clients_per_user"]
        security(max_connections=sum(total.values()))
        assert refused(PyClient(octo.url, auth={"apikey": octo.apikey})) == (
            "too many connections"
        )
    finally:
        for client in made:
            client.close()


# ~~ permission


def test_permission_is_registered_for_the_status_groups(octo):
    perms = octo.api("GET", "/api/access/permissions").json()["permissions"]
    mine = next(p for p in perms if p["key"] == "PLUGIN_FLUXPRINT_RECEIVE")
    assert mine["name"] == "FluxPrint: receive live printer data"
    status = next(p for p in perms if p["key"] == "STATUS")
    assert set(mine["default_groups"]) == set(status["default_groups"])
    groups = octo.api("GET", "/api/access/groups").json()["groups"]
    for group in groups:
        if group["key"] in status["default_groups"]:
            assert "PLUGIN_FLUXPRINT_RECEIVE" in group["permissions"], group


def test_rest_snapshot_and_health_detail_need_the_permission(octo):
    assert octo.api("GET", "/api/plugin/fluxprint", user=VIEWER).status_code == 200
    assert octo.api("GET", "/api/plugin/fluxprint", user=NOSTATUS).status_code == 403
    public = requests.get(octo.url + "/plugin/fluxprint/health", timeout=5).json()
    assert set(public) == {"status", "version", "socketio", "printer"}
    anonymous = requests.get(octo.url + "/plugin/fluxprint/health?detail=1", timeout=5)
    assert anonymous.status_code == 403
    r = octo.api("GET", "/plugin/fluxprint/health?detail=1", user=NOSTATUS)
    assert r.status_code == 403
    detail = health_detail(octo, user=VIEWER)
    assert set(detail) == {"limits", "allowed_origins", "security", "fanout", "redis"}
    assert detail["redis"]["state"] == "off"  # redis.url is off by default
    assert {"broadcasts", "writes", "recent_ms", "direct_writes"} <= set(detail["fanout"])
    text = json.dumps(detail)
    for key in octo.keys.values():
        assert key not in text


def test_deactivated_deleted_or_demoted_user_is_disconnected(octo, temp_user):
    t0 = time.monotonic()
    cases = []
    for change in ("deactivate", "demote", "delete"):
        user = temp_user()
        client = PyClient(octo.url, auth={"apikey": user.apikey})
        client.start()
        client.wait_for("printer:status", timeout=5)
        cases.append((change, user, client))
    for change, user, _client in cases:
        if change == "deactivate":
            user.update(active=False)
        elif change == "demote":
            user.update(groups=[])
        else:
            user.delete()
    expected = {
        "deactivate": "user is deactivated",
        "demote": "permission denied",
        "delete": "API key revoked",
    }
    for change, _user, client in cases:
        assert closing_reason(client, timeout=60) == expected[change], change
        client.close()
    assert time.monotonic() - t0 < 60
    detail = health_detail(octo)["security"]["closed"]
    for reason in expected.values():
        assert detail.get(reason, 0) >= 1


def test_repeated_refusals_are_logged_once_a_minute_and_all_counted(octo):
    line = "Refused a client from 127.0.0.1: invalid API key"

    def counted():
        refused_ = health_detail(octo, user=VIEWER)["security"]["refused"]
        return refused_.get("invalid API key", 0)

    before, lines_before = counted(), octo.octoprint_log().count(line)
    for _ in range(8):
        client = PyClient(octo.url, auth={"apikey": "no-such-key-0123456789"})
        assert refused(client) == "invalid API key"
    assert counted() - before == 8
    # at most the first of them (if no such line was written in the last minute)
    assert octo.octoprint_log().count(line) - lines_before <= 1
