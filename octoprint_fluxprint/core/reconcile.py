"""Closing what a restart cut: the decision, pure.

When the plugin starts, its event log may end with a job that is still open (the
last job event is job_started, job_paused or job_resumed: OctoPrint stopped, or
was killed, during the print). ``open_job`` finds it in the log's tail; a
``Reconciler`` then decides, from what OctoPrint reports about the printer, how
it ends:

- OctoPrint reports the same file printing (or paused): the job went on through
  the restart (an SD print does): ``job_resumed``, and the job is open again.
- A file OctoPrint streams itself (origin ``local``) cannot outlive OctoPrint:
  ``job_failed {reason: "interrupted"}`` at once, unless OctoPrint reports it
  printing at the first look.
- A file the printer holds (its SD card): once the printer is connected and idle
  for ``grace`` seconds (OctoPrint needs a moment to notice a print the printer
  runs on its own), or when the printer did not connect within ``timeout``
  seconds: ``job_failed {reason: "interrupted"}``.
- Another file printing: ``job_failed {reason: "interrupted"}``.

The clock is passed in (monotonic seconds); nothing here reads the time or does
I/O. ``core.printer.PrinterState`` feeds it and emits what it decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from . import schema as S
from . import shaping as shape

JOB_OPEN = (S.EV_JOB_STARTED, S.EV_JOB_PAUSED, S.EV_JOB_RESUMED)
JOB_END = (S.EV_JOB_COMPLETE, S.EV_JOB_FAILED)
TAIL = 256  # durable events read from the log's end at startup
CONNECT_TIMEOUT = 60.0  # s without a connection before a printer-held job is failed
REPORT_GRACE = 10.0  # s connected and idle before a printer-held job is failed
INTERRUPTED = "interrupted"  # job_failed's reason
STREAMED = "local"  # the origin of files OctoPrint streams line by line
BUSY_FLAGS = ("printing", "paused", "pausing", "resuming", "cancelling", "finishing")

# what is known, as job_failed's error
SHUT_DOWN = "OctoPrint was shut down during the print"
STOPPED = "OctoPrint stopped during the print without shutting down"
NOT_PRINTING = "the printer was no longer printing it after OctoPrint restarted"
OTHER_FILE = "the printer was printing another file after OctoPrint restarted"
NO_CONNECTION = (
    f"the printer did not reconnect within {CONNECT_TIMEOUT:.0f} s "
    "after OctoPrint restarted"
)

FileKey = tuple[Optional[str], Optional[str]]  # (origin, path)


class LogRow(Protocol):
    """A committed event of the log (``store.eventfile.Row``)."""

    ts: int
    event: str
    payload: dict


@dataclass(frozen=True)
class OpenJob:
    """The log's last job, still open."""

    file: dict  # as the job events carried it (name, path, origin, size)
    user: Optional[str]
    paused: bool  # its last event was job_paused
    print_time: Optional[float]  # s printing, where the log shows when it stopped
    shut_down: bool  # a clean shutdown (a "disconnected") was logged after it

    @property
    def key(self) -> FileKey:
        return (self.file.get("origin"), self.file.get("path"))

    @property
    def streamed(self) -> bool:
        return self.file.get("origin") == STREAMED


@dataclass(frozen=True)
class Verdict:
    resumed: bool  # job_resumed; else job_failed {reason: interrupted, error}
    error: Optional[str] = None


def open_job(rows: Sequence[LogRow]) -> Optional[OpenJob]:
    """The open job at the end of ``rows`` (the log's tail, ascending), if any."""
    last = next(
        (i for i in range(len(rows) - 1, -1, -1) if rows[i].event in JOB_OPEN + JOB_END),
        None,
    )
    if last is None or rows[last].event in JOB_END:
        return None
    first = last
    while first > 0 and rows[first].event != S.EV_JOB_STARTED:
        if rows[first - 1].event in JOB_END:
            break  # the log's tail starts mid-job, or a resumed job after an end
        first -= 1
    job_rows = [r for r in rows[first : last + 1] if r.event in JOB_OPEN]
    after = rows[last + 1 :]
    cut = next(
        (
            r.ts
            for r in after
            if r.event == S.EV_CONNECTION
            and r.payload.get("state") in ("disconnected", "error")
        ),
        None,
    )
    payload = rows[last].payload
    return OpenJob(
        file=shape.shape_job_file(payload.get("file")),
        user=shape.as_str(payload.get("user")),
        paused=rows[last].event == S.EV_JOB_PAUSED,
        print_time=_print_time(job_rows, cut),
        shut_down=any(
            r.event == S.EV_CONNECTION and r.payload.get("state") == "disconnected"
            for r in after
        ),
    )


def _print_time(job_rows: Sequence[LogRow], cut: Optional[int]) -> Optional[float]:
    """Seconds printing from job_started to where the log shows the job stopped
    (a pause, or the connection's end), pauses left out; None when unknown."""
    if not job_rows or job_rows[0].event != S.EV_JOB_STARTED:
        return None
    total = 0
    running: Optional[int] = None
    for row in job_rows:
        if row.event == S.EV_JOB_PAUSED:
            if running is not None:
                total += row.ts - running
            running = None
        elif running is None:  # started, or resumed
            running = row.ts
    if running is not None:
        if cut is None:
            return None  # killed while printing: when it stopped is not logged
        total += cut - running
    return max(0, total) / 1000.0


def last_connection(rows: Sequence[LogRow]) -> Optional[str]:
    """The connection state the log last recorded."""
    for row in reversed(rows):
        if row.event == S.EV_CONNECTION:
            return shape.as_str(row.payload.get("state"))
    return None


def busy(state: Mapping[str, Any]) -> bool:
    """The shaped ``state``: a job is running, paused, or being ended."""
    flags = state.get("flags") or {}
    return any(flags.get(name) for name in BUSY_FLAGS)


def cut_at_shutdown(origin: Optional[str]) -> bool:
    """At a clean shutdown, does the open job end with OctoPrint? A file it streams
    does; one the printer holds may go on."""
    return origin == STREAMED


class Reconciler:
    """Decides once how the open job ends; ``observe`` after every change of what
    OctoPrint reports, and again at ``due()`` even without one."""

    def __init__(
        self,
        job: OpenJob,
        now: float,
        timeout: float = CONNECT_TIMEOUT,
        grace: float = REPORT_GRACE,
    ):
        self.job = job
        self.since = now
        self.timeout = timeout
        self.grace = grace
        self.idle_since: Optional[float] = None  # connected and not printing since
        self.verdict: Optional[Verdict] = None

    @property
    def done(self) -> bool:
        return self.verdict is not None

    def observe(
        self, connection: str, is_busy: bool, key: FileKey, now: float
    ) -> Optional[Verdict]:
        """What OctoPrint reports now: the connection's state, whether a job runs,
        and the current job's file. Returns the verdict once, else None."""
        if self.verdict is not None:
            return None
        if is_busy:
            if key == self.job.key:
                return self._decide(Verdict(True))
            return self._decide(Verdict(False, OTHER_FILE))
        if self.job.streamed:
            return self._decide(
                Verdict(False, SHUT_DOWN if self.job.shut_down else STOPPED)
            )
        if connection == "connected":
            if self.idle_since is None:
                self.idle_since = now
            if now - self.idle_since >= self.grace:
                return self._decide(Verdict(False, NOT_PRINTING))
            return None
        self.idle_since = None
        if now - self.since >= self.timeout:
            return self._decide(Verdict(False, NO_CONNECTION))
        return None

    def job_event(self, key: FileKey, now: float) -> Optional[Verdict]:
        """A job event of OctoPrint's arrived first: it is about a job OctoPrint
        runs, so it tells as much as a busy report for its file."""
        return self.observe("connected", True, key, now)

    def due(self) -> Optional[float]:
        """When ``observe`` must run again if nothing changes (monotonic s)."""
        if self.verdict is not None or self.job.streamed:
            return None
        if self.idle_since is not None:
            return self.idle_since + self.grace
        return self.since + self.timeout

    def _decide(self, verdict: Verdict) -> Verdict:
        self.verdict = verdict
        return verdict

    def body(self, verdict: Verdict, ts: int) -> tuple[str, dict]:
        """The job event and its body (without seq, ts and printer)."""
        job = self.job
        if verdict.resumed:
            return S.EV_JOB_RESUMED, job_body(job.file, job.user, ts)
        # progress is not in the log
        body = interrupted(job.file, job.user, ts, verdict.error, None, job.print_time)
        return S.EV_JOB_FAILED, body


def job_body(file: Mapping[str, Any], user: Optional[str], ts: int) -> dict:
    return {
        "file": dict(file),
        "filename": file.get("name"),
        "user": user,
        "timestamp": ts,
    }


def interrupted(
    file: Mapping[str, Any],
    user: Optional[str],
    ts: int,
    error: Optional[str],
    progress: Optional[float],
    print_time: Optional[float],
) -> dict:
    """A job_failed body for a job OctoPrint's stop ended."""
    body = job_body(file, user, ts)
    body.update(reason=INTERRUPTED, error=error, progress=progress, printTime=print_time)
    return body
