"""Plan, execution and resolution (R3.3, R4.2)."""

import uuid

from app.core.db import uuid7
from app.core.errors import Conflict, NotFound, Unprocessable
from app.events import repository
from app.events.models import EventNote
from app.events.schemas import EventDetail, NoteIn, NoteRead, PlanIn, ResolutionIn, StepUpdate
from app.events.stages.common import Stage
from app.rules import deadlines
from app.rules.lifecycle import StepFacts, step_update_refusal
from app.rules.permissions import EventAction
from app.rules.vocabulary import Action, Activity, Status, StepStatus


async def _refuse_inactive_owners(stage: Stage, data: PlanIn) -> None:
    """Every step's owner is an active user (422 naming each step that is not)."""
    unknown = []
    for index, step in enumerate(data.steps):
        active, _dept = await stage.user_department(step.owner_id)
        if not active:
            unknown.append(
                {"field": f"steps.{index}.owner_id", "message": "unknown or inactive user"}
            )
    if unknown:
        raise Unprocessable("Every step needs an active owner", errors=unknown)


async def put_plan(stage: Stage, data: PlanIn) -> EventDetail:
    """Set (or replace) the plan: steps with owner and due time (R3.3.1); starts the work."""
    # A complex event records who it was discussed with. A PUT replaces the plan; the previous
    # one stays on the timeline.
    stage.require(EventAction.PLAN)
    target = stage.next_status(Action.PLAN)
    await _refuse_inactive_owners(stage, data)
    snapshot = await stage.snapshot(
        status=target,
        steps=tuple(
            StepFacts(
                status=StepStatus.OPEN,
                has_owner=step.owner_id is not None,
                has_due=step.due_at is not None,
                drop_reason=False,
            )
            for step in data.steps
        ),
        plan_discussed_with=tuple(data.discussed_with),
    )
    stage.check_gate(Status.IN_PROGRESS, snapshot)

    event = stage.event
    old = await repository.plan_steps(stage.session, event.id)
    before = {
        "steps": [
            {"title": s.title, "owner_id": s.owner_id, "due_at": s.due_at, "status": s.status}
            for s in old
        ],
        "discussed_with": event.plan_discussed_with,
    }
    rows = [
        {
            "id": uuid7(),
            "event_id": event.id,
            "position": i,
            "title": s.title,
            "owner_id": s.owner_id,
            "due_at": s.due_at,
            "status": StepStatus.OPEN,
        }
        for i, s in enumerate(data.steps)
    ]
    await repository.replace_plan(stage.session, event.id, rows)
    event.plan_discussed_with = list(data.discussed_with)
    event.status = target
    await stage.record(
        "plan",
        before=before,
        after={
            "steps": [{k: r[k] for k in ("id", "title", "owner_id", "due_at")} for r in rows],
            "discussed_with": data.discussed_with,
        },
        outbox_type="event.plan_set",
        outbox_data={"steps": len(rows)},
    )
    return await stage.detail()


async def update_step(stage: Stage, step_id: uuid.UUID, data: StepUpdate) -> EventDetail:
    """Mark a plan step done, or dropped with a reason (R3.3.2)."""
    # By its owner, or by the lead department (rules.permissions.STEP_OWNER_MAY).
    step = await repository.step_of(stage.session, stage.event.id, step_id)
    if step is None:
        raise NotFound(f"No step {step_id} on this event")
    stage.require(EventAction.UPDATE_STEP, owns_step=step.owner_id == stage.actor.user_id)
    stage.allow(Activity.UPDATE_STEP)
    refusal = step_update_refusal(StepStatus(step.status), StepStatus(data.status), data.note)
    if refusal is not None and step.status != StepStatus.OPEN:
        raise Conflict(refusal)
    if refusal is not None:
        raise Unprocessable(
            refusal, errors=[{"field": "note", "message": "required when status is dropped"}]
        )
    step.status, step.note, step.completed_at = data.status, data.note, stage.now
    await stage.record(
        "step_" + data.status,
        before={"step_id": step.id, "status": StepStatus.OPEN},
        after={"step_id": step.id, "status": data.status},
        note=data.note,
        outbox_type="event.step_updated",
        outbox_data={"step_id": step.id, "step_status": data.status},
    )
    return await stage.detail()


async def add_note(stage: Stage, data: NoteIn) -> NoteRead:
    """Record a progress report, an internal note or a customer contact (R3.3.2, R6)."""
    # With its visibility. A note bumps the version, so `If-Match` holds here too (issue 10,
    # item 6).
    stage.require(EventAction.ADD_NOTE)
    stage.allow(Activity.ADD_NOTE)
    note = stage.add_child(
        EventNote,
        kind=data.kind,
        visibility=data.visibility,
        body=data.body,
        author_id=stage.actor.user_id,
        created_at=stage.now,
    )
    await stage.record(
        "note",
        after={"note_id": note.id, "kind": data.kind, "visibility": data.visibility},
        outbox_type="event.note_added",
        outbox_data={"kind": data.kind},
    )
    return NoteRead.model_validate(note)


async def resolve_event(stage: Stage, data: ResolutionIn) -> EventDetail:
    """Record the result and measures once every step is done or dropped."""
    # R3.3-R3.4: handling is done.
    stage.require(EventAction.RESOLVE)
    target = stage.next_status(Action.RESOLVE)
    snapshot = await stage.snapshot(
        status=target, resolution_result=bool(data.result), resolution_measures=bool(data.measures)
    )
    stage.check_gate(Status.RESOLVED, snapshot)
    event = stage.event
    event.resolution_result, event.resolution_measures = data.result, data.measures
    event.resolved_at = stage.now
    event.feedback_by = deadlines.feedback_by(stage.now, policy=stage.policy)
    event.status = target
    await stage.record(
        "resolve",
        after={"result": data.result, "measures": data.measures, "feedback_by": event.feedback_by},
        outbox_type="event.resolved",
    )
    return await stage.detail()
