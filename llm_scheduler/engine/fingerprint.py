"""Content hashes: a step's fingerprint, and digests that reveal edits to an exported trace."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llm_scheduler.models.base import ModelRequest

__all__ = ["call_fingerprint", "digest", "query_fingerprint", "request_key"]

# Bump when the fingerprint's content changes, so old traces are not reused by mistake.
_FINGERPRINT_VERSION = 1


def digest(value: Any) -> str:
    """A short stable hash of a JSON value (canonical: sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _request(provider: str, request: ModelRequest) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": request.model,
        "system": request.system_prompt,
        "user": request.user_prompt,
        "parameters": dict(request.parameters),
        "format": {
            "type": request.response_format.kind,
            "schema": dict(request.response_format.json_schema or {}),
            "name": request.response_format.schema_name,
        },
    }


def request_key(provider: str, request: ModelRequest) -> str:
    """The response-cache key of a model query: provider, model, parameters and messages.

    Two model keys that resolve to the same provider model share cached responses.
    """
    return digest({"v": _FINGERPRINT_VERSION, "cache": _request(provider, request)})


def query_fingerprint(model_key: str, provider: str, request: ModelRequest) -> str:
    """What determines a model query's response, hashed: the same fingerprint, the same call.

    The model key and the provider model it resolved to, the rendered prompts, the parameters
    after coercion and the response format. Outputs are not part of it: they are recomputed
    from the response.
    """
    content = {"model_key": model_key, **_request(provider, request)}
    return digest({"v": _FINGERPRINT_VERSION, "type": "query", **content})


def call_fingerprint(function_name: str, request: Any) -> str:
    """What determines a function call's result: the function and its rendered request."""
    content = {"function": function_name, "request": request}
    return digest({"v": _FINGERPRINT_VERSION, "type": "function", **content})
