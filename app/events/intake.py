"""Intake (R3.1): the event, its first timeline entry (R7.1), its outbox messages and the
`Idempotency-Key`'s stored first response, written by ONE statement on a pooled connection so
they commit together or not at all. Services never commit; here the statement is its own."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.core.auth import Principal
from app.core.db import Database, uuid7
from app.core.errors import ExternalRefTaken, GateNotMet, IdempotencyInFlight, Unprocessable
from app.core.idempotency import (
    IDEMPOTENCY_TTL,
    IdempotencyClaim,
    StoredResponse,
    forget_expired,
    store,
    stored_response,
    try_lock,
)
from app.core.search_text import vector_and_words
from app.directory.service import department_codes_in
from app.events import repository, timeline
from app.events.checks import refuse_unknown_departments, unknown_event
from app.events.schemas import EventCreate, EventDetail, EventReporterDetail, ExternalRef
from app.events.views import dump_event, event_detail_as, event_headers, view_of
from app.outbox.writer import message
from app.rules import clocks as clock_rules
from app.rules import deadlines
from app.rules.clocks import Stage
from app.rules.lifecycle import EventSnapshot, gate
from app.rules.permissions import may_name_reporter
from app.rules.policy import Policy
from app.rules.views import event_view
from app.rules.vocabulary import Status


@dataclass(frozen=True, slots=True)
class _Reporter:
    name: str
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    user_id: uuid.UUID | None = None


def _reporter(data: EventCreate, actor: Principal) -> _Reporter | None:
    """Who reported it (product.md section 2): as the request says, or, when it says nothing,
    the caller if they are a person (not a service account), with their name and e-mail
    address from the directory as the caller was loaded (no lookup on the hot path)."""
    given = data.reporter
    if given is not None:
        named = given.user_id
        if named is not None and not may_name_reporter(
            actor.roles, caller=actor.user_id, named=named
        ):
            raise Unprocessable(
                "Only the intake desk, admins and integrations name another user as reporter",
                errors=[{"field": "body.reporter.user_id", "message": "not the caller"}],
            )
        email = str(given.email) if given.email else None
        return _Reporter(given.name, email, given.phone, given.external_id, given.user_id)
    if actor.service_account:
        return None
    return _Reporter(actor.name, actor.email, user_id=actor.user_id)


def _intake_gate(data: EventCreate, reporter: _Reporter | None, policy: Policy) -> _Reporter:
    """R3.1.2 and product.md section 2: the intake gate, owned by the rules package; the
    reporter when it holds."""
    snapshot = EventSnapshot(
        status=Status.REPORTED,
        urgent=data.urgent,
        has_title=bool(data.title),
        has_description=bool(data.description),
        has_channel=True,
        reporter_has_name=reporter is not None and bool(reporter.name),
        reporter_reachable=reporter is not None
        and bool(reporter.email or reporter.phone or reporter.external_id or reporter.user_id),
    )
    missing = gate(Status.REPORTED, snapshot, policy)
    if missing or reporter is None:
        raise GateNotMet(
            missing or ["reporter.name"],
            "The reporter needs a name (a service account must send `reporter`)",
        )
    return reporter


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


@dataclass(frozen=True, slots=True)
class _NewEvent:
    """Everything the intake statement writes, known before it runs."""

    values: dict[str, Any]
    entry: dict[str, Any]
    outbox: list[dict[str, Any]]
    words: list[str]  # of its text, that `search_lexeme` may lack (repository.KnownWords)


def _event_values(
    data: EventCreate,
    reporter: _Reporter,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    ref: str,
) -> dict[str, Any]:
    """The new event's columns (the rest are NULL)."""
    return {
        "id": uuid7(),
        "ref": ref,
        "status": Status.REPORTED,
        "title": data.title,
        "description": data.description,
        "channel": data.channel,
        # In UTC, as the database gives it back: the response is rendered from these values.
        "occurred_at": data.occurred_at and data.occurred_at.astimezone(UTC),
        "reported_at": now,
        "urgent": data.urgent,
        "reporter_name": reporter.name,
        "reporter_email": reporter.email,
        "reporter_phone": reporter.phone,
        "reporter_external_id": reporter.external_id,
        "reporter_user_id": reporter.user_id,
        "created_by": actor.user_id,
        "external_system": data.external_ref.system if data.external_ref else None,
        "external_id": data.external_ref.id if data.external_ref else None,
        "involved_departments": list(dict.fromkeys(data.involved_departments)),
        "involved_people": data.involved_people,
        "recurrence_of": data.recurrence_of,
        "intake_department": policy.intake_department,
        "cooperating_departments": [],
        "plan_discussed_with": [],
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **_respond_clock(data, policy=policy, now=now),
    }


def _respond_clock(data: EventCreate, *, policy: Policy, now: datetime) -> dict[str, Any]:
    """The respond deadline and the clock that starts with the report (R1.3.1, R3.1.3)."""
    respond_by = deadlines.respond_by(now, urgent=data.urgent, policy=policy)
    ladder = clock_rules.rungs(
        policy.escalation, started_at=now, due_at=respond_by, urgent=data.urgent, severity=None
    )
    return {
        "respond_by": respond_by,
        "sla_stage": Stage.RESPOND,
        "sla_cycle": 1,
        "sla_started_at": now,
        "sla_due_at": respond_by,
        "sla_next_at": clock_rules.next_fire_at(ladder, fired=()),
    }


def _new_event(values: dict[str, Any], data: EventCreate, *, policy_version: int) -> _NewEvent:
    """The event (its columns, `values`, with its text as searched), its first timeline entry
    (R7.1) and its outbox messages (R3.1.3)."""
    event_id, respond_by, now = values["id"], values["respond_by"], values["created_at"]
    # README, Search: the text as searched, made here so that intake stays one statement.
    vector, words = vector_and_words(data.title, data.description)
    values = values | {"search_vector": vector}
    after = {
        "status": Status.REPORTED,
        "title": data.title,
        "channel": data.channel,
        "urgent": data.urgent,
        "respond_by": respond_by,
        "policy_version": policy_version,
        "external_ref": data.external_ref.model_dump() if data.external_ref else None,
    }
    entry = timeline.new_entry(
        event_id,
        timeline.ChainHead(0, timeline.GENESIS),
        timeline.Entry(at=now, actor_id=values["created_by"], action="intake", after=after),
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
        urgent = {**summary, "respond_by": respond_by}
        outbox.append(message("event.urgent", event_id=event_id, at=now, data=urgent))
    return _NewEvent(values, entry, outbox, repository.known_words.unknown(words))


async def _check_references(database: Database, data: EventCreate, *, actor: Principal) -> None:
    """Involved departments are known; `recurrence_of` names an event the caller sees."""
    if data.involved_departments:
        known = await department_codes_in(database)
        refuse_unknown_departments(data.involved_departments, known, "involved_departments")
    if data.recurrence_of is not None:
        async with database.connection() as connection:
            found = await repository.sees_event(connection, data.recurrence_of, actor)
        if not found:
            raise unknown_event("recurrence_of")


async def intake(
    database: Database,
    data: EventCreate,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    claim: IdempotencyClaim | None,
) -> IntakeAnswer:
    """Take in an event (R3.1) in one statement; a known external_ref returns that event (200)."""
    reporter = _intake_gate(data, _reporter(data, actor), policy)
    await _check_references(database, data, actor=actor)
    # Refilled in the background only with a pool; else the source is the caller's connection.
    number = await repository.ref_numbers.next(
        database.unqueued_connection, prefetch=database.pool is not None
    )
    ref = repository.format_ref(now.year, number)
    values = _event_values(data, reporter, actor=actor, policy=policy, now=now, ref=ref)
    new = _new_event(values, data, policy_version=policy.version)
    # The response is known before the insert: every column comes from here (the rest are
    # NULL), so the stored first response can be written by the same statement. At intake
    # nobody is involved yet: staff who see every event get the staff view, anyone else the
    # reporter view (rules.views), also in the stored first response.
    row = dict.fromkeys(repository.EVENT_COLUMNS) | new.values | {"steps": []}
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
                    connection,
                    values=new.values,
                    timeline=new.entry,
                    outbox=new.outbox,
                    stored=stored,
                    words=new.words,
                )
        except asyncpg.ForeignKeyViolationError as exc:
            if exc.constraint_name == repository.REPORTER_USER_REFERENCE:
                # Checked by the insert itself, no lookup first (the hot path, issue 16 item 3).
                raise Unprocessable(
                    "No user has this id",
                    errors=[{"field": "body.reporter.user_id", "message": "unknown user"}],
                ) from None
            raise
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
        repository.known_words.learn(new.words)
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


async def _replay(database: Database, claim: IdempotencyClaim) -> IntakeAnswer | None:
    """The key's stored first response (422 if it was for another request); None when there
    is none, after deleting the key's expired record if it was that."""
    async with database.connection() as connection:
        stored = await stored_response(connection, claim)
        if stored is None:
            await forget_expired(connection, claim)
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
            if not await try_lock(connection, claim):
                raise IdempotencyInFlight()
            stored = await stored_response(connection, claim)
            if stored is not None:
                return _replayed(stored)
        event_id: uuid.UUID = await repository.event_id_by_external_ref(
            connection, ref.system, ref.id
        )
        row = await repository.get_visible(connection, str(event_id), actor)
        if row is None:
            # Nothing of that event (its id, ref, status, that it is hidden from the caller):
            # only that the pair is taken, which no answer can hide while it is unique
            # service-wide (README, API conventions; review of issue 10, item 11).
            raise ExternalRefTaken(
                "Another account's event already carries this external_ref: use a system name"
                " of your own",
                errors=[
                    {
                        "field": "body.external_ref",
                        "message": "taken",
                        "code": "external_ref_taken",
                    }
                ],
            )
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
