"""Review and improvement-action endpoints (R3.5)."""

import uuid

from fastapi import APIRouter, Response

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.events import repository
from app.events.routes.deps import MUTATION_RESPONSES, EventRef, IfMatch, with_etag
from app.events.schemas import (
    ActionIn,
    ActionRead,
    ActionUpdate,
    EventDetail,
    ReviewIn,
    VerificationIn,
)
from app.events.stages import review
from app.events.views import view_of
from app.policy.service import PolicyDep
from app.rules.views import shows_improvement_actions

router = APIRouter(prefix="/v1/events", tags=["review"], responses=MUTATION_RESPONSES)


@router.put("/{event_id}/review")
async def put_review(
    event_id: EventRef,
    body: ReviewIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """The summary report (R3.5.1); major events add the review meeting; important and major
    need improvement actions first (R3.5.2)."""
    event = await review.put_review(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)


@router.post("/{event_id}/actions", status_code=201)
async def add_action(
    event_id: EventRef,
    body: ActionIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> ActionRead:
    """Add an improvement action with department and due time (R3.5.2)."""
    return await review.add_action(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )


@router.get("/{event_id}/actions")
async def list_actions(
    event_id: EventRef, session: SessionDep, actor: CurrentPrincipal
) -> list[ActionRead]:
    """The event's improvement actions and their verification (none in the reporter view)."""
    row = await repository.visible_row(session, event_id, actor)
    if row is None:
        raise NotFound(f"No event {event_id}")
    if not shows_improvement_actions(view_of(row, actor)):
        return []
    return await review.list_actions(session, row["id"])


@router.patch("/{event_id}/actions/{action_id}")
async def complete_action(
    event_id: EventRef,
    action_id: uuid.UUID,
    body: ActionUpdate,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> ActionRead:
    """Mark an improvement action done, with evidence."""
    return await review.complete_action(
        session,
        event_id,
        action_id,
        body,
        actor=actor,
        policy=policy,
        now=utcnow(),
        if_match=if_match,
    )


@router.post("/{event_id}/actions/{action_id}/verification")
async def verify_action(
    event_id: EventRef,
    action_id: uuid.UUID,
    body: VerificationIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> ActionRead:
    """Verify a done action effective or not (not by who completed it); not effective reopens it."""
    return await review.verify_action(
        session,
        event_id,
        action_id,
        body,
        actor=actor,
        policy=policy,
        now=utcnow(),
        if_match=if_match,
    )
