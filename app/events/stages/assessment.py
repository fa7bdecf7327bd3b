"""Assessment: classification and assignment (R3.2.1-R3.2.3)."""

import dataclasses
from typing import Any

from app.core.errors import GateNotMet, Unprocessable
from app.events import similar
from app.events.schemas import AssignmentIn, ClassificationIn, EventDetail
from app.events.similar_schemas import EventClassified
from app.events.stages.common import Stage
from app.policy.service import check_taxonomy
from app.rules import deadlines, grading, lifecycle, routing
from app.rules.assessment import cooperating_for, override_problems, status_after_reclassify
from app.rules.grading import Grading
from app.rules.lifecycle import EventSnapshot
from app.rules.permissions import EventAction
from app.rules.vocabulary import Action, Category, Severity, Status


def _graded(stage: Stage, data: ClassificationIn) -> tuple[Grading, Severity, bool]:
    """R3.2.2: the rules' grade, the severity that stands and whether a manual grade overrode
    it; a manual grade needs a reason and keeps urgent events at the policy's floor."""
    urgent = stage.event.urgent
    graded = grading.grade(
        data.impact.facts(), category=data.category, urgent=urgent, policy=stage.policy
    )
    override = data.severity_override
    problems = override_problems(
        graded.severity,
        override.severity if override else None,
        urgent=urgent,
        reason=override.reason if override else None,
        policy=stage.policy,
    )
    if problems:
        raise GateNotMet(
            problems, "A manual grade needs a reason and keeps urgent events at important or above"
        )
    if override is not None and override.severity != graded.severity:
        return graded, override.severity, True
    return graded, graded.severity, False


def _status_after(
    stage: Stage, data: ClassificationIn, target: Status, snapshot: EventSnapshot
) -> Status:
    """R3.2.3: an assigned event stays assigned while its assignment still holds under the
    new classification (would the policy still route it to the current lead?)."""
    event = stage.event
    if target is Status.ASSIGNED and event.lead_department is not None:
        proposed = routing.route(
            category=data.category,
            subcategory=data.subcategory,
            involved=event.involved_departments,
            policy=stage.policy,
        )
        kept_override = bool((event.routing or {}).get("overridden"))
        snapshot = dataclasses.replace(
            snapshot, routing_overridden=kept_override or event.lead_department != proposed.lead
        )
    return status_after_reclassify(target, lifecycle.gate(Status.ASSIGNED, snapshot, stage.policy))


def _apply_classification(
    stage: Stage,
    data: ClassificationIn,
    graded: Grading,
    *,
    severity: Severity,
    overridden: bool,
    target: Status,
) -> dict[str, Any]:
    """Write the classification onto the event; returns what it was before."""
    event, override, now = stage.event, data.severity_override, stage.now
    before: dict[str, Any] = {
        "category": event.category,
        "subcategory": event.subcategory,
        "severity": event.severity,
        "grading": event.grading,
    }
    event.category, event.subcategory, event.severity = data.category, data.subcategory, severity
    event.impact = data.impact.model_dump(mode="json")
    event.grading = {
        "rule_ids": list(graded.rule_ids),
        "policy_version": stage.policy.version,
        "rules_severity": graded.severity.value,
        "overridden": overridden,
        "reason": override.reason if overridden and override else None,
    }
    if data.recurrence_of is not None:
        event.recurrence_of = data.recurrence_of
    event.classified_at = event.classified_at or now
    if target is Status.CLASSIFIED and event.assigned_at is not None:
        # The assignment no longer fits the new category: it must be made again.
        before["lead_department"] = event.lead_department
        event.lead_department, event.cooperating_departments = None, []
        event.assignee_id = event.routing = event.assigned_at = event.resolve_by = None
    elif event.assigned_at is not None:
        # Re-graded after assignment: the resolve clock follows the new severity.
        event.resolve_by = deadlines.resolve_by(
            event.reported_at, severity=severity, policy=stage.policy
        )
    event.status = target
    return before


async def _recurrence_match(stage: Stage) -> dict[str, Any]:
    """Look for the original this event recurs (R1.1, R5.4; rules.recurrence) and store it on
    the event; what it was before."""
    event = stage.event
    before = {"id": event.recurrence_match_id, "score": event.recurrence_match_score}
    found = await similar.match_recurrence(stage.session, event, policy=stage.policy)
    event.recurrence_match_id, event.recurrence_match_score = found or (None, None)
    return before


async def classify_event(stage: Stage, data: ClassificationIn) -> EventClassified:
    """Classify and grade the event (R3.2.1-2): intake agents and supervisors; re-classifying
    is allowed until the plan starts; every grade change is on the timeline. The answer
    suggests earlier events of the category like this one (`suggestions`, to link as
    `recurrence_of`) and shows the recurrence it matched (`recurrence_match_id`, R5.4)."""
    # Category and impact, severity graded by the policy; an override needs a reason.
    stage.require(EventAction.CLASSIFY)
    target = stage.next_status(Action.CLASSIFY)
    check_taxonomy(stage.policy, data.category, data.subcategory)
    event = stage.event
    if data.recurrence_of is not None:
        if data.recurrence_of == event.id:
            raise Unprocessable("An event cannot be a recurrence of itself")
        await stage.check_linked_event(data.recurrence_of, "recurrence_of")
    graded, severity, overridden = _graded(stage, data)
    snapshot = await stage.snapshot(
        status=target,
        category=data.category,
        subcategory=data.subcategory,
        severity=severity,
        impact_recorded=True,
        severity_overridden=overridden,
        override_reason=bool(data.severity_override and data.severity_override.reason),
    )
    stage.check_gate(Status.CLASSIFIED, snapshot)
    target = _status_after(stage, data, target, snapshot)
    before = _apply_classification(
        stage, data, graded, severity=severity, overridden=overridden, target=target
    )
    before["recurrence_match"] = await _recurrence_match(stage)
    override = data.severity_override
    await stage.record(
        "classify",
        before=before,
        after={
            "category": event.category,
            "subcategory": event.subcategory,
            "severity": severity,
            "grading": event.grading,
            "impact": event.impact,
            "recurrence_match": {
                "id": event.recurrence_match_id,
                "score": event.recurrence_match_score,
            },
        },
        note=override.reason if overridden and override else None,
        outbox_type="event.classified",
        outbox_data={
            "severity": severity,
            "category": data.category,
            "subcategory": data.subcategory,
        },
    )
    suggestions = await similar.classification_suggestions(
        stage.session, event, actor=stage.actor, policy=stage.policy
    )
    detail = await stage.detail()
    return EventClassified(**dict(detail), suggestions=suggestions.items)


async def _assignee_department(stage: Stage, data: AssignmentIn) -> str | None:
    """The assignee's department; 422 unless the assignee is an active user."""
    if data.assignee_id is None:
        return None
    active, department = await stage.user_department(data.assignee_id)
    if not active:
        raise Unprocessable(
            f"No active user {data.assignee_id}",
            errors=[{"field": "assignee_id", "message": "unknown or inactive user"}],
        )
    return department


async def assign_event(stage: Stage, data: AssignmentIn) -> EventDetail:
    """Name the lead and cooperating departments and the assignee (R3.2.3); without a lead the
    policy's routing decides; an override needs `override_reason`."""
    # The assignee must belong to the lead department.
    stage.require(EventAction.ASSIGN)
    target = stage.next_status(Action.ASSIGN)
    event, policy = stage.event, stage.policy
    # The lifecycle table only lets classified events be assigned.
    assert event.category is not None
    assert event.subcategory is not None
    assert event.severity is not None
    if data.lead_department is not None:
        await stage.check_departments([data.lead_department], "lead_department")
    if data.cooperating_departments:
        await stage.check_departments(data.cooperating_departments, "cooperating_departments")
    routed = routing.route(
        category=Category(event.category),
        subcategory=event.subcategory,
        involved=event.involved_departments,
        policy=policy,
    )
    lead = data.lead_department or routed.lead
    overridden = lead != routed.lead
    cooperating = cooperating_for(lead, routed.cooperating, data.cooperating_departments)
    assignee_department = await _assignee_department(stage, data)
    snapshot = await stage.snapshot(
        status=target,
        lead_department=lead,
        cooperating_departments=cooperating,
        routing_overridden=overridden,
        routing_override_reason=bool(data.override_reason),
        assignee_set=data.assignee_id is not None,
        assignee_in_lead=data.assignee_id is None or assignee_department == lead,
    )
    stage.check_gate(Status.ASSIGNED, snapshot)

    before = {
        "lead_department": event.lead_department,
        "cooperating_departments": event.cooperating_departments,
        "assignee_id": event.assignee_id,
    }
    event.lead_department, event.cooperating_departments = lead, list(cooperating)
    event.assignee_id = data.assignee_id
    event.routing = {
        "rule_id": routed.rule_id,
        "policy_version": policy.version,
        "proposed_lead": routed.lead,
        "proposed_cooperating": list(routed.cooperating),
        "overridden": overridden,
        "reason": data.override_reason if overridden else None,
        "assignee_department": assignee_department,
    }
    event.assigned_at = event.assigned_at or stage.now
    event.resolve_by = deadlines.resolve_by(
        event.reported_at, severity=event.severity, policy=policy
    )
    event.status = target
    await stage.record(
        "assign",
        before=before,
        after={
            "lead_department": lead,
            "cooperating_departments": list(cooperating),
            "assignee_id": data.assignee_id,
            "routing": event.routing,
            "resolve_by": event.resolve_by,
        },
        note=data.override_reason,
        outbox_type="event.assigned",
        outbox_data={
            "lead_department": lead,
            "cooperating_departments": list(cooperating),
            "assignee_id": data.assignee_id,
        },
    )
    return await stage.detail()
