"""Assessment: classification and assignment (R3.2.1-R3.2.3)."""

import dataclasses
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.errors import GateNotMet, Unprocessable
from app.events.schemas import AssignmentIn, ClassificationIn, EventDetail
from app.events.service import check_departments, check_linked_event
from app.events.stages.common import open_stage, user_department
from app.events.timeline import jsonable
from app.policy.service import check_taxonomy
from app.rules import deadlines, grading, lifecycle, routing
from app.rules.assessment import cooperating_for, override_problems, status_after_reclassify
from app.rules.permissions import EventAction
from app.rules.policy import Policy
from app.rules.vocabulary import Action, Category, Status


async def classify(
    session: AsyncSession,
    id_or_ref: str,
    data: ClassificationIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """R3.2.1-2: category and impact, severity graded by the policy; an override needs a reason."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.CLASSIFY)
    target = stage.next_status(Action.CLASSIFY)
    check_taxonomy(policy, data.category, data.subcategory)
    event = stage.event
    if data.recurrence_of is not None:
        if data.recurrence_of == event.id:
            raise Unprocessable("An event cannot be a recurrence of itself")
        await check_linked_event(session, data.recurrence_of, "recurrence_of", actor=actor)

    graded = grading.grade(
        data.impact.facts(), category=data.category, urgent=event.urgent, policy=policy
    )
    override = data.severity_override
    problems = override_problems(
        graded.severity,
        override.severity if override else None,
        urgent=event.urgent,
        reason=override.reason if override else None,
        policy=policy,
    )
    if problems:
        raise GateNotMet(
            problems, "A manual grade needs a reason and keeps urgent events at important or above"
        )
    overridden = override is not None and override.severity != graded.severity
    severity = override.severity if override and overridden else graded.severity
    snapshot = await stage.snapshot(
        status=target,
        category=data.category,
        subcategory=data.subcategory,
        severity=severity,
        impact_recorded=True,
        severity_overridden=overridden,
        override_reason=bool(override and override.reason),
    )
    stage.check_gate(Status.CLASSIFIED, snapshot)
    if target is Status.ASSIGNED and event.lead_department is not None:
        # Would the policy still route the new classification to the current lead?
        proposed = routing.route(
            category=data.category,
            subcategory=data.subcategory,
            involved=event.involved_departments,
            policy=policy,
        )
        kept_override = bool((event.routing or {}).get("overridden"))
        snapshot = dataclasses.replace(
            snapshot, routing_overridden=kept_override or event.lead_department != proposed.lead
        )
    target = status_after_reclassify(target, lifecycle.gate(Status.ASSIGNED, snapshot, policy))

    before = {
        "category": event.category,
        "subcategory": event.subcategory,
        "severity": event.severity,
        "grading": event.grading,
    }
    event.category, event.subcategory, event.severity = data.category, data.subcategory, severity
    event.impact = jsonable(data.impact.model_dump())
    event.grading = {
        "rule_ids": list(graded.rule_ids),
        "policy_version": policy.version,
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
        event.resolve_by = deadlines.resolve_by(event.reported_at, severity=severity, policy=policy)
    event.status = target
    await stage.record(
        "classify",
        before=before,
        after={
            "category": event.category,
            "subcategory": event.subcategory,
            "severity": severity,
            "grading": event.grading,
            "impact": event.impact,
        },
        note=override.reason if overridden and override else None,
        outbox_type="event.classified",
        outbox_data={
            "severity": severity,
            "category": data.category,
            "subcategory": data.subcategory,
        },
    )
    return await stage.detail()


async def assign(
    session: AsyncSession,
    id_or_ref: str,
    data: AssignmentIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """R3.2.3: name the lead and cooperating departments (the policy's routing unless
    overridden with a reason) and the assignee, who must belong to the lead department."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.ASSIGN)
    target = stage.next_status(Action.ASSIGN)
    event = stage.event
    # The lifecycle table only lets classified events be assigned.
    assert event.category is not None
    assert event.subcategory is not None
    assert event.severity is not None
    if data.lead_department is not None:
        await check_departments(session, [data.lead_department], "lead_department")
    if data.cooperating_departments:
        await check_departments(session, data.cooperating_departments, "cooperating_departments")
    routed = routing.route(
        category=Category(event.category),
        subcategory=event.subcategory,
        involved=event.involved_departments,
        policy=policy,
    )
    lead = data.lead_department or routed.lead
    overridden = lead != routed.lead
    cooperating = cooperating_for(lead, routed.cooperating, data.cooperating_departments)

    assignee_department = None
    if data.assignee_id is not None:
        active, assignee_department = await user_department(session, data.assignee_id)
        if not active:
            raise Unprocessable(
                f"No active user {data.assignee_id}",
                errors=[{"field": "assignee_id", "message": "unknown or inactive user"}],
            )
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
    event.assigned_at = event.assigned_at or now
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
