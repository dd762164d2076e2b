"""What OctoPrint 2.0 no longer keeps in its job and state data, remembered from
its events so that FluxPrint's payloads are the same on 1.11 and 2.0:

- the **user**: 2.0's files API does not pass the user to ``set_job`` for an
  upload or select with ``print=true``, and ``start_print`` then clears the job's
  owner, so PrintStarted, PrintDone and PrintFailed name nobody. The FileSelected
  event right before names the owner; the open job keeps that user.
- the **error text**: 2.0 fires PrintFailed before it has the error info
  (``error: "unknown"``); its Error event came first and carried the message.
- ``state.error``: 2.0's ``get_error()`` is "" once the connection is dropped; the
  connection's error is the same message.
- the **estimate**: 2.0 copies the analysed print time into the job when the job
  is created, before the analysis of a fresh upload finishes, and does not refresh
  it; MetadataAnalysisFinished carries the result.

On 1.11 every payload already has these, and OctoPrint's own values always win, so
the same code gives the same payloads on both. Pure; bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Optional

from . import shaping as shape

MAX_ESTIMATES = 64
UNKNOWN_ERRORS = (None, "", "unknown")

FileKey = tuple[Optional[str], Optional[str]]  # (origin, path)


def file_key(payload: Mapping[str, Any]) -> FileKey:
    """(origin, path) of a file or job event (``origin``, or ``storage`` in
    FileAdded-style payloads)."""
    origin = payload.get("origin", payload.get("storage"))
    return (shape.as_str(origin), shape.as_str(payload.get("path")))


class JobMemory:
    def __init__(self) -> None:
        self._selected: Optional[tuple[FileKey, str]] = None  # (file, who selected it)
        self._job_user: Optional[str] = None  # the user of the open job
        self._estimates: OrderedDict[FileKey, float] = OrderedDict()
        self._error: Optional[str] = None  # the last Error event's message

    # ~~ events

    def file_selected(self, payload: Mapping[str, Any]) -> None:
        user = shape.event_user(payload)
        if user:
            self._selected = (file_key(payload), user)

    def analysis_finished(self, payload: Mapping[str, Any]) -> None:
        result = payload.get("result")
        estimate = (
            shape.as_num(result.get("estimatedPrintTime"))
            if isinstance(result, Mapping)
            else None
        )
        if estimate is None:
            return
        key = file_key(payload)
        self._estimates.pop(key, None)
        self._estimates[key] = estimate
        while len(self._estimates) > MAX_ESTIMATES:
            self._estimates.popitem(last=False)

    def error(self, message: Optional[str]) -> None:
        if message:
            self._error = message

    # ~~ job events

    def started(self, payload: Mapping[str, Any]) -> Optional[str]:
        """A print started: its user (the selecting user where 2.0 names none)."""
        user = shape.event_user(payload)
        key = file_key(payload)
        if user is None and self._selected and self._selected[0] == key:
            user = self._selected[1]
        self._job_user = user
        if user:
            self._selected = (key, user)
        self._error = None
        return user

    def resumed(self, user: Optional[str]) -> None:
        """The job the log held open goes on after a restart (core/reconcile.py)."""
        self._job_user = user
        self._error = None

    def user(self, payload: Mapping[str, Any]) -> Optional[str]:
        """Who a later event of the open job is about: its own user, else the job's."""
        return shape.event_user(payload) or self._job_user

    def failure_text(self, error: Optional[str]) -> Optional[str]:
        return (self._error or error) if error in UNKNOWN_ERRORS else error

    # ~~ the state monitor's data

    def complete_job(self, job: dict) -> dict:
        file = job["file"]
        if file["path"] is None:
            return job
        key = (file["origin"], file["path"])
        if job["user"] is None and self._selected and self._selected[0] == key:
            job = {**job, "user": self._selected[1]}
        if job["estimatedPrintTime"] is None and key in self._estimates:
            job = {**job, "estimatedPrintTime": self._estimates[key]}
        return job

    @staticmethod
    def complete_state(state: dict, connection: Mapping[str, Any]) -> dict:
        if (
            state["error"] is None
            and state["flags"]["closedOrError"]
            and connection.get("state") == "error"
        ):
            return {**state, "error": connection.get("error")}
        return state
