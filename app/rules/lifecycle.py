"""The event lifecycle: the transition table, what each status allows besides, and the gates
that check content (R3)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from app.rules.policy import Policy
from app.rules.vocabulary import (
    Action,
    ActionStatus,
    Activity,
    Audience,
    Category,
    FeedbackOutcome,
    SatisfactionOutcome,
    Severity,
    Status,
    StepStatus,
)

TRANSITIONS: Final[Mapping[tuple[Status, Action], Status]] = MappingProxyType(
    {
        (Status.REPORTED, Action.CLASSIFY): Status.CLASSIFIED,
        # Re-classification is allowed until there is a plan.
        (Status.CLASSIFIED, Action.CLASSIFY): Status.CLASSIFIED,
        (Status.ASSIGNED, Action.CLASSIFY): Status.ASSIGNED,
        (Status.CLASSIFIED, Action.ASSIGN): Status.ASSIGNED,
        (Status.ASSIGNED, Action.ASSIGN): Status.ASSIGNED,
        (Status.ASSIGNED, Action.PLAN): Status.IN_PROGRESS,
        (Status.IN_PROGRESS, Action.PLAN): Status.IN_PROGRESS,
        (Status.IN_PROGRESS, Action.RESOLVE): Status.RESOLVED,
        (Status.RESOLVED, Action.GIVE_FEEDBACK): Status.FEEDBACK_GIVEN,
        (Status.RESOLVED, Action.RETURN_FEEDBACK): Status.IN_PROGRESS,
        (Status.FEEDBACK_GIVEN, Action.REVIEW): Status.REVIEWED,
        (Status.REVIEWED, Action.REVIEW): Status.REVIEWED,
        (Status.REVIEWED, Action.CLOSE): Status.CLOSED,
        (Status.REPORTED, Action.CANCEL): Status.CANCELLED,
        (Status.CLASSIFIED, Action.CANCEL): Status.CANCELLED,
        (Status.ASSIGNED, Action.CANCEL): Status.CANCELLED,
        (Status.RESOLVED, Action.REOPEN): Status.IN_PROGRESS,
        (Status.FEEDBACK_GIVEN, Action.REOPEN): Status.IN_PROGRESS,
        (Status.REVIEWED, Action.REOPEN): Status.IN_PROGRESS,
    }
)

_AFTER_RESOLUTION: Final = frozenset({Status.RESOLVED, Status.FEEDBACK_GIVEN, Status.REVIEWED})
_FEEDBACK_GIVEN: Final = frozenset({Status.FEEDBACK_GIVEN, Status.REVIEWED})
# The actions that leave the status as it is, and the statuses that allow them: the other half
# of what an event allows (the `allowed` list of a refusal and of the checklist).
IN_STATUS: Final[Mapping[Activity, frozenset[Status]]] = MappingProxyType(
    {
        # Progress reports, internal notes and customer contacts, whatever the status (R6).
        Activity.ADD_NOTE: frozenset(Status),
        Activity.UPDATE_STEP: frozenset({Status.IN_PROGRESS}),  # R3.3.2
        Activity.FEEDBACK_TO_INTAKE: frozenset({Status.RESOLVED}),  # R3.4.1
        Activity.DECIDE_FEEDBACK: frozenset({Status.RESOLVED}),  # R3.4.1, R4.1
        Activity.RECORD_SATISFACTION: _FEEDBACK_GIVEN,  # R6.2: after the reporter heard back
        Activity.CREATE_SURVEY_LINK: _FEEDBACK_GIVEN,
        # Improvement actions are planned, done and verified from resolution until closing.
        Activity.ADD_ACTION: _AFTER_RESOLUTION,  # R3.5.2
        Activity.COMPLETE_ACTION: _AFTER_RESOLUTION,
        Activity.VERIFY_ACTION: _AFTER_RESOLUTION,
    }
)

HAPPY_PATH: Final[tuple[Status, ...]] = (
    Status.REPORTED,
    Status.CLASSIFIED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.RESOLVED,
    Status.FEEDBACK_GIVEN,
    Status.REVIEWED,
    Status.CLOSED,
)


class TransitionNotAllowed(Exception):
    """The action is not allowed from the event's current status (R1.3.2)."""

    def __init__(
        self, current: Status, action: Action | Activity, allowed: tuple[Action | Activity, ...]
    ) -> None:
        self.current = current
        self.action = action
        self.allowed = allowed
        super().__init__(
            f"cannot {action.value} an event that is {current.value}; "
            f"allowed: {', '.join(allowed) or 'nothing'}"
        )


def actions_from(status: Status) -> tuple[Action, ...]:
    """The status-changing actions allowed from a status, in Action order (R1.3.2)."""
    return tuple(action for action in Action if (status, action) in TRANSITIONS)


def activities_in(status: Status) -> tuple[Activity, ...]:
    """The actions that keep the status and are allowed in it, in Activity order (R1.3.2)."""
    return tuple(activity for activity in Activity if status in IN_STATUS[activity])


def allowed_in(status: Status) -> tuple[Action | Activity, ...]:
    """Everything a status allows: its transitions, then what keeps the status (R1.3.2)."""
    return (*actions_from(status), *activities_in(status))


def next_status(current: Status, action: Action) -> Status:
    """The status an action leads to; raise TransitionNotAllowed otherwise (R1.3.2)."""
    try:
        return TRANSITIONS[(current, action)]
    except KeyError:
        raise TransitionNotAllowed(current, action, allowed_in(current)) from None


def require_activity(current: Status, activity: Activity) -> None:
    """Raise TransitionNotAllowed when the status does not allow the activity (R1.3.2)."""
    if current not in IN_STATUS[activity]:
        raise TransitionNotAllowed(current, activity, allowed_in(current))


# Going back to work (a returned feedback, a reopen) clears the stage times and due dates the
# loop reached after the work and the satisfaction facts kept on the event for the KPIs.
LOOP_FIELDS: Final = (
    "resolved_at",
    "feedback_at",
    "feedback_by",
    "review_by",
    "reviewed_at",
    "satisfaction_score",
    "satisfaction_unreachable",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopReset:
    """What going back to work resets (R3.4.1, R6.2): the status, the event fields `cleared`;
    the loop's feedback is superseded, its satisfaction dropped and its unused survey links
    expired (the old records stay on the timeline)."""

    status: Status
    cleared: tuple[str, ...] = LOOP_FIELDS


def back_to_work(current: Status, action: Action) -> LoopReset:
    """R3.4.1, R4.1: returned feedback or a reopen starts a new loop that proves itself afresh."""
    if action not in (Action.RETURN_FEEDBACK, Action.REOPEN):
        raise ValueError(f"{action.value} does not send an event back to work")
    return LoopReset(status=next_status(current, action))


# --------------------------------------------------------------------------------------------
# A pure snapshot of an event, built by the service layer from database rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFacts:
    """One plan step (R3.3.1)."""

    status: StepStatus
    has_owner: bool
    has_due: bool
    drop_reason: bool


def step_update_refusal(current: StepStatus, new: StepStatus, note: str | None) -> str | None:
    """R3.3.2: why a step may not go `current` -> `new` (only open steps; a drop needs a note)."""
    if current is not StepStatus.OPEN:
        return f"The step is already {current.value}"
    if new is StepStatus.DROPPED and not (note and note.strip()):
        return "Dropping a step needs a reason"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedbackFacts:
    """One feedback report (R3.4)."""

    audience: Audience
    decision: FeedbackOutcome | None
    complete: bool  # result, measures and prevention advice all written


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionFacts:
    """One improvement action (R3.5.2)."""

    status: ActionStatus
    verified_effective: bool | None
    verifier_is_completer: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewFacts:
    """The summary report (R3.5.1)."""

    causes: bool
    handling: bool
    result: bool
    lessons: bool
    root_cause_code: str | None
    meeting: bool  # held_at, attendees and conclusions all given


@dataclass(frozen=True, slots=True, kw_only=True)
class EventSnapshot:
    """What the gates read about an event, as it would be after the action (R3)."""

    status: Status
    urgent: bool
    has_title: bool = True
    has_description: bool = True
    has_channel: bool = True
    reporter_has_name: bool = True
    reporter_reachable: bool = True  # email, phone, external id or a directory user
    category: str | None = None
    subcategory: str | None = None
    severity: Severity | None = None
    impact_recorded: bool = False
    severity_overridden: bool = False
    override_reason: bool = False
    lead_department: str | None = None
    cooperating_departments: tuple[str, ...] = ()
    routing_overridden: bool = False
    routing_override_reason: bool = False
    assignee_set: bool = False
    assignee_in_lead: bool = True
    steps: tuple[StepFacts, ...] = ()
    plan_discussed_with: tuple[str, ...] = ()
    resolution_result: bool = False
    resolution_measures: bool = False
    feedback: tuple[FeedbackFacts, ...] = ()
    review: ReviewFacts | None = None
    actions: tuple[ActionFacts, ...] = ()
    satisfaction: SatisfactionOutcome | None = None
    satisfaction_attempts: int = 0


# --------------------------------------------------------------------------------------------
# Gates: each returns every code that is missing, never just the first
# --------------------------------------------------------------------------------------------

GATE_DESCRIPTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "title": "The event has a title.",
        "severity_override.urgent_floor": "An urgent event is graded important or above (R3.1.3).",
        "satisfaction.attempts": "Unreachable only after the policy's number of contact attempts.",
        "description": "The event has a description of what happened.",
        "channel": "The intake channel is recorded.",
        "reporter.name": "The reporter's name is recorded.",
        "reporter.contact": "The reporter can be reached for the feedback (email, phone or "
        "external id), or is recorded as unreachable.",
        "category": "A category is chosen.",
        "subcategory": "A subcategory from the policy's taxonomy is chosen.",
        "impact": "The impact facts are assessed.",
        "severity_override.reason": "A manual severity that differs from the rules has a reason.",
        "lead_department": "A lead department is named.",
        "routing_override.reason": "A lead that differs from the policy's mapping has a reason.",
        "complaint.lead_customer_service": "Customer service leads the complaint.",
        "coordination.departments": "At least two departments handle the coordination matter.",
        "assignee.lead_department": "The assignee belongs to the lead department.",
        "plan.steps": "The plan has at least one step.",
        "plan.step_owner": "Every plan step has an owner.",
        "plan.step_due": "Every plan step has a due time.",
        "plan.discussed_with": "The plan of a complex event records who it was discussed with.",
        "steps.open": "Every plan step is done or dropped.",
        "steps.drop_reason": "Every dropped step has a reason.",
        "resolution.result": "The result is written.",
        "resolution.measures": "The measures taken are written.",
        "feedback.intake_accepted": "The intake desk accepted complete feedback.",
        "feedback.reporter": "Complete feedback was given to the reporter.",
        "review.summary": "The summary covers causes, handling, result and lessons.",
        "review.root_cause": "A root-cause code from the policy is chosen.",
        "review.meeting": "A review meeting is recorded (time, attendees, conclusions).",
        "review.actions": "At least one improvement action is planned.",
        "actions.done": "Every improvement action is done.",
        "actions.verified": "Every improvement action is verified effective by someone else.",
        "satisfaction": "The reporter's satisfaction is recorded, or they proved unreachable.",
    }
)


def _departments(snapshot: EventSnapshot) -> set[str]:
    lead = () if snapshot.lead_department is None else (snapshot.lead_department,)
    return {*lead, *snapshot.cooperating_departments}


def is_complex(snapshot: EventSnapshot, policy: Policy) -> bool:
    """A complex event: a severity the policy names, or several departments (R3.3.1)."""
    gates = policy.gates
    return (snapshot.severity is not None and snapshot.severity in gates.complex_severities) or len(
        _departments(snapshot)
    ) >= gates.complex_min_departments


def _reported(s: EventSnapshot, _: Policy) -> dict[str, bool]:
    return {
        "title": s.has_title,
        "description": s.has_description,
        "channel": s.has_channel,
        "reporter.name": s.reporter_has_name,
    }


def _classified(s: EventSnapshot, policy: Policy) -> dict[str, bool]:
    known = s.category is not None and s.category in policy.taxonomy
    subcategories = policy.taxonomy[s.category] if known and s.category is not None else ()
    checks = {
        "category": known,
        "subcategory": s.subcategory is not None and s.subcategory in subcategories,
        "impact": s.impact_recorded,
    }
    if s.severity_overridden:
        checks["severity_override.reason"] = s.override_reason
    return checks


def _assigned(s: EventSnapshot, policy: Policy) -> dict[str, bool]:
    overridden_with_reason = s.routing_overridden and s.routing_override_reason
    checks = {"lead_department": s.lead_department is not None}
    if s.routing_overridden:
        checks["routing_override.reason"] = s.routing_override_reason
    if s.category == Category.CUSTOMER_COMPLAINT:
        checks["complaint.lead_customer_service"] = (
            s.lead_department is None
            or s.lead_department == policy.routing.customer_complaint.lead
            or overridden_with_reason
        )
    if s.category == Category.INTERNAL_COORDINATION:
        minimum = policy.routing.internal_coordination.min_departments
        checks["coordination.departments"] = len(_departments(s)) >= minimum
    if s.assignee_set:
        checks["assignee.lead_department"] = s.assignee_in_lead
    return checks


def _in_progress(s: EventSnapshot, policy: Policy) -> dict[str, bool]:
    checks = {
        "plan.steps": bool(s.steps),
        "plan.step_owner": all(step.has_owner for step in s.steps),
        "plan.step_due": all(step.has_due for step in s.steps),
    }
    if is_complex(s, policy):
        checks["plan.discussed_with"] = bool(s.plan_discussed_with)
    return checks


def _resolved(s: EventSnapshot, _: Policy) -> dict[str, bool]:
    checks = {"steps.open": all(step.status != StepStatus.OPEN for step in s.steps)}
    if any(step.status == StepStatus.DROPPED for step in s.steps):
        checks["steps.drop_reason"] = all(
            step.drop_reason for step in s.steps if step.status == StepStatus.DROPPED
        )
    checks["resolution.result"] = s.resolution_result
    checks["resolution.measures"] = s.resolution_measures
    return checks


def _feedback_given(s: EventSnapshot, _: Policy) -> dict[str, bool]:
    return {
        "feedback.intake_accepted": any(
            f.audience == Audience.INTAKE and f.decision == FeedbackOutcome.ACCEPTED and f.complete
            for f in s.feedback
        ),
        "feedback.reporter": any(
            f.audience == Audience.REPORTER and f.complete for f in s.feedback
        ),
        # Intake is never refused for a missing contact (R3.1.2, R3.1.3): the feedback to the
        # reporter needs one instead, or the reporter recorded as unreachable (R3.4.1, R6.2).
        "reporter.contact": s.reporter_reachable
        or s.satisfaction == SatisfactionOutcome.UNREACHABLE,
    }


def _reviewed(s: EventSnapshot, policy: Policy) -> dict[str, bool]:
    review = s.review
    checks = {
        "review.summary": review is not None
        and review.causes
        and review.handling
        and review.result
        and review.lessons,
        "review.root_cause": review is not None
        and review.root_cause_code is not None
        and review.root_cause_code in policy.root_cause_codes,
    }
    if s.severity is not None and s.severity in policy.gates.meeting_severities:
        checks["review.meeting"] = review is not None and review.meeting
    if s.severity is not None and s.severity in policy.gates.actions_severities:
        checks["review.actions"] = bool(s.actions)
    return checks


def _closed(s: EventSnapshot, policy: Policy) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    actions_needed = s.severity is not None and s.severity in policy.gates.actions_severities
    if s.actions or actions_needed:
        checks["actions.done"] = all(a.status == ActionStatus.DONE for a in s.actions)
        checks["actions.verified"] = all(
            a.verified_effective is True and not a.verifier_is_completer
            for a in s.actions
            if a.status == ActionStatus.DONE
        )
    checks["satisfaction"] = s.satisfaction == SatisfactionOutcome.RECORDED or (
        s.satisfaction == SatisfactionOutcome.UNREACHABLE
        and unreachable_proven(s.satisfaction_attempts, policy)
    )
    return checks


def unreachable_proven(attempts: int, policy: Policy) -> bool:
    """R6.2: a reporter counts as unreachable only after the policy's number of attempts."""
    return attempts >= policy.gates.satisfaction_attempts


_GATES: Final[Mapping[Status, Callable[[EventSnapshot, Policy], dict[str, bool]]]] = (
    MappingProxyType(
        {
            Status.REPORTED: _reported,
            Status.CLASSIFIED: _classified,
            Status.ASSIGNED: _assigned,
            Status.IN_PROGRESS: _in_progress,
            Status.RESOLVED: _resolved,
            Status.FEEDBACK_GIVEN: _feedback_given,
            Status.REVIEWED: _reviewed,
            Status.CLOSED: _closed,
        }
    )
)


def gate(target: Status, snapshot: EventSnapshot, policy: Policy) -> list[str]:
    """Every gate code missing for entering `target`; empty when the gate holds (R3)."""
    checks = _GATES.get(target)
    if checks is None:  # cancelling needs only a reason, which the request carries
        return []
    return [code for code, holds in checks(snapshot, policy).items() if not holds]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecklistItem:
    """One gate of the event's path and whether it holds (R3, R7.1)."""

    code: str
    stage: Status
    done: bool
    detail: str


def _detail(code: str, done: bool, s: EventSnapshot, policy: Policy) -> str:
    if done:
        return GATE_DESCRIPTIONS[code]
    if code == "steps.open":
        still_open = sum(1 for step in s.steps if step.status == StepStatus.OPEN)
        return f"{still_open} of {len(s.steps)} steps still open."
    if code == "plan.step_owner":
        return f"{sum(1 for step in s.steps if not step.has_owner)} step(s) without an owner."
    if code == "plan.step_due":
        return f"{sum(1 for step in s.steps if not step.has_due)} step(s) without a due time."
    if code == "actions.done":
        return f"{sum(1 for a in s.actions if a.status != ActionStatus.DONE)} action(s) not done."
    if code == "coordination.departments":
        needed = policy.routing.internal_coordination.min_departments
        return f"{len(_departments(s))} of at least {needed} departments named."
    if code == "satisfaction" and s.satisfaction == SatisfactionOutcome.UNREACHABLE:
        needed = policy.gates.satisfaction_attempts
        return f"Unreachable after {s.satisfaction_attempts} of {needed} contact attempts."
    return GATE_DESCRIPTIONS[code]


def checklist(snapshot: EventSnapshot, policy: Policy) -> list[ChecklistItem]:
    """Every gate that applies to this event along its whole path, done or missing (R3)."""
    items: list[ChecklistItem] = []
    for stage in HAPPY_PATH:
        for code, holds in _GATES[stage](snapshot, policy).items():
            items.append(
                ChecklistItem(
                    code=code,
                    stage=stage,
                    done=holds,
                    detail=_detail(code, holds, snapshot, policy),
                )
            )
    return items
