"""Feedback, satisfaction and survey endpoints (R3.4, R5.4, R6.2)."""

from typing import Annotated

from fastapi import Path

from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.query import ApiRouter
from app.events.routes.deps import change, event_router
from app.events.schemas import SurveyAnswer, SurveyRead
from app.events.stages import feedback

router = event_router(
    "feedback",
    change("POST", "/{event_id}/feedback", feedback.give_feedback, status_code=201),
    change("POST", "/{event_id}/feedback/{feedback_id}/decision", feedback.decide_feedback),
    change("POST", "/{event_id}/satisfaction", feedback.record_satisfaction, status_code=201),
    change(
        "POST",
        "/{event_id}/survey-link",
        feedback.create_survey_link,
        status_code=201,
        withhold=True,  # the link is shown once: never stored for a replay
    ),
)
surveys = ApiRouter(prefix="/v1/surveys", tags=["surveys"])
# The paths answered without an API key: an `Idempotency-Key` there is scoped to the link
# (`TransactionMiddleware`), not to a caller (review of issue 10, item 10).
LOGIN_FREE = ("/v1/surveys/",)
SurveyToken = Annotated[str, Path(min_length=1, max_length=100)]


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
    """The customer's score and comment (no login); the link works once. No `If-Match`: the
    customer never sees the event's version, and the single-use link already makes a second
    answer a 409. An `Idempotency-Key` is scoped to the link."""
    return await feedback.answer_survey(session, token, body, now=utcnow())
