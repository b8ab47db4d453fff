"""OpenAI Chat Completions and Embeddings behind the `ModelAdapter` interface."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from llm_scheduler.errors import MissingDependencyError
from llm_scheduler.models.base import (
    EmbeddingRequest,
    EmbeddingResponse,
    ModelAdapter,
    ModelRequest,
    ModelResponse,
    ResponseFormatSpec,
    Usage,
)
from llm_scheduler.models.http_errors import (
    NO_KEY_PLACEHOLDER,
    is_retryable_status,
    retry_after_seconds,
)
from llm_scheduler.models.reply_fields import token_count

if TYPE_CHECKING:
    from openai.types import CreateEmbeddingResponse
    from openai.types.chat import ChatCompletionMessageParam
    from openai.types.chat.completion_create_params import ResponseFormat

__all__ = ["OpenAIAdapter"]

T = TypeVar("T")

# Neutral parameters that keep their name on the wire; the rest go through `extra_body`.
_SAME_NAME = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty", "stop")


class OpenAIAdapter(ModelAdapter):
    """Calls ``chat.completions.create`` and ``embeddings.create`` with the official SDK.

    ``max_tokens`` is sent as ``max_completion_tokens``, the only limit reasoning models accept.
    Parameters the adapter does not know are sent verbatim in the request body. Embeddings are
    asked for as floats (``encoding_format="float"``), which every OpenAI-compatible server
    speaks; the SDK's default, base64, is not universal.
    """

    provider: ClassVar[str] = "openai"
    default_api_key_env: ClassVar[str] = "OPENAI_API_KEY"
    embeds: ClassVar[bool] = True
    supported_parameters: ClassVar[frozenset[str]] = frozenset(
        {
            "temperature",
            "max_tokens",
            "top_p",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        }
    )

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """Creates the SDK client.

        Args:
            api_key: The OpenAI API key.
            base_url: An OpenAI-compatible API root (``.../v1``); the SDK default when omitted.

        Raises:
            MissingDependencyError: When the ``openai`` package is not installed.
        """
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("openai", "openai", "the OpenAI provider") from exc
        super().__init__(api_key=api_key, base_url=base_url)
        # Retries belong to the caller (llm_scheduler.models.client), which also honours
        # Retry-After; SDK retries would multiply attempts and hide the 429s.
        # A keyless entry (a local server) gets a placeholder: the SDK insists on a key.
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY_PLACEHOLDER, base_url=base_url, max_retries=0
        )

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Sends one chat completion request.

        Args:
            request: The provider-neutral request.

        Returns:
            The reply text, token usage, reported model and finish reason.

        Raises:
            ProviderError: When the request fails; ``retryable`` for 408, 409, 429, 5xx,
                timeouts, connection errors and malformed replies.
        """
        messages: list[ChatCompletionMessageParam] = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.user_prompt})
        kwargs, extra_body = _split_parameters(request.parameters)
        response_format = _response_format(request.response_format)
        if response_format is not None:
            kwargs["response_format"] = response_format
        # The raw reply: the SDK builds, sends and checks the request (errors still raise), but
        # its pydantic model of the reply is not built. Reading the few fields a step needs
        # from the JSON costs a tenth of the SDK's whole call (~0.2 ms of CPU per call here).
        raw = await self._call(
            lambda: self._client.chat.completions.with_raw_response.create(
                model=request.model,
                messages=messages,
                extra_body=extra_body or None,
                timeout=request.timeout_seconds,
                **kwargs,
            ),
            request.model,
            request.timeout_seconds,
        )
        try:
            return _to_response(json.loads(raw.http_response.content), request.model)
        except Exception as exc:  # a reply need not have the fields we read, or be JSON
            raise self.malformed_response_error(exc, model=request.model) from exc

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Sends one embeddings request.

        Args:
            request: The provider-neutral request; ``dimensions`` is sent when not 0.

        Returns:
            The vector, the prompt token count and the reported model.

        Raises:
            ProviderError: As for `generate`.
        """
        import openai

        reply = await self._call(
            lambda: self._client.embeddings.create(
                model=request.model,
                input=request.input,
                encoding_format="float",
                dimensions=request.dimensions or openai.omit,
                timeout=request.timeout_seconds,
            ),
            request.model,
            request.timeout_seconds,
        )
        try:
            return _to_embedding(reply, request.model)
        except Exception as exc:
            raise self.malformed_response_error(exc, model=request.model) from exc

    async def _call(self, send: Callable[[], Awaitable[T]], model: str, timeout: float) -> T:
        """Awaits one SDK request, translating the SDK's errors to `ProviderError`."""
        import openai

        try:
            return await send()
        except openai.APITimeoutError as exc:
            raise self.timeout_error(timeout, model=model) from exc
        except openai.APIConnectionError as exc:
            raise self.provider_error(f"connection failed: {exc}", True, model=model) from exc
        except openai.APIStatusError as exc:
            status = exc.status_code
            raise self.provider_error(
                f"HTTP {status}: {_error_message(exc.body) or exc.message}",
                is_retryable_status(status),
                model=model,
                status=status,
                retry_after=retry_after_seconds(exc.response.headers),
            ) from exc
        except openai.OpenAIError as exc:
            raise self.provider_error(str(exc), False, model=model) from exc

    async def aclose(self) -> None:
        """Closes the SDK's HTTP connections."""
        await self._client.close()


def _split_parameters(parameters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Splits neutral parameters into SDK keyword arguments and extra body fields."""
    kwargs: dict[str, Any] = {}
    extra_body: dict[str, Any] = {}
    for name, value in parameters.items():
        if name in _SAME_NAME:
            kwargs[name] = value
        elif name == "max_tokens":
            kwargs["max_completion_tokens"] = value
        else:
            extra_body[name] = value
    return kwargs, extra_body


def _response_format(spec: ResponseFormatSpec) -> ResponseFormat | None:
    if spec.kind == "json":
        return {"type": "json_object"}
    if spec.kind == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": spec.schema_name,
                "schema": dict(spec.json_schema or {}),
                # Strict mode rejects common schemas (optional fields, open objects); the
                # caller validates the reply against the schema anyway.
                "strict": False,
            },
        }
    # Plain text is the default, so the field is left out for OpenAI-compatible servers.
    return None


def _to_response(completion: Any, requested: str) -> ModelResponse:
    """Reads a Chat Completions reply (JSON, as decoded) into a `ModelResponse`.

    Raises:
        ValueError: The reply lacks the fields a step needs, or they have the wrong types.
    """
    if not isinstance(completion, dict) or not completion.get("choices"):
        raise ValueError("the response has no choices")
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise ValueError(f"the message content is {type(text).__name__}, not text")
    usage = completion.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return ModelResponse(
        text=text,
        usage=Usage(
            input_tokens=token_count(usage, "prompt_tokens"),
            output_tokens=token_count(usage, "completion_tokens"),
            cached_input_tokens=token_count(details, "cached_tokens"),
        ),
        model=str(completion.get("model") or requested),
        finish_reason=str(choice.get("finish_reason") or ""),
    )


def _to_embedding(reply: CreateEmbeddingResponse, requested: str) -> EmbeddingResponse:
    if not reply.data:
        raise ValueError("the response has no embeddings")
    vector = tuple(float(value) for value in reply.data[0].embedding)
    if not vector:
        raise ValueError("the embedding is empty")
    usage = reply.usage
    return EmbeddingResponse(
        vector=vector,
        usage=Usage(input_tokens=usage.prompt_tokens if usage else 0),
        model=reply.model or requested,
    )


def _error_message(body: object) -> str:
    """The ``error.message`` of an OpenAI error body, or ``""``."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    return ""
