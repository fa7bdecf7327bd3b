"""Close, cancel, reopen and the checklist (product.md section 2; R1.3.4)."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.errors import NotFound, Unprocessable
from app.events import repository
from app.events.models import Event
from app.events.schemas import CancelIn, ChecklistItemRead, ChecklistRead, EventDetail, ReopenIn
from app.events.service import check_linked_event
from app.events.stages.common import build_snapshot, open_stage
from app.events.stages.feedback import _back_to_work
from app.events.views import view_of
from app.rules import lifecycle
from app.rules.permissions import EventAction
from app.rules.policy import Policy
from app.rules.views import shows_checklist_item
from app.rules.vocabulary import Action, Status


async def close(
    session: AsyncSession,
    id_or_ref: str,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """Close only when the loop is closed: every action done and verified effective by
    someone else, and the reporter's satisfaction recorded (R3.5.2, R6.2)."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.CLOSE)
    target = stage.next_status(Action.CLOSE)
    stage.check_gate(Status.CLOSED, await stage.snapshot(status=target))
    stage.event.status = target
    stage.event.closed_at = now
    await stage.record(
        "close",
        before={"status": Status.REVIEWED},
        after={"status": target},
        outbox_type="event.closed",
    )
    return await stage.detail()


async def cancel(
    session: AsyncSession,
    id_or_ref: str,
    data: CancelIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """Cancel before work starts, with a reason; a duplicate names the event it duplicates."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.CANCEL)
    before = {"status": stage.event.status}
    target = stage.next_status(Action.CANCEL)
    if data.duplicate_of is not None:
        if data.duplicate_of == stage.event.id:
            raise Unprocessable("An event cannot duplicate itself")
        await check_linked_event(session, data.duplicate_of, "duplicate_of", actor=actor)
    event = stage.event
    event.status, event.cancelled_at, event.cancel_reason = target, now, data.reason
    event.duplicate_of = data.duplicate_of
    await stage.record(
        "cancel",
        before=before,
        after={"status": target, "duplicate_of": data.duplicate_of},
        note=data.reason,
        outbox_type="event.cancelled",
        outbox_data={"duplicate_of": data.duplicate_of},
    )
    return await stage.detail()


async def reopen(
    session: AsyncSession,
    id_or_ref: str,
    data: ReopenIn,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None,
) -> EventDetail:
    """Back to work from resolved, feedback_given or reviewed (e.g. the reporter is not
    satisfied). A closed event is never reopened: report a new one with `recurrence_of`."""
    stage = await open_stage(
        session, id_or_ref, actor=actor, policy=policy, now=now, if_match=if_match
    )
    stage.require(EventAction.REOPEN)
    before = {"status": stage.event.status}
    await _back_to_work(stage, Action.REOPEN)
    await stage.record(
        "reopen",
        before=before,
        after={"status": stage.event.status},
        note=data.reason,
        outbox_type="event.reopened",
    )
    return await stage.detail()


async def read_checklist(
    session: AsyncSession, id_or_ref: str, *, actor: Principal, policy: Policy
) -> ChecklistRead:
    """Every gate of the event's path with done or missing, so a UI needs no rules of its own;
    the reporter view lists only the gates about the report, the feedback to the reporter and
    their satisfaction (rules.views)."""
    row = await repository.visible_row(session, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    view = view_of(row, actor)
    event = await session.get(Event, row["id"])
    assert event is not None
    snapshot = await build_snapshot(session, event)
    return ChecklistRead(
        status=event.status,
        allowed_actions=[a.value for a in lifecycle.actions_from(event.status)],
        items=[
            ChecklistItemRead(code=i.code, stage=i.stage, done=i.done, detail=i.detail)
            for i in lifecycle.checklist(snapshot, policy)
            if shows_checklist_item(view, i.code)
        ],
    )
