"""The explicit lookup from a provider name to its adapter class (no entry-point magic)."""

from __future__ import annotations

from llm_scheduler.models.base import ModelAdapter

__all__ = ["adapter_class"]


def adapter_class(provider: str) -> type[ModelAdapter]:
    """Returns the adapter class for a provider name from `registry.PROVIDERS`.

    Adapter modules import their SDK lazily, so this never needs an optional SDK.

    Raises:
        KeyError: The provider is unknown.
    """
    if provider == "offline":
        from llm_scheduler.models.offline import OfflineAdapter

        return OfflineAdapter
    if provider == "openai":
        from llm_scheduler.models.openai_provider import OpenAIAdapter

        return OpenAIAdapter
    if provider == "google":
        from llm_scheduler.models.gemini_provider import GeminiAdapter

        return GeminiAdapter
    if provider == "anthropic":
        from llm_scheduler.models.anthropic_provider import AnthropicAdapter

        return AnthropicAdapter
    raise KeyError(provider)
