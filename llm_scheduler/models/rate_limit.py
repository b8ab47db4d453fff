"""Rate limits per model entry: request starts and tokens in any 60 s window, per process.

A `RateLimiter` remembers the requests of one model entry that started in the last 60 s and lets
a new one start only when the window has room for it; otherwise the request sleeps until the
oldest starts leave the window (no polling), in arrival order. `RateLimiters` holds one limiter
per entry for a whole process (`shared_rate_limiters`), so every `ModelClient` (every task and
run of a dispatcher, every invocation an instance of the cloud function serves) counts against
the same window. Nothing is shared between processes: N processes may together start N times the
limit.

Guarantees, on the limiter's clock:

- **Requests per minute**: no 60 s window ``[t, t + 60)`` holds more than the limit of starts.
  A start is the moment the limiter lets an attempt go; the client sends it at once. Retries are
  attempts and count.
- **Tokens per minute**: a request counts `estimate_tokens` when it starts (an estimate above the
  limit counts as the limit, so such a request waits for an empty window and goes alone), and
  `Permit.settle` replaces that with its reported usage when the reply arrives. When a request
  starts, the tokens counted for the window's earlier starts plus its estimate never exceed the
  limit. So the tokens of the requests that start in a window exceed the limit by at most the
  underestimates of those still in flight at its last start, that one included (at most
  ``max_concurrency`` per model client are in flight): with one request at a time, by at most
  one request's misestimate. An attempt that fails, or a reply that reports no usage, keeps its
  estimate.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable

from llm_scheduler.models.base import ModelRequest
from llm_scheduler.models.registry import ModelSpec

__all__ = [
    "CHARACTERS_PER_TOKEN",
    "WINDOW_SECONDS",
    "Permit",
    "RateLimiter",
    "RateLimiters",
    "estimate_tokens",
    "shared_rate_limiters",
]

WINDOW_SECONDS = 60.0
CHARACTERS_PER_TOKEN = 4

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def estimate_tokens(request: ModelRequest) -> int:
    """A cheap estimate of a request's tokens, made before it is sent.

    The prompts' characters / 4 (rounded up; English averages about 4 characters a token), plus
    ``max_tokens`` when the request sets it (the most the reply may use, as OpenAI counts it).
    """
    characters = len(request.system_prompt) + len(request.user_prompt)
    tokens = -(-characters // CHARACTERS_PER_TOKEN)
    max_tokens = request.parameters.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        tokens += max_tokens
    return tokens


@dataclasses.dataclass(eq=False)
class _Start:
    """A request start in the window."""

    time: float
    tokens: int
    in_window: bool = True


class _Waiter:
    """A request waiting in line, woken on its own event loop (limiters serve many loops)."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def renew(self) -> None:
        if self.future.done():
            self.future = self.loop.create_future()

    def wake(self) -> None:
        future = self.future

        def set_result() -> None:
            if not future.done():
                future.set_result(None)

        # A closed loop raises: its waiter is gone with it.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(set_result)


class Permit:
    """A request's place in its limiter's window, given when it may start."""

    __slots__ = ("_limiter", "_start")

    def __init__(self, limiter: RateLimiter, start: _Start) -> None:
        self._limiter = limiter
        self._start = start

    def settle(self, tokens: int) -> None:
        """Replaces the request's estimated tokens with the tokens it used."""
        self._limiter._settle(self._start, max(tokens, 0))


class RateLimiter:
    """Limits the request starts and tokens of one model entry in any 60 s window.

    Safe to share between threads and event loops: its state is guarded by a lock held for no
    await, and a waiting request sleeps on its own loop. Waiting requests start in arrival order.
    """

    def __init__(
        self,
        requests_per_minute: int = 0,
        tokens_per_minute: int = 0,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        """Creates a limiter.

        Args:
            requests_per_minute: Starts allowed in any window; 0 for no limit.
            tokens_per_minute: Tokens allowed in any window; 0 for no limit.
            clock: Monotonic seconds; tests pass a fake clock.
            sleep: Waits at least the given seconds of ``clock``; tests pass the fake's sleep.
            window_seconds: The window's length.

        Raises:
            ValueError: A limit is negative.
        """
        if requests_per_minute < 0 or tokens_per_minute < 0:
            raise ValueError("rate limits must not be negative (0 means no limit)")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._clock = clock
        self._sleep = sleep
        self._window = window_seconds
        self._lock = threading.Lock()
        self._starts: collections.deque[_Start] = collections.deque()
        self._tokens = 0  # the tokens of the starts in the window
        self._line: collections.deque[_Waiter] = collections.deque()

    @property
    def counts_tokens(self) -> bool:
        """Whether the limiter has a token limit (so estimates and usage matter)."""
        return self.tokens_per_minute > 0

    @property
    def waiting(self) -> int:
        """How many requests wait for a start."""
        with self._lock:
            return len(self._line)

    async def acquire(self, tokens: int = 0) -> Permit:
        """Waits until a request may start, and counts it as started.

        Args:
            tokens: The request's estimated tokens; ignored without a token limit.

        Returns:
            The permit, to settle with the request's usage when its reply arrives.
        """
        tokens = min(max(tokens, 0), self.tokens_per_minute)
        waiter: _Waiter | None = None
        try:
            while True:
                with self._lock:
                    delay: float | None = None
                    line = self._line
                    # Only the first in line (or a newcomer when nobody waits) may start.
                    if (waiter is None and not line) or (line and line[0] is waiter):
                        now = self._clock()
                        delay = self._delay(now, tokens)
                        if delay <= 0:
                            start = _Start(now, tokens)
                            self._starts.append(start)
                            self._tokens += tokens
                            if waiter is not None:
                                line.popleft()
                                if line:
                                    line[0].wake()
                            return Permit(self, start)
                    if waiter is None:
                        waiter = _Waiter(asyncio.get_running_loop())
                        line.append(waiter)
                    else:
                        waiter.renew()
                    future = waiter.future
                await self._wait(future, delay)
        except BaseException:
            if waiter is not None:
                self._leave(waiter)
            raise

    async def _wait(self, turn: asyncio.Future[None], delay: float | None) -> None:
        """Waits for ``turn`` (the one before in line left, or tokens were freed), or ``delay``."""
        if delay is None:
            await turn
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait((sleeper, turn), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()

    def _delay(self, now: float, tokens: int) -> float:
        """Seconds until a start with ``tokens`` fits the window; 0 when it fits now."""
        starts = self._starts
        # `time + window <= now` is also how the wake-up time is computed: a sleeper woken at
        # exactly that time finds the start gone.
        while starts and starts[0].time + self._window <= now:
            gone = starts.popleft()
            gone.in_window = False
            self._tokens -= gone.tokens
        ready = now
        limit = self.requests_per_minute
        if limit and len(starts) >= limit:
            ready = starts[len(starts) - limit].time + self._window
        excess = self._tokens + tokens - self.tokens_per_minute
        if self.tokens_per_minute and excess > 0:
            for start in starts:
                excess -= start.tokens
                if excess <= 0:
                    ready = max(ready, start.time + self._window)
                    break
        return ready - now

    def _settle(self, start: _Start, tokens: int) -> None:
        with self._lock:
            change = tokens - start.tokens
            start.tokens = tokens
            if start.in_window:
                self._tokens += change
                if change < 0 and self._line:
                    self._line[0].wake()  # the first in line may fit now

    def _leave(self, waiter: _Waiter) -> None:
        """Takes a cancelled waiter out of line; the next one becomes first."""
        with self._lock:
            line = self._line
            if waiter not in line:
                return
            first = line[0] is waiter
            line.remove(waiter)
            if first and line:
                line[0].wake()


class RateLimiters:
    """One `RateLimiter` per model entry that sets a limit, for every client of a process.

    Entries are told apart by their whole `ModelSpec`: two keys never share a limiter, even when
    they name the same model.
    """

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        """Creates an empty set of limiters.

        Args:
            clock: The limiters' clock; tests pass a fake one.
            sleep: Waits on ``clock``; model clients also use it for retry waits.
        """
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._limiters: dict[ModelSpec, RateLimiter] = {}

    def limiter_for(self, spec: ModelSpec) -> RateLimiter | None:
        """The limiter of an entry; None when the entry sets no limit."""
        if not (spec.requests_per_minute or spec.tokens_per_minute):
            return None
        with self._lock:
            limiter = self._limiters.get(spec)
            if limiter is None:
                limiter = self._limiters[spec] = RateLimiter(
                    spec.requests_per_minute,
                    spec.tokens_per_minute,
                    clock=self.clock,
                    sleep=self.sleep,
                )
            return limiter


_SHARED = RateLimiters()


def shared_rate_limiters() -> RateLimiters:
    """The process's limiters, which every `ModelClient` uses unless given others."""
    return _SHARED
