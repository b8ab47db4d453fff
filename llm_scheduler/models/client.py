"""The engine's door to models: keys, credentials, concurrency and rate limits, retries, cost."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from llm_scheduler.errors import MissingApiKey, MissingApiKeyError, ProviderError
from llm_scheduler.models.base import (
    EmbeddingRequest,
    EmbeddingResponse,
    ModelAdapter,
    ModelRequest,
    ModelResponse,
    Usage,
)
from llm_scheduler.models.providers import adapter_class, ensure_sdk
from llm_scheduler.models.rate_limit import (
    CHARACTERS_PER_TOKEN,
    RateLimiter,
    RateLimiters,
    estimate_tokens,
    shared_rate_limiters,
)
from llm_scheduler.models.registry import ModelRegistry, ModelSpec
from llm_scheduler.models.retry import RetryPolicy, call_with_retries
from llm_scheduler.models.slots import Slots

__all__ = [
    "OFFLINE_ENV",
    "EmbeddingCall",
    "ModelCall",
    "ModelClient",
    "RetryEvent",
    "offline_from_env",
]


class _Answer(Protocol):
    """What every provider call returns: a reply with its token usage."""

    @property
    def usage(self) -> Usage: ...


R = TypeVar("R", bound=_Answer)

# An entry's adapter and concurrency limit when `ModelClient.generate` calls it directly.
_Route = tuple[ModelAdapter, Slots] | tuple[()]

OFFLINE_ENV = "LLM_SCHEDULER_OFFLINE"

# google-genai also reads GOOGLE_API_KEY; honour it so users need not set both.
_API_KEY_FALLBACKS = {"GEMINI_API_KEY": ("GOOGLE_API_KEY",)}


def offline_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``LLM_SCHEDULER_OFFLINE`` asks for the offline model."""
    value = (environ if environ is not None else os.environ).get(OFFLINE_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclasses.dataclass(frozen=True)
class RetryEvent:
    """A request failed and will be retried.

    Attributes:
        model_key: The model key of the request.
        retry: The retry number, from 1.
        error: The failure.
        delay_seconds: How long the client waits before the retry.
    """

    model_key: str
    retry: int
    error: ProviderError
    delay_seconds: float


@dataclasses.dataclass(frozen=True)
class ModelCall:
    """A completed model request.

    Attributes:
        spec: The registry entry the key resolved to (provider ``offline`` in offline mode).
        request: The request sent.
        response: The response received.
        attempts: Requests made, retries included.
        latency_seconds: Wall time from the first attempt to the response, waits included.
        cost_usd: The response's price from the registry's price table.
    """

    spec: ModelSpec
    request: ModelRequest
    response: ModelResponse
    attempts: int
    latency_seconds: float
    cost_usd: float


@dataclasses.dataclass(frozen=True)
class EmbeddingCall:
    """A completed embedding request.

    Attributes:
        spec: The registry entry the key resolved to (provider ``offline`` in offline mode).
        request: The request sent.
        response: The response received.
        attempts: Requests made, retries included.
        latency_seconds: Wall time from the first attempt to the response, waits included.
        cost_usd: The input tokens' price from the registry's price table.
    """

    spec: ModelSpec
    request: EmbeddingRequest
    response: EmbeddingResponse
    attempts: int
    latency_seconds: float
    cost_usd: float


class ModelClient:
    """Resolves model keys and sends requests with retries and per-entry concurrency limits.

    One client serves one run (one event loop). Close it with `aclose`. An entry's
    ``max_concurrency`` holds per client; its ``requests_per_minute`` and ``tokens_per_minute``
    hold per process, across every client (`llm_scheduler.models.rate_limit`).
    """

    def __init__(
        self,
        registry: ModelRegistry | None = None,
        *,
        offline: bool | None = None,
        credentials: Mapping[str, str] | None = None,
        retry_policy: RetryPolicy | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        rate_limiters: RateLimiters | None = None,
    ) -> None:
        """Creates a client.

        Args:
            registry: The model registry; the built-in one by default.
            offline: Use the offline model for every key; by default ``LLM_SCHEDULER_OFFLINE``.
            credentials: Where API keys are looked up (env var name to key); the process
                environment by default. A runner may inject keys here.
            retry_policy: Overrides the retry policy; by default each entry's ``max_attempts``
                with the standard backoff.
            on_retry: Called before each retry wait.
            rate_limiters: The per-entry rate limiters; by default the process's, shared by
                every client. Retry waits use its ``sleep`` too, so a test's fake clock times
                both.
        """
        self.registry = registry or ModelRegistry()
        self.offline = offline_from_env() if offline is None else offline
        self._credentials = credentials if credentials is not None else os.environ
        self._retry_policy = retry_policy
        self._on_retry = on_retry
        self._adapters: dict[tuple[str, str, str], ModelAdapter] = {}
        self._limits: dict[str, Slots] = {}
        self._policies: dict[int, RetryPolicy] = {}
        self._resolved: dict[str, ModelSpec] = {}
        self.rate_limiters = rate_limiters or shared_rate_limiters()
        self._rate_limiters: dict[str, RateLimiter | None] = {}
        # Per entry key: the adapter and limit `generate` calls directly (`_direct_route`).
        self._direct: dict[str, _Route] = {}

    def resolve(self, model_key: str) -> ModelSpec:
        """The entry a key resolves to; in offline mode an offline entry named after the key.

        Raises:
            UnknownModelKeyError: The key is unknown (validation reports this earlier).
        """
        spec = self._resolved.get(model_key)
        if spec is None:
            spec = self.registry.resolve(model_key)
            if self.offline and spec.provider != "offline":
                spec = ModelSpec(key=model_key, provider="offline", model=model_key)
            self._resolved[model_key] = spec
        return spec

    def check_credentials(self, model_keys: Iterable[str]) -> None:
        """Fails early, naming every API key that the given model keys need and lack.

        Raises:
            MissingDependencyError: A provider's SDK is not installed.
            MissingApiKeyError: One or more API keys are not set; the error lists each
                environment variable with the model keys that need it.
        """
        needed: dict[tuple[str, str], list[str]] = {}
        for key in sorted(set(model_keys)):
            spec = self.resolve(key)
            ensure_sdk(spec.provider)
            if spec.needs_api_key and not self._api_key(spec):
                needed.setdefault((spec.api_key_env, spec.provider), []).append(key)
        if needed:
            raise MissingApiKeyError(
                [_missing(env_var, provider, keys) for (env_var, provider), keys in needed.items()]
            )

    async def generate(self, model_key: str, request: ModelRequest) -> ModelCall:
        """Sends a request to the model behind ``model_key`` (``request.model`` is replaced).

        Raises:
            MissingApiKeyError: The entry needs an API key that is not set.
            ProviderError: The request failed for good; ``attempts`` says how often it was tried.
        """
        spec = self.resolve(model_key)
        if request.model != spec.model or request.timeout_seconds != spec.timeout_seconds:
            request = dataclasses.replace(
                request, model=spec.model, timeout_seconds=spec.timeout_seconds
            )
        started = time.perf_counter()
        response, attempts = await self.send(model_key, request)
        usage = response.usage
        return ModelCall(
            spec=spec,
            request=request,
            response=response,
            attempts=attempts,
            latency_seconds=time.perf_counter() - started,
            cost_usd=spec.cost(
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                cache_write_input_tokens=usage.cache_write_input_tokens,
            ),
        )

    async def send(self, model_key: str, request: ModelRequest) -> tuple[ModelResponse, int]:
        """`generate` without its `ModelCall`: the response and the attempts it took.

        For callers that time and price the call themselves (the engine's step loop, where
        building a `ModelCall` was a measurable part of the cost per step).

        Raises:
            MissingApiKeyError: The entry needs an API key that is not set.
            ProviderError: The request failed for good; ``attempts`` says how often it was tried.
        """
        spec = self._resolved.get(model_key) or self.resolve(model_key)
        if request.model != spec.model or request.timeout_seconds != spec.timeout_seconds:
            request = dataclasses.replace(
                request, model=spec.model, timeout_seconds=spec.timeout_seconds
            )
        direct = self._direct.get(spec.key)
        if direct is None:
            direct = self._direct_route(spec)
        if not direct:
            adapter = self._adapter(spec)
            rate = self._rate_limiter(spec)
            tokens = estimate_tokens(request) if rate is not None and rate.counts_tokens else 0
            return await self._send_limited(
                model_key,
                spec,
                adapter,
                lambda: adapter.generate(request),
                request.model,
                rate,
                tokens,
            )
        # The offline model: no rate limit and no deadline, so the first attempt is made here,
        # without `_send_limited`'s layers (they were most of the engine's cost per step).
        adapter, limit = direct
        try:
            if not limit.try_take():
                await limit.take()
            try:
                response = await adapter.generate(request)
            except ProviderError:
                raise
            except Exception as error:
                raise adapter.unexpected_error(error, model=request.model) from error
            finally:
                limit.give()
        except ProviderError as first_error:
            return await self._retry(
                model_key,
                spec,
                adapter,
                lambda: adapter.generate(request),
                request.model,
                None,
                0,
                limit,
                first_error,
            )
        return response, 1

    async def embed(self, model_key: str, request: EmbeddingRequest) -> EmbeddingCall:
        """Embeds a text with the model behind ``model_key`` (``request.model`` is replaced).

        Retries, deadlines, the entry's concurrency limit and pricing are those of `generate`.

        Raises:
            MissingApiKeyError: The entry needs an API key that is not set.
            ProviderError: The request failed for good (also: the provider has no embeddings
                API); ``attempts`` says how often it was tried.
        """
        spec = self.resolve(model_key)
        if request.model != spec.model or request.timeout_seconds != spec.timeout_seconds:
            request = dataclasses.replace(
                request, model=spec.model, timeout_seconds=spec.timeout_seconds
            )
        adapter = self._adapter(spec)
        rate = self._rate_limiter(spec)
        tokens = -(-len(request.input) // CHARACTERS_PER_TOKEN) if rate is not None else 0
        started = time.perf_counter()
        response, attempts = await self._send_limited(
            model_key, spec, adapter, lambda: adapter.embed(request), request.model, rate, tokens
        )
        return EmbeddingCall(
            spec=spec,
            request=request,
            response=response,
            attempts=attempts,
            latency_seconds=time.perf_counter() - started,
            cost_usd=spec.cost(response.usage.input_tokens, 0, response.usage.cached_input_tokens),
        )

    def _rate_limiter(self, spec: ModelSpec) -> RateLimiter | None:
        """The entry's rate limiter (shared by the process), or None when it has no limits."""
        if spec.key in self._rate_limiters:
            return self._rate_limiters[spec.key]
        rate = self._rate_limiters[spec.key] = self.rate_limiters.limiter_for(spec)
        return rate

    def _direct_route(self, spec: ModelSpec) -> _Route:
        """The adapter and concurrency limit of an entry `generate` may call directly.

        That is an in-process adapter (no deadline) without rate limits, for a keyless entry
        (its adapter does not depend on the credentials); ``()`` for any other entry.
        """
        route: _Route = ()
        if spec.no_api_key or not spec.needs_api_key:
            adapter = self._adapter(spec)
            if adapter.in_process and self._rate_limiter(spec) is None:
                route = (adapter, self._limit(spec))
        self._direct[spec.key] = route
        return route

    def _limit(self, spec: ModelSpec) -> Slots:
        """The entry's concurrency limit in this client."""
        limit = self._limits.get(spec.key)
        if limit is None:
            limit = self._limits.setdefault(spec.key, Slots(spec.max_concurrency))
        return limit

    async def _send_limited(
        self,
        model_key: str,
        spec: ModelSpec,
        adapter: ModelAdapter,
        call: Callable[[], Awaitable[R]],
        model: str,
        rate: RateLimiter | None,
        tokens: int,
    ) -> tuple[R, int]:
        """Makes a request under the entry's limits, with retries; returns it and the attempts.

        Each attempt waits for a slot of the entry's ``max_concurrency``, then for its rate
        limits, if it has any, and is sent at once.
        """
        limit = self._limit(spec)
        tokens = tokens if rate is not None and rate.counts_tokens else 0
        try:
            # The first attempt directly: most requests need no other.
            return await _attempt(
                adapter, limit, rate, tokens, call, model, spec.timeout_seconds
            ), 1
        except ProviderError as first_error:
            return await self._retry(
                model_key, spec, adapter, call, model, rate, tokens, limit, first_error
            )

    async def _retry(
        self,
        model_key: str,
        spec: ModelSpec,
        adapter: ModelAdapter,
        call: Callable[[], Awaitable[R]],
        model: str,
        rate: RateLimiter | None,
        tokens: int,
        limit: Slots,
        first_error: ProviderError,
    ) -> tuple[R, int]:
        """Retries a request whose first attempt failed with ``first_error``.

        Returns:
            The response and the attempts made (the first one included), as the entry's retry
            policy allowed.
        """
        policy = self._retry_policy or self._policies.get(spec.max_attempts)
        if policy is None:
            policy = self._policies.setdefault(
                spec.max_attempts, RetryPolicy(max_attempts=spec.max_attempts)
            )
        timeout = spec.timeout_seconds

        async def attempt() -> R:
            return await _attempt(adapter, limit, rate, tokens, call, model, timeout)

        def on_retry(retry: int, error: ProviderError, delay: float) -> None:
            if self._on_retry is not None:
                self._on_retry(RetryEvent(model_key, retry, error, delay))

        return await call_with_retries(
            attempt,
            policy,
            on_retry=on_retry,
            sleep=self.rate_limiters.sleep,
            first_error=first_error,
        )

    async def aclose(self) -> None:
        """Closes every adapter's connections."""
        adapters, self._adapters = list(self._adapters.values()), {}
        self._direct = {}
        for adapter in adapters:
            await adapter.aclose()

    def _api_key(self, spec: ModelSpec) -> str:
        for env_var in (spec.api_key_env, *_API_KEY_FALLBACKS.get(spec.api_key_env, ())):
            value = self._credentials.get(env_var, "") if env_var else ""
            if value:
                return value
        return ""

    def _adapter(self, spec: ModelSpec) -> ModelAdapter:
        # Keyless entries (local servers, the offline model) need no key lookup per request.
        if spec.no_api_key or not spec.needs_api_key:
            adapter = self._adapters.get((spec.provider, spec.base_url, ""))
            if adapter is not None:
                return adapter
        # Never send a provider's real key to a server that was declared keyless.
        api_key = "" if spec.no_api_key else self._api_key(spec)
        if spec.needs_api_key and not api_key:
            raise MissingApiKeyError([_missing(spec.api_key_env, spec.provider, [spec.key])])
        cache_key = (spec.provider, spec.base_url, api_key)
        adapter = self._adapters.get(cache_key)
        if adapter is None:
            cls = adapter_class(spec.provider)
            adapter = cls(api_key=api_key, base_url=spec.base_url or None)
            self._adapters[cache_key] = adapter
        return adapter


def _missing(env_var: str, provider: str, model_keys: list[str]) -> MissingApiKey:
    return MissingApiKey(
        env_var=env_var,
        provider=provider,
        model_keys=tuple(model_keys),
        alternatives=_API_KEY_FALLBACKS.get(env_var, ()),
    )


async def _attempt(
    adapter: ModelAdapter,
    limit: Slots,
    rate: RateLimiter | None,
    tokens: int,
    call: Callable[[], Awaitable[R]],
    model: str,
    timeout: float,
) -> R:
    """Makes one request under the entry's concurrency limit and rate limit.

    The rate limit is waited for inside the concurrency limit, so a request is sent the moment
    the rate limiter counts its start (waiting for a slot afterwards would let starts bunch up).
    """
    if not limit.try_take():
        await limit.take()
    try:
        if rate is None:
            return await _call(adapter, call, model, timeout)
        permit = await rate.acquire(tokens)
        response = await _call(adapter, call, model, timeout)
        if rate.counts_tokens:
            used = response.usage.input_tokens + response.usage.output_tokens
            if used:  # a server that reports no usage leaves the estimate counted
                permit.settle(used)
        return response
    finally:
        limit.give()


async def _call(
    adapter: ModelAdapter, call: Callable[[], Awaitable[R]], model: str, timeout: float
) -> R:
    """Makes one request; every failure a ProviderError.

    ``timeout`` is a deadline for the whole attempt (connect, send, the full reply), not
    counting the waits for the limits. SDKs apply their timeouts per read, so a reply trickling
    in would otherwise never time out.
    """
    if adapter.in_process:
        # Nothing to wait for: no deadline (a timer per step cost ~7 µs).
        try:
            return await call()
        except ProviderError:
            raise
        except Exception as error:
            raise adapter.unexpected_error(error, model=model) from error
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await call()
    except ProviderError:
        raise
    except TimeoutError as error:
        if not deadline.expired():
            raise adapter.unexpected_error(error, model=model) from error
        raise adapter.timeout_error(timeout, model=model) from error
    except Exception as error:
        # Bad JSON, a shape the adapter did not expect, an SDK surprise: recorded, retried
        # when transient, and masked like any provider failure.
        raise adapter.unexpected_error(error, model=model) from error
