"""The service's registered jobs: every runner (each `serve` worker, each `python -m app
worker`) runs these. Later jobs (stage clocks, webhook delivery) are added here."""

from datetime import timedelta

from app.core.housekeeping import purge_expired_keys
from app.runner.job import Job, Piece


async def _purge_idempotency_keys(piece: Piece) -> int:
    return await purge_expired_keys(piece.session)


# Expired Idempotency-Key records (kept 24 hours), deleted in batches: one runner at a time,
# every ten minutes.
PURGE_IDEMPOTENCY_KEYS = Job(
    name="purge_idempotency_keys",
    work=_purge_idempotency_keys,
    once_every=timedelta(minutes=10),
)


def service_jobs() -> tuple[Job, ...]:
    """Every job the service runs."""
    return (PURGE_IDEMPOTENCY_KEYS,)
