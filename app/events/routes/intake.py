"""Intake: `POST /v1/events` (R3.1)."""

from fastapi import APIRouter, Response

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.events import service
from app.events.schemas import EventCreate, EventDetail
from app.events.views import event_headers
from app.policy.service import PolicyDep

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post(
    "",
    status_code=201,
    responses={200: {"model": EventDetail, "description": "The external_ref is known: that event"}},
)
async def create_event(
    body: EventCreate,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    response: Response,
) -> EventDetail:
    """Report an event (R3.1); a known `external_ref` returns that event (200), not a copy."""
    event, created = await service.intake(session, body, actor=actor, policy=policy, now=utcnow())
    response.status_code = 201 if created else 200
    response.headers.update(event_headers(event.id, event.version))
    return event
