"""Background housekeeping inside the service: expired Idempotency-Key records are deleted.

Safe with any number of replicas: the delete is idempotent and bounded per round.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.idempotency_models import IdempotencyRecord

log = structlog.get_logger(__name__)
BATCH = 5_000


async def purge_expired_keys(session: AsyncSession) -> int:
    """Delete up to BATCH expired idempotency records; returns how many."""
    expired = (
        sa.select(IdempotencyRecord.scope, IdempotencyRecord.key)
        .where(IdempotencyRecord.expires_at < sa.func.now())
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        sa.delete(IdempotencyRecord).where(
            sa.tuple_(IdempotencyRecord.scope, IdempotencyRecord.key).in_(expired)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def run_housekeeping(maker: async_sessionmaker[AsyncSession], interval: float) -> None:
    while True:
        try:
            async with maker() as session, session.begin():
                deleted = await purge_expired_keys(session)
            if deleted:
                log.info("idempotency_keys_purged", count=deleted)
        except Exception:
            log.exception("housekeeping_failed")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def housekeeping(
    maker: async_sessionmaker[AsyncSession], interval: float = 600.0
) -> AsyncIterator[None]:
    task = asyncio.create_task(run_housekeeping(maker, interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
