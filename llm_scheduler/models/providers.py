"""The explicit lookup from a provider name to its adapter class (no entry-point magic)."""

from __future__ import annotations

import importlib.util

from llm_scheduler.errors import MissingDependencyError
from llm_scheduler.models.base import ModelAdapter

__all__ = ["adapter_class", "ensure_sdk"]

# provider -> (importable module, PyPI package, llm-scheduler extra)
_SDKS = {
    "openai": ("openai", "openai", "openai"),
    "google": ("google.genai", "google-genai", "gemini"),
    "anthropic": ("anthropic", "anthropic", "anthropic"),
}


def ensure_sdk(provider: str) -> None:
    """Checks, without importing it, that the provider's SDK is installed.

    Raises:
        MissingDependencyError: It is not.
    """
    if provider not in _SDKS:
        return
    module, package, extra = _SDKS[provider]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (google) raises instead
        found = False
    if not found:
        raise MissingDependencyError(package, extra, f"the {provider} provider")


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
