"""Stage clocks (the running clock on the event, finished cycles, the ledger of fired levels)
and the change feed's index

Revision ID: c10c4e5a7b21
Revises: 9716b763466d
Create Date: 2026-12-01 13:00:00

Every open event carries its running clock (`sla_stage`, `sla_cycle`, `sla_started_at`,
`sla_due_at`) and `sla_next_at`, the next time a level of the escalation ladder is due; the
runner's poll reads a partial index of that column alone, so a poll with nothing due never
touches the open events (issue 12). Open events of an existing database get the clock of the
stage they are in, due at once for the runner, which fires each level whose time has passed
once (not once per missed poll) and then waits for the next.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision: str = "c10c4e5a7b21"
down_revision: str | None = "9716b763466d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = ("respond", "resolve", "feedback", "review")
KINDS = ("warning", "breach", "escalation")


def _in(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.add_column("event", sa.Column("sla_stage", sa.String(8), nullable=True))
    op.add_column(
        "event", sa.Column("sla_cycle", sa.SmallInteger(), server_default="1", nullable=False)
    )
    op.add_column("event", sa.Column("sla_started_at", sa.DateTime(timezone=True)))
    op.add_column("event", sa.Column("sla_due_at", sa.DateTime(timezone=True)))
    op.add_column("event", sa.Column("sla_next_at", sa.DateTime(timezone=True)))
    op.create_check_constraint("sla_stage", "event", f"sla_stage IN ({_in(STAGES)})")
    op.create_index(
        "ix_event_sla_next_at",
        "event",
        ["sla_next_at"],
        postgresql_where=sa.text("sla_next_at IS NOT NULL"),
    )
    # The change feed (GET /v1/events?sort=updated_at&updated_since=...).
    op.create_index("ix_event_updated_at_id", "event", ["updated_at", "id"])
    op.create_table(
        "stage_cycle",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("cycle", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met", sa.Boolean(), nullable=True),
        sa.CheckConstraint(f"stage IN ({_in(STAGES)})", name=op.f("ck_stage_cycle_stage")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("fk_stage_cycle_event_id_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "stage", "cycle", name=op.f("pk_stage_cycle")),
    )
    op.create_table(
        "sla_firing",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("cycle", sa.SmallInteger(), nullable=False),
        sa.Column("level", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notify", pg.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(f"stage IN ({_in(STAGES)})", name=op.f("ck_sla_firing_stage")),
        sa.CheckConstraint(f"kind IN ({_in(KINDS)})", name=op.f("ck_sla_firing_kind")),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
            name=op.f("fk_sla_firing_event_id_event"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_firing")),
        sa.UniqueConstraint(
            "event_id",
            "stage",
            "cycle",
            "level",
            name=op.f("uq_sla_firing_event_id_stage_cycle_level"),
        ),
    )
    # Open events get the clock of the stage they are in, due for the runner at once.
    op.execute(
        """
        UPDATE event SET
          sla_stage = CASE
            WHEN status IN ('reported', 'classified') THEN 'respond'
            WHEN status IN ('assigned', 'in_progress') THEN 'resolve'
            WHEN status = 'resolved' THEN 'feedback'
            ELSE 'review' END,
          sla_started_at = CASE
            WHEN status IN ('reported', 'classified') THEN reported_at
            WHEN status IN ('assigned', 'in_progress') THEN coalesce(assigned_at, reported_at)
            WHEN status = 'resolved' THEN coalesce(resolved_at, reported_at)
            ELSE coalesce(feedback_at, reported_at) END,
          sla_due_at = CASE
            WHEN status IN ('reported', 'classified') THEN respond_by
            WHEN status IN ('assigned', 'in_progress') THEN resolve_by
            WHEN status = 'resolved' THEN feedback_by
            ELSE review_by END,
          sla_next_at = now()
        WHERE status IN
          ('reported', 'classified', 'assigned', 'in_progress', 'resolved', 'feedback_given')
        """
    )


def downgrade() -> None:
    op.drop_table("sla_firing")
    op.drop_table("stage_cycle")
    op.drop_index("ix_event_sla_next_at", table_name="event")
    op.drop_index("ix_event_updated_at_id", table_name="event")
    op.drop_constraint(op.f("ck_event_sla_stage"), "event", type_="check")
    for column in ("sla_next_at", "sla_due_at", "sla_started_at", "sla_cycle", "sla_stage"):
        op.drop_column("event", column)
