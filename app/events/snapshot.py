"""The pure facts the lifecycle gates read (`rules.lifecycle.EventSnapshot`), from an event and
its loop's records as the repository loads them."""

from app.events.models import Event, PlanStep
from app.events.repository import LoopRecords
from app.rules.lifecycle import ActionFacts, EventSnapshot, FeedbackFacts, ReviewFacts, StepFacts
from app.rules.vocabulary import (
    ActionStatus,
    Audience,
    FeedbackOutcome,
    SatisfactionOutcome,
    StepStatus,
)


def step_facts(step: PlanStep) -> StepFacts:
    """A stored plan step as the plan gates read it (R3.3.1)."""
    return StepFacts(
        status=StepStatus(step.status),
        has_owner=step.owner_id is not None,
        has_due=step.due_at is not None,
        drop_reason=bool(step.note),
    )


def snapshot_of(event: Event, records: LoopRecords) -> EventSnapshot:
    """What the gates read about the event as it stands (R3)."""
    grading = event.grading or {}
    routing = event.routing or {}
    assignee_in_lead = True
    if event.assignee_id is not None:
        assignee_in_lead = routing.get("assignee_department") == event.lead_department
    review, satisfaction = records.review, records.satisfaction
    return EventSnapshot(
        status=event.status,
        urgent=event.urgent,
        reporter_reachable=bool(
            event.reporter_email
            or event.reporter_phone
            or event.reporter_external_id
            or event.reporter_user_id  # a user is reached through the directory (R3.4.1)
        ),
        category=event.category,
        subcategory=event.subcategory,
        severity=event.severity,
        impact_recorded=event.impact is not None,
        severity_overridden=bool(grading.get("overridden")),
        override_reason=bool(grading.get("reason")),
        lead_department=event.lead_department,
        cooperating_departments=tuple(event.cooperating_departments),
        routing_overridden=bool(routing.get("overridden")),
        routing_override_reason=bool(routing.get("reason")),
        assignee_set=event.assignee_id is not None,
        assignee_in_lead=assignee_in_lead,
        steps=tuple(step_facts(s) for s in records.steps),
        plan_discussed_with=tuple(event.plan_discussed_with),
        resolution_result=bool(event.resolution_result),
        resolution_measures=bool(event.resolution_measures),
        feedback=tuple(
            FeedbackFacts(
                audience=Audience(f.audience),
                decision=None if f.decision is None else FeedbackOutcome(f.decision),
                complete=bool(f.result and f.measures and f.prevention_advice),
            )
            for f in records.feedback
        ),
        review=None
        if review is None
        else ReviewFacts(
            causes=bool(review.causes),
            handling=bool(review.handling),
            result=bool(review.result),
            lessons=bool(review.lessons),
            root_cause_code=review.root_cause_code,
            meeting=bool(review.meeting),
        ),
        actions=tuple(
            ActionFacts(
                status=ActionStatus(a.status),
                verified_effective=a.verified_effective,
                verifier_is_completer=a.verified_by is not None and a.verified_by == a.completed_by,
            )
            for a in records.actions
        ),
        satisfaction=None
        if satisfaction is None
        else (
            SatisfactionOutcome.UNREACHABLE
            if satisfaction.unreachable
            else SatisfactionOutcome.RECORDED
        ),
        satisfaction_attempts=satisfaction.attempts if satisfaction else 0,
    )
