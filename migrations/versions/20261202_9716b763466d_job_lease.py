"""The background runner's leases

Revision ID: 9716b763466d
Revises: a1d3c5e7f901
Create Date: 2026-12-02 09:00:00

`job_lease(name, holder, expires_at)`: which runner holds a singleton job (the idempotency
purge) and until when, so any number of runner processes on one database run it one at a
time (issue 12, item 1; app/runner/claims.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9716b763466d"
down_revision: str | None = "a1d3c5e7f901"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_lease",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_lease")),
    )


def downgrade() -> None:
    op.drop_table("job_lease")
