"""Debian's Chromium for browser tests and benchmarks: where it is and how to start it here.

The project's setup installs it (`make browser`: ``apt-get install chromium``); Playwright's own
browser download is not used. Playwright launches it with ``executable_path=CHROMIUM`` and
``args=chromium_args()``.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["CHROMIUM", "chromium_args", "missing_chromium_message"]

CHROMIUM = pathlib.Path("/usr/bin/chromium")


def chromium_args() -> list[str]:
    """Chromium's flags: no background traffic (refused by a closed network), no sandbox as root."""
    args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    if os.geteuid() == 0:
        args.insert(0, "--no-sandbox")  # Chromium refuses to sandbox as root
    return args


def missing_chromium_message() -> str:
    """What to say when Chromium is not installed."""
    return f"{CHROMIUM} is missing: `make browser` installs it (apt-get install chromium)"
