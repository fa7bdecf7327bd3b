"""Signed webhooks: endpoints, dispatch queue, delivery log

Revision ID: 5e1b0c7d9a42
Revises: b7e2d4f6a813
Create Date: 2026-12-05 09:00:00

Issue 13: `webhook_endpoint` (receivers, their secrets and filters), `webhook_dispatch` (each
message still to be sent to an endpoint, claimed with FOR UPDATE SKIP LOCKED) and
`webhook_delivery` (every attempt: the delivery log). The messages already in the outbox were
written before any endpoint existed: they are marked published so the fan-out starts from now.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5e1b0c7d9a42"
down_revision: str | None = "b7e2d4f6a813"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("event_types", postgresql.ARRAY(sa.String(length=60)), nullable=True),
        sa.Column("departments", postgresql.ARRAY(sa.String(length=16)), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["app_user.id"], name=op.f("fk_webhook_endpoint_owner_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoint")),
    )
    op.create_index(
        op.f("ix_webhook_endpoint_owner_id"), "webhook_endpoint", ["owner_id"], unique=False
    )
    op.create_table(
        "webhook_dispatch",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("event_version", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("view IN ('staff', 'reporter')", name=op.f("ck_webhook_dispatch_view")),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("fk_webhook_dispatch_endpoint_id_webhook_endpoint"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_message.id"],
            name=op.f("fk_webhook_dispatch_message_id_outbox_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_dispatch")),
        sa.UniqueConstraint(
            "endpoint_id", "message_id", name=op.f("uq_webhook_dispatch_endpoint_id_message_id")
        ),
    )
    op.create_index(
        op.f("ix_webhook_dispatch_message_id"), "webhook_dispatch", ["message_id"], unique=False
    )
    op.create_index(
        "ix_webhook_dispatch_next_attempt_at", "webhook_dispatch", ["next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_webhook_dispatch_order",
        "webhook_dispatch",
        ["endpoint_id", "event_id", "event_version", "message_id"],
        unique=False,
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("message_type", sa.String(length=60), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_excerpt", sa.String(length=1024), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('delivered', 'retrying', 'failed')",
            name=op.f("ck_webhook_delivery_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name=op.f("fk_webhook_delivery_endpoint_id_webhook_endpoint"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_message.id"],
            name=op.f("fk_webhook_delivery_message_id_outbox_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    op.create_index(
        "ix_webhook_delivery_endpoint_id_id",
        "webhook_delivery",
        ["endpoint_id", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_delivery_message_id"), "webhook_delivery", ["message_id"], unique=False
    )
    op.execute("UPDATE outbox_message SET published_at = now() WHERE published_at IS NULL")


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_delivery_message_id"), table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_endpoint_id_id", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index("ix_webhook_dispatch_order", table_name="webhook_dispatch")
    op.drop_index("ix_webhook_dispatch_next_attempt_at", table_name="webhook_dispatch")
    op.drop_index(op.f("ix_webhook_dispatch_message_id"), table_name="webhook_dispatch")
    op.drop_table("webhook_dispatch")
    op.drop_index(op.f("ix_webhook_endpoint_owner_id"), table_name="webhook_endpoint")
    op.drop_table("webhook_endpoint")
