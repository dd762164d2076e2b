"""What a client may put on the wire, checked before python-engineio and
python-socketio parse it.

Pure string checks, O(1) apart from splitting a long-polling body. A client of this
namespace sends only text: Engine.IO close/ping/pong/upgrade/noop packets and
messages that carry a Socket.IO CONNECT, DISCONNECT or EVENT. Binary frames,
base64 packets, Socket.IO ACK/CONNECT_ERROR/BINARY_* packets (the server never asks a
client for an ack, and no event takes binary data) are refused, so none of them
reaches a parser that would log a traceback or hold attachments in memory.
"""

from __future__ import annotations

from typing import Any, Optional

# Engine.IO packet types a client sends: 1 close, 2 ping ("2probe" on upgrade),
# 3 pong, 4 message, 5 upgrade, 6 noop
EIO_CLIENT_TYPES = frozenset("123456")
# Socket.IO packet types a client of ours sends: 0 connect, 1 disconnect, 2 event
SIO_CLIENT_TYPES = frozenset("012")
MAX_PAYLOAD_PACKETS = 16  # Engine.IO packets in one long-polling POST
MAX_EVENT_NAME = 64
MAX_EVENT_ARGS = 3  # event name and at most two arguments reach the handlers
# names python-socketio dispatches to its life-cycle handlers: a client sending an
# EVENT called "disconnect" would otherwise run the server's disconnect handler
RESERVED_EVENTS = frozenset(
    {
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    }
)

BINARY = "binary frames are not accepted"
EMPTY = "empty packet"
BAD_EIO = "bad Engine.IO packet"
BAD_SIO = "bad Socket.IO packet"
TOO_MANY = "too many packets"
TOO_LARGE = "message too large"


def check_eio_text(message: Any, max_bytes: int) -> Optional[str]:
    """None when ``message`` (one websocket frame, or one packet of a long-polling
    body) is acceptable; otherwise why not."""
    if not isinstance(message, str):
        return BINARY
    if not message:
        return EMPTY
    if len(message) > max_bytes:  # characters; tornado has bounded the bytes
        return TOO_LARGE
    kind = message[0]
    if kind == "b":
        return BINARY
    if kind not in EIO_CLIENT_TYPES:
        return BAD_EIO
    if kind == "4":
        # a Socket.IO packet follows; its first character is its type (a digit,
        # so python-engineio does not try to parse it as JSON)
        if len(message) < 2 or message[1] not in SIO_CLIENT_TYPES:
            return BAD_SIO
    elif len(message) > 16:
        return BAD_EIO  # control packets carry at most "probe"
    return None


def check_polling_body(body: Any, max_bytes: int) -> Optional[str]:
    """The same for a long-polling POST body (packets separated by 0x1e)."""
    if isinstance(body, (bytes, bytearray)):
        if len(body) > max_bytes:
            return TOO_LARGE
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return BINARY
    if not isinstance(body, str):
        return BINARY
    if not body:
        return EMPTY
    if body.count("\x1e") >= MAX_PAYLOAD_PACKETS:
        return TOO_MANY
    for part in body.split("\x1e"):
        error = check_eio_text(part, max_bytes)
        if error:
            return error
    return None


def check_event_data(data: Any) -> Optional[str]:
    """A decoded Socket.IO EVENT's data: ``[name, *args]`` with a short text name."""
    if not isinstance(data, list) or not data:
        return BAD_SIO
    name = data[0]
    if not isinstance(name, str) or not name or len(name) > MAX_EVENT_NAME:
        return BAD_SIO
    if name in RESERVED_EVENTS:
        return BAD_SIO
    if len(data) > MAX_EVENT_ARGS:
        return BAD_SIO
    return None
