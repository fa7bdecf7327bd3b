"""Close, cancel, reopen and checklist endpoints (product.md section 2)."""

from fastapi import APIRouter, Response

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.events.routes.deps import MUTATION_RESPONSES, EventRef, IfMatch, with_etag
from app.events.schemas import CancelIn, ChecklistRead, EventDetail, ReopenIn
from app.events.stages import closing
from app.policy.service import PolicyDep

router = APIRouter(prefix="/v1/events", tags=["closing"], responses=MUTATION_RESPONSES)


@router.post("/{event_id}/close")
async def close_event(
    event_id: EventRef,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Close the loop; 409 with `missing` listing every unmet gate code."""
    event = await closing.close(
        session, event_id, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)


@router.post("/{event_id}/cancel")
async def cancel_event(
    event_id: EventRef,
    body: CancelIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Cancel before work starts, with a reason (and `duplicate_of` for duplicates)."""
    event = await closing.cancel(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)


@router.post("/{event_id}/reopen")
async def reopen_event(
    event_id: EventRef,
    body: ReopenIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
    if_match: IfMatch = None,
) -> EventDetail:
    """Back to in_progress from resolved, feedback_given or reviewed, with a reason."""
    event = await closing.reopen(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )
    return with_etag(response, event)


@router.get("/{event_id}/checklist")
async def get_checklist(
    event_id: EventRef, session: SessionDep, actor: CurrentPrincipal, policy: PolicyDep
) -> ChecklistRead:
    """Every gate of the event's path with done/missing and the actions allowed now."""
    return await closing.read_checklist(session, event_id, actor=actor, policy=policy)
