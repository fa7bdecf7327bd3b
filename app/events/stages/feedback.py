"""Feedback through the intake desk, satisfaction and the customer survey (R3.4, R5.4, R6.2)."""

import dataclasses
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import uuid7
from app.core.errors import AppError, Conflict, GateNotMet, NotFound
from app.events import repository, timeline
from app.events.models import Event, Feedback, Satisfaction, SurveyToken
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
from app.events.stages.common import Stage, record_change
from app.events.views import message_head
from app.outbox.writer import publish
from app.policy.service import current_policy
from app.rules import deadlines, lifecycle
from app.rules.lifecycle import FeedbackFacts
from app.rules.permissions import EventAction
from app.rules.vocabulary import (
    Action,
    Activity,
    Audience,
    Decision,
    FeedbackOutcome,
    SatisfactionSource,
    Status,
)

SURVEY_TOKEN_PREFIX = "svy_"


class SurveyExpired(AppError):
    status, type, title = 410, "survey-expired", "This survey link has expired"


class SurveyAnswered(AppError):
    status, type, title = 409, "survey-answered", "This survey has already been answered"


def _new_feedback(stage: Stage, data: FeedbackIn) -> Feedback:
    return stage.add_child(
        Feedback,
        audience=data.audience,
        result=data.result,
        measures=data.measures,
        prevention_advice=data.prevention_advice,
        author_id=stage.actor.user_id,
        created_at=stage.now,
    )


def _feedback_after(feedback: Feedback) -> dict[str, object]:
    return {
        "feedback_id": feedback.id,
        "audience": feedback.audience,
        "result": feedback.result,
        "measures": feedback.measures,
        "prevention_advice": feedback.prevention_advice,
    }


async def _feedback_to_intake(stage: Stage, data: FeedbackIn) -> FeedbackRead:
    """R3.4.1: the responsible department reports to the intake desk, which decides on it."""
    stage.require(EventAction.FEEDBACK_TO_INTAKE)
    stage.allow(Activity.FEEDBACK_TO_INTAKE)
    if await repository.pending_intake_feedback(stage.session, stage.event.id) is not None:
        raise Conflict("Feedback to the intake desk is already waiting for its decision")
    feedback = _new_feedback(stage, data)
    await stage.record(
        "feedback_to_intake",
        after=_feedback_after(feedback),
        outbox_type="event.feedback_submitted",
        outbox_data={"feedback_id": feedback.id},
    )
    return FeedbackRead.model_validate(feedback)


async def give_feedback(stage: Stage, data: FeedbackIn) -> FeedbackRead:
    """Feedback with result, measures and prevention advice (R3.4): `audience: intake` from the
    responsible department; once accepted, `audience: reporter` from the intake desk."""
    # R3.4.1: feedback to the reporter completes the `feedback_given` gate.
    if Audience(data.audience) is Audience.INTAKE:
        return await _feedback_to_intake(stage, data)
    stage.require(EventAction.FEEDBACK_TO_REPORTER)
    target = stage.next_status(Action.GIVE_FEEDBACK)
    current = await stage.snapshot()
    to_reporter = FeedbackFacts(audience=Audience.REPORTER, decision=None, complete=True)
    after = dataclasses.replace(current, status=target, feedback=(*current.feedback, to_reporter))
    stage.check_gate(Status.FEEDBACK_GIVEN, after)
    feedback = _new_feedback(stage, data)
    event = stage.event
    event.status = target
    event.feedback_at = stage.now
    assert event.severity is not None
    event.review_by = deadlines.review_by(stage.now, severity=event.severity, policy=stage.policy)
    await stage.record(
        "feedback_to_reporter",
        after={**_feedback_after(feedback), "review_by": event.review_by},
        outbox_type="event.feedback_given",
        outbox_data={"feedback_id": feedback.id},
    )
    return FeedbackRead.model_validate(feedback)


async def decide_feedback(
    stage: Stage, feedback_id: uuid.UUID, data: FeedbackDecision
) -> FeedbackRead:
    """The intake desk accepts the department's feedback, or returns it (back to in_progress)."""
    # R3.4.1, R4.1: a return sends the event back to work with the reason.
    stage.require(EventAction.DECIDE_FEEDBACK)
    feedback = await repository.feedback_of(stage.session, stage.event.id, feedback_id)
    if feedback is None or feedback.audience != Audience.INTAKE:
        raise NotFound(f"No feedback {feedback_id} to the intake desk on this event")
    if feedback.decision is not None or feedback.superseded_at is not None:
        raise Conflict(f"This feedback was already {feedback.decision or 'superseded'}")
    stage.allow(Activity.DECIDE_FEEDBACK)
    feedback.decided_by, feedback.decided_at = stage.actor.user_id, stage.now
    feedback.decision_note = data.note
    if Decision(data.decision) is Decision.ACCEPT:
        feedback.decision = FeedbackOutcome.ACCEPTED
        await stage.record(
            "feedback_accepted",
            after={"feedback_id": feedback.id},
            note=data.note,
            outbox_type="event.feedback_accepted",
            outbox_data={"feedback_id": feedback.id},
        )
    else:
        feedback.decision = FeedbackOutcome.RETURNED
        feedback.superseded_at = stage.now
        await stage.back_to_work(Action.RETURN_FEEDBACK)
        await stage.record(
            "feedback_returned",
            before={"status": Status.RESOLVED},
            after={"feedback_id": feedback.id, "status": stage.event.status},
            note=data.note,
            outbox_type="event.feedback_returned",
            outbox_data={"feedback_id": feedback.id},
        )
    return FeedbackRead.model_validate(feedback)


async def record_satisfaction(stage: Stage, data: SatisfactionIn) -> SatisfactionRead:
    """Record the reporter's satisfaction (1-5), or unreachable after the policy's attempts."""
    # R5.4, R6.2: by the intake desk.
    stage.require(EventAction.RECORD_SATISFACTION)
    stage.allow(Activity.RECORD_SATISFACTION)
    if data.unreachable and not lifecycle.unreachable_proven(data.attempts or 0, stage.policy):
        raise GateNotMet(
            ["satisfaction.attempts"],
            f"Unreachable needs at least {stage.policy.gates.satisfaction_attempts} attempts",
        )
    row = await _save_satisfaction(
        stage.session, stage.event, data, SatisfactionSource.DESK, stage.actor.user_id, stage.now
    )
    await stage.record(
        "satisfaction",
        after={"score": data.score, "unreachable": data.unreachable, "attempts": row.attempts},
        note=data.comment,
        outbox_type="event.satisfaction_recorded",
        outbox_data={"score": data.score, "unreachable": data.unreachable},
    )
    return SatisfactionRead.model_validate(row)


async def _save_satisfaction(
    session: AsyncSession,
    event: Event,
    data: SatisfactionIn,
    source: SatisfactionSource,
    recorded_by: uuid.UUID | None,
    now: datetime,
) -> Satisfaction:
    """One satisfaction per loop (409 when there is one); its KPI facts go on the event."""
    if await repository.has_satisfaction(session, event.id):
        raise Conflict("Satisfaction is already recorded for this event")
    row = Satisfaction(
        id=uuid7(),
        event_id=event.id,
        score=data.score,
        comment=data.comment,
        unreachable=data.unreachable,
        attempts=data.attempts or 1,
        source=source,
        recorded_by=recorded_by,
        created_at=now,
    )
    event.satisfaction_score, event.satisfaction_unreachable = row.score, row.unreachable
    repository.add(session, row)
    await repository.flush(session)
    return row


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_survey_link(stage: Stage) -> SurveyLink:
    """A single-use, expiring, login-free survey link for the customer (intake desk)."""
    # R6.2. The token is random and stored only as a hash, like an API key. Creating one bumps
    # the version, so `If-Match` holds (issue 10, item 6).
    stage.require(EventAction.RECORD_SATISFACTION)
    stage.allow(Activity.CREATE_SURVEY_LINK)
    if await repository.has_satisfaction(stage.session, stage.event.id):
        raise SurveyAnswered("Satisfaction is already recorded for this event")
    token = SURVEY_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = stage.now + timedelta(hours=stage.policy.gates.survey_ttl_hours)
    stage.add_child(
        SurveyToken, token_hash=_token_hash(token), expires_at=expires_at, created_at=stage.now
    )
    await stage.record("survey_link", after={"expires_at": expires_at})
    return SurveyLink(
        token=token,
        url=f"{stage.base_url.rstrip('/')}/v1/surveys/{token}",
        expires_at=expires_at,
    )


async def _survey(session: AsyncSession, token: str, *, lock: bool) -> tuple[SurveyToken, Event]:
    if not token.startswith(SURVEY_TOKEN_PREFIX) or len(token) > 100:
        raise NotFound("No such survey")
    found = await repository.survey(session, _token_hash(token), lock=lock)
    if found is None:
        raise NotFound("No such survey")
    return found


async def read_survey(session: AsyncSession, token: str, *, now: datetime) -> SurveyRead:
    """What the customer sees: the event's ref and title, nothing else."""
    survey, event = await _survey(session, token, lock=False)
    if survey.expires_at <= now:
        raise SurveyExpired()
    return SurveyRead(
        event_ref=event.ref,
        title=event.title,
        answered=survey.used_at is not None,
        expires_at=survey.expires_at,
    )


async def answer_survey(
    session: AsyncSession, token: str, data: SurveyAnswer, *, now: datetime
) -> SurveyRead:
    """The customer's own score (R6.2); the token works once."""
    survey, event = await _survey(session, token, lock=True)
    if survey.expires_at <= now:
        raise SurveyExpired()
    if survey.used_at is not None:
        raise SurveyAnswered()
    event = await repository.lock_event(session, event.id)
    if event.status not in lifecycle.IN_STATUS[Activity.RECORD_SATISFACTION]:
        raise SurveyExpired("This survey is no longer open")
    # The customer's own answer: a score, as the desk would record it (one attempt).
    answer = SatisfactionIn(score=data.score, comment=data.comment)
    await _save_satisfaction(
        session, event, answer, SatisfactionSource.SURVEY, recorded_by=None, now=now
    )
    survey.used_at = now
    recorder = timeline.Recorder(session, event.id, await timeline.chain_head(session, event.id))
    entry = timeline.Entry(
        at=now,
        actor_id=None,
        action="survey_answer",
        after={"score": data.score},
        note=data.comment,
    )
    await record_change(session, event, recorder, entry, policy=await current_policy(session))
    await publish(
        session,
        "event.satisfaction_recorded",
        event_id=event.id,
        at=now,
        data={
            **message_head(event),
            "score": data.score,
            "source": SatisfactionSource.SURVEY,
        },
    )
    return SurveyRead(
        event_ref=event.ref, title=event.title, answered=True, expires_at=survey.expires_at
    )
