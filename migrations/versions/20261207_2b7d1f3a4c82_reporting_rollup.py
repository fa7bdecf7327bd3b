"""Reporting rollups for appraisals, KPIs and trends

Revision ID: 2b7d1f3a4c82
Revises: 1a6c0e2f3b71
Create Date: 2026-12-07 09:00:00

Issue 14 items 3 and 5 (R5.4, R5.5, R7.2): `report_rollup`, the per-day sums that
`GET /v1/kpis`, `GET /v1/appraisals` and `GET /v1/trends` read instead of the event table.

One row per (grain, dim, day, department, value): `grain` is `day`, or `week` (from Monday)
or `month` for the same sums per week or calendar month (`day` its first day), so that a year's
report reads 12 or 53 rows a key, not 365; `dim` is the grouping the row serves (`department`,
`assignee`, `category`, `severity`, `root_cause`), `value` that grouping's value ('' for none),
`department` the lead department ('' for none; the department head's scope). Every event adds
its measures to one row per grouping and per facet: its reporting day (the cohort measures), the
day it was closed or cancelled (the flows of the backlog), and the due day of each stage (met,
late or still open). `report_cells(<the event's facts>, root_cause, sign)` is that contribution
(`cells()` writes a call on a row), the one definition the triggers, the backfill
(`report_rollup_rebuild()`) and the readers share; it takes the facts as parameters rather than
the row, which is several times cheaper.

Kept correct to the event by row triggers in the transaction of every change: on `event`
(UPDATE OF the facts read, INSERT and DELETE) and on `review` (the root cause). An event still
`reported` contributes nothing: intake inserts it with no trigger work at all (the INSERT
trigger's WHEN is false), and the readers add the few `reported` events directly, through
`ix_event_status_created_at`. `ix_event_recurrence_of_created_at` finds a period's linked
recurrences (`recurrence_of`, or the match `recurrence_match_id`; R5.4), which are charged to
the department that closed the original.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b7d1f3a4c82"
down_revision: str | None = "1a6c0e2f3b71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAGES = {
    # stage: (due column, the column that says it finished)
    "respond": ("respond_by", "assigned_at"),
    "resolve": ("resolve_by", "resolved_at"),
    "feedback": ("feedback_by", "feedback_at"),
    "review": ("review_by", "reviewed_at"),
}
SCORES = (1, 2, 3, 4, 5)


def _day(column: str) -> str:
    return f"(e.{column} AT TIME ZONE 'UTC')::date"


# facet: (day expression, {measure: expression}); every other measure is 0 in that facet.
FACETS: dict[str, tuple[str, dict[str, str]]] = {
    "created": (
        _day("created_at"),
        {
            "events": "1",
            "closed": "(e.status = 'closed')::int",
            "cancelled": "(e.status = 'cancelled')::int",
            "resolved": "(e.resolved_at IS NOT NULL)::int",
            "resolved_on_time": "coalesce(e.resolved_at <= e.resolve_by, false)::int",
            "resolution_seconds": ("coalesce(date_part('epoch', e.resolved_at - e.created_at), 0)"),
            "recurrences": "(e.recurrence_of IS NOT NULL)::int",
            "responses": "(e.satisfaction_score IS NOT NULL)::int",
            "score_sum": "coalesce(e.satisfaction_score, 0)",
            **{f"score_{k}": f"coalesce(e.satisfaction_score = {k}, false)::int" for k in SCORES},
            "unreachable": "coalesce(e.satisfaction_unreachable, false)::int",
        },
    ),
    "closed": (_day("closed_at"), {"closed_on": "1"}),
    "cancelled": (_day("cancelled_at"), {"cancelled_on": "1"}),
    **{
        stage: (
            _day(due),
            {
                f"{stage}_met": f"coalesce(e.{done} <= e.{due}, false)::int",
                f"{stage}_late": f"coalesce(e.{done} > e.{due}, false)::int",
                f"{stage}_open": f"(e.{done} IS NULL AND e.status <> 'cancelled')::int",
            },
        )
        for stage, (due, done) in STAGES.items()
    },
}
MEASURES = [name for _, measures in FACETS.values() for name in measures]
DOUBLES = {"resolution_seconds"}
KEY = ("grain", "dim", "day", "department", "value")
# The event facts the contribution reads: an UPDATE setting none of them fires nothing.
EVENT_FACTS = (
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


FACT_TYPES = {
    "status": "varchar",
    "lead_department": "varchar",
    "assignee_id": "uuid",
    "category": "varchar",
    "severity": "varchar",
    "recurrence_of": "uuid",
    "satisfaction_score": "integer",
    "satisfaction_unreachable": "boolean",
}


def cells(row: str, root_cause: str, sign: int) -> str:
    """A call of report_cells on the facts of `row` (NEW, OLD, an alias)."""
    return f"report_cells({', '.join(f'{row}.{c}' for c in EVENT_FACTS)}, {root_cause}, {sign})"


def _fact(expression: str) -> str:
    """`e.status` -> `f_status`: the function reads its parameters, not a row (cheaper)."""
    return re.sub(r"\be\.(\w+)", r"f_\1", expression)


def _cells_sql() -> str:
    """`report_cells(<the event's facts>, root_cause, sign)`: the event's rows, one per grouping
    and facet."""
    facets = []
    for day, measures in FACETS.values():
        values = ", ".join(f"({_fact(measures.get(m, '0'))}) * sign AS {m}" for m in MEASURES)
        facets.append(f"SELECT {_fact(day)} AS day, {values} WHERE {_fact(day)} IS NOT NULL")
    returns = ", ".join(
        [
            "dim varchar",
            "day date",
            "department varchar",
            "value varchar",
            *(f"{m} {'float8' if m in DOUBLES else 'bigint'}" for m in MEASURES),
        ]
    )
    typed = ", ".join(f"f.{m}::{'float8' if m in DOUBLES else 'bigint'}" for m in MEASURES)
    union = "\n      UNION ALL ".join(facets)
    parameters = ", ".join(f"f_{c} {FACT_TYPES.get(c, 'timestamptz')}" for c in EVENT_FACTS)
    return f"""
CREATE FUNCTION report_cells({parameters}, root_cause text, sign integer)
RETURNS TABLE ({returns})
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT g.dim::varchar, f.day, coalesce(f_lead_department, '')::varchar, g.value::varchar,
         {typed}
  FROM (VALUES ('department', ''),
               ('assignee', coalesce(f_assignee_id::text, '')),
               ('category', coalesce(f_category, '')),
               ('severity', coalesce(f_severity, '')),
               ('root_cause', coalesce(root_cause, ''))) AS g(dim, value)
  CROSS JOIN (
      {union}
  ) AS f
$$
"""


def _apply_sql(source: str, *, ordered: bool = False) -> str:
    """Add the summed rows of `source` (rows shaped like report_cells) to the rollup; `ordered`:
    in the order of the key, so that every writer locks the rows it shares in one order
    (migration 7b4e1c9d2f58)."""
    sums = ", ".join(f"sum({m})" for m in MEASURES)
    nonzero = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
    updates = ", ".join(f"{m} = r.{m} + excluded.{m}" for m in MEASURES)
    return (
        f"INSERT INTO report_rollup AS r ({', '.join(KEY)}, {', '.join(MEASURES)})\n"
        f"SELECT {', '.join(KEY)}, {sums} FROM (\n"
        "  SELECT g.grain, c.dim, CASE g.grain WHEN 'day' THEN c.day"
        " ELSE date_trunc(g.grain, c.day::timestamp)::date END AS day,"
        f" c.department, c.value, {', '.join('c.' + m for m in MEASURES)}\n"
        f"  FROM ({source}) AS c CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS g(grain))"
        " AS c\n"
        f"GROUP BY {', '.join(KEY)} HAVING {nonzero}\n"
        + (f"ORDER BY {', '.join(KEY)}\n" if ordered else "")
        + f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {updates}"
    )


# Whether the event `{row}` adds its cells to the rollup, and its negation: here every event
# but those still `reported` (migration 7b4e1c9d2f58 adds those folded in by the runner).
COUNTED = "{row}.status <> 'reported'"
UNCOUNTED = "{row}.status = 'reported'"


def _functions_sql(
    counted: str = COUNTED, uncounted: str = UNCOUNTED, *, ordered: bool = False
) -> list[str]:
    on_event = _apply_sql(
        f"SELECT * FROM {cells('NEW', 'rc', 1)} WHERE {counted.format(row='NEW')}"
        f" UNION ALL SELECT * FROM {cells('OLD', 'rc', -1)} WHERE {counted.format(row='OLD')}",
        ordered=ordered,
    )
    on_review = _apply_sql(
        f"SELECT * FROM {cells('ev', 'new_rc', 1)}"
        f" UNION ALL SELECT * FROM {cells('ev', 'old_rc', -1)}",
        ordered=ordered,
    )
    # From scratch: the day rows from the events, then the week and month rows from them.
    sums = ", ".join(f"sum({m})" for m in MEASURES)
    nonzero = " OR ".join(f"sum({m}) <> 0" for m in MEASURES)
    columns = f"{', '.join(KEY)}, {', '.join(MEASURES)}"
    rebuild = (
        f"INSERT INTO report_rollup ({columns})\n"
        f"SELECT 'day', c.dim, c.day, c.department, c.value, {sums}\n"
        "FROM event e LEFT JOIN review v ON v.event_id = e.id\n"
        f"CROSS JOIN LATERAL {cells('e', 'v.root_cause_code', 1)} AS c\n"
        f"WHERE {counted.format(row='e')}\n"
        f"GROUP BY c.dim, c.day, c.department, c.value HAVING {nonzero};\n"
        f"INSERT INTO report_rollup ({columns})\n"
        "SELECT g.grain, dim, date_trunc(g.grain, day::timestamp)::date, department, value,"
        f" {sums}\n"
        "FROM report_rollup CROSS JOIN (VALUES ('week'), ('month')) AS g(grain)\n"
        "WHERE report_rollup.grain = 'day'\n"
        "GROUP BY g.grain, dim, date_trunc(g.grain, day::timestamp)::date, department, value"
    )
    return [
        _cells_sql(),
        f"""
CREATE FUNCTION report_rollup_on_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE rc text;
BEGIN
  -- OLD is NULL on INSERT and NEW on DELETE: their half adds nothing.
  SELECT v.root_cause_code INTO rc FROM review v
  WHERE v.event_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
  {on_event};
  -- The delete trigger runs BEFORE the row goes (and so before the cascade takes its
  -- review, whose root cause the row's cells carry); its row must be returned.
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NULL;
END $$
""",
        f"""
CREATE FUNCTION report_rollup_on_review() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE ev event; new_rc text; old_rc text;
BEGIN
  new_rc := CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.root_cause_code END;
  old_rc := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.root_cause_code END;
  IF new_rc IS NOT DISTINCT FROM old_rc THEN RETURN NULL; END IF;
  SELECT * INTO ev FROM event
  WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.event_id ELSE NEW.event_id END;
  IF NOT FOUND OR {uncounted.format(row='ev')} THEN RETURN NULL; END IF;
  {on_review};
  RETURN NULL;
END $$
""",
        f"""
CREATE FUNCTION report_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM report_rollup;
  {rebuild};
END $$
""",
    ]


def event_triggers(counted: str = COUNTED) -> tuple[str, ...]:
    """The triggers on `event`, each firing only where an event is `counted` before or after."""
    return (
        "CREATE TRIGGER report_rollup_event_insert AFTER INSERT ON event FOR EACH ROW"
        f" WHEN ({counted.format(row='NEW')}) EXECUTE FUNCTION report_rollup_on_event()",
        f"CREATE TRIGGER report_rollup_event_update AFTER UPDATE OF {', '.join(EVENT_FACTS)}"
        " ON event FOR EACH ROW"
        f" WHEN ({counted.format(row='OLD')} OR {counted.format(row='NEW')})"
        " EXECUTE FUNCTION report_rollup_on_event()",
        "CREATE TRIGGER report_rollup_event_delete BEFORE DELETE ON event FOR EACH ROW"
        f" WHEN ({counted.format(row='OLD')}) EXECUTE FUNCTION report_rollup_on_event()",
    )


TRIGGERS = (
    *event_triggers(),
    "CREATE TRIGGER report_rollup_review AFTER INSERT OR UPDATE OF root_cause_code OR DELETE"
    " ON review FOR EACH ROW EXECUTE FUNCTION report_rollup_on_review()",
)


def upgrade() -> None:
    op.create_table(
        "report_rollup",
        sa.Column("grain", sa.String(length=5), nullable=False),
        sa.Column("dim", sa.String(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        *(
            sa.Column(
                name,
                sa.Double() if name in DOUBLES else sa.BigInteger(),
                server_default=sa.text("0"),
                nullable=False,
            )
            for name in MEASURES
        ),
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_report_rollup")),
    )
    op.create_index(
        "ix_event_recurrence_of_created_at",
        "event",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("recurrence_of IS NOT NULL OR recurrence_match_id IS NOT NULL"),
    )
    for statement in (*_functions_sql(), *TRIGGERS):
        op.execute(statement)
    # Backfill: the existing events' contributions (none when the database is new).
    op.execute("SELECT report_rollup_rebuild()")


def downgrade() -> None:
    op.execute("DROP TRIGGER report_rollup_review ON review")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER report_rollup_event_{name} ON event")
    op.execute("DROP FUNCTION report_rollup_rebuild()")
    op.execute("DROP FUNCTION report_rollup_on_review()")
    op.execute("DROP FUNCTION report_rollup_on_event()")
    types = ", ".join(FACT_TYPES.get(c, "timestamptz") for c in EVENT_FACTS)
    op.execute(f"DROP FUNCTION report_cells({types}, text, integer)")
    op.drop_index(
        "ix_event_recurrence_of_created_at",
        table_name="event",
        postgresql_where=sa.text("recurrence_of IS NOT NULL OR recurrence_match_id IS NOT NULL"),
    )
    op.drop_table("report_rollup")
