"""Appraisal and trend responses (R5.4, R5.5, R7.2; product.md section 8)."""

from datetime import date

from pydantic import Field

from app.core.schemas import ResponseModel
from app.rules.appraisal import AppraisalGroup, Backlog, Interval, Mark, TrendBy


class WholeDaysReport(ResponseModel):
    # Appraisals and trends are over whole UTC days (the KPIs' period is any two instants).
    period_from: date = Field(serialization_alias="from")
    period_to: date = Field(serialization_alias="to")


class DefinitionRef(ResponseModel):
    id: str
    version: int


class FigureRead(ResponseModel):
    value: float | None = Field(description="numerator / denominator; null when it is 0")
    numerator: float
    denominator: float
    definition: DefinitionRef


class DefinitionRead(ResponseModel):
    id: str
    version: int
    clause: str = Field(description="The policy clauses it measures")
    numerator: str
    denominator: str
    text: str


class SatisfactionRead(ResponseModel):
    mean: FigureRead
    response_rate: FigureRead
    distribution: dict[str, int] = Field(description="Scores recorded, per score 1 to 5")
    unreachable: int = Field(description="Reporters recorded as unreachable")


class RectificationsRead(ResponseModel):
    issued: int
    overdue: int = Field(description="Still unanswered after their due time")
    overdue_rate: FigureRead


class AppraisalRow(ResponseModel):
    key: str | None = Field(description="Department code or employee (user) id; null: none")
    name: str | None = Field(description="The employee's name in the directory")
    department: str | None = Field(description="The employee's department")
    events: int = Field(description="Events reported in the period")
    on_time_rate: FigureRead
    on_time_by_stage: dict[str, FigureRead] = Field(
        description="respond, resolve, feedback, review"
    )
    satisfaction: SatisfactionRead
    recurrence_rate: FigureRead
    rectifications: RectificationsRead
    spot_check_pass_rate: FigureRead
    mark: Mark = Field(description="R5.5, from the policy's `appraisal` thresholds")
    reasons: list[str] = Field(description="The thresholds behind the mark")


class AppraisalReport(WholeDaysReport):
    group_by: AppraisalGroup
    department_scope: str | None = Field(
        description="Set when only the caller's department counts (department heads)"
    )
    policy_version: int
    definitions: list[DefinitionRead]
    groups: list[AppraisalRow]
    totals: AppraisalRow


class TrendBucket(ResponseModel):
    start: date = Field(description="First day of the bucket (UTC)")
    key: str | None = Field(description="Category, severity, department or root cause")
    reported: int
    closed: int = Field(description="Closed in the bucket")
    cancelled: int = Field(description="Cancelled in the bucket")
    open_at_end: int = Field(description="Open when the bucket ends (the backlog)")
    on_time_rate: FigureRead
    mean_resolution_hours: FigureRead


class RootCauseCount(ResponseModel):
    code: str
    events: int


class BacklogRead(ResponseModel):
    opening: int = Field(description="Open at the start of the period")
    closing: int = Field(description="Open at the end of the period")
    direction: Backlog


class TrendReport(WholeDaysReport):
    interval: Interval
    by: TrendBy
    department_scope: str | None
    definitions: list[DefinitionRead]
    buckets: list[TrendBucket]
    top_root_causes: list[RootCauseCount]
    backlog: BacklogRead
