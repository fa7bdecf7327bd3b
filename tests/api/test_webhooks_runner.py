"""What the webhook jobs need of the runner (issue 13, items 2-3; app/runner): a job's own
poll, a run that ends on a piece that is not full, callbacks after a piece commits (never
after a rollback), a job woken before its poll, and a close hook when the runner stops."""

import asyncio
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.runner.job import Job, Piece
from app.runner.runner import Runner


async def test_a_commit_callback_wakes_another_job_before_its_poll(engine: AsyncEngine) -> None:
    woken = asyncio.Event()
    second_run = asyncio.Event()
    runs: list[float] = []
    closed: list[str] = []

    async def producer(piece: Piece) -> int:
        await piece.session.execute(sa.select(1))
        if len(runs) == 1:  # after the consumer's first run
            piece.on_commit.append(woken.set)
        return 0

    async def consumer(piece: Piece) -> int:
        await piece.session.execute(sa.select(1))
        runs.append(time.monotonic())
        if len(runs) == 2:
            second_run.set()
        return 0

    async def wakeup() -> None:
        await woken.wait()
        woken.clear()

    async def close() -> None:
        closed.append("consumer")

    runner = Runner(
        async_sessionmaker(engine),
        [
            Job(name="producer", work=producer, poll_seconds=0.05),
            Job(name="consumer", work=consumer, poll_seconds=60, wakeup=wakeup, close=close),
        ],
        poll_seconds=60,
    )
    runner.start()
    try:
        async with asyncio.timeout(10):
            await second_run.wait()
    finally:
        await runner.stop()
    assert runs[1] - runs[0] < 5  # woken, not after its 60 s poll
    assert closed == ["consumer"]


async def test_no_commit_callback_after_a_rollback(engine: AsyncEngine) -> None:
    called: list[str] = []

    async def failing(piece: Piece) -> int:
        piece.on_commit.append(lambda: called.append("committed"))
        raise RuntimeError("the piece fails")

    runner = Runner(async_sessionmaker(engine), [Job(name="failing", work=failing)])
    with pytest.raises(RuntimeError):
        await runner.run(runner.jobs[0])
    assert called == []


async def test_a_run_ends_on_a_piece_that_is_not_full(engine: AsyncEngine) -> None:
    sizes = iter([10, 10, 3, 10])
    pieces: list[int] = []

    async def work(piece: Piece) -> int:
        await piece.session.execute(sa.select(1))
        pieces.append(size := next(sizes))
        return size

    runner = Runner(async_sessionmaker(engine), [Job(name="batches", work=work, full_piece=10)])
    assert await runner.run(runner.jobs[0]) == 23
    assert pieces == [10, 10, 3]
