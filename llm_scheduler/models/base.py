"""The one async model interface every provider adapter implements."""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from llm_scheduler.errors import ProviderError

__all__ = [
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ModelAdapter",
    "ModelRequest",
    "ModelResponse",
    "ResponseFormatSpec",
    "Usage",
    "quiet_sdk_loggers",
]

ResponseKind = Literal["text", "json", "json_schema"]

# Loggers that report every request at INFO ("HTTP Request: POST ...", google-genai's "AFC is
# enabled ..."), which drowns a run's own output on stderr. The SDKs have used httpx/httpcore;
# the installed ones use httpx2/httpcore2.
_CHATTY_SDK_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2", "google_genai")


@dataclasses.dataclass(frozen=True)
class ResponseFormatSpec:
    """The response format a step asks for.

    Attributes:
        kind: ``text``, ``json`` (any JSON object) or ``json_schema``.
        json_schema: The JSON Schema for ``json_schema``.
        schema_name: A name for the schema (some providers require one).
    """

    kind: ResponseKind = "text"
    json_schema: Mapping[str, Any] | None = None
    schema_name: str = "response"


@dataclasses.dataclass(frozen=True)
class ModelRequest:
    """One request to a model, provider-neutral.

    Attributes:
        model: The provider's model name (``gpt-4o-mini``), already resolved from the model key.
        system_prompt: The rendered system prompt; empty for none.
        user_prompt: The rendered user prompt.
        parameters: Validated generation parameters with neutral names (``temperature``,
            ``max_tokens``, ``top_p``, ``top_k``, ``stop`` as a list, ``seed``,
            ``presence_penalty``, ``frequency_penalty``) plus unknown ones passed through.
        response_format: The response format.
        timeout_seconds: The deadline of one attempt: connect, send and the whole reply.
            `ModelClient` enforces it; adapters also hand it to their SDK, which applies it to
            each read (a reply trickling in meets no per-read timeout).
    """

    model: str
    system_prompt: str
    user_prompt: str
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    response_format: ResponseFormatSpec = ResponseFormatSpec()
    timeout_seconds: float = 120.0


@dataclasses.dataclass(frozen=True)
class Usage:
    """Token counts of one response.

    Attributes:
        input_tokens: All input tokens, prompt-cache reads and writes included.
        output_tokens: Output tokens.
        cached_input_tokens: The part of ``input_tokens`` read from the provider's prompt cache.
        cache_write_input_tokens: The part of ``input_tokens`` written to the provider's prompt
            cache (Anthropic's cache writes, billed above the input price).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_input_tokens=self.cache_write_input_tokens + other.cache_write_input_tokens,
        )


@dataclasses.dataclass(frozen=True)
class ModelResponse:
    """A model's answer.

    Attributes:
        text: The response text (JSON text for JSON response formats).
        usage: Token counts.
        model: The model name the provider reported (may differ from the requested alias).
        finish_reason: The provider's finish/stop reason, as it named it.
    """

    text: str
    usage: Usage = Usage()
    model: str = ""
    finish_reason: str = ""


@dataclasses.dataclass(frozen=True)
class EmbeddingRequest:
    """One text to embed, provider-neutral.

    Attributes:
        model: The provider's model name (``text-embedding-3-small``), resolved from the key.
        input: The rendered text.
        dimensions: The vector length to ask for; 0 for the model's own.
        timeout_seconds: The deadline of one attempt, as for `ModelRequest`.
    """

    model: str
    input: str
    dimensions: int = 0
    timeout_seconds: float = 120.0


@dataclasses.dataclass(frozen=True)
class EmbeddingResponse:
    """An embedding model's answer.

    Attributes:
        vector: The embedding.
        usage: Token counts (input tokens only: embeddings produce none).
        model: The model name the provider reported (may differ from the requested alias).
    """

    vector: tuple[float, ...]
    usage: Usage = Usage()
    model: str = ""


class ModelAdapter(abc.ABC):
    """Talks to one provider. Adapters translate to and from the provider's SDK and nothing else.

    An adapter makes exactly one request per `generate` (or `embed`) call: retries, the
    deadline of each attempt, concurrency limits and pricing are the caller's (see
    `llm_scheduler.models.client`).
    Provider failures are raised as `llm_scheduler.errors.ProviderError` (built with
    `provider_error`) with ``retryable`` set for 429, 5xx, timeouts, connection errors and
    malformed replies, and ``retry_after`` from the Retry-After header when the provider sent
    one. Anything else an adapter lets through is translated by the caller with
    `unexpected_error`.

    A custom provider is a subclass registered with
    `llm_scheduler.models.providers.register_provider` (docs/custom_models.md).

    Attributes:
        provider: The provider name used in model keys (``openai:gpt-4o-mini``).
        default_api_key_env: The environment variable the provider's key is usually in; empty
            for a provider that takes no key (its requests then need none).
        supported_parameters: The neutral parameter names this provider accepts.
        in_process: The adapter answers without any I/O (the offline model), so an attempt
            needs no deadline.
        embeds: The provider has an embeddings API (`embed` is implemented).
    """

    provider: ClassVar[str]
    default_api_key_env: ClassVar[str] = ""
    supported_parameters: ClassVar[frozenset[str]] = frozenset()
    in_process: ClassVar[bool] = False
    embeds: ClassVar[bool] = False

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """Creates an adapter.

        Args:
            api_key: The provider's API key; empty when the entry has none (a keyless
                provider or entry, or a key variable that is not set for a provider that
                takes a key optionally).
            base_url: The API's base URL; the provider's default when None.
        """
        self.api_key = api_key
        self.base_url = base_url
        quiet_sdk_loggers()

    @abc.abstractmethod
    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Sends one request and returns the response."""

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Sends one embedding request and returns the vector.

        Raises:
            ProviderError: Not retryable, for a provider without an embeddings API (validation
                refuses such keys in embedding steps before anything runs).
        """
        raise self.provider_error("this provider has no embeddings API", False, model=request.model)

    def provider_error(
        self,
        detail: str,
        retryable: bool,
        *,
        model: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> ProviderError:
        """Builds the `ProviderError` for a failed request to ``model``, with the API key masked."""
        # Error bodies may echo the key back; proxies in front of the APIs differ.
        if self.api_key:
            detail = detail.replace(self.api_key, "***")
        return ProviderError(
            f"{self.provider} request to model {model!r} failed: {detail}",
            provider=self.provider,
            model=model,
            retryable=retryable,
            status=status,
            retry_after=retry_after,
        )

    def timeout_error(self, seconds: float, *, model: str) -> ProviderError:
        """The retryable error for a request that ran past its deadline."""
        return self.provider_error(f"timed out after {seconds:g} s", True, model=model)

    def malformed_response_error(self, error: Exception, *, model: str) -> ProviderError:
        """The error for a reply that arrived but cannot be read: not JSON, or fields missing.

        It is retryable: such replies are usually cut short on the way or come from a proxy in
        trouble, and the next attempt tends to get a whole one.
        """
        if isinstance(error, json.JSONDecodeError):
            detail = f"the body is not JSON ({error})"
        else:
            detail = str(error) or type(error).__name__
        return self.provider_error(f"malformed response: {detail}", True, model=model)

    def unexpected_error(self, error: Exception, *, model: str) -> ProviderError:
        """Translates an exception that `generate` or `embed` let through (the caller does).

        The SDKs decode a successful reply's body without wrapping the error, so invalid JSON
        arrives as `json.JSONDecodeError`; stray timeouts and socket errors are transient too.
        Anything else (an SDK surprise, a bug) is not worth retrying.
        """
        if isinstance(error, json.JSONDecodeError):
            return self.malformed_response_error(error, model=model)
        if isinstance(error, TimeoutError):
            return self.provider_error(f"timed out ({error!r})", True, model=model)
        if isinstance(error, OSError):
            return self.provider_error(f"connection failed: {error!r}", True, model=model)
        return self.provider_error(f"{type(error).__name__}: {error}", False, model=model)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters need it
        """Releases connections; the adapter is not used afterwards."""


def quiet_sdk_loggers() -> None:
    """Sets the SDKs' per-request loggers to WARNING, unless the application set their level.

    Every adapter calls this when it is created. An application that wants the request log sets
    the ``httpx2`` (or ``google_genai``) logger's level itself, before or after.
    """
    for name in _CHATTY_SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
