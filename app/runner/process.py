"""Where runners run: inside each `serve` worker (the app lifespan) unless `RUN_WORKERS=false`,
and as its own process, `python -m app worker` (issue 12, item 1)."""

import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import make_engine, make_session_maker
from app.core.logging import configure_logging
from app.runner.job import Job
from app.runner.runner import Runner


@asynccontextmanager
async def running(
    session_maker: async_sessionmaker[AsyncSession], settings: Settings, jobs: Sequence[Job]
) -> AsyncIterator[Runner | None]:
    """The service's jobs running while the block runs (None when `RUN_WORKERS=false`); on
    exit the pieces in hand are finished and the runner stops."""
    if not settings.run_workers:
        yield None
        return
    runner = Runner(session_maker, jobs, poll_seconds=settings.runner_poll_seconds)
    runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


async def run_worker(settings: Settings, jobs: Sequence[Job]) -> None:
    """`python -m app worker`: the service's jobs and nothing else, until SIGTERM or SIGINT,
    which finish the pieces in hand and stop."""
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is not set (use `python -m app worker`)")
    configure_logging(settings.log_level, settings.log_format)
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    runner = Runner(make_session_maker(engine), jobs, poll_seconds=settings.runner_poll_seconds)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.request_stop)
    try:
        runner.start()
        await runner.stopping.wait()
    finally:
        await runner.stop()
        await engine.dispose()
