"""Model keys: the built-in registry, models files, and direct ``provider:model`` keys.

A key names a built-in provider or one registered with `register_provider`
(`llm_scheduler.models.providers`).
"""

from __future__ import annotations

import dataclasses
import difflib
import pathlib
from collections.abc import Iterable

from llm_scheduler.config import formats
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.models.providers import (
    BUILTIN_API_KEY_ENV,
    KEYLESS_PROVIDERS,
    PROVIDER_ALIASES,
    adapter_class,
    default_api_key_env,
    is_provider,
    provider_names,
)
from llm_scheduler.v1 import config_pb2

__all__ = [
    "BUILTIN_MODELS",
    "CHAT",
    "EMBEDDING",
    "MODEL_KINDS",
    "UNKNOWN_PROVIDER_HINT",
    "ModelRegistry",
    "ModelSpec",
    "UnknownModelKeyError",
    "embedding_providers",
]

# What a model does: chat models answer model-query steps, embedding models embedding steps.
CHAT = "chat"
EMBEDDING = "embedding"
MODEL_KINDS = (CHAT, EMBEDDING)

DEFAULT_MAX_CONCURRENCY = 16
DEFAULT_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to reach the model behind a key, and what it costs.

    Attributes:
        key: The model key as configs write it.
        provider: ``openai``, ``google``, ``anthropic``, ``offline`` or a provider registered
            with `register_provider`.
        model: The provider's model name.
        base_url: The API base URL; empty for the provider's default.
        api_key_env: The environment variable holding the API key.
        no_api_key: The server needs no key (local OpenAI-compatible servers).
        input_price: US dollars per million input tokens.
        output_price: US dollars per million output tokens.
        cached_input_price: US dollars per million cached input tokens (cache reads); 0 means
            the input price.
        cache_write_price: US dollars per million input tokens written to the prompt cache
            (Anthropic's cache writes); 0 means the input price.
        max_concurrency: Requests in flight at once for this entry.
        timeout_seconds: The deadline of one attempt (connect, send, the whole reply).
        max_attempts: Attempts per request, retries included.
        kind: ``chat`` or ``embedding``; empty for a ``provider:model`` key, which serves
            whichever kind of step uses it.
        requests_per_minute: Request starts (retries included) allowed in any 60 s window,
            per process; 0 for no limit (see `llm_scheduler.models.rate_limit`).
        tokens_per_minute: Tokens allowed in any 60 s window, per process; 0 for no limit.
    """

    key: str
    provider: str
    model: str
    base_url: str = ""
    api_key_env: str = ""
    no_api_key: bool = False
    input_price: float = 0.0
    output_price: float = 0.0
    cached_input_price: float = 0.0
    cache_write_price: float = 0.0
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    kind: str = ""
    requests_per_minute: int = 0
    tokens_per_minute: int = 0

    def serves(self, kind: str) -> bool:
        """Whether steps of ``kind`` (`CHAT` or `EMBEDDING`) may use this entry."""
        return not self.kind or self.kind == kind

    @property
    def needs_api_key(self) -> bool:
        """Whether a request needs an API key: not for a keyless entry or provider."""
        return not self.no_api_key and self.provider not in KEYLESS_PROVIDERS

    @property
    def priced(self) -> bool:
        """Whether any of the entry's prices is set (else every call costs 0.0)."""
        return bool(
            self.input_price
            or self.output_price
            or self.cached_input_price
            or self.cache_write_price
        )

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        *,
        cache_write_input_tokens: int = 0,
    ) -> float:
        """The price in US dollars of one call.

        Args:
            input_tokens: All input tokens, cache reads and writes included.
            output_tokens: Output tokens.
            cached_input_tokens: The part of ``input_tokens`` read from the prompt cache, priced
                at ``cached_input_price`` (the input price when that is 0).
            cache_write_input_tokens: The part of ``input_tokens`` written to the prompt cache,
                priced at ``cache_write_price`` (the input price when that is 0).

        Returns:
            The cost in US dollars.
        """
        cached_price = self.cached_input_price or self.input_price
        write_price = self.cache_write_price or self.input_price
        plain = max(input_tokens - cached_input_tokens - cache_write_input_tokens, 0)
        return (
            plain * self.input_price
            + cached_input_tokens * cached_price
            + cache_write_input_tokens * write_price
            + output_tokens * self.output_price
        ) / 1e6


def _builtin(
    key: str,
    provider: str,
    model: str,
    prices: tuple[float, float, float] | tuple[float, float, float, float],
    kind: str = CHAT,
) -> ModelSpec:
    return ModelSpec(
        key=key,
        provider=provider,
        model=model,
        api_key_env=BUILTIN_API_KEY_ENV[provider],
        input_price=prices[0],
        output_price=prices[1],
        cached_input_price=prices[2],
        cache_write_price=prices[3] if len(prices) > 3 else 0.0,
        kind=kind,
    )


# Prices are list prices in USD per million tokens (input, output, cached input[, cache write])
# at the time of writing; override them in a models file when they change. Anthropic bills a
# (5-minute) cache write at 1.25x the input price; the others bill no writes.
BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    _builtin("GEMINI_FLASH", "google", "gemini-2.5-flash", (0.30, 2.50, 0.03)),
    _builtin("GEMINI_FLASH_LITE", "google", "gemini-2.5-flash-lite", (0.10, 0.40, 0.01)),
    _builtin("GEMINI_PRO", "google", "gemini-2.5-pro", (1.25, 10.0, 0.125)),
    _builtin("GPT_4O_MINI", "openai", "gpt-4o-mini", (0.15, 0.60, 0.075)),
    _builtin("GPT_4O", "openai", "gpt-4o", (2.50, 10.0, 1.25)),
    _builtin("GPT_4_1_MINI", "openai", "gpt-4.1-mini", (0.40, 1.60, 0.10)),
    _builtin("GPT_4_1", "openai", "gpt-4.1", (2.0, 8.0, 0.50)),
    _builtin("CLAUDE_3_5_HAIKU", "anthropic", "claude-3-5-haiku-latest", (0.80, 4.0, 0.08, 1.0)),
    _builtin("CLAUDE_HAIKU_4_5", "anthropic", "claude-haiku-4-5", (1.0, 5.0, 0.10, 1.25)),
    _builtin("CLAUDE_SONNET_4_5", "anthropic", "claude-sonnet-4-5", (3.0, 15.0, 0.30, 3.75)),
    _builtin("OFFLINE", "offline", "offline", (0.0, 0.0, 0.0)),
    # Embedding models are priced per input token only.
    _builtin("OPENAI_EMBEDDING_SMALL", "openai", "text-embedding-3-small", (0.02, 0, 0), EMBEDDING),
    _builtin("OPENAI_EMBEDDING_LARGE", "openai", "text-embedding-3-large", (0.13, 0, 0), EMBEDDING),
    _builtin("GEMINI_EMBEDDING", "google", "gemini-embedding-001", (0.15, 0, 0), EMBEDDING),
    _builtin("OFFLINE_EMBEDDING", "offline", "offline-embedding", (0.0, 0.0, 0.0), EMBEDDING),
)


class UnknownModelKeyError(KeyError):
    """A model key is neither in the registry nor a valid ``provider:model`` key."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)

    def __str__(self) -> str:
        # Seen at run time when a process lacks a provider that validation saw elsewhere.
        return (
            f"unknown model key {self.key!r}: not in the registry, and not provider:model with "
            f"a provider of {', '.join(provider_names())}"
        )


class ModelRegistry:
    """Maps model keys to `ModelSpec` entries.

    Keys are looked up in the registry first; a key of the form ``provider:model`` that is not
    registered resolves directly to that provider's model with default settings.
    """

    def __init__(self, specs: Iterable[ModelSpec] = BUILTIN_MODELS) -> None:
        self._specs: dict[str, ModelSpec] = {spec.key: spec for spec in specs}

    @classmethod
    def with_models_file(cls, path: str | pathlib.Path | None) -> ModelRegistry:
        """The built-in registry, extended and overridden by a models file when one is given.

        Raises:
            ConfigError: The models file is invalid.
        """
        registry = cls()
        if path:
            registry = cls([*registry.specs(), *load_models_file(path)])
        return registry

    def specs(self) -> list[ModelSpec]:
        """Every registered entry."""
        return list(self._specs.values())

    def keys(self, kind: str = "") -> list[str]:
        """Every registered key (of ``kind``, `CHAT` or `EMBEDDING`, when given), sorted."""
        return sorted(key for key, spec in self._specs.items() if not kind or spec.kind == kind)

    def resolve(self, key: str) -> ModelSpec:
        """Returns the entry for a model key.

        Raises:
            UnknownModelKeyError: The key is not registered and not ``provider:model``.
        """
        spec = self._specs.get(key)
        if spec is not None:
            return spec
        provider, sep, model = key.partition(":")
        provider = PROVIDER_ALIASES.get(provider, provider)
        if sep and model and is_provider(provider):
            return ModelSpec(
                key=key, provider=provider, model=model, api_key_env=default_api_key_env(provider)
            )
        raise UnknownModelKeyError(key)

    def describe_unknown(self, key: str, kind: str = "") -> str:
        """A hint for an unknown key: the closest registered key and the accepted forms.

        Args:
            key: The unknown key.
            kind: `CHAT` or `EMBEDDING` to list only keys of that kind; every key by default.
        """
        providers = embedding_providers() if kind == EMBEDDING else provider_names()
        prefix, sep, model = key.partition(":")
        if sep and prefix and model and prefix not in PROVIDER_ALIASES:
            # provider:model with an unknown provider: the prefix is what is wrong.
            close = difflib.get_close_matches(prefix, provider_names(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return (
                f"{hint}{prefix!r} is not a provider: use one of {', '.join(providers)}, a "
                f"key from a models file (--models_file), or {UNKNOWN_PROVIDER_HINT}"
            )
        keys = self.keys(kind)
        close = difflib.get_close_matches(key.upper(), keys, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (
            f"{hint}use a registered key ({', '.join(keys)}), a key from a models file "
            f"(--models_file), or provider:model with provider one of {', '.join(providers)}"
        )


# How to add a provider, for the messages about unknown ones.
UNKNOWN_PROVIDER_HINT = (
    "register your own with llm_scheduler.register_provider (the tools import its module "
    "with --function_modules)"
)


def embedding_providers() -> list[str]:
    """The providers with an embeddings API: built-in ones first, then registered ones."""
    return [provider for provider in provider_names() if adapter_class(provider).embeds]


def load_models_file(path: str | pathlib.Path) -> list[ModelSpec]:
    """Reads a models file (a `ModelsConfig` in JSON or textproto).

    Raises:
        ConfigError: The file is invalid; every problem is reported.
    """
    file = str(path)
    config = formats.load(path, config_pb2.ModelsConfig)
    problems: list[ConfigProblem] = []
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(config.models):
        where = f"models[{index}]"
        provider = PROVIDER_ALIASES.get(entry.provider, entry.provider)
        if not entry.key:
            problems.append(ConfigProblem(f"{where}.key", "missing", "name the key", file))
        elif entry.key in seen:
            problems.append(
                ConfigProblem(f"{where}.key", f"duplicate key {entry.key!r}", "keep one", file)
            )
        seen.add(entry.key)
        if not is_provider(provider):
            problems.append(
                ConfigProblem(
                    f"{where}.provider",
                    f"unknown provider {entry.provider!r}",
                    f"use one of {', '.join(provider_names())} (openai also covers "
                    f"OpenAI-compatible servers through base_url), or {UNKNOWN_PROVIDER_HINT}",
                    file,
                )
            )
            continue
        if not entry.model:
            problems.append(
                ConfigProblem(f"{where}.model", "missing", "name the provider's model", file)
            )
        kind = entry.kind or CHAT
        if kind not in MODEL_KINDS:
            problems.append(
                ConfigProblem(
                    f"{where}.kind",
                    f"unknown kind {entry.kind!r}",
                    f"use {CHAT} (the default) or {EMBEDDING}",
                    file,
                )
            )
        elif kind == EMBEDDING and not adapter_class(provider).embeds:
            problems.append(
                ConfigProblem(
                    f"{where}.kind",
                    f"{provider} has no embeddings API",
                    f"embedding models come from {', '.join(embedding_providers())}",
                    file,
                )
            )
        for name in ("max_concurrency", "max_attempts", "timeout_seconds"):
            if getattr(entry, name) < 0:
                problems.append(
                    ConfigProblem(
                        f"{where}.{name}", "must not be negative", "use 0 for the default", file
                    )
                )
        for name in ("requests_per_minute", "tokens_per_minute"):
            if getattr(entry, name) < 0:
                problems.append(
                    ConfigProblem(
                        f"{where}.{name}", "must not be negative", "use 0 for no limit", file
                    )
                )
        specs.append(
            ModelSpec(
                key=entry.key,
                provider=provider,
                model=entry.model,
                base_url=entry.base_url,
                api_key_env=entry.api_key_env or default_api_key_env(provider),
                no_api_key=entry.no_api_key,
                input_price=entry.input_price_per_million_tokens,
                output_price=entry.output_price_per_million_tokens,
                cached_input_price=entry.cached_input_price_per_million_tokens,
                cache_write_price=entry.cache_write_price_per_million_tokens,
                max_concurrency=entry.max_concurrency or DEFAULT_MAX_CONCURRENCY,
                timeout_seconds=entry.timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
                max_attempts=entry.max_attempts or DEFAULT_MAX_ATTEMPTS,
                kind=kind,
                requests_per_minute=entry.requests_per_minute,
                tokens_per_minute=entry.tokens_per_minute,
            )
        )
    if problems:
        raise ConfigError(problems)
    return specs
