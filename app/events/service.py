"""Intake and reading of events (R3.1, R7.1). Services never commit; the request does."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import Database, driver_connection, uuid7
from app.core.errors import Conflict, GateNotMet, IdempotencyInFlight, NotFound, Unprocessable
from app.core.idempotency import (
    DELETE_EXPIRED_SQL,
    IDEMPOTENCY_TTL,
    LOCK_SQL,
    IdempotencyClaim,
    StoredResponse,
    store,
    stored_response,
)
from app.core.pagination import Cursor, decode_cursor, encode_cursor
from app.directory.service import department_codes_cached, department_codes_in
from app.events import repository, timeline
from app.events.repository import EventFilter
from app.events.schemas import (
    EventCreate,
    EventDetail,
    EventPage,
    EventReporterDetail,
    ExternalRef,
    TimelineEntryRead,
    TimelineRead,
)
from app.events.views import (
    event_detail_as,
    event_headers,
    event_read,
    event_read_as,
    event_reporter_read,
    view_of,
)
from app.outbox.writer import message
from app.rules import deadlines
from app.rules.lifecycle import EventSnapshot, gate
from app.rules.policy import Policy
from app.rules.views import EventView, event_view, shows_timeline_details, view_by_roles
from app.rules.vocabulary import Status


async def check_departments(session: AsyncSession, codes: list[str], field: str) -> None:
    """Unknown department codes are a 422 naming each one."""
    _unknown_departments(codes, await department_codes_cached(session), field)


def _unknown_departments(codes: list[str], known: frozenset[str], field: str) -> None:
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise Unprocessable(
            f"Unknown department code(s): {', '.join(unknown)}",
            errors=[{"field": field, "message": f"unknown department code {c}"} for c in unknown],
        )


async def check_linked_event(
    session: AsyncSession, event_id: uuid.UUID, field: str, *, actor: Principal
) -> None:
    """A link to another event names one the caller may see (issue 10, item 8)."""
    connection = await driver_connection(session)
    if not await repository.sees_event(connection, event_id, actor):
        raise _unknown_event(field)


def _unknown_event(field: str) -> Unprocessable:
    """One problem for an unknown id and an event the caller may not see, without the id:
    reading answers both with the same 404 (product.md section 1, no existence leak)."""
    return Unprocessable(
        "No event you can see has this id",
        errors=[{"field": field, "message": "no event you can see has this id"}],
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


@dataclass(frozen=True, slots=True)
class IntakeAnswer:
    """The response to an intake, rendered once: it is what an `Idempotency-Key` stores."""

    status: int  # 201 created, 200 the external_ref is known, or a replayed first response
    headers: dict[str, str]
    body: bytes


def _answer(event: EventDetail | EventReporterDetail, status: int) -> IntakeAnswer:
    headers = {"content-type": "application/json"}
    headers |= {k.lower(): v for k, v in event_headers(event.id, event.version).items()}
    return IntakeAnswer(status, headers, dump_event(event))


_EVENT_JSON = TypeAdapter(EventDetail)
_REPORTER_JSON = TypeAdapter(EventReporterDetail)


def dump_event(event: EventDetail | EventReporterDetail) -> bytes:
    """An event in the caller's view as JSON (each view's own serialiser, no union to try)."""
    if isinstance(event, EventDetail):
        return _EVENT_JSON.dump_json(event)
    return _REPORTER_JSON.dump_json(event)


async def intake(
    database: Database,
    data: EventCreate,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    claim: IdempotencyClaim | None,
) -> IntakeAnswer:
    """Take in an event (R3.1) in one statement; a known external_ref returns that event (200).

    The hottest write path: no session, no transaction round trips. The event, its first
    timeline entry (R7.1), its outbox messages and the `Idempotency-Key`'s stored response are
    written by one statement on a pooled connection, so they commit together or not at all."""
    _intake_gate(data, policy)
    if data.involved_departments:
        known = await department_codes_in(database)
        _unknown_departments(data.involved_departments, known, "involved_departments")
    if data.recurrence_of is not None:
        async with database.connection() as connection:
            found = await repository.sees_event(connection, data.recurrence_of, actor)
        if not found:
            raise _unknown_event("recurrence_of")

    event_id = uuid7()
    respond_by = deadlines.respond_by(now, urgent=data.urgent, policy=policy)
    # Refilled in the background only with a pool; else the source is the caller's connection.
    number = await repository.ref_numbers.next(
        database.unqueued_connection, prefetch=database.pool is not None
    )
    ref = repository.format_ref(now.year, number)
    values: dict[str, Any] = {
        "id": event_id,
        "ref": ref,
        "status": Status.REPORTED,
        "title": data.title,
        "description": data.description,
        "channel": data.channel,
        # In UTC, as the database gives it back: the response is rendered from these values.
        "occurred_at": data.occurred_at and data.occurred_at.astimezone(UTC),
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

    # The response is known before the insert: every column comes from here (the rest are
    # NULL), so the stored first response can be written by the same statement.
    # At intake nobody is involved yet: staff who see every event get the staff view, anyone
    # else the reporter view (rules.views), also in the stored first response.
    row = dict.fromkeys(repository.EVENT_COLUMNS) | values | {"steps": []}
    answer = _answer(event_detail_as(row, event_view(actor.roles, involved=False)), 201)
    stored = None
    if claim is not None:
        stored = repository.StoredFirstResponse(
            claim.scope,
            claim.key,
            claim.request_hash,
            answer.headers,
            answer.body,
            now + IDEMPOTENCY_TTL,
        )
    for attempt in range(2):
        try:
            async with database.connection() as connection:
                locked = await repository.insert_event(
                    connection, values=values, timeline=entry, outbox=outbox, stored=stored
                )
        except asyncpg.UniqueViolationError as exc:
            if claim is not None:
                replay = await _replay(database, claim)
                if replay is not None:
                    return replay
            if exc.constraint_name == repository.EXTERNAL_REF_CONFLICT and data.external_ref:
                return await _known_external_ref(database, data.external_ref, actor, claim, now)
            if exc.constraint_name == repository.IDEMPOTENCY_CONFLICT and attempt == 0:
                continue  # the key's record had expired; `_replay` deleted it
            raise
        if not locked:
            raise IdempotencyInFlight()
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


async def _replay(database: Database, claim: IdempotencyClaim) -> IntakeAnswer | None:
    """The key's stored first response (422 if it was for another request); None when there
    is none, after deleting the key's expired record if it was that."""
    async with database.connection() as connection:
        stored = await stored_response(connection, claim)
        if stored is None:
            await connection.execute(DELETE_EXPIRED_SQL, claim.scope, claim.key)
            return None
    return _replayed(stored)


def _replayed(stored: StoredResponse) -> IntakeAnswer:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in stored.headers}
    return IntakeAnswer(stored.status, headers, stored.body)


async def _known_external_ref(
    database: Database,
    ref: ExternalRef,
    actor: Principal,
    claim: IdempotencyClaim | None,
    now: datetime,
) -> IntakeAnswer:
    """product.md section 4: a known external_ref answers 200 with that event, never a copy.

    With a key: in one transaction holding the key's lock, so of two requests with the same
    key one stores the answer and the other replays it (or gets 422 for another body)."""
    async with database.connection() as connection, connection.transaction():
        if claim is not None:
            if not await connection.fetchval(LOCK_SQL, claim.lock_key):
                raise IdempotencyInFlight()
            stored = await stored_response(connection, claim)
            if stored is not None:
                return _replayed(stored)
        event_id = await repository.event_id_by_external_ref(connection, ref.system, ref.id)
        row = await repository.get_visible(connection, str(event_id), actor)
        if row is None:
            raise Conflict("This external_ref is already used by an event you cannot see")
        answer = _answer(event_detail_as(row, view_of(row, actor)), 200)
        if claim is not None:
            await store(
                connection,
                claim,
                status=answer.status,
                headers=answer.headers,
                body=answer.body,
                now=now,
            )
    return answer


async def get(
    connection: Any, id_or_ref: str, *, actor: Principal
) -> EventDetail | EventReporterDetail:
    """One event by UUID or ref in the caller's view (rules.views: staff, or the reporter view
    for whoever sees it only as its reporter); 404 when absent or not visible (no existence
    leak)."""
    row = await repository.get_visible(connection, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    return event_detail_as(row, view_of(row, actor))


async def list_events(
    connection: Any,
    flt: EventFilter,
    *,
    actor: Principal,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> EventPage:
    """A keyset page of the events the caller may see."""
    position = decode_cursor(cursor) if cursor else None
    rows = await repository.list_visible(
        connection, actor, flt, cursor=position, limit=limit, now=now
    )
    # One view for the whole page unless the caller is a handler or head (rules.views).
    fixed = view_by_roles(actor.roles)
    if fixed is EventView.STAFF:
        items: list[Any] = [event_read(r) for r in rows[:limit]]
    elif fixed is EventView.REPORTER:
        items = [event_reporter_read(r) for r in rows[:limit]]
    else:
        items = [event_read_as(r, view_of(r, actor)) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(Cursor(last["created_at"], last["id"]))
    return EventPage(items=items, next_cursor=next_cursor)


async def read_timeline(session: AsyncSession, id_or_ref: str, *, actor: Principal) -> TimelineRead:
    """The append-only timeline with a check of its hash chain (R7.1)."""
    row = await repository.visible_row(session, id_or_ref, actor)
    if row is None:
        raise NotFound(f"No event {id_or_ref}")
    entries = await timeline.entries(session, row["id"])
    items = [TimelineEntryRead.model_validate(e) for e in entries]
    if not shows_timeline_details(view_of(row, actor)):
        # The reporter view: what happened and when, not internal texts nor who among the
        # staff did it (rules.views; R6.1).
        hidden = {"before": None, "after": None, "note": None}
        items = [
            i.model_copy(
                update=hidden if i.actor_id == actor.user_id else {**hidden, "actor_id": None}
            )
            for i in items
        ]
    return TimelineRead(items=items, chain_valid=timeline.verify_chain(row["id"], entries))
