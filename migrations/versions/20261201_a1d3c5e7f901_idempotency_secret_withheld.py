"""Idempotency records of responses that carried a secret keep no body

Revision ID: a1d3c5e7f901
Revises: 9c1d2e3f4a5b
Create Date: 2026-12-01 12:30:00

A keyed POST whose answer carries a secret shown once (an API key's token, a survey link) is
recorded as withheld: the record keeps the request's hash and the created resource's Location,
never the body, so no plaintext token sits in the database and a replay cannot hand it out
(issue 10, item 2). Records stored before this revision are cleared of such bodies.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a1d3c5e7f901"
down_revision: str | None = "9c1d2e3f4a5b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "idempotency_record",
        sa.Column("secret_withheld", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # Bodies stored before this revision that hold a token or a survey link: withhold them.
    op.execute(
        "UPDATE idempotency_record SET secret_withheld = true, body = ''::bytea"
        " WHERE position('\"token\"'::bytea in body) > 0"
    )


def downgrade() -> None:
    op.drop_column("idempotency_record", "secret_withheld")
