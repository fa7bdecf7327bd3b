"""The reporting rollup (R5.4, R7.2): per-day sums kept correct to the event by triggers.

The table, its triggers and `report_cells` (the one definition of what an event adds to it)
are made by migration `2b7d1f3a4c82`; this module declares the table and the index so that
`alembic check` sees no drift. See that migration's docstring for the shape.
"""

from typing import Final

import sqlalchemy as sa

from app.core.db import Base
from app.events.models import Event

STAGES: Final = ("respond", "resolve", "feedback", "review")
SCORES: Final = (1, 2, 3, 4, 5)
# In the order of the migration's facets: created (the cohort), closed, cancelled, the stages.
COHORT: Final = (
    "events",
    "closed",
    "cancelled",
    "resolved",
    "resolved_on_time",
    "resolution_seconds",
    "recurrences",
    "responses",
    "score_sum",
    *(f"score_{k}" for k in SCORES),
    "unreachable",
)
FLOWS: Final = ("closed_on", "cancelled_on")
STAGE_MEASURES: Final = tuple(
    f"{stage}_{outcome}" for stage in STAGES for outcome in ("met", "late", "open")
)
MEASURES: Final = (*COHORT, *FLOWS, *STAGE_MEASURES)
DOUBLES: Final = frozenset({"resolution_seconds"})

# The event facts `report_cells` takes, in its parameters' order (the migration's EVENT_FACTS).
CELL_FACTS: Final = (
    "status",
    "created_at",
    "lead_department",
    "assignee_id",
    "category",
    "severity",
    "resolved_at",
    "resolve_by",
    "closed_at",
    "cancelled_at",
    "recurrence_of",
    "satisfaction_score",
    "satisfaction_unreachable",
    "respond_by",
    "assigned_at",
    "feedback_by",
    "feedback_at",
    "review_by",
    "reviewed_at",
)


# The times whose days the facets of `report_cells` fall on (the migration's FACETS).
FACET_TIMES: Final = (
    "created_at",
    "closed_at",
    "cancelled_at",
    "respond_by",
    "resolve_by",
    "feedback_by",
    "review_by",
)


def cells(row: str, root_cause: str) -> str:
    """A call of `report_cells` on the facts of the event aliased `row` (sign +1)."""
    return f"report_cells({', '.join(f'{row}.{c}' for c in CELL_FACTS)}, {root_cause}, 1)"


report_rollup: Final = sa.Table(
    "report_rollup",
    Base.metadata,
    # `day`, or `week` (from Monday) or `month`: the same sums per week or calendar month
    # (`day` its first day).
    sa.Column("grain", sa.String(5), primary_key=True),
    sa.Column("dim", sa.String(12), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("department", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(40), primary_key=True),
    *(
        sa.Column(
            name,
            sa.Double if name in DOUBLES else sa.BigInteger,
            nullable=False,
            server_default=sa.text("0"),
        )
        for name in MEASURES
    ),
)

# An event left out of the rollup: still `reported` and not yet folded in by the runner
# (`rollup_folded`, migration 7b4e1c9d2f58). Every other event is in it.
WAITING: Final = "{row}.status = 'reported' AND NOT {row}.rollup_folded"
# Its report time (NULL for every other event): the key of `ix_event_reported_created_at`,
# an index of those events alone, and of the statistics `st_event_reported_created_at`,
# which count them alone.
REPORTED_AT: Final = "CASE WHEN " + WAITING + " THEN {row}.created_at END"

# The events left out of the rollup before a time, which the reports add to its rows
# (repository `_reported_before`) and the runner folds in. Alembic cannot compare it with its
# reflection (migrations/env.py UNCOMPARABLE_INDEXES).
_event = Event.__table__.c
ix_event_reported_created_at: Final = sa.Index(
    "ix_event_reported_created_at",
    sa.case(
        (
            sa.and_(_event.status == sa.literal_column("'reported'"), ~_event.rollup_folded),
            _event.created_at,
        )
    ),
    postgresql_where=sa.text("status = 'reported' AND NOT rollup_folded"),
)

# A period's linked recurrences (R5.4): few rows, found without reading the period's events.
ix_event_recurrence_of_created_at: Final = sa.Index(
    "ix_event_recurrence_of_created_at",
    Event.__table__.c.created_at,
    postgresql_where=sa.text("recurrence_of IS NOT NULL OR recurrence_match_id IS NOT NULL"),
)
