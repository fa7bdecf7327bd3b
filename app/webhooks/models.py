"""Webhook endpoints, what is still to be sent to them, and every attempt (issue 13)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampMixin, uuid7


class WebhookEndpoint(TimestampMixin, Base):
    """A receiver of signed messages (item 1). `owner_id` is the account that manages it; its
    messages are those about events the owner may see. The secret signs every message; after
    a rotation the previous one signs beside it until `previous_secret_expires_at`. Both are
    stored as they are: signing needs them."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    owner_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    description: Mapped[str | None] = mapped_column(sa.String(500))
    # NULL: every type, every department.
    event_types: Mapped[list[str] | None] = mapped_column(pg.ARRAY(sa.String(60)))
    departments: Mapped[list[str] | None] = mapped_column(pg.ARRAY(sa.String(16)))
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(200))
    disabled_at: Mapped[datetime | None]
    secret: Mapped[str] = mapped_column(sa.String(100))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(100))
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every attempt has failed (NULL after a success): 5 days of it disable.
    failing_since: Mapped[datetime | None]


class _EndpointMessage:
    """One outbox message for one endpoint: waiting to be sent, or one attempt to send it.
    Its columns come first in the tables (`sort_order`).

    `endpoint_id` and `message_id` have no foreign keys: two rows are written for every
    message delivered, and the four checks cost the database more than the inserts
    themselves (migration 6f3b8d0e2a47 has the figures). What their cascades did,
    `repository.delete_endpoint` and `repository.purge` do."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7, sort_order=-1)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(sort_order=-1)
    message_id: Mapped[uuid.UUID] = mapped_column(index=True, sort_order=-1)


class WebhookDispatch(_EndpointMessage, Base):
    """A message still to be sent to one endpoint: due at `next_attempt_at`, deleted once
    delivered or given up on. Claimed with FOR UPDATE SKIP LOCKED for the whole attempt.

    Order (item 2): a row waits while the same endpoint has a row about the same event that
    comes before it in (`event_version`, `message_id`), the order the messages were written."""

    __tablename__ = "webhook_dispatch"

    event_id: Mapped[uuid.UUID | None]
    event_version: Mapped[int]
    # The owner's view of the event (app/rules/views.py): what of the message it receives.
    view: Mapped[str] = mapped_column(sa.String(10))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "message_id"),
        sa.CheckConstraint("view IN ('staff', 'reporter')", name="view"),
        sa.Index("ix_webhook_dispatch_next_attempt_at", "next_attempt_at"),
        sa.Index(
            "ix_webhook_dispatch_order", "endpoint_id", "event_id", "event_version", "message_id"
        ),
    )


class WebhookDelivery(_EndpointMessage, Base):
    """One attempt to deliver a message to an endpoint: the delivery log (item 4)."""

    __tablename__ = "webhook_delivery"

    message_type: Mapped[str] = mapped_column(sa.String(60))
    attempt: Mapped[int]
    attempted_at: Mapped[datetime]
    # delivered; failed, retried at `next_attempt_at`; failed for good (given up, or the
    # endpoint was disabled by it).
    outcome: Mapped[str] = mapped_column(sa.String(10))
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    next_attempt_at: Mapped[datetime | None]
    response_excerpt: Mapped[str | None] = mapped_column(sa.String(1024))

    __table_args__ = (
        sa.CheckConstraint("outcome IN ('delivered', 'retrying', 'failed')", name="outcome"),
        sa.Index("ix_webhook_delivery_endpoint_id_id", "endpoint_id", "id"),
    )
