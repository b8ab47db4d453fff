"""HTTP details every SDK adapter shares: which statuses are transient, Retry-After, no key."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping

__all__ = ["NO_KEY_PLACEHOLDER", "is_retryable_status", "retry_after_seconds"]

# What the SDKs get as the API key of a keyless entry (a local server): they insist on one.
NO_KEY_PLACEHOLDER = "no-key"


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status means a transient failure worth retrying."""
    return status in (408, 409, 429) or status >= 500


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            seconds = float(milliseconds) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        seconds = email.utils.mktime_tz(parsed) - time.time()
    return max(seconds, 0.0) if math.isfinite(seconds) else None
