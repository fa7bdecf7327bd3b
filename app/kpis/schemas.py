"""KPI responses (R5.4; product.md section 4, `GET /v1/kpis`)."""

from datetime import datetime

from pydantic import Field

from app.core.schemas import ResponseModel
from app.rules.kpis import KpiGroup


class Satisfaction(ResponseModel):
    responses: int = Field(description="Scores recorded")
    mean_score: float | None = Field(description="Mean score, 1 to 5")
    unreachable: int = Field(description="Reporters recorded as unreachable")


class KpiRow(ResponseModel):
    key: str | None = Field(
        description="Department code, assignee id or category; null: none yet (e.g. unassigned)"
    )
    events: int = Field(description="Events reported in the period")
    open: int = Field(description="Not yet closed or cancelled")
    resolved: int = Field(description="Resolved (whatever their status now)")
    closed: int
    cancelled: int
    resolved_on_time: int = Field(description="Resolved no later than their resolve_by deadline")
    on_time_rate: float | None = Field(description="resolved_on_time / resolved (R5.4)")
    mean_resolution_hours: float | None = Field(description="Report to resolution, mean")
    recurrences: int = Field(description="Reported as a recurrence of an earlier event")
    recurrence_rate: float | None = Field(description="recurrences / events (R5.4)")
    satisfaction: Satisfaction


class KpiReport(ResponseModel):
    period_from: datetime = Field(serialization_alias="from")
    period_to: datetime = Field(serialization_alias="to")
    group_by: KpiGroup
    department_scope: str | None = Field(
        description="Set when only the caller's department's events count (department heads)"
    )
    groups: list[KpiRow]
    totals: KpiRow
