"""Intake: `POST /v1/events` (R3.1)."""

from fastapi import APIRouter, Request, Response

from app.core.auth import request_principal
from app.core.clock import utcnow
from app.core.idempotency import IdempotencyClaim
from app.events import intake
from app.events.schemas import AnyEventDetail, EventCreate
from app.policy.service import policy_in_force

router = APIRouter(prefix="/v1/events", tags=["events"])

# Intake honours `Idempotency-Key` inside its own single statement (see `intake.intake`).
SELF_IDEMPOTENT = frozenset({("POST", "/v1/events")})


@router.post(
    "",
    status_code=201,
    response_model=AnyEventDetail,
    responses={
        200: {"model": AnyEventDetail, "description": "The external_ref is known: that event"},
        401: {"description": "No valid API key"},
        409: {"description": "A request with the same Idempotency-Key is still running"},
    },
)
async def create_event(body: EventCreate, request: Request) -> Response:
    """Report an event (R3.1); a known `external_ref` returns that event (200), not a copy.
    The answer is the caller's view of it: `staff` for those who see every event, else
    `reporter` (see `GET /v1/events/{event_id}`)."""
    # The hot path: the caller comes from the middleware, not from dependencies, and the
    # response is rendered once, stored with the Idempotency-Key and sent as it is.
    actor = await request_principal(request)
    database = request.app.state.db
    claim: IdempotencyClaim | None = request.state.idempotency
    answer = await intake.intake(
        database,
        body,
        actor=actor,
        policy=await policy_in_force(database),
        now=utcnow(),
        claim=claim,
    )
    return Response(answer.body, answer.status, answer.headers)
