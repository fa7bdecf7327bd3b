"""Reading events in the caller's view (rules.views; R6.1, R6.2, R7.1): one event, a list page,
and what hangs off an event (timeline, checklist, notes, improvement actions). An event the
caller may not see answers 404 (no existence leak)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.clock import utcnow
from app.core.errors import NotFound, Unprocessable
from app.core.pagination import Cursor, InvalidCursor, decode_cursor, encode_cursor
from app.events import clocks, repository, timeline
from app.events.clock_schemas import SlaCyclesRead
from app.events.repository import EventFilter
from app.events.schemas import (
    ActionRead,
    ChecklistItemRead,
    ChecklistRead,
    EventDetail,
    EventPage,
    EventReporterDetail,
    NoteRead,
    TimelineEntryRead,
    TimelineRead,
)
from app.events.snapshot import snapshot_of
from app.events.views import (
    event_detail_as,
    event_read,
    event_read_as,
    event_reporter_read,
    view_of,
)
from app.policy.service import current_policy
from app.rules import lifecycle
from app.rules.views import (
    EventView,
    note_visibilities,
    refused_list_filters,
    shows_checklist_item,
    shows_improvement_actions,
    shows_timeline_details,
    view_by_roles,
)


async def get(
    connection: Any, id_or_ref: str, *, actor: Principal
) -> EventDetail | EventReporterDetail:
    """One event by UUID or ref in the caller's view (staff, or the reporter view for whoever
    sees it only as its reporter); 404 when absent or not visible."""
    row = await repository.get_visible(connection, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    return event_detail_as(row, view_of(row, actor))


def list_view(flt: EventFilter, actor: Principal) -> EventView | None:
    """The view of every listed event when the caller's roles decide it (None: per event,
    for handlers and heads); 422 naming each filter that reads a field the caller's view does
    not show, when they see every event in the reporter view (rules.views; for handlers and
    heads such a filter holds only where they are involved). For the list and its CSV."""
    fixed = view_by_roles(actor.roles)
    if fixed is EventView.REPORTER:
        refused = refused_list_filters(fixed, flt.used(), flt.sort)
        if refused:
            raise Unprocessable(
                "Your view of events does not show the fields these filter on: "
                + ", ".join(refused),
                errors=[
                    {
                        "field": f"query.{name}",
                        "message": "not available in the reporter view",
                        "code": "filter_not_in_view",
                    }
                    for name in refused
                ],
            )
    return fixed


async def list_events(
    connection: Any,
    flt: EventFilter,
    *,
    actor: Principal,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> EventPage:
    """A keyset page of the events the caller may see; 422 naming each filter that reads a
    field the caller's view does not show (`list_view`)."""
    # Checked before the cursor, from the roles alone: no round trip (review of issue 10, 1).
    fixed = list_view(flt, actor)
    position = decode_cursor(cursor) if cursor else None
    if position is not None and position.sort != flt.sort:
        raise InvalidCursor("This cursor belongs to another sort")
    rows = await repository.list_visible(
        connection, actor, flt, cursor=position, limit=limit, now=now
    )
    # One view for the whole page unless the caller is a handler or head (rules.views).
    if fixed is EventView.STAFF:
        items: list[Any] = [event_read(r) for r in rows[:limit]]
    elif fixed is EventView.REPORTER:
        items = [event_reporter_read(r) for r in rows[:limit]]
    else:
        items = [event_read_as(r, view_of(r, actor)) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        position = Cursor(last["sort_key"], last["id"], flt.sort, last.get("rank"))
        next_cursor = encode_cursor(position)
    return EventPage(items=items, next_cursor=next_cursor)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadContext:
    """What a read of one event is made with: the request's session and the caller."""

    session: AsyncSession
    actor: Principal


async def _visible(context: ReadContext, id_or_ref: str) -> tuple[dict[str, Any], EventView]:
    """The event's row and the caller's view of it; 404 when absent or not visible."""
    row = await repository.visible_row(context.session, id_or_ref, context.actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    return row, view_of(row, context.actor)


async def get_timeline(context: ReadContext, id_or_ref: str) -> TimelineRead:
    """The append-only, hash-chained history of the event (R7.1); in the reporter view without
    the entries' before/after, notes and hashes, and without who did it unless it was the
    caller."""
    row, view = await _visible(context, id_or_ref)
    entries = await repository.timeline_entries(context.session, row["id"])
    items = [TimelineEntryRead.model_validate(e) for e in entries]
    if not shows_timeline_details(view):
        # What happened and when, not internal texts nor who among the staff did it (R6.1);
        # nor the hashes of those texts, which would confirm a guess of them offline (review
        # of issue 10, item 2): `chain_valid` is checked here on the whole entries.
        me = context.actor.user_id
        hidden = {"before": None, "after": None, "note": None, "prev_hash": None, "hash": None}
        items = [
            i.model_copy(update=hidden if i.actor_id == me else {**hidden, "actor_id": None})
            for i in items
        ]
    return TimelineRead(items=items, chain_valid=timeline.verify_chain(row["id"], entries))


async def get_checklist(context: ReadContext, id_or_ref: str) -> ChecklistRead:
    """Every gate of the event's path with done/missing and the actions allowed now."""
    # So that a UI needs no rules of its own; the reporter view lists only the gates about the
    # report, the feedback to the reporter and their satisfaction (rules.views).
    row, view = await _visible(context, id_or_ref)
    event = await repository.event_by_id(context.session, row["id"])
    assert event is not None
    snapshot = snapshot_of(event, await repository.loop_records(context.session, event.id))
    policy = await current_policy(context.session)
    return ChecklistRead(
        status=event.status,
        allowed_actions=[a.value for a in lifecycle.allowed_in(event.status)],
        items=[
            ChecklistItemRead(code=i.code, stage=i.stage, done=i.done, detail=i.detail)
            for i in lifecycle.checklist(snapshot, policy)
            if shows_checklist_item(view, i.code)
        ],
    )


async def list_notes(context: ReadContext, id_or_ref: str) -> list[NoteRead]:
    """Notes of the event; reporters and integrations see only notes meant for the reporter."""
    # R6.2; rules.views: whoever sees the event only as its reporter.
    row, view = await _visible(context, id_or_ref)
    notes = await repository.notes_of(context.session, row["id"], note_visibilities(view))
    items = [NoteRead.model_validate(n) for n in notes]
    if view is EventView.REPORTER:
        # Who among the staff wrote it stays in (R6.1; review of issue 10, item 2).
        me = context.actor.user_id
        items = [
            n if n.author_id == me else n.model_copy(update={"author_id": None}) for n in items
        ]
    return items


async def list_actions(context: ReadContext, id_or_ref: str) -> list[ActionRead]:
    """The event's improvement actions and their verification (none in the reporter view)."""
    row, view = await _visible(context, id_or_ref)
    if not shows_improvement_actions(view):
        return []
    actions = await repository.actions_of(context.session, row["id"])
    return [ActionRead.model_validate(a) for a in actions]


async def get_sla(context: ReadContext, id_or_ref: str) -> SlaCyclesRead:
    """Every cycle of the event's stage clocks: started, due, finished, met or breached, and the
    levels of the escalation ladder that fired (R1.3.1, R3.3.2); the reporter view leaves out
    the levels and whom they named."""
    row, view = await _visible(context, id_or_ref)
    event = await repository.event_by_id(context.session, row["id"])
    assert event is not None
    return await clocks.cycles_of(
        context.session, event, now=utcnow(), internal=view is EventView.STAFF
    )
