"""The explicit lookup from a provider name to its adapter class (no entry-point magic).

The built-in providers are ``openai``, ``google`` (alias ``gemini``), ``anthropic`` and
``offline``. A custom provider (an in-house gateway, a test double, an in-process model) is a
`ModelAdapter` subclass registered with `register_provider`; model keys then name it like a
built-in one (``my_gateway:model-x``, or a models-file entry with ``"provider": "my_gateway"``).
The runners and the cloud function register providers by importing the modules the user lists
in ``--function_modules`` (``LLM_SCHEDULER_FUNCTION_MODULES``), before they read the models file::

    from llm_scheduler import ModelAdapter, ModelRequest, ModelResponse, Usage, register_provider

    @register_provider
    class EchoAdapter(ModelAdapter):
        provider = "echo"
        in_process = True

        async def generate(self, request: ModelRequest) -> ModelResponse:
            words = len(request.user_prompt.split())
            return ModelResponse(request.user_prompt, Usage(words, words), request.model)

See docs/custom_models.md.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from typing import TypeVar

from llm_scheduler.errors import MissingDependencyError
from llm_scheduler.models.base import ModelAdapter

__all__ = [
    "BUILTIN_API_KEY_ENV",
    "BUILTIN_PROVIDERS",
    "KEYLESS_PROVIDERS",
    "PROVIDER_ALIASES",
    "adapter_class",
    "default_api_key_env",
    "ensure_sdk",
    "is_provider",
    "provider_names",
    "register_provider",
    "unregister_provider",
]

# The built-in provider names, in the order messages list them.
BUILTIN_PROVIDERS = ("openai", "google", "anthropic", "offline")
# Other names model keys and models files may use for a built-in provider.
PROVIDER_ALIASES = {"gemini": "google"}
# Where each built-in provider's API key usually is; the adapters declare the same.
BUILTIN_API_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "google": "GEMINI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "offline": "",
}

# Providers whose requests never need an API key: the offline model and every registered
# provider whose adapter declares no ``default_api_key_env``. `register_provider` keeps it up to
# date; `ModelSpec.needs_api_key` reads it on each request, so it stays a plain set.
KEYLESS_PROVIDERS: set[str] = {"offline"}

_A = TypeVar("_A", bound=type[ModelAdapter])

# Provider names appear before the colon of ``provider:model`` keys.
_NAME = re.compile(r"[a-z][a-z0-9_\-]*")

_registered: dict[str, type[ModelAdapter]] = {}

# provider -> (importable module, PyPI package, llm-scheduler extra)
_SDKS = {
    "openai": ("openai", "openai", "openai"),
    "google": ("google.genai", "google-genai", "gemini"),
    "anthropic": ("anthropic", "anthropic", "anthropic"),
}


def register_provider(adapter: _A) -> _A:
    """Registers a custom model provider: its adapter class, under the class's ``provider``.

    Use it as a class decorator or call it; registering the same class again is a no-op. The
    class attributes say what the provider does: ``provider`` (the name model keys use:
    lower case letters, digits, ``_`` and ``-``), ``default_api_key_env`` (the environment
    variable of its API key; empty for a provider that takes none), ``supported_parameters``
    (the neutral generation parameters it accepts; validation refuses the others), ``embeds``
    (it implements `ModelAdapter.embed`) and ``in_process`` (it answers without I/O, so an
    attempt gets no deadline). `ModelClient` creates one adapter per base URL and API key with
    ``adapter(api_key=..., base_url=...)`` and closes it with ``aclose``.

    Args:
        adapter: A concrete `ModelAdapter` subclass.

    Returns:
        The class, unchanged.

    Raises:
        TypeError: ``adapter`` is not a concrete `ModelAdapter` subclass, or declares ``embeds``
            without implementing ``embed``.
        ValueError: Its ``provider`` name is missing or invalid, is a built-in provider's name,
            or is taken by another class.
    """
    if not (isinstance(adapter, type) and issubclass(adapter, ModelAdapter)):
        raise TypeError(f"register_provider takes a ModelAdapter subclass, not {adapter!r}")
    if inspect.isabstract(adapter):
        missing = ", ".join(sorted(getattr(adapter, "__abstractmethods__", ())))
        raise TypeError(f"{_qualified(adapter)} does not implement {missing}")
    name = getattr(adapter, "provider", None)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"{_qualified(adapter)}.provider must name the provider with lower-case letters, "
            f"digits, '_' or '-', starting with a letter (got {name!r})"
        )
    if name in BUILTIN_PROVIDERS or name in PROVIDER_ALIASES:
        raise ValueError(
            f"provider name {name!r} is built in; give {_qualified(adapter)} another name (a "
            "models file can point any model key, a built-in one included, at it)"
        )
    if adapter.embeds and adapter.embed is ModelAdapter.embed:
        raise TypeError(f"{_qualified(adapter)} sets embeds = True but does not implement embed")
    existing = _registered.get(name)
    if existing is not None and existing is not adapter:
        raise ValueError(
            f"provider name {name!r} is already registered to {_qualified(existing)}; cannot "
            f"register {_qualified(adapter)} under it"
        )
    _registered[name] = adapter
    if adapter.default_api_key_env:
        KEYLESS_PROVIDERS.discard(name)
    else:
        KEYLESS_PROVIDERS.add(name)
    return adapter


def unregister_provider(name: str) -> None:
    """Removes a registered provider, as a test's teardown does; unknown names are ignored.

    Adapters that clients already created keep working until the clients close them.

    Raises:
        ValueError: ``name`` is a built-in provider's.
    """
    if name in BUILTIN_PROVIDERS or name in PROVIDER_ALIASES:
        raise ValueError(f"provider {name!r} is built in and cannot be unregistered")
    if _registered.pop(name, None) is not None:
        KEYLESS_PROVIDERS.discard(name)


def provider_names() -> tuple[str, ...]:
    """The provider names model keys may use: the built-in ones, then the registered ones."""
    return (*BUILTIN_PROVIDERS, *_registered)


def is_provider(name: str) -> bool:
    """Whether ``name`` is a built-in or registered provider (aliases not included)."""
    return name in BUILTIN_PROVIDERS or name in _registered


def default_api_key_env(provider: str) -> str:
    """The environment variable a provider's API key is usually in; empty if it needs none."""
    if provider in BUILTIN_API_KEY_ENV:
        return BUILTIN_API_KEY_ENV[provider]
    adapter = _registered.get(provider)
    return adapter.default_api_key_env if adapter is not None else ""


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
    """Returns the adapter class for a built-in or registered provider name.

    Built-in adapter modules import their SDK lazily, so this never needs an optional SDK.

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
    return _registered[provider]


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
