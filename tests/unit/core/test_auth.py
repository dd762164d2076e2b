from octoprint_fluxprint.core import auth


class User:
    def __init__(self, name, active=True, perms=("STATUS",)):
        self.name, self.is_active, self.perms = name, active, perms


USERS = {
    "good": User("good"),
    "off": User("off", active=False),
    "weak": User("weak", perms=()),
}


def decide(auth_payload, environ=None):
    key, error = auth.extract_apikey(auth_payload, environ or {})
    if error:
        return auth.Decision(reason=error)
    return auth.decide(key, USERS.get, lambda u: "STATUS" in u.perms)


def test_key_in_auth_payload_or_header():
    assert decide({"apikey": "good"}).user.name == "good"
    assert decide(None, {"HTTP_X_API_KEY": "good"}).ok
    assert decide({"apikey": "good"}, {"HTTP_X_API_KEY": "weak"}).ok  # auth wins


def test_refusals_say_why():
    assert decide(None).reason == "missing credentials"
    assert decide({}).reason == "missing credentials"
    assert decide({"apikey": "nope"}).reason == "invalid API key"
    assert decide({"apikey": "weak"}).reason == "permission denied"
    assert decide({"apikey": "off"}).reason == "user is deactivated"
    assert decide("a string").reason == "malformed credentials"
    assert decide({"apikey": 5}).reason == "malformed credentials"
    assert decide({"apikey": "x" * 1000}).reason == "malformed credentials"
    assert decide({"apikey": "bad\nkey"}).reason == "malformed credentials"
