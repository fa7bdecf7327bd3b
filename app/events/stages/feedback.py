"""Feedback through the intake desk, satisfaction and the customer survey (R3.4, R5.4, R6.2)."""

import dataclasses
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import uuid7
from app.core.errors import AppError, Conflict, GateNotMet, NotFound
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
from app.events.stages.common import Stage, open_stage
from app.events.timeline import Recorder, chain_head
from app.outbox.writer import publish
from app.rules import deadlines
from app.rules.lifecycle import FeedbackFacts
from app.rules.permissions import EventAction
from app.rules.policy import Policy
from app.rules.vocabulary import Action, Status

SURVEY_TOKEN_PREFIX = "svy_"
SATISFACTION_STATUSES = (Status.FEEDBACK_GIVEN, Status.REVIEWED)


class SurveyExpired(AppError):
    status, type, title = 410, "survey-expired", "This survey link has expired"


class SurveyAnswered(AppError):
    status, type, title = 409, "survey-answered", "This survey has already been answered"


async def _pending_intake_feedback(session: AsyncSession, event_id: uuid.UUID) -> Feedback | None:
    return await session.scalar(
        sa.select(Feedback).where(
            Feedback.event_id == event_id,
            Feedback.audience == "intake",
            Feedback.decision.is_(None),
            Feedback.superseded_at.is_(None),
        )
    )


async def give_feedback(
    session: AsyncSession,
    id_or_ref: str,
    data: FeedbackIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> FeedbackRead:
    """R3.4.1: the responsible department reports to the intake desk; after the desk accepts,
    the desk passes it on to the reporter, which completes the `feedback_given` gate."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    event = stage.event
    if data.audience == "intake":
        stage.require(EventAction.FEEDBACK_TO_INTAKE)
        stage.require_status(Status.RESOLVED, action="give_feedback")
        if await _pending_intake_feedback(session, event.id) is not None:
            raise Conflict("Feedback to the intake desk is already waiting for its decision")
        feedback = _new_feedback(event.id, data, actor, now)
        session.add(feedback)
        await stage.record(
            "feedback_to_intake",
            after=_feedback_after(feedback),
            outbox_type="event.feedback_submitted",
            outbox_data={"feedback_id": feedback.id},
        )
        return FeedbackRead.model_validate(feedback)

    stage.require(EventAction.FEEDBACK_TO_REPORTER)
    target = stage.next_status(Action.GIVE_FEEDBACK)
    current = await stage.snapshot()
    reporter_feedback = FeedbackFacts(audience="reporter", decision=None, complete=True)
    stage.check_gate(
        Status.FEEDBACK_GIVEN,
        dataclasses.replace(
            current, status=target, feedback=(*current.feedback, reporter_feedback)
        ),
    )
    feedback = _new_feedback(event.id, data, actor, now)
    session.add(feedback)
    event.status = target
    event.feedback_at = now
    assert event.severity is not None
    event.review_by = deadlines.review_by(now, severity=event.severity, policy=policy)
    await stage.record(
        "feedback_to_reporter",
        after={**_feedback_after(feedback), "review_by": event.review_by},
        outbox_type="event.feedback_given",
        outbox_data={"feedback_id": feedback.id},
    )
    return FeedbackRead.model_validate(feedback)


def _new_feedback(
    event_id: uuid.UUID, data: FeedbackIn, actor: Principal, now: datetime
) -> Feedback:
    return Feedback(
        id=uuid7(),
        event_id=event_id,
        audience=data.audience,
        result=data.result,
        measures=data.measures,
        prevention_advice=data.prevention_advice,
        author_id=actor.user_id,
        created_at=now,
    )


def _feedback_after(feedback: Feedback) -> dict[str, object]:
    return {
        "feedback_id": feedback.id,
        "audience": feedback.audience,
        "result": feedback.result,
        "measures": feedback.measures,
        "prevention_advice": feedback.prevention_advice,
    }


async def decide_feedback(
    session: AsyncSession,
    id_or_ref: str,
    feedback_id: uuid.UUID,
    data: FeedbackDecision,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> FeedbackRead:
    """R3.4.1, R4.1: the intake desk accepts the department's feedback or returns it, which
    sends the event back to `in_progress` with the reason."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.DECIDE_FEEDBACK)
    feedback = await session.scalar(
        sa.select(Feedback).where(Feedback.id == feedback_id, Feedback.event_id == stage.event.id)
    )
    if feedback is None or feedback.audience != "intake":
        raise NotFound(f"No feedback {feedback_id} to the intake desk on this event")
    if feedback.decision is not None or feedback.superseded_at is not None:
        raise Conflict(f"This feedback was already {feedback.decision or 'superseded'}")
    stage.require_status(Status.RESOLVED, action="decide_feedback")
    feedback.decided_by, feedback.decided_at, feedback.decision_note = actor.user_id, now, data.note
    if data.decision == "accept":
        feedback.decision = "accepted"
        await stage.record(
            "feedback_accepted",
            after={"feedback_id": feedback.id},
            note=data.note,
            outbox_type="event.feedback_accepted",
            outbox_data={"feedback_id": feedback.id},
        )
    else:
        feedback.decision = "returned"
        feedback.superseded_at = now
        await _back_to_work(stage, Action.RETURN_FEEDBACK)
        await stage.record(
            "feedback_returned",
            before={"status": Status.RESOLVED},
            after={"feedback_id": feedback.id, "status": stage.event.status},
            note=data.note,
            outbox_type="event.feedback_returned",
            outbox_data={"feedback_id": feedback.id},
        )
    return FeedbackRead.model_validate(feedback)


async def _back_to_work(stage: Stage, action: Action) -> None:
    """Return or reopen: the event goes back to `in_progress`; the next loop needs fresh
    feedback and satisfaction, the old ones stay on the timeline."""
    event = stage.event
    event.status = stage.next_status(action)
    event.resolved_at = event.feedback_at = event.feedback_by = event.review_by = None
    event.reviewed_at = None
    await stage.session.execute(
        sa.update(Feedback)
        .where(Feedback.event_id == event.id, Feedback.superseded_at.is_(None))
        .values(superseded_at=stage.now)
    )
    await stage.session.execute(sa.delete(Satisfaction).where(Satisfaction.event_id == event.id))
    event.satisfaction_score = event.satisfaction_unreachable = None
    # Survey links sent for the old loop must not answer for the new one.
    await stage.session.execute(
        sa.update(SurveyToken)
        .where(SurveyToken.event_id == event.id, SurveyToken.used_at.is_(None))
        .values(expires_at=stage.now)
    )


async def record_satisfaction(
    session: AsyncSession,
    id_or_ref: str,
    data: SatisfactionIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> SatisfactionRead:
    """R5.4, R6.2: the intake desk records the reporter's score, or that the reporter could
    not be reached after the policy's number of attempts."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.RECORD_SATISFACTION)
    stage.require_status(*SATISFACTION_STATUSES, action="record_satisfaction")
    if data.unreachable and (data.attempts or 0) < policy.gates.satisfaction_attempts:
        raise GateNotMet(
            ["satisfaction.attempts"],
            f"Unreachable needs at least {policy.gates.satisfaction_attempts} attempts",
        )
    row = await _save_satisfaction(
        session,
        stage.event,
        score=data.score,
        comment=data.comment,
        unreachable=data.unreachable,
        attempts=data.attempts or 1,
        source="desk",
        recorded_by=actor.user_id,
        now=now,
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
    *,
    score: int | None,
    comment: str | None,
    unreachable: bool,
    attempts: int,
    source: str,
    recorded_by: uuid.UUID | None,
    now: datetime,
) -> Satisfaction:
    if await session.scalar(sa.select(Satisfaction.id).where(Satisfaction.event_id == event.id)):
        raise Conflict("Satisfaction is already recorded for this event")
    event.satisfaction_score, event.satisfaction_unreachable = score, unreachable  # KPI facts
    row = Satisfaction(
        id=uuid7(),
        event_id=event.id,
        score=score,
        comment=comment,
        unreachable=unreachable,
        attempts=attempts,
        source=source,
        recorded_by=recorded_by,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_survey_link(
    session: AsyncSession,
    id_or_ref: str,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    base_url: str,
    if_match: str | None = None,
) -> SurveyLink:
    """R6.2: a login-free, single-use, expiring link the intake desk sends to the customer.
    The token is random and stored only as a hash, like an API key. Creating one bumps the
    version, so `If-Match` holds (issue 10, item 6)."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.RECORD_SATISFACTION)
    stage.require_status(*SATISFACTION_STATUSES, action="create_survey_link")
    if await session.scalar(
        sa.select(Satisfaction.id).where(Satisfaction.event_id == stage.event.id)
    ):
        raise SurveyAnswered("Satisfaction is already recorded for this event")
    token = SURVEY_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=policy.gates.survey_ttl_hours)
    session.add(
        SurveyToken(
            id=uuid7(),
            event_id=stage.event.id,
            token_hash=_token_hash(token),
            expires_at=expires_at,
            created_at=now,
        )
    )
    await stage.record("survey_link", after={"expires_at": expires_at})
    return SurveyLink(
        token=token, url=f"{base_url.rstrip('/')}/v1/surveys/{token}", expires_at=expires_at
    )


async def _survey(session: AsyncSession, token: str, *, lock: bool) -> tuple[SurveyToken, Event]:
    if not token.startswith(SURVEY_TOKEN_PREFIX) or len(token) > 100:
        raise NotFound("No such survey")
    query = (
        sa.select(SurveyToken, Event)
        .join(Event, Event.id == SurveyToken.event_id)
        .where(SurveyToken.token_hash == _token_hash(token))
    )
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound("No such survey")
    return row[0], row[1]


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
    locked = await session.scalar(sa.select(Event).where(Event.id == event.id).with_for_update())
    assert locked is not None
    event = locked
    if event.status not in SATISFACTION_STATUSES:
        raise SurveyExpired("This survey is no longer open")
    await _save_satisfaction(
        session,
        event,
        score=data.score,
        comment=data.comment,
        unreachable=False,
        attempts=1,
        source="survey",
        recorded_by=None,
        now=now,
    )
    survey.used_at = now
    event.version += 1
    event.updated_at = now
    recorder = Recorder(session, event.id, await chain_head(session, event.id))
    await recorder.record(
        at=now,
        actor_id=None,
        action="survey_answer",
        after={"score": data.score},
        note=data.comment,
    )
    await publish(
        session,
        "event.satisfaction_recorded",
        event_id=event.id,
        at=now,
        data={"id": event.id, "ref": event.ref, "score": data.score, "source": "survey"},
    )
    return SurveyRead(
        event_ref=event.ref, title=event.title, answered=True, expires_at=survey.expires_at
    )
