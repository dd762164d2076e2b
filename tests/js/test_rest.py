"""The REST fallback at the hub and at the plugin: the same routes and payloads
(the socket's shapes, checked against the shipped JSON Schema), the hub's auth, bad
input answered clearly; and the live page served from the package's own files."""

from __future__ import annotations

import time

import jsonschema
import pytest
import requests
from octoserver import free_port

from tests.hub.conftest import HubProcess
from tests.js.conftest import PRINTER, TOKEN, hub_config, jwt_token

pytestmark = pytest.mark.integration


def validator(schema: dict, name: str):
    ref = schema["events"][name]
    return jsonschema.Draft202012Validator({**ref, "$defs": schema["$defs"]})


def check(schema: dict, event: str, payload: dict) -> None:
    errors = list(validator(schema, event).iter_errors(payload))
    assert not errors, (event, [e.message for e in errors[:3]], payload)


@pytest.fixture
def plugin_api(octo):
    base = octo.url + "/plugin/fluxprint/api"

    def get(path: str, **kw):
        kw.setdefault("headers", {"X-Api-Key": octo.apikey})
        return requests.get(base + path, timeout=10, **kw)

    return get


def test_the_same_routes_and_shapes_at_hub_and_plugin(
    hub, plugin_api, octo, event_schema
):
    plugin_id = plugin_api("/printers").json()["printers"][0]["id"]
    for get, pid in (
        (lambda p: requests.get(hub.url + "/api" + p, timeout=10), PRINTER),
        (plugin_api, plugin_id),
    ):
        printers = get("/printers")
        assert printers.status_code == 200
        assert printers.headers["Cache-Control"] == "no-store"
        body = printers.json()
        check(event_schema, "printer:printers", body)
        assert [p["id"] for p in body["printers"]] == [pid]
        assert body["printers"][0]["state"] == "online"
        status = get(f"/printers/{pid}/status").json()
        check(event_schema, "printer:status", status)
        assert status["printer"] == pid and status["state"]["flags"]["operational"]
        page = get(f"/printers/{pid}/events?since=0&limit=1000").json()
        assert set(page) == {"printer", "events", "more", "resync"}
        assert page["printer"] == pid and page["resync"] is None
        assert page["events"], "the session's printer connected at least once"
        seqs = [p["seq"] for _e, p in page["events"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        for event, payload in page["events"]:
            check(event_schema, event, payload)
            assert payload["printer"] == pid


def test_events_after_a_cursor_match_the_plugins_log(hub, plugin_api, octo):
    from tests.hub.conftest import plugin_log

    octo.ensure_operational()
    before = max(s for s, _e in plugin_log(octo.basedir))
    octo.disconnect_printer()
    octo.connect_printer()
    deadline = time.monotonic() + 10
    while True:  # disconnected, connecting, connected: durable events
        logged = [(s, e) for s, e in plugin_log(octo.basedir) if s > before]
        if len(logged) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(logged) >= 3, logged
    plugin_id = plugin_api("/printers").json()["printers"][0]["id"]
    got_plugin = plugin_api(f"/printers/{plugin_id}/events?since={before}").json()
    assert [(p["seq"], e) for e, p in got_plugin["events"]] == logged
    # the hub's mirror has them too, once relayed
    deadline = time.monotonic() + 10
    while True:
        got = requests.get(
            f"{hub.url}/api/printers/{PRINTER}/events?since={before}", timeout=10
        ).json()
        if len(got["events"]) >= len(logged) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(p["seq"], e) for e, p in got["events"]] == logged
    # paging: limit 1 says more
    one = plugin_api(f"/printers/{plugin_id}/events?since={before}&limit=1").json()
    assert len(one["events"]) == 1 and one["more"] is (len(logged) > 1)


def test_a_cursor_from_the_future_is_a_resync(hub, plugin_api):
    plugin_id = plugin_api("/printers").json()["printers"][0]["id"]
    for url, headers in (
        (f"{hub.url}/api/printers/{PRINTER}/events?since={2**62}", {}),
        (None, None),
    ):
        if url is None:
            body = plugin_api(f"/printers/{plugin_id}/events?since={2**62}").json()
        else:
            body = requests.get(url, headers=headers, timeout=10).json()
        assert body["events"] == [] and body["more"] is False
        assert body["resync"]["requested"] == 2**62
        assert set(body["resync"]) == {"requested", "oldestSeq", "lastSeq"}


@pytest.mark.parametrize(
    "query, message",
    [
        ("", "since: required"),
        ("?since=-1", "since: an integer"),
        ("?since=abc", "since: an integer"),
        ("?since=1&limit=0", "limit: an integer from 1 to 1000"),
        ("?since=1&limit=5000", "limit: an integer from 1 to 1000"),
        ("?since=99999999999999999999", "since: an integer"),
    ],
)
def test_bad_arguments_are_a_clear_400(hub, plugin_api, query, message):
    plugin_id = plugin_api("/printers").json()["printers"][0]["id"]
    for r in (
        requests.get(f"{hub.url}/api/printers/{PRINTER}/events{query}", timeout=10),
        plugin_api(f"/printers/{plugin_id}/events{query}"),
    ):
        assert r.status_code == 400, r.text
        assert message in r.json()["error"]


def test_unknown_printers_are_404(hub, plugin_api):
    for r in (
        requests.get(f"{hub.url}/api/printers/nope/status", timeout=10),
        plugin_api("/printers/nope/status"),
        plugin_api("/printers/nope/events?since=0"),
    ):
        assert r.status_code == 404
        assert "no such printer" in r.json()["error"]


def test_the_hubs_auth_holds_for_rest(token_hub):
    api = token_hub.url + "/api/printers"
    missing = requests.get(api, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"].startswith("missing credentials")
    bad = requests.get(api, headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid token"
    jwt = jwt_token()
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},
        {"X-Api-Key": TOKEN},
        {"Authorization": f"Bearer {jwt}"},
    ):
        ok = requests.get(api, headers=headers, timeout=10)
        assert ok.status_code == 200, ok.text
        assert [p["id"] for p in ok.json()["printers"]] == [PRINTER]
    expired = requests.get(
        api, headers={"Authorization": f"Bearer {jwt_token(-60)}"}, timeout=10
    )
    assert expired.status_code == 401 and "expired" in expired.json()["error"]
    # a token in the URL is not a credential
    assert requests.get(api + f"?token={TOKEN}", timeout=10).status_code == 401


def test_plugin_rest_needs_the_permission(octo):
    base = octo.url + "/plugin/fluxprint/api/printers"
    assert requests.get(base, timeout=10).status_code == 403
    nostatus = octo.keys["nostatus"]
    assert (
        requests.get(base, headers={"X-Api-Key": nostatus}, timeout=10).status_code == 403
    )
    viewer = octo.keys["viewer"]
    assert (
        requests.get(base, headers={"X-Api-Key": viewer}, timeout=10).status_code == 200
    )


def test_cors_only_for_allowed_origins(hub):
    api = f"{hub.url}/api/printers"
    foreign = requests.get(api, headers={"Origin": "https://evil.example"}, timeout=10)
    assert foreign.status_code == 403
    assert foreign.json()["error"] == "origin not allowed"
    assert "Access-Control-Allow-Origin" not in foreign.headers
    own = requests.get(api, headers={"Origin": hub.url}, timeout=10)
    assert own.status_code == 200
    assert own.headers["Access-Control-Allow-Origin"] == hub.url


def test_the_page_is_served_from_the_package(hub):
    page = requests.get(hub.url + "/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "http" not in csp
    assert "{{config}}" not in page.text
    assert "&quot;path&quot;: &quot;/socket.io/&quot;" in page.text
    assert '<script type="module" src="page/page.js">' in page.text
    js = requests.get(
        hub.url + "/page/page.js", headers={"Accept-Encoding": "gzip"}, timeout=10
    )
    assert js.status_code == 200 and js.headers["Content-Type"].startswith(
        "text/javascript"
    )
    assert js.headers.get("Content-Encoding") == "gzip"
    assert "socket.io" in js.text and len(js.content) > 10_000
    again = requests.get(
        hub.url + "/page/page.js",
        headers={"If-None-Match": js.headers["ETag"]},
        timeout=10,
    )
    assert again.status_code == 304
    assert requests.get(hub.url + "/page/page.css", timeout=10).status_code == 200
    assert requests.get(hub.url + "/page/../hub.yaml", timeout=10).status_code == 404
    assert requests.get(hub.url + "/page/other.js", timeout=10).status_code == 404


def test_the_page_and_rest_can_be_turned_off(octo, tmp_path):
    cfg = hub_config(octo, True)
    cfg["web"] = {"page": False, "rest": False}
    proc = HubProcess(str(tmp_path), cfg, free_port())
    proc.start()
    try:
        assert requests.get(proc.url + "/", timeout=10).status_code == 404
        assert requests.get(proc.url + "/page/page.js", timeout=10).status_code == 404
        assert requests.get(proc.url + "/api/printers", timeout=10).status_code == 404
        assert requests.get(proc.url + "/health", timeout=10).status_code == 200
    finally:
        proc.stop()
