"""The events left `reported` are folded into the reporting rollup by the runner

Revision ID: 7b4e1c9d2f58
Revises: 6f3b8d0e2a47
Create Date: 2026-12-12 09:00:00

Issue 14 item 5 (R7.2; trends, appraisals and KPIs <= 50 ms over a year of 1,000,000 events).
The rollup (migration 2b7d1f3a4c82) leaves out the events still `reported`, so that intake does
no rollup work, and every report added those reported before its end from the event table:
`report_cells` per event at request time. Nearly all of them are the last hour's intakes, but
a backlog left `reported` for months is read by every report over those months: the 1,044 of
2025 in the bench's data set cost a year's trends by week and category 16 ms of its 54.

`event.rollup_folded` marks an event still `reported` whose cells are in the rollup: an event
counts in the rollup when it is past `reported` or folded. `report_rollup_fold(reported_before,
batch_size)`, run by the runner's `fold_reported_events` job (app/reporting/service.py) for the
events still `reported` an hour after their report, folds up to a batch of them in one
statement: it marks them (the rows locked with SKIP LOCKED, so any number of runners fold each
once) and adds their cells to the rollup in aggregate, one upsert per rollup row, not one per
event (`rollup_folded` is not among the columns the update trigger fires on). The triggers
count a folded event like any other: classifying it takes its folded cells back and adds the
new ones. The reports add only the events still `reported` and not folded
(`ix_event_reported_created_at` and its statistics, recreated on that condition).

Every upsert of the rollup (the triggers' and the fold's) now writes its rows in the order of
their key, so that two transactions sharing rows lock them in the same order and never
deadlock on them.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "7b4e1c9d2f58"
down_revision: str | None = "6f3b8d0e2a47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rollup() -> ModuleType:
    """Migration 2b7d1f3a4c82, whose generators write the rollup's functions and triggers."""
    path = Path(__file__).with_name("20261207_2b7d1f3a4c82_reporting_rollup.py")
    spec = importlib.util.spec_from_file_location("rollup_2b7d1f3a4c82", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COUNTED = "({row}.status <> 'reported' OR {row}.rollup_folded)"
UNCOUNTED = "({row}.status = 'reported' AND NOT {row}.rollup_folded)"
WAITING = "status = 'reported' AND NOT rollup_folded"
# The report time of an event still `reported` and not folded (NULL otherwise): the key of the
# index and of the statistics the reports and the fold read those events through.
WAITING_AT = "(CASE WHEN status = 'reported' AND NOT rollup_folded THEN created_at END)"
OLD_WAITING = "status = 'reported'"
OLD_WAITING_AT = "(CASE WHEN status = 'reported' THEN created_at END)"
EVENT_TRIGGERS = ("insert", "update", "delete")


def _fold_sql(rollup: ModuleType) -> str:
    cells = rollup.cells("e", "v.root_cause_code", 1)
    applied = rollup._apply_sql(
        "SELECT c.* FROM folded e LEFT JOIN review v ON v.event_id = e.id"
        f" CROSS JOIN LATERAL {cells} AS c",
        ordered=True,
    )
    return f"""
CREATE FUNCTION report_rollup_fold(reported_before timestamptz, batch_size integer)
RETURNS integer LANGUAGE sql AS $$
  WITH folded AS (
    UPDATE event e SET rollup_folded = true
    FROM (SELECT id FROM event
          WHERE {WAITING} AND {WAITING_AT} < reported_before
          ORDER BY {WAITING_AT} LIMIT batch_size
          FOR UPDATE SKIP LOCKED) AS w
    WHERE e.id = w.id
    RETURNING e.*
  ), applied AS (
    {applied}
  )
  SELECT count(*)::integer FROM folded
$$
"""


def _replace(rollup: ModuleType, counted: str, uncounted: str, *, ordered: bool) -> None:
    """The event triggers and the rollup's functions on `counted` events."""
    for name in EVENT_TRIGGERS:
        op.execute(f"DROP TRIGGER report_rollup_event_{name} ON event")
    # [0] is report_cells, unchanged.
    for statement in rollup._functions_sql(counted, uncounted, ordered=ordered)[1:]:
        op.execute(statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    for statement in rollup.event_triggers(counted):
        op.execute(statement)


def _index(waiting: str, waiting_at: str) -> None:
    op.execute("DROP STATISTICS IF EXISTS st_event_reported_created_at")
    op.execute("DROP INDEX IF EXISTS ix_event_reported_created_at")
    op.create_index(
        "ix_event_reported_created_at",
        "event",
        [sa.text(waiting_at)],
        unique=False,
        postgresql_where=sa.text(waiting),
    )
    op.execute(f"CREATE STATISTICS st_event_reported_created_at ON {waiting_at} FROM event")
    # The statistics are empty until the table is analysed.
    op.execute("ANALYZE event")


def upgrade() -> None:
    op.add_column(
        "event",
        sa.Column("rollup_folded", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    rollup = _rollup()
    _replace(rollup, COUNTED, UNCOUNTED, ordered=True)
    op.execute(_fold_sql(rollup))
    _index(WAITING, WAITING_AT)


def downgrade() -> None:
    rollup = _rollup()
    op.execute("DROP FUNCTION report_rollup_fold(timestamptz, integer)")
    _replace(rollup, rollup.COUNTED, rollup.UNCOUNTED, ordered=False)
    _index(OLD_WAITING, OLD_WAITING_AT)
    # The rollup holds the folded events, which it leaves out from here on.
    if op.get_bind().scalar(
        sa.text("SELECT EXISTS (SELECT 1 FROM event WHERE status = 'reported' AND rollup_folded)")
    ):
        op.execute("SELECT report_rollup_rebuild()")
    op.drop_column("event", "rollup_folded")
