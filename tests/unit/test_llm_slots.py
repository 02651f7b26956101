"""Slots: at most N holders, the rest served first come, first served, cancellation-safe."""

from __future__ import annotations

import asyncio

import pytest

from datamill.llm.limits import Slots


def test_holders_never_exceed_the_slots_and_waiters_are_served_in_order() -> None:
    slots = Slots(3)
    holding, peak, order = 0, 0, []

    async def hold(i: int) -> None:
        nonlocal holding, peak
        async with slots:
            holding += 1
            peak = max(peak, holding)
            order.append(i)
            await asyncio.sleep(0.001 * (i % 4))
            holding -= 1

    async def main() -> None:
        await asyncio.gather(*(hold(i) for i in range(50)))

    asyncio.run(main())
    assert peak == 3 and order == list(range(50)) and slots.free == 3


def test_a_cancelled_waiter_gives_up_its_place_and_a_handed_slot_is_passed_on() -> None:
    slots = Slots(1)

    async def main() -> list[str]:
        got: list[str] = []

        async def take(name: str) -> None:
            async with slots:
                got.append(name)

        async with slots:  # held here, so every task below waits
            waiting = asyncio.create_task(take("cancelled while waiting"))
            handed = asyncio.create_task(take("cancelled once handed the slot"))
            last = asyncio.create_task(take("last"))
            await asyncio.sleep(0.01)
            waiting.cancel()
            await asyncio.sleep(0)
        handed.cancel()  # the slot was just handed to it, and it has not run since
        await asyncio.wait_for(last, 10)  # would wait forever had the slot been lost
        for task in (waiting, handed):
            with pytest.raises(asyncio.CancelledError):
                await task
        return got

    assert asyncio.run(main()) == ["last"]
    assert slots.free == 1


def test_slots_need_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Slots(0)
