"""Intake: `POST /v1/events` (R3.1)."""

import uuid
from typing import Any, Final

import orjson
from fastapi import Request, Response

from app.core.auth import request_principal
from app.core.clock import utcnow
from app.core.idempotency import IdempotencyClaim
from app.core.query import ApiRouter, query_flag
from app.events import intake, similar
from app.events.schemas import AnyEventDetail, EventCreate
from app.policy.service import policy_in_force

router = ApiRouter(prefix="/v1/events", tags=["events"])

# Intake honours `Idempotency-Key` inside its own single statement (see `intake.intake`).
SELF_IDEMPOTENT = frozenset({("POST", "/v1/events")})


# `suggest` is read by hand, not declared as a parameter: one declared query parameter made
# FastAPI's dependency solving cost intake about 70 µs of CPU per request (bench/inproc.py),
# about a tenth of it. The document and the unknown-parameter check learn of it from here.
SUGGEST: Final = {
    "name": "suggest",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean"},
    "description": "Also answer `suggestions`: earlier events like this one that you may see "
    "(as `GET /v1/events/{event_id}/similar`; not stored with an Idempotency-Key)",
}


@router.post(
    "",
    status_code=201,
    response_model=AnyEventDetail,
    openapi_extra={"parameters": [SUGGEST]},
    responses={
        200: {"model": AnyEventDetail, "description": "The external_ref is known: that event"},
        401: {"description": "No valid API key"},
        409: {"description": "A request with the same Idempotency-Key is still running"},
    },
)
async def create_event(
    body: EventCreate,
    request: Request,
) -> Response:
    """Report an event (R3.1); a known `external_ref` returns that event (200), not a copy.
    The answer is the caller's view of it: `staff` for those who see every event, else
    `reporter` (see `GET /v1/events/{event_id}`)."""
    # The hot path: the caller comes from the middleware, not from dependencies, and the
    # response is rendered once, stored with the Idempotency-Key and sent as it is.
    # A malformed `suggest` was refused before this ran (core.query.CheckedRoute).
    suggest = query_flag(request, "suggest")
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
    if suggest and answer.status in (200, 201):
        # Opt-in, after the one statement: the default path does not move (README, Search).
        return await _with_suggestions(answer, database, actor)
    return Response(answer.body, answer.status, answer.headers)


async def _with_suggestions(answer: intake.IntakeAnswer, database: Any, actor: Any) -> Response:
    event = orjson.loads(answer.body)
    found = await similar.intake_suggestions(
        database,
        uuid.UUID(event["id"]),
        actor=actor,
        policy=await policy_in_force(database),
    )
    event["suggestions"] = found.model_dump(mode="json")["items"]
    return Response(orjson.dumps(event), answer.status, answer.headers)
