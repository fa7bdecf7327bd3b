"""Event request and response shapes (product.md section 7)."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from app.core.history import HistoryEntryRead
from app.core.schemas import (
    AwareDatetime,
    DeptCode,
    EmailAddress,
    LongText,
    Note,
    PastDatetime,
    RequestModel,
    ResponseModel,
    ShortText,
)
from app.events.clock_schemas import SlaRead
from app.policy.schemas import Impact, Subcategory
from app.rules.vocabulary import Category, Channel, Decision, RootCause, Severity, Status

Text = Annotated[str, Field(min_length=1, max_length=10_000)]
Reason = Annotated[str, Field(min_length=1, max_length=2_000)]


class ReporterIn(RequestModel):
    name: ShortText
    email: EmailAddress | None = None
    phone: (
        Annotated[str, Field(min_length=3, max_length=50, pattern=r"^[0-9+()\-. /]+$")] | None
    ) = None
    external_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    user_id: uuid.UUID | None = Field(
        default=None,
        description="The reporter as a directory user: they see the event and the feedback "
        "given to them (422 when no such user). A caller names themselves; only the intake "
        "desk, admins and integrations name another user (422 otherwise).",
    )


class ExternalRef(RequestModel):
    system: Annotated[str, Field(min_length=1, max_length=100)]
    id: Annotated[str, Field(min_length=1, max_length=200)]


class EventCreate(RequestModel):
    """Intake (R3.1): what happened, who reported it, who is involved, when."""

    title: ShortText
    description: LongText
    channel: Channel
    occurred_at: PastDatetime | None = None  # at most a day ahead (issue 10 item 12)
    urgent: bool = False
    reporter: ReporterIn | None = Field(
        default=None,
        description="Who reported it. A person (not a service account) reporting for "
        "themselves may leave it out: they are the reporter, with their directory name and "
        "e-mail address",
    )
    involved_departments: Annotated[list[DeptCode], Field(max_length=50)] = Field(
        default_factory=list
    )
    involved_people: Annotated[list[ShortText], Field(max_length=50)] = Field(default_factory=list)
    external_ref: ExternalRef | None = None
    recurrence_of: uuid.UUID | None = None


class SeverityOverride(RequestModel):
    """A manual grade; without `reason` the classification gate answers 409 (R3.2.2)."""

    severity: Severity
    reason: Reason | None = None


class ClassificationIn(RequestModel):
    """R3.2.1-2: category, subcategory, impact facts; a manual grade only with a reason."""

    category: Category
    subcategory: Subcategory
    impact: Impact = Field(default_factory=Impact)
    severity_override: SeverityOverride | None = None
    recurrence_of: uuid.UUID | None = None


class AssignmentIn(RequestModel):
    """R3.2.3: lead and cooperating departments; the policy decides when no lead is given."""

    lead_department: DeptCode | None = None
    cooperating_departments: Annotated[list[DeptCode], Field(max_length=50)] | None = None
    assignee_id: uuid.UUID | None = None
    override_reason: Reason | None = None


class StepIn(RequestModel):
    title: Annotated[str, Field(min_length=1, max_length=500)]
    owner_id: uuid.UUID
    due_at: AwareDatetime


class PlanIn(RequestModel):
    """R3.3.1: steps with owners and time points; complex events say who it was discussed with."""

    steps: Annotated[list[StepIn], Field(min_length=1, max_length=100)]
    discussed_with: Annotated[list[ShortText], Field(max_length=50)] = Field(default_factory=list)


class StepUpdate(RequestModel):
    status: Literal["done", "dropped"]
    note: Note | None = None


class NoteIn(RequestModel):
    """R3.3.2, R6: progress reports, internal notes, customer contacts."""

    kind: Literal["progress", "internal", "customer_contact"]
    body: Text
    visibility: Literal["internal", "reporter"] = "internal"


class ResolutionIn(RequestModel):
    result: Text
    measures: Text


class FeedbackIn(RequestModel):
    """R3.4: to the intake desk first, then (after acceptance) to the reporter."""

    audience: Literal["intake", "reporter"]
    result: Text
    measures: Text
    prevention_advice: Text


class FeedbackDecision(RequestModel):
    decision: Literal["accept", "return"]
    note: Note | None = None

    @model_validator(mode="after")
    def _return_needs_note(self) -> "FeedbackDecision":
        if Decision(self.decision) is Decision.RETURN and not self.note:
            raise ValueError("returning feedback needs a note saying why")
        return self


class SatisfactionIn(RequestModel):
    """R5.4, R6.2: a 1-5 score with a comment, or unreachable after the policy's attempts."""

    score: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: Note | None = None
    unreachable: bool = False
    attempts: Annotated[int, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "SatisfactionIn":
        if self.unreachable == (self.score is not None):
            raise ValueError("give either a score or unreachable: true with attempts")
        if self.unreachable and self.attempts is None:
            raise ValueError("unreachable needs the number of attempts")
        return self


class SurveyAnswer(RequestModel):
    score: Annotated[int, Field(ge=1, le=5)]
    comment: Note | None = None


class MeetingIn(RequestModel):
    held_at: AwareDatetime
    attendees: Annotated[list[ShortText], Field(min_length=1, max_length=100)]
    conclusions: Text


class ReviewIn(RequestModel):
    """R3.5.1: the summary report; a major event adds its review-meeting record."""

    causes: Text
    handling: Text
    result: Text
    lessons: Text
    root_cause_code: RootCause
    meeting: MeetingIn | None = None


class ActionIn(RequestModel):
    """R3.5.2: an improvement measure with a responsible department and a time point."""

    description: Annotated[str, Field(min_length=1, max_length=2_000)]
    department: DeptCode
    due_at: AwareDatetime


class ActionUpdate(RequestModel):
    status: Literal["done"]
    evidence: Annotated[str, Field(min_length=1, max_length=4_000)]


class VerificationIn(RequestModel):
    effective: bool
    note: Note


class CancelIn(RequestModel):
    reason: Reason
    duplicate_of: uuid.UUID | None = None


class ReopenIn(RequestModel):
    reason: Reason


# ---- responses ----------------------------------------------------------------------------


class ReporterRead(ResponseModel):
    name: str
    email: str | None
    phone: str | None
    external_id: str | None
    user_id: uuid.UUID | None = None


class ExternalRefRead(ResponseModel):
    system: str
    id: str


class StepRead(ResponseModel):
    id: uuid.UUID
    title: str
    owner_id: uuid.UUID
    due_at: datetime
    status: str
    note: str | None = None


SLA_DESCRIPTION = (
    "The running stage clock (R1.3.1): the stage (respond, resolve, feedback, review), its due "
    "time, the seconds left (negative once overdue) and whether it is breached; null once "
    "nothing is timed (reviewed, closed, cancelled). `GET /v1/events/{id}/sla` has every cycle."
)


class _EventFields(ResponseModel):
    """What both views of an event show (app/rules/views.py: REPORTER_EVENT_FIELDS)."""

    # `view` is always sent: the OpenAPI document lists it as required (a discriminator).
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    id: uuid.UUID
    ref: str
    status: Status
    version: int
    title: str
    description: str
    channel: Channel
    occurred_at: datetime | None
    reported_at: datetime
    urgent: bool
    reporter: ReporterRead
    external_ref: ExternalRefRead | None
    involved_departments: list[str]
    involved_people: list[str]
    recurrence_of: uuid.UUID | None
    duplicate_of: uuid.UUID | None
    category: Category | None
    subcategory: str | None
    intake_department: str
    respond_by: datetime
    resolve_by: datetime | None
    feedback_by: datetime | None
    sla: SlaRead | None = Field(description=SLA_DESCRIPTION)
    resolved_at: datetime | None
    closed_at: datetime | None
    created_by: uuid.UUID
    created_at: datetime
    updated_at: datetime


class EventRead(_EventFields):
    """The staff view of an event (app/rules/views.py)."""

    view: Literal["staff"] = "staff"
    severity: Severity | None
    impact: dict[str, Any] | None
    grading: dict[str, Any] | None
    lead_department: str | None
    cooperating_departments: list[str]
    routing: dict[str, Any] | None
    assignee_id: uuid.UUID | None
    review_by: datetime | None
    cancel_reason: str | None
    recurrence_match_id: uuid.UUID | None = Field(
        description="The earlier event of the same category, closed within the recurrence "
        "window, whose text this one matched at classification (R5.4; README, Search)"
    )
    recurrence_match_score: float | None = Field(description="How alike the texts are, 0 to 1")


class EventDetail(EventRead):
    steps: list[StepRead] = Field(default_factory=list)
    plan_discussed_with: list[str] = Field(default_factory=list)
    resolution: dict[str, str | None] | None = None


class EventReporterRead(_EventFields):
    """The reporter view of an event: what whoever sees it only as its reporter sees (issue 10,
    item 7; R3.4.1, R6.2; the fields are `rules.views.REPORTER_EVENT_FIELDS`)."""

    view: Literal["reporter"] = "reporter"


class ReporterFeedbackRead(ResponseModel):
    """Feedback the intake desk gave the reporter (R3.4.1-2)."""

    id: uuid.UUID
    result: str
    measures: str
    prevention_advice: str
    created_at: datetime


class ReporterSatisfactionRead(ResponseModel):
    """The reporter's satisfaction as recorded (R6.2)."""

    score: int | None
    comment: str | None
    unreachable: bool


class EventReporterDetail(EventReporterRead):
    feedback: list[ReporterFeedbackRead] = Field(
        default_factory=list, description="The feedback given to the reporter, oldest first"
    )
    satisfaction: ReporterSatisfactionRead | None = None


# An event as the caller may see it: `view` says which (app/rules/views.py).
AnyEventRead = Annotated[EventRead | EventReporterRead, Field(discriminator="view")]
AnyEventDetail = Annotated[EventDetail | EventReporterDetail, Field(discriminator="view")]


class EventPage(ResponseModel):
    items: list[AnyEventRead]
    next_cursor: str | None


class TimelineEntryRead(HistoryEntryRead):
    # Null in the reporter view: hashes of content it hides would let guesses of that content
    # be confirmed offline (review of issue 10, item 2); `chain_valid` still says the chain holds.
    prev_hash: str | None = Field(description="SHA-256 chain link; null in the reporter view")
    hash: str | None = Field(description="SHA-256 of the entry; null in the reporter view")


class TimelineRead(ResponseModel):
    items: list[TimelineEntryRead]
    chain_valid: bool = Field(
        description="True when every entry's hash matches its content and predecessor"
    )


class ChecklistItemRead(ResponseModel):
    code: str
    stage: Status
    done: bool
    detail: str


class ChecklistRead(ResponseModel):
    status: Status
    allowed_actions: list[str]
    items: list[ChecklistItemRead]


class NoteRead(ResponseModel):
    id: uuid.UUID
    kind: str
    visibility: str
    body: str
    author_id: uuid.UUID | None = Field(
        description="Null in the reporter view unless the caller wrote it (staff ids stay in)"
    )
    created_at: datetime


class FeedbackRead(ResponseModel):
    id: uuid.UUID
    audience: str
    result: str
    measures: str
    prevention_advice: str
    author_id: uuid.UUID
    decision: str | None
    decision_note: str | None
    created_at: datetime


class ActionRead(ResponseModel):
    id: uuid.UUID
    description: str
    department: str
    due_at: datetime
    status: str
    evidence: str | None
    completed_by: uuid.UUID | None
    verified_effective: bool | None
    verification_note: str | None
    verified_by: uuid.UUID | None


class SatisfactionRead(ResponseModel):
    score: int | None
    comment: str | None
    unreachable: bool
    attempts: int
    source: str


class SurveyLink(ResponseModel):
    token: str
    url: str
    expires_at: datetime


class SurveyRead(ResponseModel):
    event_ref: str
    title: str
    answered: bool
    expires_at: datetime
