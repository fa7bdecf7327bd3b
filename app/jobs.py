"""The service's jobs: every runner (each `serve` worker, each `python -m app worker`) runs
these. The runner (`app/runner/`) is the mechanism; this list, at the top beside `main` and
`cli`, is where the domains' jobs are put on it, so that no domain imports another's jobs."""

from datetime import timedelta

from app.core.housekeeping import purge_expired_keys
from app.events import clocks
from app.reporting.service import FOLD_BATCH, fold_reported
from app.runner.job import Job, Piece
from app.webhooks.jobs import webhook_jobs


async def _purge_idempotency_keys(piece: Piece) -> int:
    return await purge_expired_keys(piece.session)


# Expired Idempotency-Key records (kept 24 hours), deleted in batches: one runner at a time,
# every ten minutes.
PURGE_IDEMPOTENCY_KEYS = Job(
    name="purge_idempotency_keys",
    work=_purge_idempotency_keys,
    once_every=timedelta(minutes=10),
)


async def _fire_sla_levels(piece: Piece) -> int:
    return await clocks.fire_due(piece.session, now=piece.now, on_commit=piece.on_commit)


# Stage clocks (issue 12): every runner fires the levels due, each claimed with SKIP LOCKED;
# a piece that found fewer than a batch has caught up until the next poll.
FIRE_SLA_LEVELS = Job(name="fire_sla_levels", work=_fire_sla_levels, full_piece=clocks.BATCH)


async def _fold_reported_events(piece: Piece) -> int:
    return await fold_reported(piece.session, now=piece.now)


# The reporting rollup (issue 14): the events still `reported` an hour after their report are
# folded into it, a batch a piece, claimed with SKIP LOCKED, on every runner.
FOLD_REPORTED_EVENTS = Job(
    name="fold_reported_events", work=_fold_reported_events, full_piece=FOLD_BATCH
)


def service_jobs() -> tuple[Job, ...]:
    """Every job the service runs (fresh webhook jobs per call: one HTTP client per runner)."""
    return (PURGE_IDEMPOTENCY_KEYS, FIRE_SLA_LEVELS, FOLD_REPORTED_EVENTS, *webhook_jobs())
