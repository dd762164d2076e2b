"""Running a test step on several real servers at once."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Callable


def parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> None:
    """``fn(item)`` for every item, each on its own thread; the first error raised."""
    errors: list[BaseException] = []

    def run(item: Any) -> None:
        try:
            fn(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
