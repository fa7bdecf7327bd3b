"""KPIs per department, assignee or category over a period (R5.4, product.md section 4)."""

from datetime import UTC, datetime, time, timedelta
from typing import Any, Final

from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import Forbidden, Unprocessable
from app.kpis import repository
from app.kpis.schemas import KpiReport, KpiRow, Satisfaction
from app.reporting import repository as reporting
from app.rules.kpis import (
    MEASURES,
    KpiGroup,
    KpiScope,
    Numbers,
    figures,
    kpi_scope,
    period_problem,
    totals,
)

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


# The rollup's grouping of each KPI grouping (app/reporting).
_DIM: Final = {KpiGroup.DEPARTMENT: "department", KpiGroup.ASSIGNEE: "assignee"}


async def _counts(
    connection: Any, group: KpiGroup, start: datetime, end: datetime, department: str | None
) -> dict[str | None, dict[str, Any]]:
    """The measures per group: the whole UTC days of the period from the reporting rollup
    (kept correct to the event), the partial days at either end from the events' index."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first = (start + timedelta(days=1) - timedelta.resolution).date()  # first whole day
    last = end.date()  # the day `end` falls in: before it, whole days
    begin, finish = (datetime.combine(d, time(), UTC) for d in (first, last))
    pieces: list[dict[str, Any]] = []
    if begin >= finish:
        pieces += map(dict, await repository.counts(connection, group, start, end, department))
    else:
        dim = _DIM.get(group, "category")
        window = reporting.Window(first, last, utcnow().date(), department)
        names = tuple(m.name for m in MEASURES)
        for row in await reporting.sums(connection, window, dim=dim, measures=names):
            pieces.append({"key": row["key"] or None} | {m.name: row[m.name] for m in MEASURES})
        for lo, hi in ((start, begin), (finish, end)):
            if lo < hi:
                pieces += map(dict, await repository.counts(connection, group, lo, hi, department))
    found: dict[str | None, dict[str, Any]] = {}
    for piece in pieces:
        key = piece.pop("key")
        if key not in found:
            found[key] = dict.fromkeys((m.name for m in MEASURES), 0)
        if any(piece.values()):
            for name, amount in piece.items():
                found[key][name] += amount or 0
    return {k: _typed(v) for k, v in found.items() if v["events"]}


def _typed(measures: dict[str, Any]) -> dict[str, Any]:
    """Counts as integers (the rollup's sums come back as floats)."""
    return {k: v if k == "resolution_seconds" else int(v) for k, v in measures.items()}


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
        counts = await _counts(connection, group_by, start, end, department)
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
