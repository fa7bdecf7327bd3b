"""Intake and reading of events (R3.1, R7.1). Services never commit; the request does."""

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import uuid7
from app.core.errors import Conflict, GateNotMet, NotFound, Unprocessable
from app.core.pagination import Cursor, decode_cursor, encode_cursor
from app.directory.service import department_codes_cached
from app.events import repository, timeline
from app.events.models import Event
from app.events.repository import EventFilter
from app.events.schemas import EventCreate, EventDetail, EventPage, TimelineEntryRead, TimelineRead
from app.events.views import event_detail, event_read
from app.outbox.writer import message
from app.rules import deadlines
from app.rules.lifecycle import EventSnapshot, gate
from app.rules.permissions import sees_internal_records
from app.rules.policy import Policy
from app.rules.vocabulary import Status


async def check_departments(session: AsyncSession, codes: list[str], field: str) -> None:
    """Unknown department codes are a 422 naming each one."""
    unknown = [c for c in codes if c not in await department_codes_cached(session)]
    if unknown:
        raise Unprocessable(
            f"Unknown department code(s): {', '.join(unknown)}",
            errors=[{"field": field, "message": f"unknown department code {c}"} for c in unknown],
        )


async def check_event_exists(session: AsyncSession, event_id: uuid.UUID, field: str) -> None:
    if await session.scalar(sa.select(Event.id).where(Event.id == event_id)) is None:
        raise Unprocessable(
            f"No event {event_id}", errors=[{"field": field, "message": "unknown event"}]
        )


def _intake_gate(data: EventCreate, policy: Policy) -> None:
    """R3.1.2 and product.md section 2: the intake gate, owned by the rules package."""
    snapshot = EventSnapshot(
        status=Status.REPORTED,
        urgent=data.urgent,
        has_title=bool(data.title),
        has_description=bool(data.description),
        has_channel=True,
        reporter_has_name=bool(data.reporter.name),
        reporter_reachable=bool(
            data.reporter.email or data.reporter.phone or data.reporter.external_id
        ),
    )
    missing = gate(Status.REPORTED, snapshot, policy)
    if missing:
        raise GateNotMet(missing, "The reporter needs a name and an email, phone or external id")


async def intake(
    session: AsyncSession, data: EventCreate, *, actor: Principal, policy: Policy, now: datetime
) -> tuple[EventDetail, bool]:
    """Take in an event (R3.1); returns (event, created). A known external_ref returns it."""
    _intake_gate(data, policy)
    if data.involved_departments:
        await check_departments(session, data.involved_departments, "involved_departments")
    if data.recurrence_of is not None:
        await check_event_exists(session, data.recurrence_of, "recurrence_of")

    event_id = uuid7()
    respond_by = deadlines.respond_by(now, urgent=data.urgent, policy=policy)
    values: dict[str, Any] = {
        "id": event_id,
        "status": Status.REPORTED,
        "title": data.title,
        "description": data.description,
        "channel": data.channel,
        "occurred_at": data.occurred_at,
        "reported_at": now,
        "urgent": data.urgent,
        "reporter_name": data.reporter.name,
        "reporter_email": str(data.reporter.email) if data.reporter.email else None,
        "reporter_phone": data.reporter.phone,
        "reporter_external_id": data.reporter.external_id,
        "created_by": actor.user_id,
        "external_system": data.external_ref.system if data.external_ref else None,
        "external_id": data.external_ref.id if data.external_ref else None,
        "involved_departments": list(dict.fromkeys(data.involved_departments)),
        "involved_people": data.involved_people,
        "recurrence_of": data.recurrence_of,
        "intake_department": policy.intake_department,
        "cooperating_departments": [],
        "plan_discussed_with": [],
        "respond_by": respond_by,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    after = {
        "status": Status.REPORTED,
        "title": data.title,
        "channel": data.channel,
        "urgent": data.urgent,
        "respond_by": respond_by,
        "policy_version": policy.version,
        "external_ref": data.external_ref.model_dump() if data.external_ref else None,
    }
    entry = timeline.new_entry(
        event_id=event_id,
        head=timeline.ChainHead(0, timeline.GENESIS),
        at=now,
        actor_id=actor.user_id,
        action="intake",
        after=after,
    )
    summary = {
        "id": event_id,
        "status": Status.REPORTED,
        "urgent": data.urgent,
        "title": data.title,
    }
    outbox = [message("event.reported", event_id=event_id, at=now, data=summary)]
    if data.urgent:
        # R3.1.3: the emergency path starts at once; delivery picks this up.
        outbox.append(
            message(
                "event.urgent",
                event_id=event_id,
                at=now,
                data={**summary, "respond_by": respond_by},
            )
        )

    row = await repository.insert_event(
        session, values=values, timeline=entry, outbox=outbox, ref_year=now.year
    )
    if row is not None:
        return event_detail(row, steps=[]), True
    assert data.external_ref is not None
    existing = await repository.by_external_ref(
        session, data.external_ref.system, data.external_ref.id
    )
    if existing is None:  # pragma: no cover - the conflicting row always exists after the insert
        raise Conflict("external_ref conflict")
    visible = await repository.get_visible(session, str(existing["id"]), actor)
    if visible is None:
        raise Conflict("This external_ref is already used by an event you cannot see")
    return event_detail(visible), False


async def get(session: AsyncSession, id_or_ref: str, *, actor: Principal) -> EventDetail:
    """One event by UUID or ref; 404 when absent or not visible (no existence leak)."""
    row = await repository.get_visible(session, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    return event_detail(row)


async def list_events(
    session: AsyncSession,
    flt: EventFilter,
    *,
    actor: Principal,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> EventPage:
    """A keyset page of the events the caller may see."""
    position = decode_cursor(cursor) if cursor else None
    rows = await repository.list_visible(session, actor, flt, cursor=position, limit=limit, now=now)
    items = [event_read(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(Cursor(last["created_at"], last["id"]))
    return EventPage(items=items, next_cursor=next_cursor)


async def read_timeline(session: AsyncSession, id_or_ref: str, *, actor: Principal) -> TimelineRead:
    """The append-only timeline with a check of its hash chain (R7.1)."""
    row = await repository.get_visible(session, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    entries = await timeline.entries(session, row["id"])
    items = [TimelineEntryRead.model_validate(e) for e in entries]
    if not sees_internal_records(actor.roles):
        # Reporters and integrations see what happened and when, not internal texts.
        items = [i.model_copy(update={"before": None, "after": None, "note": None}) for i in items]
    return TimelineRead(items=items, chain_valid=timeline.verify_chain(row["id"], entries))
