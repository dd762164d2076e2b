"""What a restart needs: at startup, the log's open job handed to the printer state
to close (the decision is ``core/reconcile.py``); at shutdown, the connection's
``disconnected`` committed to the log before the clients hear goodbye.

Both run on OctoPrint's main thread while the IOLoop is not running: ``on_startup``
comes before OctoPrint starts the loop, and OctoPrint stops the loop (SIGTERM)
before it calls ``on_shutdown``.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any, Optional

from ..core import reconcile

_logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 5.0  # s for each step of the goodbye


def reconcile_at_startup(engine: Any, state: Any, eventlog: Any) -> None:
    """Reads the tail of the log (the newest ``reconcile.TAIL`` events: one read
    through the primary key, about a millisecond) here, on the main thread before
    the loop runs: nothing waits on it yet, and what the log holds is known before
    the first OctoPrint event is handled. The decision itself runs on the loop,
    after the first look at the printer (``feed.seed``'s hand-over)."""
    try:
        rows = eventlog.read_last(reconcile.TAIL)
    except sqlite3.Error:
        _logger.exception("Could not read the event log's tail: nothing reconciled")
        return
    job = reconcile.open_job(rows)
    if job is not None:
        _logger.info(
            "The event log's last job (%s) is still open: it ends or resumes once "
            "the printer says which",
            job.file.get("path"),
        )
    engine.submit(state.restarted, job, reconcile.last_connection(rows))


def shutdown(engine: Any, state: Any, eventlog: Any, farm: Optional[Any]) -> None:
    """OctoPrint shuts down (the loop is stopped): run the loop once for the printer
    state's last words (``PrinterState.shutdown``: the disconnection, and the end of
    a job OctoPrint streams), wait here, off the loop, until the log committed
    them, run the loop again to deliver them and say goodbye, then stop the farm's
    publisher and close the log."""
    loop = engine.loop if engine is not None else None
    if loop is not None and state is not None:
        try:
            loop.run_sync(state.shutdown, timeout=SHUTDOWN_TIMEOUT)
        except Exception:
            _logger.exception("Could not log the disconnection")
        if eventlog is not None and not eventlog.flush(SHUTDOWN_TIMEOUT):
            _logger.error("The event log did not commit within %.0f s", SHUTDOWN_TIMEOUT)
        try:
            # the commits' hand-overs were queued first: they deliver, then goodbye
            loop.run_sync(
                lambda: engine.close_all("shutdown") if engine.clients else None,
                timeout=SHUTDOWN_TIMEOUT,
            )
        except Exception:
            _logger.exception("Could not say goodbye to the clients")
    if farm is not None:
        farm.stop(SHUTDOWN_TIMEOUT)  # "offline" in the registry, in bounded time
    if eventlog is not None:
        eventlog.close(10)
