"""Search that reads Chinese and English; similar events and recurrence matches

The event's text as searched (`event.search_vector`, a tsvector of CJK bigrams and words made
by app/core/search_text.py; README, Search) with its GIN index, replacing the `simple`
configuration's expression index; the recurrence match stored at classification
(`recurrence_match_id`, `recurrence_match_score`; rules.recurrence) and an index of the events
of a category closed in a window. Existing events get their vector here, in batches.

Revision ID: 1a6c0e2f3b71
Revises: 5e1b0c7d9a42
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from app.core.search_text import search_vector

revision: str = "1a6c0e2f3b71"
down_revision: str | None = "5e1b0c7d9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 2000
_OLD_TEXT_INDEX = "to_tsvector('simple'::regconfig, (((title)::text || ' '::text) || description))"


def _backfill() -> None:
    """Every existing event's vector, a batch of ids at a time (keyset on the primary key)."""
    bind = op.get_bind()
    after = None
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, title, description FROM event"
                + (" WHERE id > :after" if after is not None else "")
                + " ORDER BY id LIMIT :n"
            ),
            {"after": after, "n": _BATCH} if after is not None else {"n": _BATCH},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text("UPDATE event SET search_vector = CAST(:v AS tsvector) WHERE id = :id"),
            [{"id": r.id, "v": search_vector(r.title, r.description)} for r in rows],
        )
        after = rows[-1].id


def upgrade() -> None:
    op.add_column("event", sa.Column("search_vector", pg.TSVECTOR(), nullable=True))
    op.add_column("event", sa.Column("recurrence_match_id", sa.Uuid(), nullable=True))
    op.add_column("event", sa.Column("recurrence_match_score", sa.REAL(), nullable=True))
    op.create_foreign_key(
        op.f("fk_event_recurrence_match_id_event"),
        "event",
        "event",
        ["recurrence_match_id"],
        ["id"],
    )
    _backfill()
    op.drop_index("ix_event_text", table_name="event", postgresql_using="gin")
    op.create_index(
        "ix_event_search_vector",
        "event",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_event_category_closed_at",
        "event",
        ["category", "closed_at"],
        unique=False,
        postgresql_where=sa.text("closed_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_event_category_closed_at",
        table_name="event",
        postgresql_where=sa.text("closed_at IS NOT NULL"),
    )
    op.drop_index("ix_event_search_vector", table_name="event", postgresql_using="gin")
    op.create_index(
        "ix_event_text",
        "event",
        [sa.literal_column(_OLD_TEXT_INDEX)],
        unique=False,
        postgresql_using="gin",
    )
    op.drop_constraint(op.f("fk_event_recurrence_match_id_event"), "event", type_="foreignkey")
    op.drop_column("event", "recurrence_match_score")
    op.drop_column("event", "recurrence_match_id")
    op.drop_column("event", "search_vector")
