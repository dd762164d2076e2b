"""Who a client is, in OctoPrint's terms: API keys (users' and Application Keys',
through the ``octoprint.accesscontrol.keyvalidator`` hooks), OctoPrint's browser
session cookie, the FluxPrint permission, and the sweep that disconnects clients
whose credentials stopped holding. Runs on the loop: in-memory look-ups only (no
password hashing, no I/O)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

from ..core import auth

_logger = logging.getLogger(__name__)

SWEEP_MS = 5000


def receive_permission() -> Any:
    """PLUGIN_FLUXPRINT_RECEIVE once registered; STATUS until then."""
    from octoprint.access.permissions import Permissions

    # no "or": a flask-principal Permission's truth value evaluates it
    permission = Permissions.find("PLUGIN_FLUXPRINT_RECEIVE")
    return Permissions.STATUS if permission is None else permission


class Identity:
    """The engine's authenticator for OctoPrint, and its revocation sweep."""

    def __init__(self, user_manager: Any, plugin_manager: Any):
        self._user_manager = user_manager
        self._plugin_manager = plugin_manager
        self.key_cache = auth.KeyCache()
        self._engine: Any = None
        self._timer: Any = None

    # ~~ authentication

    def authenticate(self, auth_payload: Any, environ: dict) -> auth.Decision:
        """An API key (auth payload, X-Api-Key header, apikey query parameter), else
        OctoPrint's browser session cookie (same origin only)."""
        cookie = "HTTP_COOKIE" in environ and auth.is_same_origin(environ)
        apikey, error = auth.extract_credentials(auth_payload, environ, cookie)
        if error:
            return auth.Decision(reason=error)
        if apikey is None:
            return self._authenticate_session(environ)
        decision = auth.decide(
            apikey,
            lambda key: self.key_cache.lookup(key, self.user_for_apikey),
            self.may_connect,
        )
        if not decision.ok:
            return decision
        return auth.Decision(
            user=decision.user, credential=auth.Credential("apikey", apikey)
        )

    def _authenticate_session(self, environ: dict) -> auth.Decision:
        found = self._session_of(environ)
        if found is None:
            return auth.Decision(reason=auth.MISSING)
        user_id, session_id = found
        credential = auth.Credential("session", session_id, user_id)
        return self.recheck(credential, auth.MISSING)

    def _session_of(self, environ: dict) -> Optional[tuple[str, str]]:
        """(user id, OctoPrint session id) from a valid, signed Flask session cookie
        of a logged-in user, or None. HMAC checks and dictionary look-ups only."""
        handler = environ.get("tornado.handler")
        request = getattr(handler, "request", None)
        if request is None:
            return None
        try:
            import flask
            from octoprint.server import app
            from octoprint.server.util.flask import validate_session_signature
            from octoprint.server.util.tornado import WsgiInputContainer

            with app.request_context(WsgiInputContainer.environ(request, body=b"")):
                session = app.session_interface.open_session(app, flask.request)
                if not session:
                    return None
                user_id = session.get("_user_id")
                session_id = session.get("usersession.id")
                signature = session.get("usersession.signature") or ""
                if not (isinstance(user_id, str) and isinstance(session_id, str)):
                    return None
                if not validate_session_signature(signature, user_id, session_id):
                    return None
                return user_id, session_id
        except Exception:
            _logger.debug("Unreadable session cookie", exc_info=True)
            return None

    def user_for_apikey(self, apikey: str) -> Any:
        user = self._user_manager.find_user(apikey=apikey)
        if user is not None:
            return user
        for name, hook in self._plugin_manager.get_hooks(
            "octoprint.accesscontrol.keyvalidator"
        ).items():
            try:
                user = hook(apikey)
            except Exception:
                _logger.exception("API key validator of plugin %s failed", name)
                continue
            if user is not None:
                return user
        return None

    @staticmethod
    def may_connect(user: Any) -> bool:
        return bool(user.has_permission(receive_permission()))

    def recheck(self, credential: auth.Credential, gone: str) -> auth.Decision:
        """Do these credentials still hold? No cache: fresh in-memory look-ups."""
        if credential.kind == "session":
            # find_user(userid, session) falls back to the plain user when the
            # session is gone: ask for the session itself
            manager = self._user_manager
            user = None
            if manager.validate_user_session(credential.user_id, credential.secret):
                user = manager.find_user(userid=credential.user_id)
        else:
            user = self.user_for_apikey(credential.secret)
        if user is None:
            return auth.Decision(reason=gone)
        decision = auth.decide("-", lambda _key: user, self.may_connect)
        if not decision.ok:
            return decision
        return auth.Decision(user=user, credential=credential)

    # ~~ the revocation sweep (on the loop)

    def start_sweep(self, loop: Any, engine: Any) -> None:
        from tornado.ioloop import PeriodicCallback

        self._engine = engine
        self._timer = PeriodicCallback(self.sweep, SWEEP_MS)
        loop.add_callback(self._timer.start)

    def sweep(self) -> None:
        """Every SWEEP_MS: disconnects the clients whose key was revoked, whose
        session ended, whose user was deactivated, deleted or lost the permission;
        closes engine.io sessions that never joined; empties the key cache."""
        engine = self._engine
        if engine is None:
            return
        self.key_cache.clear()
        for sid, info in list(engine.clients.items()):
            credential = info.credential
            if credential is None:
                continue
            gone = "session ended" if credential.kind == "session" else "API key revoked"
            try:
                decision = self.recheck(credential, gone)
            except Exception:
                _logger.exception("Re-checking a client's credentials failed")
                continue
            if not decision.ok:
                asyncio.ensure_future(engine.drop(sid, decision.reason))
        asyncio.ensure_future(engine.reap(time.monotonic()))
