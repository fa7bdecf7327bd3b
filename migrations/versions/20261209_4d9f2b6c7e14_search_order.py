"""Search by relevance reads the newest matches first: the days of creation in the search
index, and the words of the index by their spelling

Issue 16 item 4 (README, Search; bench/README.md, "Reports, search and exports"). Ranking
`q=` by relevance reads the newest 200 matches the caller may see. With the plain GIN index of
`event.search_vector` that meant every match of a common word (a quarter of the events) read
and sorted; walking `ix_event_created_at_id` newest first reads every event in between (a
handler sees one event in five; a burst of other events puts hundreds of thousands in front).

* `ix_event_search` replaces `ix_event_search_vector`: GIN on the vector AND on
  `event_search_days(created_at)`, the day of the event's creation and its block of 16 days
  (app/core/search_text.py: `search_day`, `day_keys`). One GIN scan of a word and a stretch of
  days reads the word's postings of those days only (GIN skips through the longer posting
  list), so the newest matches are read a stretch at a time, newest first. Queries on the
  vector alone (`q=` in time order, similar events) use the same index as before.
* `search_lexeme`: every word of every vector but numbers, filled here from the events there
  are and then by intake's statement, which adds the words of its text that its process does
  not know the table holds (app/events/repository/hot.py, `KnownWords`). A prefix (`fail`) is
  spelled out as its words (`failed`, `fails`) before the GIN scan: GIN reads a prefix by
  gathering all its postings first, whatever else the query says, which a common prefix
  makes as slow as no index. The table is only ever added to (a word of a deleted event
  stays; it then matches nothing). A trigger keeping it cost intake about 0.1 ms of
  PostgreSQL's time (pgbench, one client: 0.42 -> 0.52 ms per insert of an event).

Revision ID: 4d9f2b6c7e14
Revises: 3c8e2a4b5d93
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4d9f2b6c7e14"
down_revision: str | None = "3c8e2a4b5d93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Whole days since 2000-01-01 UTC (truncated towards zero, as `search_day`), and the block of
# 16 days as a negative key (`day_keys`). Immutable: the difference of two timestamptz and the
# day of an interval do not depend on the time zone.
_DAY = "date_part('day', $1 - TIMESTAMPTZ '2000-01-01 00:00:00+00')::integer"
DAYS_FUNCTION = f"""
CREATE FUNCTION event_search_days(timestamptz) RETURNS integer[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ARRAY[{_DAY}, -1 - {_DAY} / 16] $$
"""
# The words of a vector but numbers (digits only: new ones come with nearly every event, each
# in few; a prefix of digits is read as a prefix, app/core/search_text.py `spelled_out`).
WORDS = "unnest(tsvector_to_array({vector})) AS w(lexeme) WHERE w.lexeme !~ '^[0-9]+$'"


def upgrade() -> None:
    op.execute(DAYS_FUNCTION)
    op.drop_index("ix_event_search_vector", table_name="event", postgresql_using="gin")
    op.create_index(
        "ix_event_search",
        "event",
        ["search_vector", sa.text("event_search_days(created_at)")],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "search_lexeme",
        sa.Column("lexeme", sa.Text(collation="C"), nullable=False),
        sa.PrimaryKeyConstraint("lexeme", name=op.f("pk_search_lexeme")),
    )
    op.execute(
        "INSERT INTO search_lexeme (lexeme) SELECT DISTINCT w.lexeme"
        f" FROM event, {WORDS.format(vector='event.search_vector')}"
    )
    op.execute("ANALYZE event")


def downgrade() -> None:
    op.drop_table("search_lexeme")
    op.drop_index("ix_event_search", table_name="event", postgresql_using="gin")
    op.create_index(
        "ix_event_search_vector", "event", ["search_vector"], unique=False, postgresql_using="gin"
    )
    op.execute("DROP FUNCTION event_search_days(timestamptz)")
