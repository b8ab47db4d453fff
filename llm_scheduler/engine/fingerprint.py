"""Content hashes: a step's fingerprint, and digests that reveal edits to an exported trace."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llm_scheduler.config.structs import struct_to_dict, value_to_python
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["digest", "request_key", "step_fingerprint"]

# Bump when the fingerprint's content changes, so old traces are not reused by mistake.
_FINGERPRINT_VERSION = 1


def digest(value: Any) -> str:
    """A short stable hash of a JSON value (canonical: sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _request(record: run_pb2.StepRun) -> dict[str, Any]:
    return {
        "provider": record.provider,
        "model": record.provider_model,
        "system": record.system_prompt,
        "user": record.user_prompt,
        "parameters": struct_to_dict(record.parameters),
        "format": {
            "type": int(record.response_format.type),
            "schema": struct_to_dict(record.response_format.json_schema),
            "name": record.response_format.schema_name,
        },
    }


def request_key(record: run_pb2.StepRun) -> str:
    """The response-cache key of a model query: provider, model, parameters and messages.

    Two model keys that resolve to the same provider model share cached responses.
    """
    return digest({"v": _FINGERPRINT_VERSION, "cache": _request(record)})


def step_fingerprint(record: run_pb2.StepRun) -> str:
    """What determines a step's response, hashed: the same fingerprint, the same call.

    Model queries: the model key and the provider model it resolved to, the rendered prompts,
    the parameters after coercion and the response format. Function calls: the function and its
    rendered request. Outputs are not part of it: they are recomputed from the response.
    """
    if record.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        content: dict[str, Any] = {
            "function": record.function_name,
            "request": value_to_python(record.function_request),
        }
    else:
        content = {"model_key": record.model_key, **_request(record)}
    return digest({"v": _FINGERPRINT_VERSION, "type": int(record.step_type), **content})
