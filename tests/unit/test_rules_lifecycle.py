"""The lifecycle state machine, its content gates and the checklist (R3, product.md section 2)."""

from dataclasses import replace
from typing import Any, Final

import pytest

from app.rules import (
    GATE_DESCRIPTIONS,
    TRANSITIONS,
    Action,
    ActionFacts,
    Category,
    EventSnapshot,
    FeedbackFacts,
    ReviewFacts,
    Severity,
    Status,
    StepFacts,
    TransitionNotAllowed,
    actions_from,
    checklist,
    default_policy,
    gate,
    is_complex,
    next_status,
)
from app.rules.lifecycle import (
    IN_STATUS,
    allowed_in,
    back_to_work,
    require_activity,
    unreachable_proven,
)
from app.rules.vocabulary import (
    ActionStatus,
    Activity,
    Audience,
    FeedbackOutcome,
    SatisfactionOutcome,
    StepStatus,
)

POLICY: Final = default_policy()

DONE_STEP: Final = StepFacts(
    status=StepStatus.DONE, has_owner=True, has_due=True, drop_reason=False
)
OPEN_STEP: Final = replace(DONE_STEP, status=StepStatus.OPEN)
DROPPED_STEP: Final = replace(DONE_STEP, status=StepStatus.DROPPED, drop_reason=True)
INTAKE_ACCEPTED: Final = FeedbackFacts(
    audience=Audience.INTAKE, decision=FeedbackOutcome.ACCEPTED, complete=True
)
TO_REPORTER: Final = FeedbackFacts(audience=Audience.REPORTER, decision=None, complete=True)
FULL_REVIEW: Final = ReviewFacts(
    causes=True,
    handling=True,
    result=True,
    lessons=True,
    root_cause_code="process_gap",
    meeting=True,
)
VERIFIED_ACTION: Final = ActionFacts(
    status=ActionStatus.DONE, verified_effective=True, verifier_is_completer=False
)

# An important business problem for which every gate on the path holds.
COMPLETE: Final = EventSnapshot(
    status=Status.REVIEWED,
    urgent=False,
    category=Category.BUSINESS_ISSUE,
    subcategory="system_failure",
    severity=Severity.IMPORTANT,
    impact_recorded=True,
    lead_department="IT",
    assignee_set=True,
    steps=(DONE_STEP, DROPPED_STEP),
    resolution_result=True,
    resolution_measures=True,
    feedback=(INTAKE_ACCEPTED, TO_REPORTER),
    review=FULL_REVIEW,
    actions=(VERIFIED_ACTION,),
    satisfaction=SatisfactionOutcome.RECORDED,
)

# ------------------------------------------------------------------------------------------
# transitions
# ------------------------------------------------------------------------------------------

EXPECTED_TRANSITIONS: Final = [
    (Status.REPORTED, Action.CLASSIFY, Status.CLASSIFIED),
    (Status.CLASSIFIED, Action.CLASSIFY, Status.CLASSIFIED),
    (Status.ASSIGNED, Action.CLASSIFY, Status.ASSIGNED),
    (Status.CLASSIFIED, Action.ASSIGN, Status.ASSIGNED),
    (Status.ASSIGNED, Action.ASSIGN, Status.ASSIGNED),
    (Status.ASSIGNED, Action.PLAN, Status.IN_PROGRESS),
    (Status.IN_PROGRESS, Action.PLAN, Status.IN_PROGRESS),
    (Status.IN_PROGRESS, Action.RESOLVE, Status.RESOLVED),
    (Status.RESOLVED, Action.GIVE_FEEDBACK, Status.FEEDBACK_GIVEN),
    (Status.RESOLVED, Action.RETURN_FEEDBACK, Status.IN_PROGRESS),
    (Status.FEEDBACK_GIVEN, Action.REVIEW, Status.REVIEWED),
    (Status.REVIEWED, Action.REVIEW, Status.REVIEWED),
    (Status.REVIEWED, Action.CLOSE, Status.CLOSED),
    (Status.REPORTED, Action.CANCEL, Status.CANCELLED),
    (Status.CLASSIFIED, Action.CANCEL, Status.CANCELLED),
    (Status.ASSIGNED, Action.CANCEL, Status.CANCELLED),
    (Status.RESOLVED, Action.REOPEN, Status.IN_PROGRESS),
    (Status.FEEDBACK_GIVEN, Action.REOPEN, Status.IN_PROGRESS),
    (Status.REVIEWED, Action.REOPEN, Status.IN_PROGRESS),
]


@pytest.mark.parametrize(("current", "action", "target"), EXPECTED_TRANSITIONS)
def test_allowed_transition(current: Status, action: Action, target: Status) -> None:
    assert next_status(current, action) == target


def test_transition_table_has_nothing_else() -> None:
    assert dict(TRANSITIONS) == {(c, a): t for c, a, t in EXPECTED_TRANSITIONS}


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (Status.REPORTED, Action.ASSIGN),
        (Status.REPORTED, Action.CLOSE),
        (Status.CLASSIFIED, Action.PLAN),
        (Status.IN_PROGRESS, Action.CLASSIFY),
        (Status.IN_PROGRESS, Action.CANCEL),
        (Status.RESOLVED, Action.CLOSE),
        (Status.FEEDBACK_GIVEN, Action.RETURN_FEEDBACK),
        (Status.FEEDBACK_GIVEN, Action.CLOSE),
        (Status.CLOSED, Action.REOPEN),
        (Status.CANCELLED, Action.CLASSIFY),
    ],
)
def test_forbidden_transition_names_what_is_allowed(current: Status, action: Action) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        next_status(current, action)
    assert (caught.value.current, caught.value.action) == (current, action)
    assert caught.value.allowed == allowed_in(current)
    assert caught.value.allowed[: len(actions_from(current))] == actions_from(current)


@pytest.mark.parametrize(
    ("status", "actions"),
    [
        (Status.REPORTED, (Action.CLASSIFY, Action.CANCEL)),
        (Status.ASSIGNED, (Action.CLASSIFY, Action.ASSIGN, Action.PLAN, Action.CANCEL)),
        (Status.RESOLVED, (Action.GIVE_FEEDBACK, Action.REOPEN, Action.RETURN_FEEDBACK)),
        (Status.REVIEWED, (Action.REVIEW, Action.CLOSE, Action.REOPEN)),
        (Status.CLOSED, ()),
        (Status.CANCELLED, ()),
    ],
)
def test_actions_from(status: Status, actions: tuple[Action, ...]) -> None:
    assert actions_from(status) == actions


def test_closed_event_is_never_reopened() -> None:
    with pytest.raises(TransitionNotAllowed, match=r"allowed: add_note$"):
        next_status(Status.CLOSED, Action.REOPEN)


# ------------------------------------------------------------------------------------------
# what a status allows without changing (issue 11 item 4)
# ------------------------------------------------------------------------------------------

AFTER_RESOLUTION: Final = {Status.RESOLVED, Status.FEEDBACK_GIVEN, Status.REVIEWED}
EXPECTED_IN_STATUS: Final = {
    Activity.ADD_NOTE: set(Status),
    Activity.UPDATE_STEP: {Status.IN_PROGRESS},
    Activity.FEEDBACK_TO_INTAKE: {Status.RESOLVED},
    Activity.DECIDE_FEEDBACK: {Status.RESOLVED},
    Activity.RECORD_SATISFACTION: {Status.FEEDBACK_GIVEN, Status.REVIEWED},
    Activity.CREATE_SURVEY_LINK: {Status.FEEDBACK_GIVEN, Status.REVIEWED},
    Activity.ADD_ACTION: AFTER_RESOLUTION,
    Activity.COMPLETE_ACTION: AFTER_RESOLUTION,
    Activity.VERIFY_ACTION: AFTER_RESOLUTION,
}


def test_in_status_table_has_every_activity_and_nothing_else() -> None:
    assert {a: set(s) for a, s in IN_STATUS.items()} == EXPECTED_IN_STATUS


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.REPORTED, ("classify", "cancel", "add_note")),
        (Status.IN_PROGRESS, ("plan", "resolve", "add_note", "update_step")),
        (
            Status.REVIEWED,
            (
                "review",
                "close",
                "reopen",
                "add_note",
                "record_satisfaction",
                "create_survey_link",
                "add_action",
                "complete_action",
                "verify_action",
            ),
        ),
        (Status.CLOSED, ("add_note",)),
        (Status.CANCELLED, ("add_note",)),
    ],
)
def test_allowed_in_lists_transitions_then_what_keeps_the_status(
    status: Status, allowed: tuple[str, ...]
) -> None:
    assert allowed_in(status) == allowed


@pytest.mark.parametrize(
    ("status", "activity"),
    [
        (Status.RESOLVED, Activity.UPDATE_STEP),
        (Status.IN_PROGRESS, Activity.ADD_ACTION),
        (Status.REVIEWED, Activity.DECIDE_FEEDBACK),
        (Status.RESOLVED, Activity.RECORD_SATISFACTION),
        (Status.CLOSED, Activity.VERIFY_ACTION),
    ],
)
def test_an_activity_outside_its_statuses_names_what_is_allowed(
    status: Status, activity: Activity
) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        require_activity(status, activity)
    assert (caught.value.current, caught.value.action) == (status, activity)
    assert caught.value.allowed == allowed_in(status)
    require_activity(next(iter(EXPECTED_IN_STATUS[activity])), activity)


@pytest.mark.parametrize("action", [Action.RETURN_FEEDBACK, Action.REOPEN])
def test_back_to_work_starts_a_new_loop(action: Action) -> None:
    reset = back_to_work(Status.RESOLVED, action)
    assert reset.status is Status.IN_PROGRESS
    assert set(reset.cleared) == {
        "resolved_at",
        "feedback_at",
        "feedback_by",
        "review_by",
        "reviewed_at",
        "satisfaction_score",
        "satisfaction_unreachable",
    }


def test_back_to_work_only_by_return_or_reopen_and_never_from_closed() -> None:
    with pytest.raises(ValueError, match="close"):
        back_to_work(Status.REVIEWED, Action.CLOSE)
    with pytest.raises(TransitionNotAllowed):
        back_to_work(Status.CLOSED, Action.REOPEN)
    with pytest.raises(TransitionNotAllowed):
        back_to_work(Status.FEEDBACK_GIVEN, Action.RETURN_FEEDBACK)


@pytest.mark.parametrize(("attempts", "proven"), [(0, False), (2, False), (3, True), (5, True)])
def test_unreachable_needs_the_policy_s_attempts(attempts: int, proven: bool) -> None:
    """One check, used by recording satisfaction and by the close gate (R6.2)."""
    assert POLICY.gates.satisfaction_attempts == 3
    assert unreachable_proven(attempts, POLICY) is proven
    snapshot = replace(
        COMPLETE,
        satisfaction=SatisfactionOutcome.UNREACHABLE,
        satisfaction_attempts=attempts,
    )
    assert ("satisfaction" in gate(Status.CLOSED, snapshot, POLICY)) is not proven


# ------------------------------------------------------------------------------------------
# gates
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [*Status])
def test_complete_event_passes_every_gate(target: Status) -> None:
    assert gate(target, COMPLETE, POLICY) == []


GATE_CASES: Final[list[tuple[str, Status, dict[str, Any], list[str]]]] = [
    # (new) -> reported
    ("no title", Status.REPORTED, {"has_title": False}, ["title"]),
    (
        "nothing recorded",
        Status.REPORTED,
        {
            "has_title": False,
            "has_description": False,
            "has_channel": False,
            "reporter_has_name": False,
            "reporter_reachable": False,
        },
        ["title", "description", "channel", "reporter.name"],
    ),
    # R3.1.2: intake is never refused for a missing contact; the feedback to the reporter is
    ("no contact at intake", Status.REPORTED, {"reporter_reachable": False}, []),
    (
        "no contact for the feedback",
        Status.FEEDBACK_GIVEN,
        {"reporter_reachable": False, "satisfaction": None},
        ["reporter.contact"],
    ),
    (
        "no contact, recorded unreachable",
        Status.FEEDBACK_GIVEN,
        {"reporter_reachable": False, "satisfaction": "unreachable"},
        [],
    ),
    # reported -> classified
    ("no category", Status.CLASSIFIED, {"category": None}, ["category", "subcategory"]),
    ("unknown category", Status.CLASSIFIED, {"category": "gossip"}, ["category", "subcategory"]),
    ("no subcategory", Status.CLASSIFIED, {"subcategory": None}, ["subcategory"]),
    (
        "subcategory of another category",
        Status.CLASSIFIED,
        {"category": Category.CUSTOMER_COMPLAINT},
        ["subcategory"],
    ),
    ("no impact", Status.CLASSIFIED, {"impact_recorded": False}, ["impact"]),
    (
        "override without reason",
        Status.CLASSIFIED,
        {"severity_overridden": True},
        ["severity_override.reason"],
    ),
    (
        "override with reason",
        Status.CLASSIFIED,
        {"severity_overridden": True, "override_reason": True},
        [],
    ),
    # classified -> assigned
    (
        "no lead",
        Status.ASSIGNED,
        {"lead_department": None, "assignee_set": False},
        ["lead_department"],
    ),
    (
        "routing override without reason",
        Status.ASSIGNED,
        {"routing_overridden": True},
        ["routing_override.reason"],
    ),
    (
        "complaint led by sales",
        Status.ASSIGNED,
        {"category": Category.CUSTOMER_COMPLAINT, "lead_department": "SALES"},
        ["complaint.lead_customer_service"],
    ),
    (
        "complaint led by sales with a reason",
        Status.ASSIGNED,
        {
            "category": Category.CUSTOMER_COMPLAINT,
            "lead_department": "SALES",
            "routing_overridden": True,
            "routing_override_reason": True,
        },
        [],
    ),
    (
        "complaint led by sales, overridden without reason",
        Status.ASSIGNED,
        {
            "category": Category.CUSTOMER_COMPLAINT,
            "lead_department": "SALES",
            "routing_overridden": True,
        },
        ["routing_override.reason", "complaint.lead_customer_service"],
    ),
    (
        "complaint led by customer service",
        Status.ASSIGNED,
        {"category": Category.CUSTOMER_COMPLAINT, "lead_department": "CS"},
        [],
    ),
    (
        "coordination by one department",
        Status.ASSIGNED,
        {"category": Category.INTERNAL_COORDINATION, "cooperating_departments": ("IT",)},
        ["coordination.departments"],
    ),
    (
        "coordination by two departments",
        Status.ASSIGNED,
        {"category": Category.INTERNAL_COORDINATION, "cooperating_departments": ("HR",)},
        [],
    ),
    (
        "assignee outside the lead",
        Status.ASSIGNED,
        {"assignee_in_lead": False},
        ["assignee.lead_department"],
    ),
    ("no assignee yet", Status.ASSIGNED, {"assignee_set": False, "assignee_in_lead": False}, []),
    # assigned -> in_progress
    ("no steps", Status.IN_PROGRESS, {"steps": ()}, ["plan.steps"]),
    (
        "step without owner or due time",
        Status.IN_PROGRESS,
        {"steps": (replace(OPEN_STEP, has_owner=False, has_due=False),)},
        ["plan.step_owner", "plan.step_due"],
    ),
    (
        "major plan not discussed",
        Status.IN_PROGRESS,
        {"severity": Severity.MAJOR},
        ["plan.discussed_with"],
    ),
    (
        "major plan discussed",
        Status.IN_PROGRESS,
        {"severity": Severity.MAJOR, "plan_discussed_with": ("Head of OPS",)},
        [],
    ),
    (
        "two-department plan not discussed",
        Status.IN_PROGRESS,
        {"cooperating_departments": ("OPS",)},
        ["plan.discussed_with"],
    ),
    # in_progress -> resolved
    ("a step still open", Status.RESOLVED, {"steps": (DONE_STEP, OPEN_STEP)}, ["steps.open"]),
    (
        "dropped step without reason",
        Status.RESOLVED,
        {"steps": (replace(DROPPED_STEP, drop_reason=False),)},
        ["steps.drop_reason"],
    ),
    (
        "no result nor measures",
        Status.RESOLVED,
        {"resolution_result": False, "resolution_measures": False},
        ["resolution.result", "resolution.measures"],
    ),
    # resolved -> feedback_given
    (
        "intake returned the feedback",
        Status.FEEDBACK_GIVEN,
        {"feedback": (replace(INTAKE_ACCEPTED, decision=FeedbackOutcome.RETURNED), TO_REPORTER)},
        ["feedback.intake_accepted"],
    ),
    (
        "intake has not decided",
        Status.FEEDBACK_GIVEN,
        {"feedback": (replace(INTAKE_ACCEPTED, decision=None), TO_REPORTER)},
        ["feedback.intake_accepted"],
    ),
    (
        "accepted feedback without prevention advice",
        Status.FEEDBACK_GIVEN,
        {"feedback": (replace(INTAKE_ACCEPTED, complete=False), TO_REPORTER)},
        ["feedback.intake_accepted"],
    ),
    (
        "reporter not told",
        Status.FEEDBACK_GIVEN,
        {"feedback": (INTAKE_ACCEPTED,)},
        ["feedback.reporter"],
    ),
    (
        "no feedback at all",
        Status.FEEDBACK_GIVEN,
        {"feedback": ()},
        ["feedback.intake_accepted", "feedback.reporter"],
    ),
    # feedback_given -> reviewed
    (
        "no review of a major event",
        Status.REVIEWED,
        {"review": None, "severity": Severity.MAJOR},
        ["review.summary", "review.root_cause", "review.meeting"],
    ),
    (
        "no lessons",
        Status.REVIEWED,
        {"review": replace(FULL_REVIEW, lessons=False)},
        ["review.summary"],
    ),
    (
        "root cause not in the policy",
        Status.REVIEWED,
        {"review": replace(FULL_REVIEW, root_cause_code="bad_luck")},
        ["review.root_cause"],
    ),
    (
        "major without meeting",
        Status.REVIEWED,
        {"review": replace(FULL_REVIEW, meeting=False), "severity": Severity.MAJOR},
        ["review.meeting"],
    ),
    (
        "important without meeting",
        Status.REVIEWED,
        {"review": replace(FULL_REVIEW, meeting=False)},
        [],
    ),
    ("important without actions", Status.REVIEWED, {"actions": ()}, ["review.actions"]),
    (
        "general without actions",
        Status.REVIEWED,
        {"actions": (), "severity": Severity.GENERAL},
        [],
    ),
    # reviewed -> closed
    (
        "action still open",
        Status.CLOSED,
        {"actions": (replace(VERIFIED_ACTION, status=ActionStatus.OPEN, verified_effective=None),)},
        ["actions.done"],
    ),
    (
        "action not verified",
        Status.CLOSED,
        {"actions": (replace(VERIFIED_ACTION, verified_effective=None),)},
        ["actions.verified"],
    ),
    (
        "action found not effective",
        Status.CLOSED,
        {"actions": (replace(VERIFIED_ACTION, verified_effective=False),)},
        ["actions.verified"],
    ),
    (
        "action verified by whoever did it",
        Status.CLOSED,
        {"actions": (replace(VERIFIED_ACTION, verifier_is_completer=True),)},
        ["actions.verified"],
    ),
    ("satisfaction not recorded", Status.CLOSED, {"satisfaction": None}, ["satisfaction"]),
    (
        "unreachable after too few attempts",
        Status.CLOSED,
        {"satisfaction": SatisfactionOutcome.UNREACHABLE, "satisfaction_attempts": 2},
        ["satisfaction"],
    ),
    (
        "unreachable after the policy's attempts",
        Status.CLOSED,
        {"satisfaction": SatisfactionOutcome.UNREACHABLE, "satisfaction_attempts": 3},
        [],
    ),
    (
        "important event without actions",
        Status.CLOSED,
        {"actions": ()},
        [],
    ),
    # cancelling needs only the reason the request carries
    ("cancel anything", Status.CANCELLED, {"has_title": False}, []),
]


@pytest.mark.parametrize(
    ("target", "changes", "missing"),
    [case[1:] for case in GATE_CASES],
    ids=[case[0] for case in GATE_CASES],
)
def test_gate_lists_every_missing_code(
    target: Status, changes: dict[str, Any], missing: list[str]
) -> None:
    assert gate(target, replace(COMPLETE, **changes), POLICY) == missing


def test_every_gate_code_has_a_description() -> None:
    codes = {code for case in GATE_CASES for code in case[3]}
    codes |= {
        item.code for item in checklist(EventSnapshot(status=Status.REPORTED, urgent=True), POLICY)
    }
    assert codes <= set(GATE_DESCRIPTIONS)


# ------------------------------------------------------------------------------------------
# complexity and checklist
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "complex_"),
    [
        ({}, False),
        ({"severity": Severity.MAJOR}, True),
        ({"cooperating_departments": ("OPS",)}, True),
        ({"cooperating_departments": ("IT",)}, False),
        ({"lead_department": None, "cooperating_departments": ("OPS", "SALES")}, True),
        ({"severity": None}, False),
    ],
)
def test_is_complex(changes: dict[str, Any], complex_: bool) -> None:
    assert is_complex(replace(COMPLETE, **changes), POLICY) is complex_


def test_checklist_of_a_complete_event_is_all_done_in_path_order() -> None:
    items = checklist(COMPLETE, POLICY)
    assert all(item.done for item in items)
    assert [item.code for item in items] == [
        "title",
        "description",
        "channel",
        "reporter.name",
        "category",
        "subcategory",
        "impact",
        "lead_department",
        "assignee.lead_department",
        "plan.steps",
        "plan.step_owner",
        "plan.step_due",
        "steps.open",
        "steps.drop_reason",
        "resolution.result",
        "resolution.measures",
        "feedback.intake_accepted",
        "feedback.reporter",
        "reporter.contact",
        "review.summary",
        "review.root_cause",
        "review.actions",
        "actions.done",
        "actions.verified",
        "satisfaction",
    ]
    stages = [item.stage for item in items]
    assert stages == sorted(stages, key=list(Status).index)


def test_checklist_of_a_new_event_shows_what_comes_next() -> None:
    items = checklist(EventSnapshot(status=Status.REPORTED, urgent=False), POLICY)
    done = {item.code for item in items if item.done}
    assert done >= {"title", "description", "channel", "reporter.name"}
    assert {"category", "impact", "lead_department", "plan.steps", "satisfaction"}.isdisjoint(done)


@pytest.mark.parametrize(
    ("changes", "present", "absent"),
    [
        (
            {"severity": Severity.MAJOR},
            {"review.meeting", "plan.discussed_with", "review.actions"},
            set(),
        ),
        (
            {"severity": Severity.GENERAL, "actions": (), "steps": (DONE_STEP,)},
            set(),
            {
                "review.meeting",
                "plan.discussed_with",
                "review.actions",
                "actions.done",
                "actions.verified",
                "steps.drop_reason",
            },
        ),
        (
            {"category": Category.INTERNAL_COORDINATION},
            {"coordination.departments"},
            {"complaint.lead_customer_service"},
        ),
        (
            {"category": Category.CUSTOMER_COMPLAINT},
            {"complaint.lead_customer_service"},
            {"coordination.departments"},
        ),
        (
            {"severity_overridden": True, "routing_overridden": True},
            {"severity_override.reason", "routing_override.reason"},
            set(),
        ),
        ({}, set(), {"severity_override.reason", "routing_override.reason"}),
    ],
)
def test_checklist_shows_only_gates_that_apply(
    changes: dict[str, Any], present: set[str], absent: set[str]
) -> None:
    codes = {item.code for item in checklist(replace(COMPLETE, **changes), POLICY)}
    assert present <= codes
    assert absent.isdisjoint(codes)


@pytest.mark.parametrize(
    ("changes", "code", "detail"),
    [
        ({"steps": (DONE_STEP, OPEN_STEP)}, "steps.open", "1 of 2 steps still open."),
        (
            {"satisfaction": SatisfactionOutcome.UNREACHABLE, "satisfaction_attempts": 1},
            "satisfaction",
            "Unreachable after 1 of 3 contact attempts.",
        ),
        ({"has_title": False}, "title", GATE_DESCRIPTIONS["title"]),
    ],
)
def test_checklist_detail_says_what_is_missing(
    changes: dict[str, Any], code: str, detail: str
) -> None:
    items = {item.code: item for item in checklist(replace(COMPLETE, **changes), POLICY)}
    assert not items[code].done
    assert items[code].detail == detail
