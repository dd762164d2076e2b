"""The tornado request handler in front of engine.io: cheap refusals before
engine.io sees a request, the compression the settings ask for, and the cached
broadcast frames (``wsframes``)."""

from __future__ import annotations

from typing import Any, Callable

import socketio

from ..core.compression import compression_options
from . import wire, wsframes
from .guard import Guard
from .sessions import Sessions


def handler_class(
    sio: Any, guard: Guard, sessions: Sessions, compression: Callable[[], str]
) -> type:
    base = socketio.get_tornado_handler(sio)
    stats = guard.stats

    class FluxPrintHandler(wsframes.FramesHandlerMixin, base):  # type: ignore[misc, valid-type]
        async def open(self, *args, **kwargs):
            # a polling client upgrading names its engine.io sid in the query;
            # the write buffer of this handler is what the outbound budget measures
            eio_sid = self.get_query_argument("sid", None)
            if eio_sid:
                sessions.ws_handlers[eio_sid] = self
            await super().open(*args, **kwargs)

        def get_compression_options(self):
            # engineio always offers permessage-deflate at tornado's defaults
            # (~256 KiB of zlib state per connection); the setting decides
            return compression_options(compression())

        # ~~ security: cheap refusals before engine.io sees a request

        def check_origin(self, origin):
            # judged at the Socket.IO connect, where the refusal has a message
            return True

        @property
        def max_message_size(self):
            # tornado closes a websocket (1009) whose message is larger
            return guard.limits.max_message_bytes

        def set_header(self, name, value):
            # CORS answers for the host's own origin and the allowed ones only
            if name == "Access-Control-Allow-Origin" and not guard.cors_ok(self.request):
                return
            super().set_header(name, value)

        async def get(self, *args, **kwargs):
            if not self.get_query_argument("sid", None) and guard.busy():
                stats.busy += 1
                self.set_status(503)
                self.finish("too many connections")
                return
            await super().get(*args, **kwargs)

        async def post(self, *args, **kwargs):
            error = wire.check_polling_body(
                self.request.body, guard.limits.max_message_bytes
            )
            if error:
                stats.malformed += 1
                eio_sid = self.get_query_argument("sid", None)
                if eio_sid and eio_sid in sio.eio.sockets:
                    await sessions.close_eio(eio_sid)
                self.set_status(400)
                self.finish(error)
                return
            await super().post(*args, **kwargs)

        async def on_message(self, message):
            error = wire.check_eio_text(message, guard.limits.max_message_bytes)
            if error is None and not guard.frame_ok(self):
                error = "rate limited"
            if error:
                stats.malformed += 1
                self.close(1008, error)
                return
            await super().on_message(message)

    return FluxPrintHandler
