"""Housekeeping statements: expired Idempotency-Key records are deleted.

Run by the background runner as its `purge_idempotency_keys` job (app/runner/jobs.py), one
runner at a time; safe with any number of replicas anyway: the delete skips rows another
transaction holds and is bounded per piece.
"""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.idempotency_models import IdempotencyRecord

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
