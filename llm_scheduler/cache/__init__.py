"""The response cache: model responses kept in the store, keyed by the request."""

from llm_scheduler.cache.response_cache import context_with_cache

__all__ = ["context_with_cache"]
