"""Transactional outbox: messages written in the same transaction as the change (delivery later)."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, uuid7


class OutboxMessage(Base):
    __tablename__ = "outbox_message"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    type: Mapped[str] = mapped_column(sa.String(60))
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(pg.JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    published_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index(
            "ix_outbox_message_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")
        ),
    )
