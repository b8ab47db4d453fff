"""Content hashes: a step's fingerprint, and digests that reveal edits to an exported trace.

Every hash is the SHA-256 of a value's canonical JSON (sorted keys, no spaces, UTF-8), cut to
32 hex digits. Fingerprints and digests are stored in run records and traces, so their bytes
must never change without bumping `_FINGERPRINT_VERSION`. The engine computes them on every
step, so the canonical text is assembled from parts encoded once where it can be: the result is
byte for byte the canonical encoding of the documented dict (tests/engine/test_fingerprint.py
checks this against `canonical_json`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from hashlib import sha256
from typing import Any

from llm_scheduler.models.base import EmbeddingRequest, ModelRequest, ResponseFormatSpec

__all__ = [
    "call_fingerprint",
    "call_fingerprint_content",
    "canonical_json",
    "digest",
    "digest_text",
    "embedding_fingerprint",
    "embedding_request_key",
    "query_fingerprint",
    "query_fingerprint_content",
    "query_fingerprint_head",
    "query_fingerprint_with_head",
    "query_static_json",
    "request_key",
    "step_digests",
]

# Bump when the fingerprint's content changes, so old traces are not reused by mistake.
_FINGERPRINT_VERSION = 1
# What json.dumps(ensure_ascii=False) encodes strings with (the C version when available).
_encode_string = json.encoder.encode_basestring
_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """A JSON value's canonical text: sorted keys, no spaces, non-ASCII kept."""
    kind = type(value)
    if kind is str:  # what the encoder writes for a text or an integer, without its layers
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    return _encoder.encode(value)


def digest_text(text: str) -> str:
    """The short hash of a canonical JSON text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def digest(value: Any) -> str:
    """A short stable hash of a JSON value (canonical: sorted keys, no spaces)."""
    return digest_text(canonical_json(value))


def step_digests(response: Any, outputs: Mapping[str, Any]) -> tuple[str, str]:
    """``(digest(response), digest(outputs))``, encoding the response only once.

    Outputs usually hold the response itself (or are ``{"response": response}``), which may be
    a long text: its canonical encoding is reused for every output that is the same object.
    """
    response_json = canonical_json(response)
    if len(outputs) == 1:  # most steps have one output: no sort, no list
        [(key, value)] = outputs.items()
        encoded = response_json if value is response else canonical_json(value)
        outputs_json = f"{{{_encode_string(key)}:{encoded}}}"
    else:
        parts = []
        for key in sorted(outputs):
            value = outputs[key]
            encoded = response_json if value is response else canonical_json(value)
            parts.append(f"{_encode_string(key)}:{encoded}")
        outputs_json = "{" + ",".join(parts) + "}"
    return (
        sha256(response_json.encode()).hexdigest()[:32],
        sha256(outputs_json.encode()).hexdigest()[:32],
    )


def _request(provider: str, request: ModelRequest) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": request.model,
        "system": request.system_prompt,
        "user": request.user_prompt,
        "parameters": dict(request.parameters),
        "format": _format(request.response_format),
    }


def _format(response_format: ResponseFormatSpec) -> dict[str, Any]:
    return {
        "type": response_format.kind,
        "schema": dict(response_format.json_schema or {}),
        "name": response_format.schema_name,
    }


def request_key(provider: str, request: ModelRequest) -> str:
    """The response-cache key of a model query: provider, model, parameters and messages.

    Two model keys that resolve to the same provider model share cached responses.
    """
    return digest({"v": _FINGERPRINT_VERSION, "cache": _request(provider, request)})


def query_fingerprint(
    model_key: str,
    provider: str,
    request: ModelRequest,
    *,
    static_json: tuple[str, str] | None = None,
) -> str:
    """What determines a model query's response, hashed: the same fingerprint, the same call.

    The model key and the provider model it resolved to, the rendered prompts, the parameters
    after coercion and the response format. Outputs are not part of it: they are recomputed
    from the response.

    Args:
        model_key: The step's model key.
        provider: The provider it resolved to.
        request: The request.
        static_json: The canonical JSON of the request's ``(response format, parameters)`` as
            `query_static_json` gives them, when the caller has them already.
    """
    format_json, parameters_json = static_json or query_static_json(request)
    head = query_fingerprint_head(model_key, provider, request.model, format_json, parameters_json)
    return query_fingerprint_with_head(head, request.system_prompt, request.user_prompt)


def query_fingerprint_head(
    model_key: str, provider: str, model: str, format_json: str, parameters_json: str
) -> str:
    """The start of a query's fingerprint text: every part a step's config and model fix.

    A step computes it once per model its key resolves to (`plans.QueryPlan.resolved`) and
    hashes it with each call's prompts (`query_fingerprint_with_head`).

    Args:
        model_key: The step's model key.
        provider: The provider it resolved to.
        model: The provider model it resolved to.
        format_json: The canonical JSON of the response format (`query_static_json`).
        parameters_json: The canonical JSON of the parameters (`query_static_json`).
    """
    # Keys in sorted order: format, model, model_key, parameters, provider, system, type, user, v.
    return (
        f'{{"format":{format_json},"model":{_encode_string(model)},'
        f'"model_key":{_encode_string(model_key)},"parameters":{parameters_json},'
        f'"provider":{_encode_string(provider)},"system":'
    )


def query_fingerprint_with_head(head: str, system_prompt: str, user_prompt: str) -> str:
    """`query_fingerprint` from its `query_fingerprint_head` and the rendered prompts."""
    text = (
        f'{head}{_encode_string(system_prompt)},"type":"query",'
        f'"user":{_encode_string(user_prompt)},"v":{_FINGERPRINT_VERSION}}}'
    )
    return sha256(text.encode()).hexdigest()[:32]  # digest_text, one call less


def query_static_json(request: ModelRequest) -> tuple[str, str]:
    """The canonical JSON of a request's response format and parameters, in that order."""
    return canonical_json(_format(request.response_format)), canonical_json(
        dict(request.parameters)
    )


def query_fingerprint_content(model_key: str, provider: str, request: ModelRequest) -> Any:
    """The value `query_fingerprint` hashes, as a dict (the reference for its encoding)."""
    content = {"model_key": model_key, **_request(provider, request)}
    return {"v": _FINGERPRINT_VERSION, "type": "query", **content}


def call_fingerprint(function_name: str, request: Any) -> str:
    """What determines a function call's result: the function and its rendered request."""
    # The canonical JSON of {"v", "type", "function", "request"}: keys in sorted order.
    text = (
        f'{{"function":{_encode_string(function_name)},"request":{canonical_json(request)},'
        f'"type":"function","v":{_FINGERPRINT_VERSION}}}'
    )
    return sha256(text.encode()).hexdigest()[:32]  # digest_text, one call less


def call_fingerprint_content(function_name: str, request: Any) -> Any:
    """The value `call_fingerprint` hashes, as a dict (the reference for its encoding)."""
    return {
        "v": _FINGERPRINT_VERSION,
        "type": "function",
        "function": function_name,
        "request": request,
    }


def _embedding(provider: str, request: EmbeddingRequest) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": request.model,
        "input": request.input,
        "dimensions": request.dimensions,
    }


def embedding_request_key(provider: str, request: EmbeddingRequest) -> str:
    """The response-cache key of an embedding: provider, model, input and dimensions.

    Its own shape (``embedding_cache``), so it can never equal a model query's key.
    """
    return digest({"v": _FINGERPRINT_VERSION, "embedding_cache": _embedding(provider, request)})


def embedding_fingerprint(model_key: str, provider: str, request: EmbeddingRequest) -> str:
    """What determines an embedding, hashed: the same fingerprint, the same vector.

    The model key, the provider model it resolved to, the rendered input and the dimensions
    asked for (0 for the model's own).
    """
    content = {"model_key": model_key, **_embedding(provider, request)}
    return digest({"v": _FINGERPRINT_VERSION, "type": "embedding", **content})
