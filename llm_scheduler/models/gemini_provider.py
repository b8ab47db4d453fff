"""Google Gemini (Developer API) behind the `ModelAdapter` interface."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from llm_scheduler.errors import MissingDependencyError, ProviderError
from llm_scheduler.models.base import (
    EmbeddingRequest,
    EmbeddingResponse,
    ModelAdapter,
    ModelRequest,
    ModelResponse,
    Usage,
)
from llm_scheduler.models.http_errors import (
    NO_KEY_PLACEHOLDER,
    is_retryable_status,
    retry_after_seconds,
)
from llm_scheduler.models.reply_fields import token_count

if TYPE_CHECKING:
    from google.genai import types

__all__ = ["GeminiAdapter"]

T = TypeVar("T")

# Neutral names that differ from GenerateContentConfig's; the others keep their name.
_RENAMED = {"max_tokens": "max_output_tokens", "stop": "stop_sequences"}
_SAME_NAME = frozenset(
    {"temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty"}
)


class GeminiAdapter(ModelAdapter):
    """Calls ``models.generate_content`` and ``models.embed_content`` with ``google-genai``.

    Parameters the adapter does not know are merged verbatim into the request's
    ``generationConfig`` (through ``HttpOptions.extra_body``), so they must use a name the REST
    API accepts there (``candidateCount`` or ``candidate_count``).

    The SDK sends an embedding to the Developer API's ``:batchEmbedContents`` (one request of
    one text). Its reply carries token counts in ``usageMetadata`` only when the API sends them;
    without them the step records 0 tokens (and so no cost).
    """

    provider: ClassVar[str] = "google"
    default_api_key_env: ClassVar[str] = "GEMINI_API_KEY"
    embeds: ClassVar[bool] = True
    supported_parameters: ClassVar[frozenset[str]] = _SAME_NAME | frozenset(_RENAMED)

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """Creates the SDK client.

        Args:
            api_key: The Gemini API key.
            base_url: The API root (the SDK appends ``/{api_version}/models/...``); the SDK
                default when omitted.

        Raises:
            MissingDependencyError: When the ``google-genai`` package is not installed.
        """
        try:
            from google import genai
            from google.genai import types
        except ImportError as exc:
            raise MissingDependencyError("google-genai", "gemini", "the Gemini provider") from exc
        super().__init__(api_key=api_key, base_url=base_url)
        self._client = genai.Client(
            # A keyless entry (a local server) gets a placeholder: the SDK insists on a key.
            api_key=api_key or NO_KEY_PLACEHOLDER,
            # An explicit False keeps GOOGLE_GENAI_USE_VERTEXAI from switching to Vertex AI.
            enterprise=False,
            http_options=types.HttpOptions(
                base_url=base_url,
                # One attempt: retries belong to the caller, which honours Retry-After. Setting
                # retry options also turns off the SDK's implicit aiohttp reconnect-and-retry.
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Sends one generateContent request.

        Args:
            request: The provider-neutral request.

        Returns:
            The reply text, token usage, reported model version and finish reason.

        Raises:
            ProviderError: When the request fails or the prompt was blocked; ``retryable`` for
                408, 409, 429, 5xx, timeouts, connection errors and malformed replies.
        """
        from google.genai import types

        config, extra = _config_fields(request)
        config["http_options"] = types.HttpOptions(
            # HttpOptions.timeout is in milliseconds.
            timeout=max(1, math.ceil(request.timeout_seconds * 1000)),
            extra_body={"generationConfig": extra} if extra else None,
        )
        # No tools are passed, so automatic function calling has nothing to do; left on, the SDK
        # logs "AFC is enabled with max remote calls: 10." for every request.
        config["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
        # The raw reply: the SDK builds, sends and checks the request (errors still raise), but
        # does not convert the reply into its pydantic model; the adapter reads the few fields
        # a step needs from the JSON (as for OpenAI and Anthropic).
        config["should_return_http_response"] = True
        contents = [types.Content(role="user", parts=[types.Part(text=request.user_prompt)])]
        response = await self._call(
            lambda: self._client.aio.models.generate_content(
                model=request.model,
                contents=contents,
                config=types.GenerateContentConfig(**config),
            ),
            request.model,
            request.timeout_seconds,
        )
        try:
            raw = response.sdk_http_response
            body = raw.body if raw is not None else None
            return self._to_response(json.loads(body or "null"), request.model)
        except ProviderError:
            raise
        except Exception as exc:
            raise self.malformed_response_error(exc, model=request.model) from exc

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Sends one embedding request (``output_dimensionality`` when ``dimensions`` is set).

        Args:
            request: The provider-neutral request.

        Returns:
            The vector, the prompt token count when the reply has one, and the model.

        Raises:
            ProviderError: As for `generate`.
        """
        from google.genai import types

        config = types.EmbedContentConfig(
            output_dimensionality=request.dimensions or None,
            http_options=types.HttpOptions(
                timeout=max(1, math.ceil(request.timeout_seconds * 1000))
            ),
        )
        reply = await self._call(
            lambda: self._client.aio.models.embed_content(
                model=request.model, contents=request.input, config=config
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
        import httpx2
        from google.genai import errors

        try:
            return await send()
        except errors.APIError as exc:
            headers = getattr(exc.response, "headers", None)
            raise self.provider_error(
                f"HTTP {exc.code}: {exc.message or exc.status}",
                is_retryable_status(exc.code),
                model=model,
                status=exc.code,
                retry_after=retry_after_seconds(headers) if isinstance(headers, Mapping) else None,
            ) from exc
        except (httpx2.TimeoutException, TimeoutError) as exc:
            raise self.timeout_error(timeout, model=model) from exc
        except Exception as exc:
            # The SDK lets its HTTP library's errors through: httpx2 by default, httpx or
            # aiohttp when configured so. Those are connection failures; anything else (such
            # as a body that is not JSON) is translated by the caller (`unexpected_error`).
            if not _is_transport_error(exc, httpx2.TransportError):
                raise
            raise self.provider_error(f"connection failed: {exc!r}", True, model=model) from exc

    async def aclose(self) -> None:
        """Closes the SDK's HTTP connections (the async pool and the unused sync one)."""
        await self._client.aio.aclose()
        self._client.close()

    def _to_response(self, reply: Any, requested: str) -> ModelResponse:
        """Reads a generateContent reply (JSON, as decoded) into a `ModelResponse`.

        Raises:
            ProviderError: The prompt was blocked (not retryable).
            ValueError: The reply lacks the fields a step needs, or they have the wrong types.
        """
        if not isinstance(reply, dict):
            raise ValueError("the response is not a JSON object")
        candidates = reply.get("candidates")
        if not candidates:
            feedback = reply.get("promptFeedback") or {}
            reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
            if reason:
                raise self.provider_error(
                    f"the prompt was blocked ({reason})", False, model=requested
                )
            raise ValueError("no candidates returned")
        if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
            raise ValueError("the candidates are not a list of objects")
        candidate = candidates[0]
        content = candidate.get("content") or {}
        parts = (content.get("parts") if isinstance(content, dict) else None) or []
        if not isinstance(parts, list):
            raise ValueError("the content's parts are not a list")
        texts: list[str] = []
        for part in parts:
            if not isinstance(part, dict):
                raise ValueError("a content part is not an object")
            text = part.get("text")
            if text and not part.get("thought"):
                if not isinstance(text, str):
                    raise ValueError(f"a part's text is {type(text).__name__}, not text")
                texts.append(text)
        metadata = reply.get("usageMetadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError("the usage metadata is not an object")
        usage = Usage(
            input_tokens=token_count(metadata, "promptTokenCount"),
            # Thinking tokens are billed as output, as OpenAI's and Anthropic's counts are.
            output_tokens=token_count(metadata, "candidatesTokenCount")
            + token_count(metadata, "thoughtsTokenCount"),
            cached_input_tokens=token_count(metadata, "cachedContentTokenCount"),
        )
        return ModelResponse(
            text="".join(texts),
            usage=usage,
            model=str(reply.get("modelVersion") or requested),
            finish_reason=str(candidate.get("finishReason") or ""),
        )


def _to_embedding(reply: types.EmbedContentResponse, requested: str) -> EmbeddingResponse:
    if not reply.embeddings:
        raise ValueError("the response has no embeddings")
    values = reply.embeddings[0].values
    if not values:
        raise ValueError("the embedding is empty")
    metadata = reply.usage_metadata
    tokens = (metadata.prompt_token_count or 0) if metadata is not None else 0
    # The reply names no model: the requested one is what answered.
    return EmbeddingResponse(
        vector=tuple(float(value) for value in values),
        usage=Usage(input_tokens=tokens),
        model=requested,
    )


def _config_fields(request: ModelRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """GenerateContentConfig fields for a request, and unknown parameters for the raw body."""
    config: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in request.parameters.items():
        if name in _SAME_NAME:
            config[name] = value
        elif name in _RENAMED:
            config[_RENAMED[name]] = list(value) if name == "stop" else value
        else:
            extra[name] = value
    if request.system_prompt:
        config["system_instruction"] = request.system_prompt
    spec = request.response_format
    if spec.kind in ("json", "json_schema"):
        config["response_mime_type"] = "application/json"
    if spec.kind == "json_schema":
        # response_json_schema takes standard JSON Schema; response_schema is an OpenAPI subset.
        config["response_json_schema"] = dict(spec.json_schema or {})
    return config, extra


def _is_transport_error(exc: Exception, httpx2_error: type[Exception]) -> bool:
    if isinstance(exc, httpx2_error | ConnectionError):
        return True
    # httpx and aiohttp are optional here, so they are recognised without importing them.
    return type(exc).__module__.partition(".")[0] in ("httpx", "aiohttp")
