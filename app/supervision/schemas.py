"""Spot check and rectification request and response shapes (product.md section 8)."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from app.core.history import HistoryEntryRead
from app.core.schemas import AwareDatetime, DeptCode, Note, RequestModel, ResponseModel
from app.rules.supervision import MAX_SAMPLE_SIZE, StratumDraw
from app.rules.vocabulary import (
    Answer,
    Category,
    OrderAction,
    OrderStatus,
    Question,
    RiskFactor,
    Severity,
    SpotCheckStatus,
    Status,
)

Seed = Annotated[int, Field(ge=0, le=2**63 - 1, description="The draw's seed (kept and shown)")]
Text = Annotated[str, Field(min_length=1, max_length=4_000)]

# ---- spot checks (R5.2) --------------------------------------------------------------------


class SpotCheckCreate(RequestModel):
    """A spot check over the events reported in [from, to) that match the filter (closed ones
    unless `statuses` says otherwise)."""

    period_from: AwareDatetime = Field(alias="from", description="Reported from (inclusive)")
    period_to: AwareDatetime = Field(alias="to", description="Reported before (exclusive)")
    sample_size: Annotated[int, Field(ge=1, le=MAX_SAMPLE_SIZE)] | None = None
    sample_rate: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="A share of the population, rounded up"
    )
    seed: Seed | None = Field(default=None, description="Chosen by the service when left out")
    categories: Annotated[list[Category], Field(max_length=4)] | None = None
    departments: Annotated[list[DeptCode], Field(max_length=50)] | None = Field(
        default=None, description="Lead (responsible) departments"
    )
    severities: Annotated[list[Severity], Field(max_length=3)] | None = None
    statuses: Annotated[list[Status], Field(max_length=9)] | None = Field(
        default=None, description='Default: ["closed"]'
    )
    min_per_stratum: Annotated[int, Field(ge=0, le=50)] | None = Field(
        default=None, description="Events drawn at least from each department x severity"
    )

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        if self.sample_size is not None and self.sample_rate is not None:
            raise ValueError("Give sample_size or sample_rate, not both")
        if self.period_from >= self.period_to:
            raise ValueError("`from` must be before `to`")
        return self


# The JSON type of `from`/`to` is checked under the names the client sends.
SpotCheckCreate.json_types = {
    SpotCheckCreate.model_fields[name].alias or name: kind
    for name, kind in SpotCheckCreate.json_types.items()
}


class AnswerIn(RequestModel):
    answer: Answer
    note: Note | None = Field(default=None, description="Required to overturn the pre-filled")


class ItemJudgement(RequestModel):
    """The checker's answers to some or all of the three R5.2 questions."""

    intake_timely: AnswerIn | None = None
    process_followed: AnswerIn | None = None
    result_effective: AnswerIn | None = None

    def given(self) -> dict[Question, AnswerIn]:
        """The questions answered, in Question order."""
        return {q: a for q in Question if (a := getattr(self, q.value)) is not None}

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.given():
            raise ValueError("Answer at least one question")
        return self


class QuestionRead(ResponseModel):
    answer: Answer | None = Field(description="The checker's answer; null until judged")
    prefilled: Answer = Field(description="What the service answers from the facts")
    findings: list[str] = Field(description="Why the pre-filled answer fails, as codes")
    facts: dict[str, Any] = Field(description="The facts behind the pre-filled answer")
    note: str | None
    judged_by: uuid.UUID | None
    judged_at: datetime | None


class SpotCheckItemRead(ResponseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    ref: str
    title: str
    stratum: str = Field(description="department/severity")
    department: str
    severity: str | None
    weight: float = Field(description="1 plus the weight of each risk factor")
    risk: list[RiskFactor]
    judged: bool = Field(description="All three questions answered")
    intake_timely: QuestionRead
    process_followed: QuestionRead
    result_effective: QuestionRead


class DrawRead(ResponseModel):
    """How the sample was drawn, enough to draw it again from the frozen population."""

    method: str
    seed: int
    requested_size: int | None
    requested_rate: float | None
    min_per_stratum: int
    risk_weights: dict[str, float]
    strata: list[StratumDraw]  # the rule's own record of each stratum's draw (R5.2)


class SpotCheckRead(ResponseModel):
    id: uuid.UUID
    status: SpotCheckStatus
    seed: int
    period_from: datetime = Field(serialization_alias="from")
    period_to: datetime = Field(serialization_alias="to")
    population_filter: dict[str, Any]
    population_size: int
    sample_size: int
    created_by: uuid.UUID
    created_at: datetime
    completed_at: datetime | None
    completed_by: uuid.UUID | None


class SpotCheckDetail(SpotCheckRead):
    draw: DrawRead
    items: list[SpotCheckItemRead]
    rectification_ids: list[uuid.UUID] = Field(description="Orders issued on completion")


class SpotCheckPage(ResponseModel):
    items: list[SpotCheckRead]
    next_cursor: str | None


# ---- rectification orders (R5.3) -----------------------------------------------------------


class RectificationCreate(RequestModel):
    department: DeptCode
    demand: Text
    due_at: AwareDatetime | None = Field(default=None, description="Default: 14 days from now")
    event_id: uuid.UUID | None = None


class RectificationResponseIn(RequestModel):
    cause: Text
    measures: Text


class RectificationVerificationIn(RequestModel):
    accepted: bool
    note: Note | None = Field(default=None, description="Required to reject")


class RectificationRead(ResponseModel):
    id: uuid.UUID
    spot_check_id: uuid.UUID | None
    item_id: uuid.UUID | None
    event_id: uuid.UUID | None
    department: str
    questions: list[str]
    demand: str
    due_at: datetime
    status: OrderStatus
    overdue: bool = Field(description="Not answered by its due time")
    allowed_actions: list[OrderAction]
    issued_by: uuid.UUID
    cause: str | None
    measures: str | None
    responded_by: uuid.UUID | None
    responded_at: datetime | None
    verified_by: uuid.UUID | None
    verified_at: datetime | None
    verification_note: str | None
    closed_by: uuid.UUID | None
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class RectificationPage(ResponseModel):
    items: list[RectificationRead]
    next_cursor: str | None


class RectificationEntryRead(HistoryEntryRead):
    pass


class RectificationTimeline(ResponseModel):
    items: list[RectificationEntryRead]
