"""Which OctoPrint versions FluxPrint supports, checked when the plugin loads.

The distribution does not pin OctoPrint (pip would swap the user's OctoPrint for
the pinned one); this check says so clearly instead."""

from __future__ import annotations

from typing import Optional

from packaging.version import InvalidVersion, Version

OLDEST = Version("1.11")  # the oldest tested release line
NEWEST_MAJOR = 2  # 1.11 and 2.x are tested


def check(version: str) -> tuple[bool, Optional[str]]:
    """(load it?, a message to log). Release candidates count as their release:
    2.0.0rc7 is 2.0."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return True, f"FluxPrint cannot tell OctoPrint's version ({version!r}); loading"
    base = Version(parsed.base_version)
    if base < OLDEST:
        return False, (
            f"FluxPrint needs OctoPrint 1.11 or newer, this is OctoPrint {version}: "
            "FluxPrint is not loaded. Update OctoPrint, or install an older FluxPrint."
        )
    if base.major > NEWEST_MAJOR:
        return True, (
            f"FluxPrint is tested on OctoPrint 1.11 and 2.x, this is OctoPrint "
            f"{version}: loading, but please report anything that does not work."
        )
    return True, None
