"""A deterministic model that needs no network, for trying configs without API keys.

Every output says it is offline, so an offline answer can never pass for a real one. It is used
for ``offline:`` model keys and, with ``--offline`` or ``LLM_SCHEDULER_OFFLINE=1``, for every key.
Its embeddings are unit vectors derived from a hash of the model and the text: the same text
always gets the same vector, but similar texts do not get similar vectors.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping
from typing import Any, ClassVar

from llm_scheduler.models.base import (
    EmbeddingRequest,
    EmbeddingResponse,
    ModelAdapter,
    ModelRequest,
    ModelResponse,
    Usage,
)

__all__ = ["OFFLINE_EMBEDDING_DIMENSIONS", "OfflineAdapter", "offline_vector"]

_ECHO_LIMIT = 200
# The length of an offline embedding when the step asks for none.
OFFLINE_EMBEDDING_DIMENSIONS = 8


class OfflineAdapter(ModelAdapter):
    """Answers every request with a deterministic text derived from the prompts."""

    provider: ClassVar[str] = "offline"
    in_process: ClassVar[bool] = True
    embeds: ClassVar[bool] = True
    supported_parameters: ClassVar[frozenset[str]] = frozenset(
        {"temperature", "top_p", "top_k", "max_tokens", "stop", "seed"}
        | {"presence_penalty", "frequency_penalty"}
    )

    def __init__(self, *, api_key: str = "", base_url: str | None = None) -> None:
        # Accepted for a uniform constructor; there is nothing to connect to.
        super().__init__(api_key="", base_url=None)

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Returns the offline answer; JSON formats get a JSON object that says it is offline."""
        digest = hashlib.sha256(
            f"{request.model}\n{request.system_prompt}\n{request.user_prompt}".encode()
        ).hexdigest()[:8]
        prompt = " ".join(request.user_prompt.split())
        if len(prompt) > _ECHO_LIMIT:
            prompt = prompt[:_ECHO_LIMIT] + "..."
        text = f"[offline {request.model} {digest}] {prompt}"
        kind = request.response_format.kind
        if kind == "json":
            text = json.dumps({"offline": True, "model": request.model, "text": text})
        elif kind == "json_schema":
            schema = request.response_format.json_schema or {}
            text = json.dumps(_instance(schema, text), ensure_ascii=False)
        max_tokens = request.parameters.get("max_tokens")
        if kind == "text" and isinstance(max_tokens, int):
            text = " ".join(text.split(" ")[:max_tokens])
        usage = Usage(
            input_tokens=_count_tokens(request.system_prompt) + _count_tokens(request.user_prompt),
            output_tokens=_count_tokens(text),
        )
        return ModelResponse(text=text, usage=usage, model=request.model, finish_reason="stop")

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Returns `offline_vector` of the text (``dimensions`` long, 8 by default)."""
        dimensions = request.dimensions or OFFLINE_EMBEDDING_DIMENSIONS
        return EmbeddingResponse(
            vector=offline_vector(request.model, request.input, dimensions),
            usage=Usage(input_tokens=_count_tokens(request.input)),
            model=request.model,
        )


def offline_vector(model: str, text: str, dimensions: int) -> tuple[float, ...]:
    """A deterministic unit vector for a model and a text: SHA-256 in counter mode.

    Each component comes from 8 bytes of ``sha256(model, text, block)``, mapped to [-1, 1];
    the vector is then scaled to length 1, as real embedding models' vectors are.
    """
    seed = f"{model}\n{text}\n".encode()
    components: list[float] = []
    block = 0
    while len(components) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        for (number,) in struct.iter_unpack(">Q", digest):
            components.append(number / 2**63 - 1.0)
        block += 1
    del components[dimensions:]
    norm = math.sqrt(math.fsum(value * value for value in components))
    return tuple(value / norm for value in components)


def _count_tokens(text: str) -> int:
    # A rough stand-in for a tokenizer: enough for usage and cost to be non-zero and stable.
    return len(text.split())


def _instance(schema: Mapping[str, Any], text: str) -> Any:
    """Builds a small value that satisfies common JSON Schema shapes, marked as offline."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties", {})
        if not properties:
            return {"offline": True, "text": text}
        return {name: _instance(sub, f"offline {name}") for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items", {"type": "string"})
        count = max(int(schema.get("minItems", 1)), 1)
        return [_instance(items, text) for _ in range(count)]
    if kind == "string":
        return text if text.startswith("[offline") else f"[{text}]"
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return None
