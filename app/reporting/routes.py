"""`GET /v1/appraisals` (R5.4, R5.5) and `GET /v1/trends` (R7.2), JSON or CSV."""

from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Annotated, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel

from app.core.auth import request_principal
from app.core.clock import utcnow
from app.core.csv_export import CSV_MEDIA_TYPE, FORMAT_DESCRIPTION, csv_response, wants_csv
from app.core.query import ApiRouter
from app.policy.service import PolicyDep
from app.reporting import service
from app.reporting.schemas import (
    AppraisalReport,
    AppraisalRow,
    FigureRead,
    TrendBucket,
    TrendReport,
)
from app.rules.appraisal import STAGES, AppraisalGroup, Interval, TrendBy

router = ApiRouter(tags=["reporting"])

From = Annotated[date, Query(alias="from", description="First day (UTC), inclusive")]
To = Annotated[date, Query(alias="to", description="Last day (UTC), exclusive")]
Format = Annotated[Literal["json", "csv"] | None, Query(description=FORMAT_DESCRIPTION)]
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The report (JSON), or its rows as a CSV download",
        "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
    403: {"description": "Only supervisors, admins and department heads"},
    422: {"description": "The request is not valid"},
}
_FIGURE_COLUMNS = ("value", "numerator", "denominator")


def _figure(name: str, figure: FigureRead) -> dict[str, object]:
    return {f"{name}.{part}": getattr(figure, part) for part in _FIGURE_COLUMNS} | {
        f"{name}.definition": f"{figure.definition.id}@v{figure.definition.version}"
    }


def _appraisal_cells(row: AppraisalRow) -> dict[str, object]:
    cells: dict[str, object] = {
        "key": row.key,
        "name": row.name,
        "department": row.department,
        "events": row.events,
    }
    cells |= _figure("on_time_rate", row.on_time_rate)
    for stage in STAGES:
        cells |= _figure(f"on_time_rate.{stage}", row.on_time_by_stage[stage])
    cells |= _figure("satisfaction_mean", row.satisfaction.mean)
    cells |= _figure("satisfaction_response_rate", row.satisfaction.response_rate)
    cells |= {f"score_{k}": n for k, n in row.satisfaction.distribution.items()}
    cells["unreachable"] = row.satisfaction.unreachable
    cells |= _figure("recurrence_rate", row.recurrence_rate)
    cells["rectifications_issued"] = row.rectifications.issued
    cells["rectifications_overdue"] = row.rectifications.overdue
    cells |= _figure("spot_check_pass_rate", row.spot_check_pass_rate)
    return cells | {"mark": row.mark, "reasons": "; ".join(row.reasons)}


def _table(rows: Sequence[dict[str, object]]) -> tuple[list[str], Iterator[list[object]]]:
    columns = list(rows[0]) if rows else []
    return columns, ([row[c] for c in columns] for row in rows)


def _answer(
    request: Request,
    format: Literal["json", "csv"] | None,
    report: BaseModel,
    rows: Callable[[], list[dict[str, object]]],
    filename: str,
) -> Response:
    """The report as JSON, or `rows()` as a CSV download (`Accept` or `format`)."""
    if wants_csv(request, format):
        columns, cells = _table(rows())
        return csv_response(columns, cells, filename=filename)
    return Response(
        report.model_dump_json(by_alias=True),
        media_type="application/json",
        headers={"Vary": "Accept"},
    )


async def _asked(request: Request, start: date, end: date) -> service.ReportRequest:
    """The caller, the period and the time of a report request."""
    return service.ReportRequest(
        request.app.state.db, await request_principal(request), start, end, utcnow()
    )


def _trend_cells(b: TrendBucket) -> dict[str, object]:
    return (
        {
            "start": b.start,
            "key": b.key,
            "reported": b.reported,
            "closed": b.closed,
            "cancelled": b.cancelled,
            "open_at_end": b.open_at_end,
        }
        | _figure("on_time_rate", b.on_time_rate)
        | _figure("mean_resolution_hours", b.mean_resolution_hours)
    )


@router.get("/v1/appraisals", response_model=AppraisalReport, responses=RESPONSES)
async def get_appraisals(
    request: Request,
    policy: PolicyDep,
    period_from: From,
    period_to: To,
    group_by: AppraisalGroup = AppraisalGroup.DEPARTMENT,
    format: Format = None,
) -> Response:
    """Appraisal figures per department or employee over whole days (R5.4, R5.5): on-time
    handling rate overall and per stage, satisfaction, recurrence rate, rectification orders,
    spot-check pass rate, each with numerator, denominator and definition, and the mark the
    policy's thresholds give. Supervisors and admins see all; a department head their own
    department; others 403. CSV: one row per group, then the totals (key `total`)."""
    asked = await _asked(request, period_from, period_to)
    report = await service.appraise(asked, policy=policy, group_by=group_by)

    def rows() -> list[dict[str, object]]:
        found = [_appraisal_cells(r) for r in report.groups]
        return [*found, _appraisal_cells(report.totals) | {"key": "total"}]

    return _answer(request, format, report, rows, f"appraisals-{period_from}-{period_to}.csv")


@router.get("/v1/trends", response_model=TrendReport, responses=RESPONSES)
async def get_trends(
    request: Request,
    period_from: From,
    period_to: To,
    interval: Interval = Interval.WEEK,
    by: TrendBy = TrendBy.CATEGORY,
    format: Format = None,
) -> Response:
    """Trends over whole days (R7.2): per bucket and key the events reported, closed,
    cancelled and open at the end, the on-time rate and mean resolution hours; the top root
    causes and whether the backlog grows. Same callers as appraisals. CSV: one row per bucket
    and key."""
    asked = await _asked(request, period_from, period_to)
    report = await service.trends(asked, interval=interval, by=by)
    return _answer(
        request,
        format,
        report,
        lambda: [_trend_cells(b) for b in report.buckets],
        f"trends-{period_from}-{period_to}.csv",
    )
