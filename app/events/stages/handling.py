"""Plan, execution and resolution (R3.3, R4.2)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import uuid7
from app.core.errors import Conflict, NotFound, Unprocessable
from app.events.models import EventNote, PlanStep
from app.events.repository import visible_row
from app.events.schemas import EventDetail, NoteIn, NoteRead, PlanIn, ResolutionIn, StepUpdate
from app.events.stages.common import open_stage, user_department
from app.events.views import view_of
from app.rules import deadlines
from app.rules.lifecycle import StepFacts
from app.rules.permissions import EventAction
from app.rules.policy import Policy
from app.rules.views import note_visibilities
from app.rules.vocabulary import Action, Status


async def set_plan(
    session: AsyncSession,
    id_or_ref: str,
    data: PlanIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """R3.3.1: steps with owners and due times; a complex event records who it was discussed
    with. A PUT replaces the plan; the previous one stays on the timeline."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.PLAN)
    target = stage.next_status(Action.PLAN)
    unknown = []
    for index, step in enumerate(data.steps):
        active, _dept = await user_department(session, step.owner_id)
        if not active:
            unknown.append(
                {"field": f"steps.{index}.owner_id", "message": "unknown or inactive user"}
            )
    if unknown:
        raise Unprocessable("Every step needs an active owner", errors=unknown)
    snapshot = await stage.snapshot(
        status=target,
        steps=tuple(
            StepFacts(status="open", has_owner=True, has_due=True, drop_reason=False)
            for _ in data.steps
        ),
        plan_discussed_with=tuple(data.discussed_with),
    )
    stage.check_gate(Status.IN_PROGRESS, snapshot)

    event = stage.event
    old = (
        await session.scalars(
            sa.select(PlanStep).where(PlanStep.event_id == event.id).order_by(PlanStep.position)
        )
    ).all()
    before = {
        "steps": [
            {"title": s.title, "owner_id": s.owner_id, "due_at": s.due_at, "status": s.status}
            for s in old
        ],
        "discussed_with": event.plan_discussed_with,
    }
    await session.execute(sa.delete(PlanStep).where(PlanStep.event_id == event.id))
    rows = [
        {
            "id": uuid7(),
            "event_id": event.id,
            "position": i,
            "title": s.title,
            "owner_id": s.owner_id,
            "due_at": s.due_at,
            "status": "open",
        }
        for i, s in enumerate(data.steps)
    ]
    await session.execute(sa.insert(PlanStep), rows)
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


async def update_step(
    session: AsyncSession,
    id_or_ref: str,
    step_id: uuid.UUID,
    data: StepUpdate,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """R3.3.2: a step is done, or dropped with a reason; by its owner or the lead department."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    step = await session.scalar(
        sa.select(PlanStep).where(PlanStep.id == step_id, PlanStep.event_id == stage.event.id)
    )
    if step is None:
        raise NotFound(f"No step {step_id} on this event")
    if step.owner_id != actor.user_id:
        stage.require(EventAction.UPDATE_STEP)
    stage.require_status(Status.IN_PROGRESS, action="update_step")
    if step.status != "open":
        raise Conflict(f"The step is already {step.status}")
    if data.status == "dropped" and not data.note:
        raise Unprocessable(
            "Dropping a step needs a reason",
            errors=[{"field": "note", "message": "required when status is dropped"}],
        )
    step.status, step.note, step.completed_at = data.status, data.note, now
    await stage.record(
        "step_" + data.status,
        before={"step_id": step.id, "status": "open"},
        after={"step_id": step.id, "status": data.status},
        note=data.note,
        outbox_type="event.step_updated",
        outbox_data={"step_id": step.id, "step_status": data.status},
    )
    return await stage.detail()


async def add_note(
    session: AsyncSession,
    id_or_ref: str,
    data: NoteIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> NoteRead:
    """R3.3.2, R6: progress reports, internal notes and customer contacts, with visibility.
    A note bumps the version, so `If-Match` holds here too (issue 10, item 6)."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.ADD_NOTE)
    note = EventNote(
        id=uuid7(),
        event_id=stage.event.id,
        kind=data.kind,
        visibility=data.visibility,
        body=data.body,
        author_id=actor.user_id,
        created_at=now,
    )
    session.add(note)
    await stage.record(
        "note",
        after={"note_id": note.id, "kind": data.kind, "visibility": data.visibility},
        outbox_type="event.note_added",
        outbox_data={"kind": data.kind},
    )
    return NoteRead.model_validate(note)


async def list_notes(session: AsyncSession, id_or_ref: str, *, actor: Principal) -> list[NoteRead]:
    """Notes of an event; the reporter view reads only those meant for the reporter (R6.2;
    rules.views: whoever sees the event only as its reporter)."""
    row = await visible_row(session, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    visibilities = note_visibilities(view_of(row, actor))
    query = sa.select(EventNote).where(EventNote.event_id == row["id"]).order_by(EventNote.id)
    if visibilities is not None:
        query = query.where(EventNote.visibility.in_(sorted(visibilities)))
    return [NoteRead.model_validate(n) for n in await session.scalars(query)]


async def resolve(
    session: AsyncSession,
    id_or_ref: str,
    data: ResolutionIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """R3.3-R3.4: handling is done: every step done or dropped, result and measures written."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.RESOLVE)
    target = stage.next_status(Action.RESOLVE)
    snapshot = await stage.snapshot(
        status=target, resolution_result=bool(data.result), resolution_measures=bool(data.measures)
    )
    stage.check_gate(Status.RESOLVED, snapshot)
    event = stage.event
    event.resolution_result, event.resolution_measures = data.result, data.measures
    event.resolved_at = now
    event.feedback_by = deadlines.feedback_by(now, policy=policy)
    event.status = target
    await stage.record(
        "resolve",
        after={"result": data.result, "measures": data.measures, "feedback_by": event.feedback_by},
        outbox_type="event.resolved",
    )
    return await stage.detail()
