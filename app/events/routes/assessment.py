"""Classification and assignment endpoints (R3.2)."""

from fastapi import APIRouter, Response

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.events.routes.deps import MUTATION_RESPONSES, EventRef, IfMatch, with_etag
from app.events.schemas import AssignmentIn, ClassificationIn, EventDetail
from app.events.stages import assessment
from app.policy.service import PolicyDep

router = APIRouter(prefix="/v1/events", tags=["assessment"], responses=MUTATION_RESPONSES)


@router.post("/{event_id}/classification")
async def classify_event(
    event_id: EventRef,
    body: ClassificationIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Classify and grade the event (R3.2.1-2): intake agents and supervisors; re-classifying
    is allowed until the plan starts; every grade change is on the timeline."""
    event = await assessment.classify(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)


@router.post("/{event_id}/assignment")
async def assign_event(
    event_id: EventRef,
    body: AssignmentIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Name the lead and cooperating departments and the assignee (R3.2.3); without a lead the
    policy's routing decides; an override needs `override_reason`."""
    event = await assessment.assign(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)
