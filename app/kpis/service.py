"""KPIs per department, assignee or category over a period (R5.4, product.md section 4)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from app.core.auth import Principal
from app.core.db import Database
from app.core.errors import Forbidden, Unprocessable
from app.kpis import repository
from app.kpis.schemas import KpiReport, KpiRow, Satisfaction
from app.rules.kpis import KpiGroup, KpiScope, kpi_scope, period_problem, rate

_COUNTED = (
    "events",
    "resolved",
    "closed",
    "cancelled",
    "resolved_on_time",
    "recurrences",
)


def _row(key: str | None, counts: dict[str, Any]) -> KpiRow:
    resolved, events = counts["resolved"], counts["events"]
    seconds = counts["resolution_seconds"]
    return KpiRow(
        key=key,
        **{name: counts[name] for name in _COUNTED},
        open=events - counts["closed"] - counts["cancelled"],
        on_time_rate=rate(counts["resolved_on_time"], resolved),
        mean_resolution_hours=(
            round(float(seconds) / resolved / 3600, 2) if resolved and seconds is not None else None
        ),
        recurrence_rate=rate(counts["recurrences"], events),
        satisfaction=Satisfaction(
            responses=counts["responses"],
            mean_score=(
                round(float(counts["score_sum"]) / counts["responses"], 2)
                if counts["responses"]
                else None
            ),
            unreachable=counts["unreachable"],
        ),
    )


_SUMMED = (*_COUNTED, "resolution_seconds", "responses", "score_sum", "unreachable")


def _sum(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    total = dict.fromkeys(_SUMMED, 0)
    for row in rows:
        for name in total:
            total[name] += row[name] or 0
    return total


async def report(
    database: Database,
    *,
    actor: Principal,
    group_by: KpiGroup,
    start: datetime,
    end: datetime,
) -> KpiReport:
    """The indicators of the events reported in [start, end), one row per group and totals."""
    scope = kpi_scope(actor.roles, actor.department)
    if scope is KpiScope.NONE:
        raise Forbidden("KPIs are for supervisors, admins and department heads (R5.4)")
    problem = period_problem((end - start).total_seconds() / 86_400)
    if problem:
        raise Unprocessable(problem)
    department = actor.department if scope is KpiScope.OWN_DEPARTMENT else None
    async with database.report_connection() as connection:
        rows = await repository.counts(connection, group_by, start, end, department)
    counts = {r["key"]: dict(r) for r in rows}
    groups = [_row(key, counts[key]) for key in sorted(counts, key=lambda k: (k is None, k or ""))]
    totals = _row(None, _sum(counts.values()))
    return KpiReport(
        period_from=start,
        period_to=end,
        group_by=group_by,
        department_scope=department,
        groups=groups,
        totals=totals,
    )
