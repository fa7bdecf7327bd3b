"""Housekeeping: expired Idempotency-Key records are deleted.

Run by the background runner as its `purge_idempotency_keys` job (app/runner/jobs.py), one
runner at a time; safe with any number of replicas anyway: the delete skips rows another
transaction holds and is bounded per piece. The statement is the key store's
(`app.core.idempotency.purge_expired`).
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.idempotency import PURGE_BATCH, purge_expired

BATCH = PURGE_BATCH


async def purge_expired_keys(session: AsyncSession) -> int:
    """Delete up to BATCH expired idempotency records; returns how many."""
    return await purge_expired(session, BATCH)
