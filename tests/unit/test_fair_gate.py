"""`FairGate`: first come, first served admission to the hot-path pool (bench/README.md)."""

import asyncio

import pytest

from app.core.db import FairGate


async def _enter(gate: FairGate, name: str, order: list[str], hold: asyncio.Event) -> None:
    await gate.acquire()
    order.append(name)
    await hold.wait()
    gate.release()


async def test_waiters_get_slots_in_arrival_order_and_newcomers_queue_behind() -> None:
    gate = FairGate(1)
    order: list[str] = []
    hold = asyncio.Event()
    await gate.acquire()  # the slot is taken
    waiters = [asyncio.create_task(_enter(gate, n, order, hold)) for n in "abc"]
    await asyncio.sleep(0)  # a, b, c are queued
    gate.release()  # handed to a, not up for grabs
    late = asyncio.create_task(_enter(gate, "d", order, hold))  # arrives before a runs
    hold.set()
    await asyncio.gather(*waiters, late)
    assert order == ["a", "b", "c", "d"]


async def test_a_waiter_cancelled_in_the_queue_leaves_no_trace() -> None:
    gate = FairGate(1)
    await gate.acquire()
    waiting = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # the one slot is free again


async def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_goes_to_the_next() -> None:
    gate = FairGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # handed to `first` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # the slot was passed on, not lost


async def test_free_slots_are_taken_without_waiting_up_to_the_limit() -> None:
    gate = FairGate(2)
    await gate.acquire()
    await gate.acquire()
    third = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert not third.done()
    gate.release()
    await asyncio.wait_for(third, 1)
