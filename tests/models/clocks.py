"""Clocks for rate-limit tests that never depend on wall time.

- `run_in_virtual_time` runs a coroutine on an event loop whose clock is virtual: whenever the
  loop would wait for a timer, it jumps to it instead. Exact for code that does no real I/O:
  time moves only when every task is blocked on a timer (or on something a timer frees).
- `FakeClock` moves only when a test calls `advance_to`; it serves code that does real I/O
  (the fake provider server) and several threads, each with its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import selectors
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.SelectSelector):
    """Polls for real I/O; instead of blocking until the next timer, moves the loop's clock."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        super().__init__()
        self._advance = advance

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only real I/O (an executor thread) can help
            return super().select(None)
        self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time` starts at 0 and jumps from one timer to the next."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_JumpingSelector(self._jump))

    def time(self) -> float:
        return self._virtual_now

    def _jump(self, seconds: float) -> None:
        self._virtual_now += seconds


def run_in_virtual_time(main: Coroutine[Any, Any, T]) -> T:
    """Runs ``main`` on a `VirtualTimeLoop`; ``asyncio.get_running_loop().time`` is its clock."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)


class FakeClock:
    """A clock that moves only when told to; safe to share between threads and event loops."""

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._sleepers: list[
            tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), loop, future))
        await future

    @property
    def sleeping(self) -> int:
        """How many sleeps are pending."""
        with self._lock:
            return sum(not future.done() for *_, future in self._sleepers)

    def advance_to(self, when: float) -> None:
        """Moves the clock to ``when`` and wakes every sleep that is due."""
        with self._lock:
            self._now = max(self._now, when)
            due = []
            while self._sleepers and self._sleepers[0][0] <= self._now:
                due.append(heapq.heappop(self._sleepers))
        for _, _, loop, future in due:
            with contextlib.suppress(RuntimeError):  # a loop closed since: nobody waits
                loop.call_soon_threadsafe(_wake, future)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def until(condition: Callable[[], bool]) -> None:
    """Waits, however long it takes (the test's timeout is the bound), until ``condition``."""
    while not condition():
        await asyncio.sleep(0.002)
