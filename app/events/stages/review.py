"""Summary, evaluation and verified improvement (R3.5)."""

import uuid

from app.core.errors import AppError, Conflict, NotFound
from app.core.jsonable import jsonable
from app.events import repository
from app.events.models import ImprovementAction, Review
from app.events.schemas import (
    ActionIn,
    ActionRead,
    ActionUpdate,
    EventDetail,
    ReviewIn,
    VerificationIn,
)
from app.events.stages.common import Stage
from app.rules.lifecycle import ReviewFacts
from app.rules.permissions import EventAction
from app.rules.vocabulary import Action, ActionStatus, Activity, Status


class SelfVerification(AppError):
    status, type, title = (
        403,
        "self-verification",
        "An action is verified by someone other than who did it",
    )


async def put_review(stage: Stage, data: ReviewIn) -> EventDetail:
    """The summary report (R3.5.1); major events add the review meeting; important and major
    need improvement actions first (R3.5.2)."""
    # Causes, handling, result, lessons and a root-cause code.
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
    review = await repository.review_of(stage.session, event.id)
    before = None
    values = {
        "causes": data.causes,
        "handling": data.handling,
        "result": data.result,
        "lessons": data.lessons,
        "root_cause_code": data.root_cause_code.value,
        "meeting": meeting,
        "author_id": stage.actor.user_id,
    }
    if review is None:
        repository.add(stage.session, Review(event_id=event.id, **values))
    else:
        before = {"root_cause_code": review.root_cause_code, "lessons": review.lessons}
        for key, value in values.items():
            setattr(review, key, value)
    event.status = target
    event.reviewed_at = stage.now
    await stage.record(
        "review",
        before=before,
        after=values,
        outbox_type="event.reviewed",
        outbox_data={"root_cause_code": data.root_cause_code},
    )
    return await stage.detail()


async def add_action(stage: Stage, data: ActionIn) -> ActionRead:
    """Add an improvement action with department and due time (R3.5.2)."""
    stage.require(EventAction.ADD_ACTION)
    stage.allow(Activity.ADD_ACTION)
    await stage.check_departments([data.department], "department")
    action = stage.add_child(
        ImprovementAction,
        description=data.description,
        department=data.department,
        due_at=data.due_at,
        status=ActionStatus.OPEN,
    )
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


async def _action(
    stage: Stage, action_id: uuid.UUID, what: EventAction, activity: Activity
) -> ImprovementAction:
    """The action, locked (404 when it is not this event's); its own department counts as the
    lead for `what` (R3.5.2), and the event's status must allow `activity`."""
    action = await repository.action_for_update(stage.session, stage.event.id, action_id)
    if action is None:
        raise NotFound(f"No improvement action {action_id} on this event")
    stage.require(what, action_department=action.department)
    stage.allow(activity)
    return action


async def complete_action(stage: Stage, action_id: uuid.UUID, data: ActionUpdate) -> ActionRead:
    """Mark an improvement action done, with evidence."""
    # R3.5.2: by the responsible department (the action's own counts as the lead).
    action = await _action(stage, action_id, EventAction.COMPLETE_ACTION, Activity.COMPLETE_ACTION)
    if action.status != ActionStatus.OPEN:
        raise Conflict("The action is already done")
    action.status, action.evidence = ActionStatus.DONE, data.evidence
    action.completed_by, action.completed_at = stage.actor.user_id, stage.now
    action.verified_effective = action.verified_by = action.verified_at = None
    action.verification_note = None
    await stage.record(
        "action_done",
        after={"action_id": action.id, "evidence": data.evidence},
        outbox_type="event.action_done",
        outbox_data={"action_id": action.id},
    )
    return ActionRead.model_validate(action)


async def verify_action(stage: Stage, action_id: uuid.UUID, data: VerificationIn) -> ActionRead:
    """Verify a done action effective or not (not by who completed it); not effective reopens it."""
    # R3.5.2: checked until it works.
    action = await _action(stage, action_id, EventAction.VERIFY_ACTION, Activity.VERIFY_ACTION)
    if action.status != ActionStatus.DONE:
        raise Conflict("Only a done action can be verified")
    if action.completed_by == stage.actor.user_id:
        raise SelfVerification("You completed this action; someone else must verify it")
    action.verified_by, action.verified_at = stage.actor.user_id, stage.now
    action.verification_note = data.note
    if data.effective:
        action.verified_effective = True
    else:
        action.verified_effective = False
        action.status = ActionStatus.OPEN
        action.completed_by = action.completed_at = None
    await stage.record(
        "action_verified",
        after={"action_id": action.id, "effective": data.effective},
        note=data.note,
        outbox_type="event.action_verified",
        outbox_data={"action_id": action.id, "effective": data.effective},
    )
    return ActionRead.model_validate(action)
