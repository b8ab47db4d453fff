"""Reading the fields of a provider's reply from its decoded JSON, checking their types.

The adapters read a reply's JSON themselves rather than the SDKs' reply models (a tenth of a
call's CPU), so they check what they read: a field of the wrong type is a malformed reply
(retryable), never a wrong count in a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["token_count"]


def token_count(fields: Mapping[str, Any], name: str) -> int:
    """The token count ``fields[name]``; 0 when it is missing or null.

    Raises:
        ValueError: The value is not an integer (a boolean is not a count either).
    """
    value = fields.get(name) or 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is {value!r}, not a token count")
    return value
