"""Identity paths, origins and the key cache of auth.py; the wire checks of wire.py."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octoprint_fluxprint.core import auth
from octoprint_fluxprint.server import wire

# ~~ credentials


def creds(payload=None, cookie=False, **environ):
    return auth.extract_credentials(payload, environ, cookie)


def test_key_sources_in_order():
    assert creds({"apikey": "A"}, HTTP_X_API_KEY="B") == ("A", None)
    assert creds({}, HTTP_X_API_KEY="B", QUERY_STRING="apikey=C") == ("B", None)
    assert creds({"apikey": ""}, QUERY_STRING="EIO=4&apikey=C&transport=polling") == (
        "C",
        None,
    )
    assert creds(None, QUERY_STRING="EIO=4&transport=websocket") == (
        None,
        auth.MISSING,
    )


def test_session_cookie_is_tried_only_without_a_key():
    assert creds(None, cookie=True) == (None, None)
    assert creds({"apikey": "K"}, cookie=True) == ("K", None)
    assert creds("junk", cookie=True) == (None, auth.MALFORMED)


@pytest.mark.parametrize(
    "key",
    ["x" * 300, "bad\nkey", "caf\u00e9", 5, ["k"], {"k": 1}],
)
def test_malformed_keys(key):
    assert creds({"apikey": key}) == (None, auth.MALFORMED)


def test_oversized_query_is_malformed():
    assert creds(None, QUERY_STRING="apikey=" + "A" * 5000) == (None, auth.MALFORMED)


def test_credential_hides_its_secret():
    c = auth.Credential("apikey", "SECRETKEY123")
    assert "SECRETKEY123" not in repr(c) and "SECRETKEY123" not in str(c)
    d = auth.Decision(user="u", credential=c)
    assert "SECRETKEY123" not in repr(d)


@given(
    st.one_of(
        st.none(),
        st.text(max_size=300),
        st.integers(),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    )
)
def test_extraction_never_raises_and_never_returns_junk(value):
    key, error = creds({"apikey": value})
    assert key is None or error is None
    if key is not None:
        assert key.isascii() and key.isprintable() and len(key) <= auth.MAX_KEY_LENGTH


# ~~ cache


def test_key_cache_hashes_keys_and_is_bounded():
    calls = []

    def find(key):
        calls.append(key)
        return "user" if key == "good" else None

    cache = auth.KeyCache(size=3)
    assert cache.lookup("good", find) == "user"
    assert cache.lookup("good", find) == "user"
    assert calls == ["good"] and cache.hits == 1
    assert all(isinstance(k, bytes) and b"good" not in k for k in cache._entries)
    for i in range(10):
        cache.lookup(f"k{i}", find)
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0
    cache.lookup("good", find)
    assert calls.count("good") == 2


# ~~ origins


@pytest.mark.parametrize(
    "value,expected",
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("HTTPS://Studio.Example.com/", "https://studio.example.com"),
        ("http://x:80", "http://x"),
        ("https://x:443", "https://x"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("null", None),
        ("*", None),
        ("http://*.example.com", None),
        ("http://a/b", None),
        ("http://u:p@h", None),
        ("file://x", None),
        ("http://x:99999", None),
        ("http://x:", None),
        (5, None),
        ("", None),
    ],
)
def test_normalize_origin(value, expected):
    assert auth.normalize_origin(value) == expected


def test_normalize_origins_drops_junk_and_duplicates():
    assert auth.normalize_origins(["http://A:1", "http://a:1", "bad", 7]) == [
        "http://a:1"
    ]
    assert auth.normalize_origins("http://a") == []


def env(origin=None, host="127.0.0.1:5000", **extra):
    e = {"HTTP_HOST": host, "wsgi.url_scheme": "http", **extra}
    if origin is not None:
        e["HTTP_ORIGIN"] = origin
    return e


def test_origin_rules():
    allowed = ["https://studio.example.com"]
    assert auth.origin_allowed(env(), allowed)  # no Origin: credentials decide
    assert auth.origin_allowed(env("http://127.0.0.1:5000"), [])  # own origin
    assert auth.origin_allowed(env("https://studio.example.com"), allowed)
    assert not auth.origin_allowed(env("https://evil.example.com"), allowed)
    assert not auth.origin_allowed(env("null"), allowed)
    assert not auth.origin_allowed(env("http://127.0.0.1:5001"), [])
    proxied = env(
        "https://octopi.example.com",
        HTTP_X_FORWARDED_HOST="octopi.example.com",
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert auth.origin_allowed(proxied, [])


def test_same_origin():
    assert auth.is_same_origin(env())
    assert auth.is_same_origin(env("http://127.0.0.1:5000"))
    assert not auth.is_same_origin(env("https://studio.example.com"))


# ~~ wire


@pytest.mark.parametrize(
    "frame",
    [
        '40/ws/printing,{"apikey":"k"}',
        "41/ws/printing,",
        '42/ws/printing,1["a",{}]',
        "3",
        "2probe",
        "5",
        "6",
        "1",
    ],
)
def test_wire_accepts_what_clients_send(frame):
    assert wire.check_eio_text(frame, 16384) is None


@pytest.mark.parametrize(
    "frame,error",
    [
        (b"\x00\x01", wire.BINARY),
        ("bAAAA", wire.BINARY),
        ("", wire.EMPTY),
        ("0", wire.BAD_EIO),
        ("7", wire.BAD_EIO),
        ("x", wire.BAD_EIO),
        ("4", wire.BAD_SIO),
        ("4[[[[]]]]", wire.BAD_SIO),
        ('43/ws/printing,1["x"]', wire.BAD_SIO),
        ("44/ws/printing,{}", wire.BAD_SIO),
        ("451-/ws/printing,[]", wire.BAD_SIO),
        ("3" + "x" * 100, wire.BAD_EIO),
        ("42" + "x" * 20000, wire.TOO_LARGE),
    ],
)
def test_wire_refuses(frame, error):
    assert wire.check_eio_text(frame, 16384) == error


def test_polling_body():
    ok = '40/ws/printing,{}\x1e42/ws/printing,["printer:request_status"]'
    assert wire.check_polling_body(ok.encode(), 16384) is None
    assert wire.check_polling_body(b"\xff\xfe", 16384) == wire.BINARY
    assert wire.check_polling_body(b"", 16384) == wire.EMPTY
    assert wire.check_polling_body("\x1e".join(["6"] * 40), 16384) == wire.TOO_MANY
    assert wire.check_polling_body(b"4" + b"2" * 20000, 16384) == wire.TOO_LARGE


def test_event_data():
    assert wire.check_event_data(["printer:subscribe", {}]) is None
    for bad in (
        None,
        [],
        {},
        [1],
        [["x"]],
        ["x" * 100],
        ["a", 1, 2, 3],
        "x",
        ["connect"],
        ["disconnect", "x"],
    ):
        assert wire.check_event_data(bad) == wire.BAD_SIO


@given(st.one_of(st.text(max_size=64), st.binary(max_size=64)))
def test_wire_checks_never_raise(frame):
    wire.check_eio_text(frame, 32)
    wire.check_polling_body(frame, 32)


def test_repeated_origin_header():
    assert auth.origin_allowed(env("http://127.0.0.1:5000,http://127.0.0.1:5000"), [])
    assert not auth.origin_allowed(env("http://127.0.0.1:5000,https://evil.example"), [])
