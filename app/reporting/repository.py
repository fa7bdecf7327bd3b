"""The reporting statements (R5.4, R7.2): the rollup's sums, linked recurrences, spot-check
answers, rectification orders and names; plain prepared SQL on the report connection.

A period is whole UTC days [start, end) (`Window`). Its sums are the rollup's rows of those
days plus the contribution of the events still `reported` and not yet folded in (the rollup
leaves them out so that intake does no work for it; `fold` adds those left an hour), computed by
the same `report_cells` function the triggers use. Only those reported before the period's end
are read (`_reported_before`): the intakes since (all still `reported`, perhaps hundreds of
thousands) are not. `sums(rollup=False)` is the same computed from the events alone (the check
of the rollup: tests and the bench).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.reporting.models import FACET_TIMES, MEASURES, REPORTED_AT, STAGES, WAITING, cells

# Each stage's unfinished count is split into overdue (its due day before $today:
# rules.appraisal.counts_late) and not yet due.
OVERDUE: Final = tuple(f"{s}_overdue" for s in STAGES)


@dataclass(frozen=True, slots=True)
class Window:
    """What every read of a report shares: its whole UTC days [start, end), the day it is read
    on (`today`: the unfinished stages due before it are overdue) and the department whose
    lead events alone count (None: every department)."""

    start: date
    end: date
    today: date
    department: str | None = None

    @property
    def moments(self) -> tuple[datetime, datetime]:
        """[start, end) as UTC times."""
        return datetime.combine(self.start, time(), UTC), datetime.combine(self.end, time(), UTC)


def _sums(measures: tuple[str, ...]) -> str:
    """The measures summed (float8 sums: exact for counts below 2**53, cheaper than numeric)."""
    found = []
    for m in measures:
        if m in OVERDUE:
            stage = m.removesuffix("_overdue")
            found.append(f"sum(CASE WHEN c.day < $today THEN c.{stage}_open::float8 END) AS {m}")
        else:
            found.append(f"sum(c.{m}::float8) AS {m}")
    return ",\n       ".join(found)


def _reported_before(bound: str) -> str:
    """The events left out of the rollup (still `reported`, not folded) reported before `bound`
    (a time), as a range of the index of their report times alone
    (`ix_event_reported_created_at`, migrations 5e2a7c9d1f36 and 7b4e1c9d2f58), whose
    statistics count those events alone. Said only with `status` and `created_at` apart, the
    planner estimates the two apart and takes the intakes since the bound for a share of the
    table: from about 12 % of the table still `reported` it reads the whole table instead."""
    return (
        f"{WAITING.format(row='e')} AND e.created_at < {bound}"
        f" AND {REPORTED_AT.format(row='e')} < {bound}"
    )


_COLUMNS: Final = ", ".join(["dim", "day", "department", "value", *MEASURES])
_TIMES: Final = ", ".join(f"e.{t}" for t in FACET_TIMES)
_END: Final = "($end::timestamp AT TIME ZONE 'UTC')"
# The events still `reported` whose facets may fall in [$start, $end): a cheap filter on the
# rows before their cells are computed.
_REPORTED: Final = (
    f"SELECT {', '.join('c.' + c for c in _COLUMNS.split(', '))}\n"
    f"  FROM event e CROSS JOIN LATERAL {cells('e', 'NULL')} AS c\n"
    # Every facet time of an event is at or after its report (deadlines run from it): what
    # was reported after the period is not read.
    f"  WHERE {_reported_before(_END)}\n"
    f"    AND greatest({_TIMES}) >= ($start::timestamp AT TIME ZONE 'UTC')\n"
    "    AND c.dim = $dim AND c.day >= $start AND c.day < $end"
)


def _cells(rollup: bool, reported: bool) -> str:
    """The period's rows of one grouping: from the rollup (the whole weeks or months [$m0, $m1)
    from its `$grain` rows, the other days from its day rows) plus, when `reported`, the
    `reported` events; or (`rollup` False) computed from every event."""
    if not rollup:
        return (
            f"SELECT {', '.join('c.' + c for c in _COLUMNS.split(', '))}\n"
            "  FROM event e LEFT JOIN review v ON v.event_id = e.id\n"
            f"  CROSS JOIN LATERAL {cells('e', 'v.root_cause_code')} AS c\n"
            "  WHERE c.dim = $dim AND c.day >= $start AND c.day < $end"
            " AND $m0::date IS NOT NULL AND $m1::date IS NOT NULL AND $grain::text IS NOT NULL"
        )
    return (
        f"SELECT {_COLUMNS} FROM report_rollup\n"
        "  WHERE grain = 'day' AND dim = $dim AND day >= $start AND day < $m0\n"
        f"  UNION ALL SELECT {_COLUMNS} FROM report_rollup\n"
        "  WHERE grain = $grain AND dim = $dim AND day >= $m0 AND day < $m1\n"
        f"  UNION ALL SELECT {_COLUMNS} FROM report_rollup\n"
        "  WHERE grain = 'day' AND dim = $dim AND day >= $m1 AND day < $end"
        + (f"\n  UNION ALL {_REPORTED}" if reported else "")
    )


_PARAMETERS: Final = ("dim", "start", "end", "today", "department", "unit", "m0", "m1", "grain")


def _numbered(sql: str) -> str:
    for number, name in enumerate(_PARAMETERS, 1):
        sql = sql.replace(f"${name}", f"${number}")
    return sql


@cache
def sums_sql(
    *, rollup: bool, bucketed: bool, measures: tuple[str, ...], reported: bool = True
) -> str:
    """The statement of `sums` (one per shape, built once)."""
    key = "CASE WHEN $dim = 'department' THEN c.department ELSE c.value END"
    bucket = "date_trunc($unit, c.day::timestamp)::date" if bucketed else "NULL::date"
    return _numbered(
        f"SELECT {key} AS key, {bucket} AS bucket,\n       {_sums(measures)}\n"
        f"FROM ({_cells(rollup, reported)}) AS c\n"
        "WHERE ($department::varchar IS NULL OR c.department = $department)"
        " AND $today::date IS NOT NULL AND $unit::text IS NOT NULL\n"
        "GROUP BY 1, 2"
    )


def spans(start: date, end: date, today: date, grain: str) -> tuple[date, date]:
    """The whole weeks (from Monday) or calendar months [m0, m1) inside [start, end) that
    ended before the week or month of `today` (so their unfinished stages are all overdue);
    (start, start) when there are none."""
    if grain == "week":
        m0 = start + timedelta(days=-start.weekday() % 7)
        m1 = min(end - timedelta(days=end.weekday()), today - timedelta(days=today.weekday()))
    else:
        m0 = start if start.day == 1 else _next_month(start)
        m1 = min(end.replace(day=1), today.replace(day=1))
    return (m0, m1) if m0 < m1 else (start, start)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


# The backlog before the period: events reported before it less those closed or cancelled
# before it, per key (month rows before $4, the first day of the period's month; then days).
# An event still `reported` adds only its report (closed_on and cancelled_on fall on days it
# does not have yet): those reported before $2 are read, none of the intakes since.
OPENING_SQL: Final = f"""
SELECT CASE WHEN $1 = 'department' THEN c.department ELSE c.value END AS key,
       sum((c.events - c.closed_on - c.cancelled_on)::float8) AS open
FROM (SELECT department, value, events, closed_on, cancelled_on FROM report_rollup
      WHERE grain = 'month' AND dim = $1 AND day < $4
      UNION ALL
      SELECT department, value, events, closed_on, cancelled_on FROM report_rollup
      WHERE grain = 'day' AND dim = $1 AND day >= $4 AND day < $2
      UNION ALL
      SELECT c.department, c.value, c.events, c.closed_on, c.cancelled_on
      FROM event e CROSS JOIN LATERAL {cells("e", "NULL")} AS c
      WHERE {_reported_before("($2::timestamp AT TIME ZONE 'UTC')")}
        AND c.dim = $1 AND c.day < $2) AS c
WHERE ($3::varchar IS NULL OR c.department = $3)
GROUP BY 1
"""

# Events of the period linked to an earlier one (a row per original: the link, then the
# match), with that original's facts: the rule (rules.recurrence.in_window) decides which recur;
# through the partial index of links.
RECURRENCES_SQL: Final = """
SELECT e.category AS category, e.created_at AS reported_at, o.id AS original_id,
       o.category AS original_category, o.closed_at AS original_closed_at,
       o.lead_department AS department, o.assignee_id::text AS assignee,
       e.id AS event_id, coalesce(o.id = e.recurrence_of, false) AS linked
FROM event e
JOIN event o ON o.id = e.recurrence_of OR o.id = e.recurrence_match_id
WHERE (e.recurrence_of IS NOT NULL OR e.recurrence_match_id IS NOT NULL)
  AND e.created_at >= $1 AND e.created_at < $2
  AND ($3::varchar IS NULL OR o.lead_department = $3)
ORDER BY e.id, linked DESC
"""

# R5.2: the judged answers of the spot checks completed in the period, per department and
# the sampled event's assignee.
SPOT_CHECKS_SQL: Final = """
SELECT i.department AS department, e.assignee_id::text AS assignee,
       count(*) FILTER (WHERE a.answer = 'pass')::float8 AS passed,
       count(*) FILTER (WHERE a.answer IN ('pass', 'fail'))::float8 AS judged
FROM spot_check s
JOIN spot_check_item i ON i.spot_check_id = s.id
JOIN spot_check_answer a ON a.item_id = i.id
JOIN event e ON e.id = i.event_id
WHERE s.status = 'completed' AND s.completed_at >= $1 AND s.completed_at < $2
  AND ($3::varchar IS NULL OR i.department = $3)
GROUP BY 1, 2
"""

# R5.3: orders issued in the period, and those still unanswered after their due time.
RECTIFICATIONS_SQL: Final = """
SELECT r.department AS department, e.assignee_id::text AS assignee,
       count(*)::float8 AS issued,
       count(*) FILTER (WHERE r.status = 'issued' AND r.due_at < $4)::float8 AS overdue
FROM rectification r LEFT JOIN event e ON e.id = r.event_id
WHERE r.created_at >= $1 AND r.created_at < $2
  AND ($3::varchar IS NULL OR r.department = $3)
GROUP BY 1, 2
"""

NAMES_SQL: Final = """
SELECT u.id::text AS id, u.name, d.code AS department
FROM app_user u LEFT JOIN department d ON d.id = u.department_id
WHERE u.id = ANY($1::uuid[])
"""


async def sums(
    connection: Any,
    window: Window,
    *,
    dim: str,
    unit: str | None = None,
    rollup: bool = True,
    reported: bool = True,
    measures: tuple[str, ...] = (*MEASURES, *OVERDUE),
) -> list[dict[str, Any]]:
    """The `measures` per key (and per bucket of `unit`: day, week, month) over the window of
    one grouping (`dim`); without the events still `reported` when `reported` is False."""
    sql = sums_sql(rollup=rollup, bucketed=unit is not None, measures=measures, reported=reported)
    grain = "day" if unit == "day" else unit or "month"  # the widest rows a bucket allows
    start, end, today = window.start, window.end, window.today
    m0, m1 = spans(start, end, today, grain) if grain != "day" else (start, start)
    rows = await connection.fetch(
        sql, dim, start, end, today, window.department, unit or "day", m0, m1, grain
    )
    return [dict(row) for row in rows]


async def root_causes(connection: Any, window: Window) -> list[dict[str, Any]]:
    """The events reported in the window per root cause (R7.2), from the rollup alone: an
    event still `reported` has no review yet, its root cause is none (key '')."""
    return await sums(connection, window, dim="root_cause", reported=False, measures=("events",))


async def opening(connection: Any, window: Window, *, dim: str) -> dict[str | None, float]:
    """The events open at the start of the window, per key of the grouping."""
    start = window.start
    rows = await connection.fetch(OPENING_SQL, dim, start, window.department, start.replace(day=1))
    return {row["key"]: row["open"] for row in rows}


async def linked(connection: Any, window: Window) -> list[dict[str, Any]]:
    """The window's events linked to an earlier one (`recurrence_of`, then the match found),
    with each original's facts."""
    rows = await connection.fetch(RECURRENCES_SQL, *window.moments, window.department)
    return [dict(r) for r in rows]


async def spot_checks(connection: Any, window: Window) -> list[dict[str, Any]]:
    """Judged spot-check answers per department and assignee (R5.2)."""
    rows = await connection.fetch(SPOT_CHECKS_SQL, *window.moments, window.department)
    return [dict(r) for r in rows]


async def rectifications(connection: Any, window: Window, now: datetime) -> list[dict[str, Any]]:
    """Orders issued and overdue (at `now`) per department and assignee (R5.3)."""
    rows = await connection.fetch(RECTIFICATIONS_SQL, *window.moments, window.department, now)
    return [dict(r) for r in rows]


async def names(connection: Any, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The directory's name and department of each user id."""
    if not user_ids:
        return {}
    rows = await connection.fetch(NAMES_SQL, user_ids)
    return {row["id"]: dict(row) for row in rows}


async def fold(session: AsyncSession, *, reported_before: datetime, batch: int) -> int:
    """Fold up to `batch` of the events still `reported` before `reported_before` into the
    rollup (`report_rollup_fold`, migration 7b4e1c9d2f58: one statement, the rows claimed with
    SKIP LOCKED); returns how many."""
    folded = await session.scalar(
        sa.text("SELECT report_rollup_fold(:before, :batch)"),
        {"before": reported_before, "batch": batch},
    )
    return int(folded or 0)


async def rebuild(connection: Any) -> None:
    """Recompute the whole rollup from the events (after a bulk load that bypassed the
    triggers, e.g. the bench's data set)."""
    await connection.execute("SELECT report_rollup_rebuild()")
