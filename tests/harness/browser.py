"""Debian's chromium for Playwright (``playwright install`` cannot download here)."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("FLUXPRINT_CHROMIUM", "/usr/bin/chromium")
# --no-sandbox: CI runs as root
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
