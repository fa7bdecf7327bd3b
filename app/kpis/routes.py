"""`GET /v1/kpis`: appraisal indicators over a period (R5.4, product.md section 4)."""

from typing import Annotated

from fastapi import Query, Request

from app.core.auth import request_principal
from app.core.query import ApiRouter
from app.core.schemas import AwareDatetime
from app.kpis import service
from app.kpis.schemas import KpiReport
from app.rules.kpis import KpiGroup

router = ApiRouter(
    prefix="/v1/kpis",
    tags=["kpis"],
    responses={403: {"description": "Only supervisors, admins and department heads (R5.4)"}},
)


@router.get("", response_model_by_alias=True)
async def get_kpis(
    request: Request,
    period_from: Annotated[AwareDatetime, Query(alias="from", description="Start (inclusive)")],
    period_to: Annotated[AwareDatetime, Query(alias="to", description="End (exclusive)")],
    group_by: KpiGroup = KpiGroup.DEPARTMENT,
) -> KpiReport:
    """On-time rate, satisfaction, recurrence rate, counts and mean resolution time of the
    events reported in the period, per lead department, assignee or category (R5.4).

    Supervisors and admins see every department; a department head sees the events their
    department leads; others get 403. The period is at most two years."""
    return await service.report(
        request.app.state.db,
        actor=await request_principal(request),
        group_by=group_by,
        start=period_from,
        end=period_to,
    )
