"""Spot checks and rectification orders (R5.2, R5.3; issue 14 items 1 and 2)."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampMixin, str_enum, uuid7
from app.core.history import HistoryEntryColumns
from app.rules.vocabulary import Answer, OrderStatus, Question, SpotCheckStatus


class SpotCheck(TimestampMixin, Base):
    """One sampled check (R5.2): how the population was chosen and frozen, and how it was
    drawn (`strata`), so the same seed over `spot_check_member` gives the same sample."""

    __tablename__ = "spot_check"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    status: Mapped[SpotCheckStatus] = mapped_column(str_enum(SpotCheckStatus, column="status"))
    period_from: Mapped[datetime]
    period_to: Mapped[datetime]
    population_filter: Mapped[dict[str, Any]] = mapped_column(pg.JSONB)
    seed: Mapped[int] = mapped_column(sa.BigInteger)
    requested_size: Mapped[int | None]
    requested_rate: Mapped[float | None] = mapped_column(sa.Double)
    min_per_stratum: Mapped[int]
    risk_weights: Mapped[dict[str, Any]] = mapped_column(pg.JSONB)
    population_size: Mapped[int]
    sample_size: Mapped[int]
    strata: Mapped[list[dict[str, Any]]] = mapped_column(pg.JSONB)
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))

    __table_args__ = (sa.Index("ix_spot_check_created_at_id", "created_at", "id"),)


class SpotCheckMember(Base):
    """The frozen population of a check: every event it was drawn from, with its weight."""

    __tablename__ = "spot_check_member"

    spot_check_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("spot_check.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("event.id"), primary_key=True)
    department: Mapped[str] = mapped_column(sa.String(16))
    severity: Mapped[str | None] = mapped_column(sa.String(20))
    weight: Mapped[float] = mapped_column(sa.Double)
    risk: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(20)))


class SpotCheckItem(Base):
    """A sampled event of a check; its three answers are `spot_check_answer` rows."""

    __tablename__ = "spot_check_item"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    spot_check_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("spot_check.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("event.id"))
    position: Mapped[int]
    stratum: Mapped[str] = mapped_column(sa.String(40))
    department: Mapped[str] = mapped_column(sa.String(16))
    severity: Mapped[str | None] = mapped_column(sa.String(20))
    weight: Mapped[float] = mapped_column(sa.Double)
    risk: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(20)))

    __table_args__ = (
        sa.UniqueConstraint("spot_check_id", "position"),
        sa.UniqueConstraint("spot_check_id", "event_id"),
    )


class SpotCheckAnswer(Base):
    """One of the three R5.2 questions of an item: what the service pre-filled from the facts,
    and the checker's answer (null until judged) with the note an overturn needs."""

    __tablename__ = "spot_check_answer"

    item_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("spot_check_item.id", ondelete="CASCADE"), primary_key=True
    )
    question: Mapped[Question] = mapped_column(
        str_enum(Question, column="question"), primary_key=True
    )
    prefilled: Mapped[Answer] = mapped_column(str_enum(Answer, column="prefilled"))
    findings: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(40)))
    facts: Mapped[dict[str, Any]] = mapped_column(pg.JSONB)
    answer: Mapped[Answer | None] = mapped_column(str_enum(Answer, column="answer"))
    note: Mapped[str | None] = mapped_column(sa.String(2000))
    judged_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    judged_at: Mapped[datetime | None]


class Rectification(TimestampMixin, Base):
    """A rectification order on a department (R5.3), from a spot check's finding or issued
    directly; `issued -> responded -> verified -> closed` (app/rules/supervision.py)."""

    __tablename__ = "rectification"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    spot_check_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("spot_check.id"))
    item_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("spot_check_item.id"))
    event_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("event.id"))
    department: Mapped[str] = mapped_column(sa.String(16))
    questions: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(20)))
    demand: Mapped[str] = mapped_column(sa.Text)
    due_at: Mapped[datetime]
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus, column="status"))
    issued_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))
    cause: Mapped[str | None] = mapped_column(sa.Text)
    measures: Mapped[str | None] = mapped_column(sa.Text)
    responded_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    responded_at: Mapped[datetime | None]
    verified_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    verified_at: Mapped[datetime | None]
    verification_note: Mapped[str | None] = mapped_column(sa.String(2000))
    closed_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    closed_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        sa.Index("ix_rectification_created_at_id", "created_at", "id"),
        sa.Index("ix_rectification_department_created_at", "department", "created_at"),
        sa.Index("ix_rectification_spot_check_id", "spot_check_id"),
    )


class RectificationEntry(HistoryEntryColumns, Base):
    """The append-only history of a rectification order (R5.3, R7.1): who did what, when."""

    __tablename__ = "rectification_entry"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    rectification_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("rectification.id", ondelete="CASCADE")
    )

    __table_args__ = (sa.UniqueConstraint("rectification_id", "seq"),)


__all__ = [
    "Rectification",
    "RectificationEntry",
    "SpotCheck",
    "SpotCheckAnswer",
    "SpotCheckItem",
    "SpotCheckMember",
]
