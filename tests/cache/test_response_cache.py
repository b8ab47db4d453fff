"""The response cache's documents, on every store backend, and the per-run policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_scheduler import ModelResponse, RunContext, Usage
from llm_scheduler.cache import StoreResponseCache, cache_path, context_with_cache
from llm_scheduler.models.base import EmbeddingResponse
from llm_scheduler.store import Store, open_store
from llm_scheduler.v1 import config_pb2

KEY = "0123456789abcdef0123456789abcdef"
RESPONSE = ModelResponse(
    text="a short answer",
    usage=Usage(input_tokens=12, output_tokens=3, cached_input_tokens=4),
    model="gpt-fake-2025",
    finish_reason="stop",
)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def test_lookup_misses_until_a_response_is_stored(store: Store) -> None:
    cache = StoreResponseCache(store)
    assert cache.lookup(KEY) is None
    cache.store(KEY, RESPONSE)
    assert cache.lookup(KEY) == RESPONSE
    assert cache.lookup("another-key") is None


def test_the_document_is_readable(store: Store) -> None:
    StoreResponseCache(store).store(KEY, RESPONSE)
    doc = store.get(cache_path(KEY))
    assert doc is not None
    assert cache_path(KEY) == f"cache/{KEY}"
    assert {k: doc[k] for k in ("text", "model", "finish_reason")} == {
        "text": "a short answer",
        "model": "gpt-fake-2025",
        "finish_reason": "stop",
    }
    assert doc["usage"] == {"input_tokens": 12, "output_tokens": 3, "cached_input_tokens": 4}
    assert doc["created_at"].endswith("Z")


def test_storing_again_overwrites(store: Store) -> None:
    cache = StoreResponseCache(store)
    cache.store(KEY, RESPONSE)
    newer = ModelResponse(text="a fresher answer", usage=Usage(1, 2), model="gpt-fake-2026")
    cache.store(KEY, newer)
    assert cache.lookup(KEY) == newer


def test_a_response_too_large_for_one_document_is_not_cached(store: Store) -> None:
    cache = StoreResponseCache(store)
    cache.store(KEY, ModelResponse(text="x" * 1_100_000))  # no error: the step still succeeds
    assert cache.lookup(KEY) is None
    assert store.get(cache_path(KEY)) is None


def test_embeddings_are_stored_as_numbers_and_read_back_exactly(store: Store) -> None:
    cache = StoreResponseCache(store)
    vector = (0.1, -0.25, 1 / 3, 0.0)
    embedding = EmbeddingResponse(vector=vector, usage=Usage(input_tokens=5), model="embed-fake")
    assert cache.lookup_embedding(KEY) is None
    cache.store_embedding(KEY, embedding)
    assert cache.lookup_embedding(KEY) == embedding
    doc = store.get(cache_path(KEY))
    assert doc is not None and doc["embedding"] == list(vector) and "text" not in doc
    too_large = EmbeddingResponse(vector=(0.123456789,) * 100_000)
    cache.store_embedding("another-key", too_large)  # about 1.2 MB of JSON: not cached
    assert cache.lookup_embedding("another-key") is None


@pytest.mark.parametrize(
    ("job_doc", "policy"),
    [
        ({"default_cache_policy": "CACHE_POLICY_USE"}, config_pb2.CACHE_POLICY_USE),
        ({"default_cache_policy": "CACHE_POLICY_REFRESH"}, config_pb2.CACHE_POLICY_REFRESH),
    ],
)
def test_a_run_whose_submitter_asked_for_the_cache_gets_it(
    store: Store, job_doc: dict[str, str], policy: int
) -> None:
    context = RunContext()
    with_cache = context_with_cache(context, store, job_doc)
    assert isinstance(with_cache.cache, StoreResponseCache)
    assert with_cache.default_cache_policy == policy
    assert context.cache is None  # the worker's own context is not changed


@pytest.mark.parametrize(
    "job_doc",
    [
        {},
        {"default_cache_policy": ""},
        {"default_cache_policy": "CACHE_POLICY_OFF"},
        {"default_cache_policy": "CACHE_POLICY_DEFAULT"},
        {"default_cache_policy": "CACHE_POLICY_FROM_THE_FUTURE"},
    ],
)
def test_event_driven_runs_have_no_cache_by_default(store: Store, job_doc: dict[str, str]) -> None:
    context = RunContext()
    assert context_with_cache(context, store, job_doc) is context
