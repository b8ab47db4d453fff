"""A content-addressed cache of model responses and embeddings, kept in the store.

Each response is one document, ``cache/{key}``, where the key is
`llm_scheduler.engine.fingerprint.request_key` of the request (provider, provider model,
parameters, prompts and response format), or `embedding_request_key` of an embedding (provider,
provider model, input and dimensions). The engine decides when to read and write through
`RunContext.cache_policy`; this module only keeps the documents.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from llm_scheduler.engine.context import RunContext
from llm_scheduler.errors import StoreError
from llm_scheduler.models.base import EmbeddingResponse, ModelResponse, Usage
from llm_scheduler.store.base import Doc, Store, check_size
from llm_scheduler.v1 import config_pb2

__all__ = ["CACHE_COLLECTION", "StoreResponseCache", "cache_path", "context_with_cache"]

CACHE_COLLECTION = "cache"

# The policies that turn the cache on for an event-driven run, by name.
_POLICIES_ON = {
    config_pb2.CachePolicy.Name(policy): policy
    for policy in (config_pb2.CACHE_POLICY_USE, config_pb2.CACHE_POLICY_REFRESH)
}


def cache_path(key: str) -> str:
    """The document holding the response cached for a request key."""
    return f"{CACHE_COLLECTION}/{key}"


class StoreResponseCache:
    """A `ResponseCache` in a `Store`: one document per request key."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def lookup(self, key: str) -> ModelResponse | None:
        """The response stored for a request key, if any."""
        doc = self._store.get(cache_path(key))
        if doc is None:
            return None
        return ModelResponse(
            text=str(doc.get("text", "")),
            usage=_usage(doc),
            model=str(doc.get("model", "")),
            finish_reason=str(doc.get("finish_reason", "")),
        )

    def store(self, key: str, response: ModelResponse) -> None:
        """Stores (or replaces) the response for a request key.

        A response too large for one document is not cached: the step that got it still
        succeeds, and the next identical request calls the model again.
        """
        self._put(
            key,
            {
                "text": response.text,
                "model": response.model,
                "finish_reason": response.finish_reason,
                "usage": _usage_doc(response.usage),
            },
        )

    def lookup_embedding(self, key: str) -> EmbeddingResponse | None:
        """The embedding stored for a request key, if any."""
        doc = self._store.get(cache_path(key))
        vector = doc.get("embedding") if doc is not None else None
        if doc is None or not isinstance(vector, list):
            return None
        return EmbeddingResponse(
            vector=tuple(float(value) for value in vector),
            usage=_usage(doc),
            model=str(doc.get("model", "")),
        )

    def store_embedding(self, key: str, response: EmbeddingResponse) -> None:
        """Stores (or replaces) the embedding for a request key; one too large is not cached."""
        self._put(
            key,
            {
                "embedding": list(response.vector),
                "model": response.model,
                "usage": _usage_doc(response.usage),
            },
        )

    def _put(self, key: str, doc: Doc) -> None:
        path = cache_path(key)
        doc["created_at"] = _now()
        try:
            check_size(path, doc)
        except StoreError:
            return  # only the size check is expected to fail; other store errors propagate
        self._store.set(path, doc)


def context_with_cache(context: RunContext, store: Store, job_doc: Doc) -> RunContext:
    """The context for one event-driven run, with the cache policy its submitter chose.

    The job-run document's ``default_cache_policy`` (a `CachePolicy` name, written by
    `submit_job`) turns the cache on for the run; without one, or with ``CACHE_POLICY_OFF``
    (or a name this version does not know), the context is returned unchanged.
    """
    policy = _POLICIES_ON.get(str(job_doc.get("default_cache_policy") or ""))
    if policy is None:
        return context
    return dataclasses.replace(
        context, cache=StoreResponseCache(store), default_cache_policy=policy
    )


def _usage(doc: Doc) -> Usage:
    usage: dict[str, Any] = doc.get("usage") or {}
    return Usage(
        input_tokens=int(usage.get("input_tokens", 0)),
        output_tokens=int(usage.get("output_tokens", 0)),
        cached_input_tokens=int(usage.get("cached_input_tokens", 0)),
        cache_write_input_tokens=int(usage.get("cache_write_input_tokens", 0)),
    )


def _usage_doc(usage: Usage) -> Doc:
    doc: Doc = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
    }
    if usage.cache_write_input_tokens:  # entries written before the field have none
        doc["cache_write_input_tokens"] = usage.cache_write_input_tokens
    return doc


def _now() -> str:
    moment = datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
