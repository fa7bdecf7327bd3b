"""People: OIDC subjects, reporters as directory users

Revision ID: 3c8e2a4b5d93
Revises: 2b7d1f3a4c82
Create Date: 2026-12-08 09:00:00

Issue 16 items 1 and 3: `app_user.oidc_subject`, the `sub` claim of a person's OIDC tokens
(unique; NULL for those who never sign in with one), and `event.reporter_user_id`, the
reporter as a directory user, who sees the event and the feedback given to them. Its index
is partial: most events' reporters are outsiders (NULL), and the visibility rule reads it
per caller (`reporter_user_id = me`) in id-and-time order like `created_by`.

Also: the assessed `impact.financial_loss` was stored (and so read back) as a JSON string
while requests take a JSON number only; it is a number now, and stored amounts become numbers
(back to strings on downgrade).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c8e2a4b5d93"
down_revision: str | None = "2b7d1f3a4c82"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_LOSS_AS = """
UPDATE event SET impact = jsonb_set(impact, '{financial_loss}', {value})
WHERE jsonb_typeof(impact->'financial_loss') = '{type}'
"""


def upgrade() -> None:
    op.add_column("app_user", sa.Column("oidc_subject", sa.String(255), nullable=True))
    op.create_unique_constraint("uq_app_user_oidc_subject", "app_user", ["oidc_subject"])
    # Nullable, no default: adding it rewrites nothing, on PostgreSQL 14 too.
    op.add_column("event", sa.Column("reporter_user_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "fk_event_reporter_user_id_app_user", "event", "app_user", ["reporter_user_id"], ["id"]
    )
    op.create_index(
        "ix_event_reporter_user_id_created_at",
        "event",
        ["reporter_user_id", "created_at"],
        postgresql_where=sa.text("reporter_user_id IS NOT NULL"),
    )
    op.execute(
        _LOSS_AS.replace("{value}", "to_jsonb((impact->>'financial_loss')::numeric)").replace(
            "{type}", "string"
        )
    )


def downgrade() -> None:
    op.execute(
        _LOSS_AS.replace("{value}", "to_jsonb(impact->>'financial_loss')").replace(
            "{type}", "number"
        )
    )
    op.drop_index("ix_event_reporter_user_id_created_at", table_name="event")
    op.drop_constraint("fk_event_reporter_user_id_app_user", "event", type_="foreignkey")
    op.drop_column("event", "reporter_user_id")
    op.drop_constraint("uq_app_user_oidc_subject", "app_user", type_="unique")
    op.drop_column("app_user", "oidc_subject")
