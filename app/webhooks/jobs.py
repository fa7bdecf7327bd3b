"""The webhook jobs on the background runner (items 2, 3 and 7; app/runner)."""

from datetime import timedelta

from app.runner.job import Job
from app.webhooks.config import WebhookSettings
from app.webhooks.delivery import FANOUT_BATCH, Deliverer


def webhook_jobs(settings: WebhookSettings | None = None) -> tuple[Job, ...]:
    """Fan-out and delivery, each polling every `WEBHOOK_POLL_SECONDS` and going on at once
    while it has a full batch, the delivery also as soon as a fan-out here has queued
    something; the retention purge, one runner at a time, hourly. One `Deliverer` (one HTTP
    client) per runner, closed when the runner stops."""
    deliverer = Deliverer(settings)
    poll = deliverer.settings.poll_seconds
    return (
        Job(
            name="webhook_fanout",
            work=deliverer.fanout,
            poll_seconds=poll,
            full_piece=FANOUT_BATCH,
            max_pieces=1000,
        ),
        Job(
            name="webhook_deliver",
            work=deliverer.deliver,
            poll_seconds=poll,
            full_piece=deliverer.settings.batch_size,
            max_pieces=1000,
            close=deliverer.close,
            # Woken by this process's fan-out; the poll finds retries that fall due and what
            # other processes fanned out.
            wakeup=deliverer.queued,
        ),
        Job(name="webhook_purge", work=deliverer.purge, once_every=timedelta(hours=1)),
    )
