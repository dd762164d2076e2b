"""Helpers for the security tests (issue #3): settings, throw-away users, browser
logins, application keys through OctoPrint's Application Keys workflow."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

SECURITY_DEFAULTS = {
    "allowed_origins": [],
    "max_connections": 100,
    "max_connections_per_user": 20,
    "rate_limit": {"burst": 20, "per_second": 5.0, "disconnect_after": 50},
    "max_message_bytes": 16384,
}


def set_security(octo, **values):
    r = octo.api("POST", "/api/settings", json={"plugins": {"fluxprint": values}})
    assert r.status_code == 200, r.text
    time.sleep(0.1)  # applied on the loop
    return octo.api("GET", "/api/settings").json()["plugins"]["fluxprint"]


@pytest.fixture
def security(octo):
    """Set security settings for one test; the defaults come back afterwards."""
    yield lambda **values: set_security(octo, **values)
    set_security(octo, **SECURITY_DEFAULTS)


def health_detail(octo, user="admin"):
    r = octo.api("GET", "/plugin/fluxprint/health?detail=1", user=user)
    assert r.status_code == 200, r.text
    return r.json()["detail"]


class TempUser:
    def __init__(self, octo, groups=("users",)):
        self.octo = octo
        self.name = "sec" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(12)
        r = octo.api(
            "POST",
            "/api/access/users",
            json={
                "name": self.name,
                "password": self.password,
                "active": True,
                "groups": list(groups),
                "permissions": [],
            },
        )
        assert r.status_code == 200, r.text
        r = octo.api("POST", f"/api/access/users/{self.name}/apikey")
        assert r.status_code == 200, r.text
        self.apikey = r.json()["apikey"]

    def update(self, **values):
        r = self.octo.api("PUT", f"/api/access/users/{self.name}", json=values)
        assert r.status_code == 200, r.text

    def delete(self):
        self.octo.api("DELETE", f"/api/access/users/{self.name}")


@pytest.fixture
def temp_user(octo):
    made = []

    def factory(groups=("users",)):
        user = TempUser(octo, groups)
        made.append(user)
        return user

    yield factory
    for user in made:
        user.delete()


def browser_login(octo, user, password) -> requests.Session:
    """Logs in like OctoPrint's login page: CSRF cookie first, then POST /api/login."""
    session = requests.Session()
    session.get(octo.url + "/", timeout=15)
    token = next(
        (v for k, v in session.cookies.items() if k.startswith("csrf_token")), None
    )
    assert token, session.cookies.keys()
    r = session.post(
        octo.url + "/api/login",
        json={"user": user, "pass": password, "remember": False},
        headers={"X-CSRF-Token": token},
        timeout=15,
    )
    assert r.status_code == 200, r.text
    session.headers["X-CSRF-Token"] = token
    return session


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{k}={v}" for k, v in session.cookies.items())


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
