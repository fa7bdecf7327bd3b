"""KPIs per department, assignee or category over a period (R5.4, product.md section 4)."""

from datetime import datetime
from typing import Any

from app.core.auth import Principal
from app.core.db import Database
from app.core.errors import Forbidden, Unprocessable
from app.kpis import repository
from app.kpis.schemas import KpiReport, KpiRow, Satisfaction
from app.rules.kpis import KpiGroup, KpiScope, Numbers, figures, kpi_scope, period_problem, totals

# The measures shown as they are (app/rules/kpis.py MEASURES; the others feed figures only).
_SHOWN = ("events", "resolved", "closed", "cancelled", "resolved_on_time", "recurrences")


def _row(key: str | None, measures: Numbers) -> KpiRow:
    """One row of the report: the group's measures and the figures defined on them."""
    figure: dict[str, Any] = figures(measures)
    return KpiRow(
        key=key,
        **{name: measures[name] for name in _SHOWN},
        open=figure["open"],
        on_time_rate=figure["on_time_rate"],
        mean_resolution_hours=figure["mean_resolution_hours"],
        recurrence_rate=figure["recurrence_rate"],
        satisfaction=Satisfaction(
            responses=measures["responses"],
            mean_score=figure["mean_score"],
            unreachable=measures["unreachable"],
        ),
    )


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
    total = _row(None, totals(counts.values()))
    return KpiReport(
        period_from=start,
        period_to=end,
        group_by=group_by,
        department_scope=department,
        groups=groups,
        totals=total,
    )
