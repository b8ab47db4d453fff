"""An entry's concurrency limit: at most N holders, waiters in order, cancellation-safe."""

from __future__ import annotations

import asyncio

import pytest

from llm_scheduler.models.slots import Slots


def test_free_slots_are_taken_without_waiting_and_given_back() -> None:
    slots = Slots(2)
    assert slots.try_take() and slots.try_take()
    assert not slots.try_take() and slots.free == 0
    slots.give()
    assert slots.free == 1 and slots.try_take()


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        Slots(-1)


def test_at_most_size_holders_and_waiters_are_served_in_order() -> None:
    async def main() -> tuple[int, list[int]]:
        slots = Slots(2)
        holding = 0
        most = 0
        order: list[int] = []

        async def worker(number: int) -> None:
            nonlocal holding, most
            await slots.take()
            try:
                holding += 1
                most = max(most, holding)
                order.append(number)
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            finally:
                holding -= 1
                slots.give()

        await asyncio.gather(*(worker(number) for number in range(8)))
        assert slots.free == 2
        return most, order

    most, order = asyncio.run(main())
    assert most == 2
    assert order == list(range(8))


def test_a_cancelled_waiter_holds_no_slot() -> None:
    async def main() -> None:
        slots = Slots(1)
        slots.try_take()
        waiter = asyncio.ensure_future(slots.take())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        slots.give()
        assert slots.free == 1
        assert slots.try_take()

    asyncio.run(main())


def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    async def main() -> None:
        slots = Slots(1)
        slots.try_take()
        first = asyncio.ensure_future(slots.take())
        second = asyncio.ensure_future(slots.take())
        await asyncio.sleep(0)
        slots.give()  # hands the slot to `first` ...
        first.cancel()  # ... which is cancelled before it resumes
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)  # the slot went on to `second`
        assert slots.free == 0
        slots.give()
        assert slots.free == 1

    asyncio.run(main())


def test_a_waiter_cancelled_while_the_slot_is_given_away_is_skipped() -> None:
    async def main() -> None:
        slots = Slots(1)
        slots.try_take()
        first = asyncio.ensure_future(slots.take())
        await asyncio.sleep(0)
        first.cancel()
        slots.give()  # `first` is cancelled: the slot is free again, not lost
        with pytest.raises(asyncio.CancelledError):
            await first
        assert slots.free == 1

    asyncio.run(main())
