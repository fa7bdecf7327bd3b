"""KPI columns on the event, carried by the (created_at, id) index

Revision ID: 9c1d2e3f4a5b
Revises: 6176687cb721
Create Date: 2026-11-27 05:10:00

The event keeps the KPI facts of its satisfaction row (score, unreachable), and the keyset
index of the event list also carries every column the KPI aggregates read, so a period's KPIs
are one index-only range scan (bench/README.md), without a second index to maintain on every
intake.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c1d2e3f4a5b"
down_revision: str | None = "6176687cb721"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KPI_COLUMNS = [
    "status",
    "lead_department",
    "category",
    "assignee_id",
    "resolve_by",
    "resolved_at",
    "recurrence_of",
    "satisfaction_score",
    "satisfaction_unreachable",
]


def upgrade() -> None:
    op.add_column("event", sa.Column("satisfaction_score", sa.SmallInteger(), nullable=True))
    op.add_column("event", sa.Column("satisfaction_unreachable", sa.Boolean(), nullable=True))
    op.execute(
        "UPDATE event e SET satisfaction_score = s.score,"
        " satisfaction_unreachable = s.unreachable"
        " FROM satisfaction s WHERE s.event_id = e.id"
    )
    op.drop_index("ix_event_created_at_id", table_name="event")
    op.create_index(
        "ix_event_created_at_id",
        "event",
        ["created_at", "id"],
        unique=False,
        postgresql_include=KPI_COLUMNS,
    )


def downgrade() -> None:
    op.drop_index("ix_event_created_at_id", table_name="event")
    op.create_index("ix_event_created_at_id", "event", ["created_at", "id"], unique=False)
    op.drop_column("event", "satisfaction_unreachable")
    op.drop_column("event", "satisfaction_score")
