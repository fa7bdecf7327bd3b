"""Close, cancel and reopen (product.md section 2; R1.3.4)."""

from app.core.errors import Unprocessable
from app.events.schemas import CancelIn, EventDetail, ReopenIn
from app.events.stages.common import Stage
from app.rules.permissions import EventAction
from app.rules.vocabulary import Action, Status


async def close_event(stage: Stage) -> EventDetail:
    """Close the loop; 409 with `missing` listing every unmet gate code."""
    # Only when the loop is closed: every action done and verified effective by someone else,
    # and the reporter's satisfaction recorded (R3.5.2, R6.2).
    stage.require(EventAction.CLOSE)
    target = stage.next_status(Action.CLOSE)
    stage.check_gate(Status.CLOSED, await stage.snapshot(status=target))
    stage.event.status = target
    stage.event.closed_at = stage.now
    await stage.record(
        "close",
        before={"status": Status.REVIEWED},
        after={"status": target},
        outbox_type="event.closed",
    )
    return await stage.detail()


async def cancel_event(stage: Stage, data: CancelIn) -> EventDetail:
    """Cancel before work starts, with a reason (and `duplicate_of` for duplicates)."""
    stage.require(EventAction.CANCEL)
    event = stage.event
    before = {"status": event.status}
    target = stage.next_status(Action.CANCEL)
    if data.duplicate_of is not None:
        if data.duplicate_of == event.id:
            raise Unprocessable("An event cannot duplicate itself")
        await stage.check_linked_event(data.duplicate_of, "duplicate_of")
    event.status, event.cancelled_at, event.cancel_reason = target, stage.now, data.reason
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


async def reopen_event(stage: Stage, data: ReopenIn) -> EventDetail:
    """Back to in_progress from resolved, feedback_given or reviewed, with a reason."""
    # E.g. the reporter is not satisfied. A closed event is never reopened: report a new one
    # with `recurrence_of`.
    stage.require(EventAction.REOPEN)
    before = {"status": stage.event.status}
    await stage.back_to_work(Action.REOPEN)
    await stage.record(
        "reopen",
        before=before,
        after={"status": stage.event.status},
        note=data.reason,
        outbox_type="event.reopened",
    )
    return await stage.detail()
