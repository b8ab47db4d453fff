"""An entry's concurrency limit: `asyncio.Semaphore`, with a slot taken without an await.

Every model request takes a slot of its entry's ``max_concurrency`` (`ModelClient`). Most find
one free; `asyncio.Semaphore.acquire` is a coroutine (and, before Python 3.12, scans its
waiters through a generator), which cost about a microsecond per in-process model step.
`Slots.try_take` takes a free slot synchronously; `take` waits in line like the semaphore does.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Slots"]


class Slots:
    """At most ``size`` holders at once; the others wait in first-come order.

    A slot released while someone waits passes to the first waiter directly, so a newcomer
    cannot overtake the line. Bound to the event loop of its first waiter, like
    `asyncio.Semaphore`.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        """Creates ``size`` free slots.

        Raises:
            ValueError: ``size`` is negative.
        """
        if size < 0:
            raise ValueError(f"a concurrency limit cannot be negative, got {size}")
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def free(self) -> int:
        """Slots nobody holds."""
        return self._free

    def try_take(self) -> bool:
        """Takes a slot if one is free; never waits.

        A slot is only free when nobody waits for one (`give` hands it to the first waiter),
        so taking it overtakes no one.
        """
        if self._free:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Takes a slot, waiting in line for one if none is free.

        Raises:
            asyncio.CancelledError: Cancelled while waiting; no slot is held then.
        """
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # it was handed a slot just before the cancellation: pass it on
            elif waiter in self._waiters:  # `give` drops cancelled waiters it meets
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Releases a slot: to the first waiter still waiting, else back to the free ones."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
