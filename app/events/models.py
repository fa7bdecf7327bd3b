"""The event aggregate: one table for the event, child tables for its closed-loop records."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampMixin, str_enum, uuid7
from app.core.history import HistoryEntryColumns
from app.rules.clocks import Stage
from app.rules.policy import LevelKind
from app.rules.vocabulary import (
    ActionStatus,
    Audience,
    Category,
    Channel,
    FeedbackOutcome,
    NoteKind,
    NoteVisibility,
    SatisfactionSource,
    Severity,
    Status,
    StepStatus,
)

KPI_COLUMNS = (
    "status",
    "lead_department",
    "category",
    "assignee_id",
    "resolve_by",
    "resolved_at",
    "recurrence_of",
    "satisfaction_score",
    "satisfaction_unreachable",
)


class Event(TimestampMixin, Base):
    __tablename__ = "event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[Status] = mapped_column(str_enum(Status, column="status"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, column="channel"))
    occurred_at: Mapped[datetime | None]
    reported_at: Mapped[datetime]
    urgent: Mapped[bool] = mapped_column(default=False)

    reporter_name: Mapped[str] = mapped_column(sa.String(200))
    reporter_email: Mapped[str | None] = mapped_column(sa.String(320))
    reporter_phone: Mapped[str | None] = mapped_column(sa.String(50))
    reporter_external_id: Mapped[str | None] = mapped_column(sa.String(200))
    # The reporter as a directory user (issue 16 item 3): they see the event and the feedback
    # given to them (rules.permissions, Sight.NAMED_REPORTER).
    reporter_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    created_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))
    external_system: Mapped[str | None] = mapped_column(sa.String(100))
    external_id: Mapped[str | None] = mapped_column(sa.String(200))

    involved_departments: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(16)))
    involved_people: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(200)))
    recurrence_of: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("event.id"))
    # The text as searched (app/core/search_text.py): CJK bigrams and words, written by intake.
    search_vector: Mapped[str | None] = mapped_column(pg.TSVECTOR)
    # The earlier event of the category this one matched at classification (R1.1, R5.4;
    # rules.recurrence), and how similar they are; NULL: none matched.
    recurrence_match_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("event.id"))
    recurrence_match_score: Mapped[float | None] = mapped_column(sa.REAL)

    category: Mapped[Category | None] = mapped_column(str_enum(Category, column="category"))
    subcategory: Mapped[str | None] = mapped_column(sa.String(40))
    severity: Mapped[Severity | None] = mapped_column(str_enum(Severity, column="severity"))
    impact: Mapped[dict[str, Any] | None] = mapped_column(pg.JSONB)
    grading: Mapped[dict[str, Any] | None] = mapped_column(pg.JSONB)

    intake_department: Mapped[str] = mapped_column(sa.String(16))
    lead_department: Mapped[str | None] = mapped_column(sa.String(16))
    cooperating_departments: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(16)))
    routing: Mapped[dict[str, Any] | None] = mapped_column(pg.JSONB)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    plan_discussed_with: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.String(200)))

    resolution_result: Mapped[str | None] = mapped_column(sa.Text)
    resolution_measures: Mapped[str | None] = mapped_column(sa.Text)

    respond_by: Mapped[datetime]
    resolve_by: Mapped[datetime | None]
    feedback_by: Mapped[datetime | None]
    review_by: Mapped[datetime | None]
    classified_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    feedback_at: Mapped[datetime | None]
    reviewed_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(2000))
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("event.id"))
    # The KPI facts of the satisfaction row (R5.4), kept on the event so that a period's
    # indicators are one index-only scan; NULL: none recorded in the current loop.
    satisfaction_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    satisfaction_unreachable: Mapped[bool | None]
    # Still `reported`, its cells already added to the reporting rollup by the runner's fold
    # (migration 7b4e1c9d2f58; app/reporting): internal, never shown.
    rollup_folded: Mapped[bool] = mapped_column(server_default=sa.false())

    version: Mapped[int] = mapped_column(default=1)

    # The running stage clock (app/events/clocks.py; issue 12): its stage and cycle, when it
    # started and is due, and the next time a level of the ladder is due (NULL: none).
    sla_stage: Mapped[Stage | None] = mapped_column(str_enum(Stage, column="sla_stage"))
    sla_cycle: Mapped[int] = mapped_column(sa.SmallInteger, server_default="1", default=1)
    sla_started_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    sla_next_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index(
            "uq_event_external_ref",
            "external_system",
            "external_id",
            unique=True,
            postgresql_where=sa.text("external_system IS NOT NULL"),
        ),
        # Keyset pages (created_at, id) and, through its INCLUDE columns, index-only KPI scans
        # of a period (app/kpis): one index serving both instead of a second one on intake.
        sa.Index(
            "ix_event_created_at_id",
            "created_at",
            "id",
            postgresql_include=KPI_COLUMNS,
        ),
        sa.Index("ix_event_status_created_at", "status", "created_at"),
        sa.Index("ix_event_lead_department_created_at", "lead_department", "created_at"),
        sa.Index(
            "ix_event_cooperating_departments", "cooperating_departments", postgresql_using="gin"
        ),
        sa.Index("ix_event_created_by_created_at", "created_by", "created_at"),
        sa.Index(
            "ix_event_reporter_user_id_created_at",
            "reporter_user_id",
            "created_at",
            postgresql_where=sa.text("reporter_user_id IS NOT NULL"),
        ),
        # Search (README, Search): the vector and the days of creation in one GIN index, so
        # that ranking reads the newest matches a stretch of days at a time (migration
        # 4d9f2b6c7e14; app/events/repository/hot.py, `list_visible`).
        sa.Index(
            "ix_event_search",
            "search_vector",
            sa.text("event_search_days(created_at)"),
            postgresql_using="gin",
        ),
        # Recurrence (rules.recurrence): the events of a category closed in a window. Intake
        # writes no closed_at, so it never touches this index.
        sa.Index(
            "ix_event_category_closed_at",
            "category",
            "closed_at",
            postgresql_where=sa.text("closed_at IS NOT NULL"),
        ),
        # The change feed (`sort=updated_at`): clients syncing what changed since their last
        # page read it in order.
        sa.Index("ix_event_updated_at_id", "updated_at", "id"),
        # The runner's poll reads only the clocks with a level due (app/events/clocks.py).
        sa.Index(
            "ix_event_sla_next_at",
            "sla_next_at",
            postgresql_where=sa.text("sla_next_at IS NOT NULL"),
        ),
    )


class _EventRecord:
    """A record of an event's loop (a step, a note, feedback...): its own id, and the event it
    belongs to, deleted with it. `sort_order`: these columns come first, as in the migrations."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7, sort_order=-1)
    event_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE"), index=True, sort_order=-1
    )


def _one_of(column: str, words: type[StrEnum], *, nullable: bool = False) -> sa.CheckConstraint:
    """The CHECK that `column` holds a word of the vocabulary (`rules.vocabulary`)."""
    listed = ", ".join(f"'{word}'" for word in words)
    condition = f"{column} IN ({listed})"
    return sa.CheckConstraint(
        f"{column} IS NULL OR {condition}" if nullable else condition, name=column
    )


class PlanStep(_EventRecord, TimestampMixin, Base):
    __tablename__ = "plan_step"

    position: Mapped[int]
    title: Mapped[str] = mapped_column(sa.String(500))
    owner_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    note: Mapped[str | None] = mapped_column(sa.String(2000))
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        _one_of("status", StepStatus),
        # Visibility: a step owner sees the event (EXISTS in repository.visible_to).
        sa.Index("ix_plan_step_owner_id_event_id", "owner_id", "event_id"),
    )


class EventNote(_EventRecord, Base):
    __tablename__ = "event_note"

    kind: Mapped[str] = mapped_column(sa.String(20))
    visibility: Mapped[str] = mapped_column(sa.String(20))
    body: Mapped[str] = mapped_column(sa.Text)
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())

    __table_args__ = (
        _one_of("kind", NoteKind),
        _one_of("visibility", NoteVisibility),
    )


class Feedback(_EventRecord, Base):
    __tablename__ = "feedback"

    audience: Mapped[str] = mapped_column(sa.String(10))
    result: Mapped[str] = mapped_column(sa.Text)
    measures: Mapped[str] = mapped_column(sa.Text)
    prevention_advice: Mapped[str] = mapped_column(sa.Text)
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))
    decision: Mapped[str | None] = mapped_column(sa.String(10))
    decision_note: Mapped[str | None] = mapped_column(sa.String(2000))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    decided_at: Mapped[datetime | None]
    # Set when the event is reopened or the feedback returned: a new loop needs new feedback.
    superseded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())

    __table_args__ = (
        _one_of("audience", Audience),
        _one_of("decision", FeedbackOutcome, nullable=True),
    )


class Satisfaction(Base):
    __tablename__ = "satisfaction"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    event_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE"), unique=True
    )
    score: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(sa.String(2000))
    unreachable: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(sa.String(10))
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score_range"),
        _one_of("source", SatisfactionSource),
    )


class Review(TimestampMixin, Base):
    __tablename__ = "review"

    event_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    causes: Mapped[str] = mapped_column(sa.Text)
    handling: Mapped[str] = mapped_column(sa.Text)
    result: Mapped[str] = mapped_column(sa.Text)
    lessons: Mapped[str] = mapped_column(sa.Text)
    root_cause_code: Mapped[str] = mapped_column(sa.String(40))
    meeting: Mapped[dict[str, Any] | None] = mapped_column(pg.JSONB)
    author_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("app_user.id"))


class ImprovementAction(_EventRecord, TimestampMixin, Base):
    __tablename__ = "improvement_action"

    description: Mapped[str] = mapped_column(sa.String(2000))
    department: Mapped[str] = mapped_column(sa.String(16))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(10), default="open")
    evidence: Mapped[str | None] = mapped_column(sa.String(4000))
    completed_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    completed_at: Mapped[datetime | None]
    verified_effective: Mapped[bool | None]
    verification_note: Mapped[str | None] = mapped_column(sa.String(2000))
    verified_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("app_user.id"))
    verified_at: Mapped[datetime | None]

    __table_args__ = (
        _one_of("status", ActionStatus),
        # Visibility: an action's department sees the event (EXISTS in repository.visible_to).
        sa.Index("ix_improvement_action_department_event_id", "department", "event_id"),
    )


class SurveyToken(_EventRecord, Base):
    __tablename__ = "survey_token"

    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class TimelineEntry(HistoryEntryColumns, Base):
    """Append-only, hash-chained per event (product.md section 4)."""

    __tablename__ = "timeline_entry"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    prev_hash: Mapped[str] = mapped_column(sa.String(64), sort_order=1)
    hash: Mapped[str] = mapped_column(sa.String(64), sort_order=1)

    __table_args__ = (sa.UniqueConstraint("event_id", "seq"),)


class StageCycle(Base):
    """One finished cycle of a stage clock: when it ran, when it was due, whether it was met."""

    __tablename__ = "stage_cycle"

    event_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[Stage] = mapped_column(str_enum(Stage, column="stage"), primary_key=True)
    cycle: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    started_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    finished_at: Mapped[datetime]
    # NULL: stopped without finishing (cancelled, or left for a new cycle by a reopen).
    met: Mapped[bool | None]


class SlaFiring(Base):
    """One level of one clock cycle that fired, and whom it named (append-only ledger)."""

    __tablename__ = "sla_firing"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    stage: Mapped[Stage] = mapped_column(str_enum(Stage, column="stage"))
    cycle: Mapped[int] = mapped_column(sa.SmallInteger)
    level: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[LevelKind] = mapped_column(str_enum(LevelKind, column="kind"))
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime]
    notify: Mapped[list[dict[str, Any]]] = mapped_column(pg.JSONB)

    __table_args__ = (sa.UniqueConstraint("event_id", "stage", "cycle", "level"),)


class SearchLexeme(Base):
    """Every word of every event's search vector but numbers, by its spelling (bytewise:
    COLLATE "C"), added by intake's statement (app/events/repository/hot.py, `KnownWords`): a
    prefix is spelled out as its words before the index is read (app/core/search_text.py,
    `expanded_query`)."""

    __tablename__ = "search_lexeme"

    lexeme: Mapped[str] = mapped_column(sa.Text(collation="C"), primary_key=True)


__all__ = [
    "Event",
    "EventNote",
    "Feedback",
    "ImprovementAction",
    "PlanStep",
    "Review",
    "Satisfaction",
    "SearchLexeme",
    "SlaFiring",
    "StageCycle",
    "SurveyToken",
    "TimelineEntry",
]
