"""The response cache: model responses kept in the store, keyed by the request."""

from llm_scheduler.cache.response_cache import (
    CACHE_COLLECTION,
    StoreResponseCache,
    cache_path,
    context_with_cache,
)

__all__ = ["CACHE_COLLECTION", "StoreResponseCache", "cache_path", "context_with_cache"]
