"""Summary, evaluation and verified improvement (R3.5)."""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import uuid7
from app.core.errors import AppError, Conflict, NotFound
from app.events.models import ImprovementAction, Review
from app.events.schemas import (
    ActionIn,
    ActionRead,
    ActionUpdate,
    EventDetail,
    ReviewIn,
    VerificationIn,
)
from app.events.service import check_departments
from app.events.stages.common import Stage, open_stage
from app.events.timeline import jsonable
from app.rules.lifecycle import ReviewFacts
from app.rules.permissions import EventAction, may
from app.rules.policy import Policy
from app.rules.vocabulary import Action, Status

ACTION_STATUSES = (Status.RESOLVED, Status.FEEDBACK_GIVEN, Status.REVIEWED)


class SelfVerification(AppError):
    status, type, title = (
        403,
        "self-verification",
        "An action is verified by someone other than who did it",
    )


async def put_review(
    session: AsyncSession,
    id_or_ref: str,
    data: ReviewIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """R3.5.1: the summary report (causes, handling, result, lessons, root cause); a major
    event adds its review meeting; important and major need improvement actions (R3.5.2)."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.REVIEW)
    target = stage.next_status(Action.REVIEW)
    facts = ReviewFacts(
        causes=True,
        handling=True,
        result=True,
        lessons=True,
        root_cause_code=data.root_cause_code.value,
        meeting=data.meeting is not None,
    )
    stage.check_gate(Status.REVIEWED, await stage.snapshot(status=target, review=facts))
    event = stage.event
    meeting = jsonable(data.meeting.model_dump()) if data.meeting else None
    review = await session.get(Review, event.id)
    before = None
    values = {
        "causes": data.causes,
        "handling": data.handling,
        "result": data.result,
        "lessons": data.lessons,
        "root_cause_code": data.root_cause_code.value,
        "meeting": meeting,
        "author_id": actor.user_id,
    }
    if review is None:
        session.add(Review(event_id=event.id, **values))
    else:
        before = {"root_cause_code": review.root_cause_code, "lessons": review.lessons}
        for key, value in values.items():
            setattr(review, key, value)
    event.status = target
    event.reviewed_at = now
    await stage.record(
        "review",
        before=before,
        after={**values, "author_id": actor.user_id},
        outbox_type="event.reviewed",
        outbox_data={"root_cause_code": data.root_cause_code},
    )
    return await stage.detail()


async def add_action(
    session: AsyncSession,
    id_or_ref: str,
    data: ActionIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> ActionRead:
    """R3.5.2: an improvement measure with a responsible department and a due time."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.ADD_ACTION)
    stage.require_status(*ACTION_STATUSES, action="add_action")
    await check_departments(session, [data.department], "department")
    action = ImprovementAction(
        id=uuid7(),
        event_id=stage.event.id,
        description=data.description,
        department=data.department,
        due_at=data.due_at,
        status="open",
    )
    session.add(action)
    await stage.record(
        "action_added",
        after={
            "action_id": action.id,
            "description": data.description,
            "department": data.department,
            "due_at": data.due_at,
        },
        outbox_type="event.action_added",
        outbox_data={"action_id": action.id},
    )
    return ActionRead.model_validate(action)


async def _action(stage: Stage, action_id: uuid.UUID) -> ImprovementAction:
    action = await stage.session.scalar(
        sa.select(ImprovementAction)
        .where(ImprovementAction.id == action_id, ImprovementAction.event_id == stage.event.id)
        .with_for_update()
    )
    if action is None:
        raise NotFound(f"No improvement action {action_id} on this event")
    return action


async def complete_action(
    session: AsyncSession,
    id_or_ref: str,
    action_id: uuid.UUID,
    data: ActionUpdate,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> ActionRead:
    """R3.5.2: the responsible department marks the measure done, with evidence."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    action = await _action(stage, action_id)
    if not _may_on_action(stage, EventAction.COMPLETE_ACTION, action):
        stage.require(EventAction.COMPLETE_ACTION)
    stage.require_status(*ACTION_STATUSES, action="complete_action")
    if action.status != "open":
        raise Conflict("The action is already done")
    action.status, action.evidence = "done", data.evidence
    action.completed_by, action.completed_at = actor.user_id, now
    action.verified_effective = action.verified_by = action.verified_at = None
    action.verification_note = None
    await stage.record(
        "action_done",
        after={"action_id": action.id, "evidence": data.evidence},
        outbox_type="event.action_done",
        outbox_data={"action_id": action.id},
    )
    return ActionRead.model_validate(action)


def _may_on_action(stage: Stage, what: EventAction, action: ImprovementAction) -> bool:
    """The action's own department may complete/verify it as if it led the event."""
    return may(what, stage.actor.roles, department=stage.actor.department, lead=action.department)


async def verify_action(
    session: AsyncSession,
    id_or_ref: str,
    action_id: uuid.UUID,
    data: VerificationIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> ActionRead:
    """R3.5.2: checked until it works: someone other than who completed it verifies the
    measure effective; not effective reopens it."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    action = await _action(stage, action_id)
    if not _may_on_action(stage, EventAction.VERIFY_ACTION, action):
        stage.require(EventAction.VERIFY_ACTION)
    stage.require_status(*ACTION_STATUSES, action="verify_action")
    if action.status != "done":
        raise Conflict("Only a done action can be verified")
    if action.completed_by == actor.user_id:
        raise SelfVerification("You completed this action; someone else must verify it")
    action.verified_by, action.verified_at, action.verification_note = actor.user_id, now, data.note
    if data.effective:
        action.verified_effective = True
    else:
        action.verified_effective = False
        action.status = "open"
        action.completed_by = action.completed_at = None
    await stage.record(
        "action_verified",
        after={"action_id": action.id, "effective": data.effective},
        note=data.note,
        outbox_type="event.action_verified",
        outbox_data={"action_id": action.id, "effective": data.effective},
    )
    return ActionRead.model_validate(action)


async def list_actions(stage_session: AsyncSession, event_id: uuid.UUID) -> list[ActionRead]:
    rows = await stage_session.scalars(
        sa.select(ImprovementAction)
        .where(ImprovementAction.event_id == event_id)
        .order_by(ImprovementAction.id)
    )
    return [ActionRead.model_validate(a) for a in rows]
