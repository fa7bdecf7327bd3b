"""The shape of an append-only history entry (R7.1): who did what to a record and when, with
what it was before and after. One definition for every record that keeps a history: an
event's timeline and a rectification order's (`app/supervision`)."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.schemas import ResponseModel


class HistoryEntryColumns:
    """The columns of a history entry, after its table's own key and parent (ORM mixin)."""

    seq: Mapped[int]
    at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    action: Mapped[str] = mapped_column(sa.String(40))
    before: Mapped[dict[str, Any] | None] = mapped_column(pg.JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(pg.JSONB)
    note: Mapped[str | None] = mapped_column(sa.String(2000))


class HistoryEntryRead(ResponseModel):
    """A history entry as the API shows it."""

    seq: int
    at: datetime
    actor_id: uuid.UUID | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None
