"""Feedback, satisfaction and survey endpoints (R3.4, R5.4, R6.2)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from app.core.auth import CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.idempotency import withhold_from_replay
from app.events.routes.deps import MUTATION_RESPONSES, EventRef, IfMatch
from app.events.schemas import (
    FeedbackDecision,
    FeedbackIn,
    FeedbackRead,
    SatisfactionIn,
    SatisfactionRead,
    SurveyAnswer,
    SurveyLink,
    SurveyRead,
)
from app.events.stages import feedback
from app.policy.service import PolicyDep

router = APIRouter(prefix="/v1/events", tags=["feedback"], responses=MUTATION_RESPONSES)
surveys = APIRouter(prefix="/v1/surveys", tags=["surveys"])
SurveyToken = Annotated[str, Path(min_length=1, max_length=100)]


@router.post("/{event_id}/feedback", status_code=201)
async def give_feedback(
    event_id: EventRef,
    body: FeedbackIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> FeedbackRead:
    """Feedback with result, measures and prevention advice (R3.4): `audience: intake` from the
    responsible department; once accepted, `audience: reporter` from the intake desk."""
    return await feedback.give_feedback(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )


@router.post("/{event_id}/feedback/{feedback_id}/decision")
async def decide_feedback(
    event_id: EventRef,
    feedback_id: uuid.UUID,
    body: FeedbackDecision,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> FeedbackRead:
    """The intake desk accepts the department's feedback, or returns it (back to in_progress)."""
    return await feedback.decide_feedback(
        session,
        event_id,
        feedback_id,
        body,
        actor=actor,
        policy=policy,
        now=utcnow(),
        if_match=if_match,
    )


@router.post("/{event_id}/satisfaction", status_code=201)
async def record_satisfaction(
    event_id: EventRef,
    body: SatisfactionIn,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    if_match: IfMatch = None,
) -> SatisfactionRead:
    """Record the reporter's satisfaction (1-5), or unreachable after the policy's attempts."""
    return await feedback.record_satisfaction(
        session, event_id, body, actor=actor, policy=policy, now=utcnow(), if_match=if_match
    )


@router.post(
    "/{event_id}/survey-link", status_code=201, dependencies=[Depends(withhold_from_replay)]
)
async def create_survey_link(
    event_id: EventRef,
    session: SessionDep,
    actor: CurrentPrincipal,
    policy: PolicyDep,
    request: Request,
    if_match: IfMatch = None,
) -> SurveyLink:
    """A single-use, expiring, login-free survey link for the customer (intake desk)."""
    return await feedback.create_survey_link(
        session,
        event_id,
        actor=actor,
        policy=policy,
        now=utcnow(),
        base_url=str(request.base_url),
        if_match=if_match,
    )


@surveys.get(
    "/{token}", responses={404: {"description": "Unknown link"}, 410: {"description": "Expired"}}
)
async def read_survey(token: SurveyToken, session: SessionDep) -> SurveyRead:
    """What the survey link shows the customer (no login): the event's ref and title only."""
    return await feedback.read_survey(session, token, now=utcnow())


@surveys.post(
    "/{token}",
    responses={
        404: {"description": "Unknown link"},
        409: {"description": "Already answered"},
        410: {"description": "Expired"},
    },
)
async def answer_survey(token: SurveyToken, body: SurveyAnswer, session: SessionDep) -> SurveyRead:
    """The customer's score and comment (no login); the link works once."""
    return await feedback.answer_survey(session, token, body, now=utcnow())
