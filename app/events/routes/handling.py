"""Plan, steps, notes and resolution endpoints (R3.3, R6)."""

import uuid

from fastapi import APIRouter, Response

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.events.routes.deps import MUTATION_RESPONSES, EventRef, IfMatch, with_etag
from app.events.schemas import EventDetail, NoteIn, NoteRead, PlanIn, ResolutionIn, StepUpdate
from app.events.stages import handling
from app.policy.service import PolicyDep

router = APIRouter(prefix="/v1/events", tags=["handling"], responses=MUTATION_RESPONSES)


@router.put("/{event_id}/plan")
async def put_plan(
    event_id: EventRef,
    body: PlanIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Set (or replace) the plan: steps with owner and due time (R3.3.1); starts the work."""
    event = await handling.set_plan(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)


@router.patch("/{event_id}/steps/{step_id}")
async def update_step(
    event_id: EventRef,
    step_id: uuid.UUID,
    body: StepUpdate,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Mark a plan step done, or dropped with a reason (R3.3.2)."""
    event = await handling.update_step(
        session,
        event_id,
        step_id,
        body,
        actor=actor,
        policy=policy,
        now=utcnow(),
        if_match=if_match,
    )
    return with_etag(response, event)


@router.post("/{event_id}/notes", status_code=201)
async def add_note(
    event_id: EventRef,
    body: NoteIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> NoteRead:
    """Record a progress report, an internal note or a customer contact (R3.3.2, R6)."""
    return await handling.add_note(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )


@router.get("/{event_id}/notes")
async def list_notes(
    event_id: EventRef, session: SessionDep, actor: CurrentPrincipal
) -> list[NoteRead]:
    """Notes of the event; reporters and integrations see only notes meant for the reporter."""
    return await handling.list_notes(session, event_id, actor=actor)


@router.post("/{event_id}/resolution")
async def resolve_event(
    event_id: EventRef,
    body: ResolutionIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Record the result and measures once every step is done or dropped."""
    event = await handling.resolve(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)
