"""Event refs (`EV-2026-000123`): the format, and the numbers taken from `event_ref_seq` a block
at a time so that intake knows its ref before its one statement (product.md section 4: `GET
/v1/events/{id}` takes the id or the ref, so a ref names one event for good)."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asyncpg import Pool
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import Database
from app.events.repository import RefNumbers, format_ref


@pytest.mark.parametrize(
    ("number", "ref"),
    [
        (1, "EV-2026-000001"),
        (123, "EV-2026-000123"),
        (999_999, "EV-2026-999999"),
        (1_000_000, "EV-2026-1000000"),
        (123_456_789, "EV-2026-123456789"),
    ],
)
def test_format_pads_to_six_digits_and_never_truncates(number: int, ref: str) -> None:
    assert format_ref(2026, number) == ref


def _counting(source: Callable[[], Any]) -> tuple[Callable[[], Any], list[None]]:
    """The connection source, recording each time a connection is asked for."""
    calls: list[None] = []

    def counted() -> Any:
        calls.append(None)
        return source()

    return counted, calls


async def test_numbers_increase_across_blocks_one_query_per_block(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    numbers = RefNumbers(block=3)
    source, calls = _counting(Database(session_maker).connection)
    taken = [await numbers.next(source) for _ in range(7)]
    assert taken == sorted(set(taken))
    assert len(calls) == 3  # blocks of 3: 7 numbers need 3 trips to the sequence


async def test_concurrent_callers_get_unique_increasing_numbers(pool: Pool) -> None:
    """Many intakes waiting on an empty block: one of them refills it, none gets a number
    twice, and they are handed out in the order asked."""
    numbers = RefNumbers(block=3)
    source, calls = _counting(pool.acquire)
    taken = await asyncio.gather(*(numbers.next(source) for _ in range(10)))
    assert taken == sorted(set(taken))
    assert len(calls) == 4


async def test_no_background_refill_on_a_shared_connection(
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Without a pool the source is the caller's own connection: the next block is taken
    only when the current one is empty, never by a task running beside the caller."""
    numbers = RefNumbers(block=4)
    source, calls = _counting(Database(session_maker).connection)
    for _ in range(3):
        await numbers.next(source, prefetch=False)
        assert numbers._refill is None
    assert len(calls) == 1  # 3 of a block of 4: no second trip yet


async def test_with_a_pool_the_next_block_is_fetched_ahead(pool: Pool) -> None:
    """Half a block used: the next block is on its way before anyone has to wait for it."""
    numbers = RefNumbers(block=4)
    source, calls = _counting(pool.acquire)
    await numbers.next(source)
    await numbers.next(source)
    await numbers.next(source)  # 1 left of 4: a refill has started
    assert numbers._refill is not None or len(calls) == 2
    taken = [await numbers.next(source) for _ in range(5)]
    assert taken == sorted(set(taken))
    assert len(calls) >= 2
