"""What FluxPrint knows about one printer, shaped from OctoPrint's raw data, and
what changes go to which room when.

Inputs are raw OctoPrint data (printer-callback dicts and event payloads), handed
over from OctoPrint's threads as they are (or relayed from a plugin, in the hub);
all shaping happens here, on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Callable, Optional

from . import reconcile
from . import schema as S
from . import shaping as shape
from .jobmemory import UNKNOWN_ERRORS, JobMemory, file_key
from .rooms import Clock, Rooms, Sink

_logger = logging.getLogger(__name__)

# OctoPrint events -> FluxPrint job events
JOB_EVENTS = {
    "PrintStarted": S.EV_JOB_STARTED,
    "PrintPaused": S.EV_JOB_PAUSED,
    "PrintResumed": S.EV_JOB_RESUMED,
    "PrintDone": S.EV_JOB_COMPLETE,
    "PrintFailed": S.EV_JOB_FAILED,
}
CONNECTION_EVENTS = (
    "Connecting",
    "Connected",
    "Disconnected",
    "Error",
    "PrinterStateChanged",
)
# not sent on: what OctoPrint 2.0 no longer keeps in the job comes from these
FILE_EVENTS = ("FileSelected", "MetadataAnalysisFinished")
HANDLED_EVENTS = (
    frozenset(JOB_EVENTS) | frozenset(CONNECTION_EVENTS) | frozenset(FILE_EVENTS)
)
ERROR_STATE_IDS = ("ERROR", "CLOSED_WITH_ERROR")
# OctoPrint 2.0 may fire PrintFailed before the Error event that carries the text
# (core/jobmemory.py): a job_failed without one waits this long for it
ERROR_WAIT = 2.0


class PrinterState(Rooms):
    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        next_seq: Callable[[], int],
        printer_id: str,
        intervals: Mapping[str, float],
        keyframe: float = 0.0,
    ):
        super().__init__(sink, clock, next_seq, printer_id, intervals, keyframe)
        # what the plugin holds; shaped, never OctoPrint's own objects
        self.temperature: dict[str, dict] = {}
        self.offsets: dict[str, Any] = {}
        self.state: dict = shape.shape_state(None)
        self.job: dict = shape.shape_job(None)
        self.progress: dict = shape.shape_progress(None, self.state["text"], self.job)
        self.connection: dict = shape.shape_connection("disconnected")
        self.last_ts: int = 0
        self.last_temperature_ts: Optional[int] = None
        self._job_open = False
        # after a job's end: the ended job's path, whose progress is not sent again
        self._ended_path: Optional[str] = None
        self.memory = JobMemory()  # what OctoPrint 2.0 drops, from its events
        # a job_failed waiting for its error text: (body, ts, timer)
        self._held: Optional[tuple[dict, int, Any]] = None
        # the open job a restart cut (core/reconcile.py), until it is decided
        self.reconciler: Optional[reconcile.Reconciler] = None
        self._reconcile_timer: Optional[tuple[float, Any]] = None  # (when, handle)

    # ~~ payloads

    def status_body(self) -> dict:
        return {
            "state": self.state,
            "temperature": self.temperature,
            "job": self.job,
            "progress": self.progress,
            "connection": self.connection,
        }

    def history(self, samples: list, minutes: float) -> list[dict]:
        """OctoPrint's temperature history (``time`` in seconds) of the last minutes,
        shaped like printer:temperature with ``ts``."""
        cutoff = self.clock.wall_ms() - minutes * 60_000
        out = []
        for sample in samples:
            when = (
                shape.as_num(sample.get("time")) if isinstance(sample, Mapping) else None
            )
            if when is None or when * 1000 < cutoff:
                continue
            shaped = shape.shape_temperature(sample, self.offsets)
            shaped["ts"] = int(when * 1000)
            out.append(shaped)
        return out

    def status_ts(self) -> int:
        return self.last_ts or self.clock.wall_ms()

    def status_payload(self) -> dict:
        """A fresh full status from what the printer state holds, with a new seq."""
        return self._meta(self.status_body(), self.status_ts())

    # ~~ inputs from OctoPrint (already on the loop)

    def on_temperature(self, data: Mapping[str, Any], ts_ns: int) -> None:
        self.temperature = shape.shape_temperature(data, self.offsets)
        self.last_ts = max(self.last_ts, ts_ns // 1_000_000)
        if not self.temperature:
            # no heaters (disconnected): nothing to plot, but status changed
            self._offer("status", S.EV_STATUS, self.status_body(), ts_ns)
            return
        self.last_temperature_ts = ts_ns // 1_000_000
        self._offer("temperature", S.EV_TEMPERATURE, self.temperature, ts_ns)
        self._offer("status", S.EV_STATUS, self.status_body(), ts_ns)

    def on_current(self, data: Mapping[str, Any], ts_ns: int) -> None:
        offsets = data.get("offsets")
        if isinstance(offsets, Mapping) and dict(offsets) != self.offsets:
            self.offsets = dict(offsets)
            self.temperature = shape.with_offsets(self.temperature, self.offsets)
        state = self.memory.complete_state(
            shape.shape_state(data.get("state")), self.connection
        )
        state_changed = state != self.state
        self.state = state
        self.job = self.memory.complete_job(shape.shape_job(data.get("job")))
        self.progress = shape.shape_progress(
            data.get("progress"), state["text"], self.job
        )
        self.last_ts = max(self.last_ts, ts_ns // 1_000_000)
        self._reconcile()
        if self._ended_path is not None and self.job["file"]["path"] != self._ended_path:
            self._ended_path = None  # another file: its progress is news
        if self._ended_path is None:
            self._offer("progress", S.EV_PROGRESS, self.progress, ts_ns)
        self._offer("status", S.EV_STATUS, self.status_body(), ts_ns, force=state_changed)

    def on_event(
        self, name: str, payload: Optional[Mapping[str, Any]], ts_ns: int
    ) -> None:
        payload = payload or {}
        ts = ts_ns // 1_000_000
        if name in JOB_EVENTS:
            self._job_event(name, payload, ts)
        elif name in CONNECTION_EVENTS:
            self._connection_event(name, payload, ts)
        elif name == "FileSelected":
            self.memory.file_selected(payload)
        elif name == "MetadataAnalysisFinished":
            self.memory.analysis_finished(payload)

    def _job_event(self, name: str, payload: Mapping[str, Any], ts: int) -> None:
        self._release_failure()  # a held job_failed comes before anything newer
        if self.reconciler is not None and not self.reconciler.done:
            verdict = self.reconciler.job_event(file_key(payload), self.clock.monotonic())
            if verdict is not None:
                self._close_cut(verdict, ts)
                if verdict.resumed and name in ("PrintStarted", "PrintResumed"):
                    return  # it is the job the log holds: job_resumed said it
        if name == "PrintStarted":
            self._job_open = True
            self._ended_path = None
        elif name in ("PrintDone", "PrintFailed"):
            if not self._job_open:
                # one notice per ended job (OctoPrint never sends two, but a replayed
                # or late event must not make a second one)
                _logger.debug("Ignoring %s for a job that already ended", name)
                return
            self._job_open = False
            self._last_progress(name, payload, ts)
        if name == "PrintStarted":
            user = self.memory.started(payload)
        else:
            user = self.memory.user(payload)
        file = shape.file_from_event(payload)
        body: dict[str, Any] = {
            "file": file,
            "filename": file["name"],
            "user": user,
            "timestamp": ts,
        }
        if name == "PrintDone":
            body["printTime"] = shape.as_num(payload.get("time"))
        elif name == "PrintFailed":
            reason = payload.get("reason")
            body["reason"] = "cancelled" if reason == "cancelled" else "error"
            body["error"] = (
                self.memory.failure_text(shape.as_str(payload.get("error")))
                if body["reason"] == "error"
                else None
            )
            body["progress"] = shape.failed_progress(payload)
            body["printTime"] = shape.as_num(payload.get("time"))
            if body["reason"] == "error" and body["error"] in UNKNOWN_ERRORS:
                self._hold_failure(body, ts)
                return
        self._emit(JOB_EVENTS[name], body, ts, "jobs")

    def _hold_failure(self, body: dict, ts: int) -> None:
        """OctoPrint 2.0 builds PrintFailed when its state turns to error, before it
        sets the error info, and fires it from another thread: it can reach the
        event bus before the Error event that carries the text. The job_failed
        waits for that Error, at most ``ERROR_WAIT`` s."""
        when = self.clock.monotonic() + ERROR_WAIT
        self._held = (body, ts, self.sink.call_at(when, self._release_failure))

    def _release_failure(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        body, ts, timer = held
        self.sink.cancel(timer)
        body["error"] = self.memory.failure_text(body["error"])
        self._emit(S.EV_JOB_FAILED, body, ts, "jobs")

    def _last_progress(self, name: str, payload: Mapping[str, Any], ts: int) -> None:
        """A job's last word is its job event: its final progress goes out first,
        and the progress channel stays quiet about it afterwards."""
        final = dict(self.progress)
        print_time = shape.as_num(payload.get("time"))
        if print_time is not None:
            final["printTime"] = print_time
        if name == "PrintDone":
            final["completion"] = 100.0
            final["printTimeLeft"] = 0
        else:
            failed = shape.failed_progress(payload)
            if failed is not None:
                final["completion"] = failed
        self.progress = final
        self._ended_path = final["file"]["path"]
        self._flush("progress", S.EV_PROGRESS, final, ts * 1_000_000)

    def job_known_open(self, is_printing: bool) -> None:
        """At startup: a print that is already running will end with a notice."""
        self._job_open = is_printing

    def _connection_event(self, name: str, payload: Mapping[str, Any], ts: int) -> None:
        current = self.connection
        port = current.get("port")
        baudrate = current.get("baudrate")
        error = None
        if name == "Connecting":
            state = "connecting"
        elif name == "Connected":
            state = "connected"
            port = payload.get("port", port)
            baudrate = payload.get("baudrate", baudrate)
        elif name == "Disconnected":
            if current["state"] == "error":
                return  # the connection closed because of the error already reported
            state = "disconnected"
        elif name == "Error":
            state = "error"
            error = shape.as_str(payload.get("error")) or "unknown error"
            self.memory.error(shape.as_str(payload.get("error")))
            self.set_connection(state, port, baudrate, error, ts)
            self._release_failure()  # the text a held job_failed waited for
            return
        else:  # PrinterStateChanged: only catches errors that came without an Error event
            if payload.get("state_id") not in ERROR_STATE_IDS:
                return
            state = "error"
            error = current.get("error") or shape.as_str(payload.get("state_string"))
        self.set_connection(state, port, baudrate, error, ts)

    def set_connection(
        self,
        state: str,
        port: Any = None,
        baudrate: Any = None,
        error: Optional[str] = None,
        ts: Optional[int] = None,
        announce: bool = True,
    ) -> None:
        connection = shape.shape_connection(state, port, baudrate, error)
        if connection == self.connection:
            return
        changed_state = connection["state"] != self.connection["state"]
        self.connection = connection
        if ts is None:
            ts = self.clock.wall_ms()
        self.last_ts = max(self.last_ts, ts)
        if not announce:
            return
        if changed_state or connection["state"] == "connected":
            self._announce_connection(ts)
        self._offer("status", S.EV_STATUS, self.status_body(), ts * 1_000_000, force=True)
        self._reconcile()

    def _announce_connection(self, ts: int) -> None:
        connection = self.connection
        event = {**connection, "connected": connection["state"] == "connected"}
        event["timestamp"] = ts
        self._emit(S.EV_CONNECTION, event, ts, "connection")

    # ~~ restarts (core/reconcile.py)

    def restarted(
        self,
        job: Optional[reconcile.OpenJob],
        logged_connection: Optional[str],
        **limits: float,
    ) -> None:
        """At startup, on the loop, after the first look at the printer: the
        connection the log last recorded is corrected if it is not what it is now
        (OctoPrint was killed while connected), and an open job the log holds is
        ended or resumed as soon as what OctoPrint reports decides it."""
        if (
            logged_connection is not None
            and logged_connection != self.connection["state"]
        ):
            self._announce_connection(self.clock.wall_ms())
        if job is not None:
            self.reconciler = reconcile.Reconciler(job, self.clock.monotonic(), **limits)
            self._reconcile()

    def _reconcile(self) -> None:
        reconciler = self.reconciler
        if reconciler is None or reconciler.done:
            return
        verdict = reconciler.observe(
            self.connection["state"],
            reconcile.busy(self.state),
            file_key(self.job["file"]),
            self.clock.monotonic(),
        )
        if verdict is not None:
            self._close_cut(verdict, self.clock.wall_ms())
            return
        due = reconciler.due()
        timer = self._reconcile_timer
        if timer is not None and timer[0] == due:
            return  # armed for then already (the state monitor reports twice a second)
        self._cancel_reconcile_timer()
        if due is not None:
            self._reconcile_timer = (
                due,
                self.sink.call_at(due, self._on_reconcile_timer),
            )

    def _on_reconcile_timer(self) -> None:
        self._reconcile_timer = None
        self._reconcile()

    def _cancel_reconcile_timer(self) -> None:
        if self._reconcile_timer is not None:
            self.sink.cancel(self._reconcile_timer[1])
            self._reconcile_timer = None

    def _close_cut(self, verdict: Any, ts: int) -> None:
        assert self.reconciler is not None
        self._cancel_reconcile_timer()
        event, body = self.reconciler.body(verdict, ts)
        if verdict.resumed:
            self._job_open = True
            self._ended_path = None
            self.memory.resumed(body["user"])
        self._emit(event, body, ts, "jobs")

    def shutdown(self) -> None:
        """OctoPrint is shutting down (on the loop, run once more): a held
        job_failed goes out, the connection is logged as disconnected, and a job
        OctoPrint streams itself ends with it (one the printer holds may go on: the
        next start decides)."""
        self._release_failure()
        self.reconciler = None  # undecided: the log still holds it open for next time
        self._cancel_reconcile_timer()
        ts = self.clock.wall_ms()
        current = self.connection
        self.set_connection("disconnected", current["port"], current["baudrate"], ts=ts)
        if not (self._job_open and reconcile.cut_at_shutdown(self.job["file"]["origin"])):
            return
        self._job_open = False
        self._last_progress("PrintFailed", {}, ts)
        user = self.memory.user({}) or self.job["user"]
        progress = self.progress
        body = reconcile.interrupted(
            self.job["file"],
            user,
            ts,
            reconcile.SHUT_DOWN,
            progress["completion"],
            progress["printTime"],
        )
        self._emit(S.EV_JOB_FAILED, body, ts, "jobs")
