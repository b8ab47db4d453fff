"""Retries with exponential backoff and full jitter, honouring the provider's Retry-After."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from llm_scheduler.errors import ProviderError

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait between attempts.

    Attributes:
        max_attempts: Attempts in all, the first included.
        initial_backoff: The upper bound of the first wait, in seconds.
        max_backoff: The upper bound of any computed wait.
        multiplier: How much the bound grows per attempt.
        max_retry_after: The longest Retry-After that is honoured; a longer one is capped.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    multiplier: float = 2.0
    max_retry_after: float = 120.0

    def delay(self, retry: int, error: ProviderError, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (from 1) after ``error``."""
        bound = min(self.initial_backoff * self.multiplier ** (retry - 1), self.max_backoff)
        # Full jitter spreads out clients that failed together (AWS architecture blog).
        backoff = rng.uniform(0, bound)
        if error.retry_after is not None:
            return max(min(error.retry_after, self.max_retry_after), backoff)
        return backoff


RetryHook = Callable[[int, ProviderError, float], None]


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: RetryHook | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    first_error: ProviderError | None = None,
) -> tuple[T, int]:
    """Calls ``attempt`` until it succeeds, fails for good, or the attempts run out.

    Args:
        attempt: Makes one request.
        policy: The retry policy.
        on_retry: Called with (retry number, error, delay) before each wait.
        sleep: Waits; tests may pass a recorder.
        rng: The jitter's random source.
        first_error: The failure of a first attempt the caller already made (it counts as
            attempt 1); retries start from it.

    Returns:
        The result and the number of attempts made.

    Raises:
        ProviderError: A non-retryable failure, or the last retryable one. Its ``attempts``
            attribute holds the attempts made.
    """
    attempts = 0
    failed = first_error
    if failed is not None:
        attempts = failed.attempts = 1
    while True:
        if failed is None:
            attempts += 1
            try:
                return await attempt(), attempts
            except ProviderError as error:
                error.attempts = attempts
                failed = error
        if not failed.retryable or attempts >= policy.max_attempts:
            raise failed
        rng = rng or random.Random()  # created on the first retry only: seeding is costly
        delay = policy.delay(attempts, failed, rng)
        if on_retry is not None:
            on_retry(attempts, failed, delay)
        await sleep(delay)
        failed = None
