"""SQL for the event aggregate: plain prepared statements on the hot paths (intake, get, list),
SQLAlchemy for the row lock a transition takes (`lock_visible`)."""

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import driver_connection
from app.core.pagination import Cursor
from app.events.models import TEXT_SEARCH, Event, ImprovementAction, PlanStep
from app.events.schemas import EventRead, EventReporterRead
from app.rules.permissions import sees_every_event
from app.rules.views import REPORTER_FEEDBACK_AUDIENCE
from app.rules.vocabulary import Category, Role, Severity, Status

event_table = Event.__table__
step_table = PlanStep.__table__

_steps_json = (
    sa.select(
        sa.func.coalesce(
            sa.func.json_agg(
                pg.aggregate_order_by(
                    sa.func.json_build_object(
                        "id",
                        PlanStep.id,
                        "title",
                        PlanStep.title,
                        "owner_id",
                        PlanStep.owner_id,
                        "due_at",
                        PlanStep.due_at,
                        "status",
                        PlanStep.status,
                        "note",
                        PlanStep.note,
                    ),
                    PlanStep.position,
                )
            ),
            sa.text("'[]'::json"),
        )
    )
    .where(PlanStep.event_id == Event.id)
    .scalar_subquery()
    .label("steps")
)


def visible_to(principal: Principal) -> sa.ColumnElement[bool] | None:
    """SQL form of `rules.permissions.may_see` (product.md section 1); None = no filter."""
    if sees_every_event(principal.roles):
        return None
    clauses: list[sa.ColumnElement[bool]] = [Event.created_by == principal.user_id]
    if principal.has(Role.HANDLER, Role.DEPT_HEAD):
        clauses.append(
            sa.exists().where(PlanStep.event_id == Event.id, PlanStep.owner_id == principal.user_id)
        )
        if principal.department:
            clauses.append(Event.lead_department == principal.department)
            clauses.append(
                Event.cooperating_departments.contains(
                    sa.cast([principal.department], pg.ARRAY(sa.String))
                )
            )
            clauses.append(
                sa.exists().where(
                    ImprovementAction.event_id == Event.id,
                    ImprovementAction.department == principal.department,
                )
            )
    return sa.or_(*clauses)


def _visible(query: sa.Select[Any], principal: Principal) -> sa.Select[Any]:
    clause = visible_to(principal)
    return query if clause is None else query.where(clause)


def id_or_ref_clause(id_or_ref: str) -> sa.ColumnElement[bool]:
    try:
        return Event.id == uuid.UUID(id_or_ref)
    except ValueError:
        return Event.ref == id_or_ref.upper()


EVENT_COLUMNS: Final = tuple(c.name for c in event_table.columns)
# The columns intake writes, with their SQL types: the parameters of an INSERT ... SELECT are
# typed explicitly (tests/api/test_intake.py checks these against the catalog).
INTAKE_COLUMNS: Final = (
    ("id", "uuid"),
    ("status", "varchar"),
    ("title", "varchar"),
    ("description", "text"),
    ("channel", "varchar"),
    ("occurred_at", "timestamptz"),
    ("reported_at", "timestamptz"),
    ("urgent", "boolean"),
    ("reporter_name", "varchar"),
    ("reporter_email", "varchar"),
    ("reporter_phone", "varchar"),
    ("reporter_external_id", "varchar"),
    ("created_by", "uuid"),
    ("external_system", "varchar"),
    ("external_id", "varchar"),
    ("involved_departments", "varchar[]"),
    ("involved_people", "varchar[]"),
    ("recurrence_of", "uuid"),
    ("intake_department", "varchar"),
    ("cooperating_departments", "varchar[]"),
    ("plan_discussed_with", "varchar[]"),
    ("respond_by", "timestamptz"),
    ("version", "integer"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("ref", "varchar"),
)
_N = len(INTAKE_COLUMNS)
_P = {
    name: f"${_N + i}"
    for i, name in enumerate(
        (
            "lock",
            "scope",
            "key",
            "hash",
            "headers",
            "body",
            "expires",
            "tl_id",
            "at",
            "actor",
            "action",
            "after",
            "prev_hash",
            "tl_hash",
            "ob_ids",
            "ob_types",
            "ob_payloads",
        ),
        start=1,
    )
}
# Intake is the hottest write, so it is ONE prepared statement, run on its own (autocommit):
# the Idempotency-Key's advisory lock (not taken: nothing is written, the caller answers 409),
# the key's stored first response, the event, its first timeline entry and its outbox
# messages. A key already stored or an external_ref already known makes the statement fail on
# that unique index, so nothing at all is written and the caller takes the slow path.
INTAKE_SQL: Final = f"""
WITH lk AS (
    SELECT CASE WHEN {_P["lock"]}::text IS NULL THEN true
                ELSE pg_try_advisory_xact_lock(hashtextextended({_P["lock"]}::text, 0)) END AS ok
), idem AS (
    INSERT INTO idempotency_record (scope, key, request_hash, status_code, headers, body,
                                    expires_at)
    SELECT {_P["scope"]}::varchar, {_P["key"]}::varchar, {_P["hash"]}::varchar, 201,
           {_P["headers"]}::jsonb, {_P["body"]}::bytea, {_P["expires"]}::timestamptz
    FROM lk WHERE lk.ok AND {_P["key"]}::varchar IS NOT NULL
), ev AS (
    INSERT INTO event ({", ".join(c for c, _ in INTAKE_COLUMNS)})
    SELECT {", ".join(f"${n}::{t}" for n, (_, t) in enumerate(INTAKE_COLUMNS, start=1))}
    FROM lk WHERE lk.ok
    RETURNING id
), tl AS (
    INSERT INTO timeline_entry (id, event_id, seq, at, actor_id, action, before, after, note,
                                prev_hash, hash)
    SELECT {_P["tl_id"]}::uuid, ev.id, 1, {_P["at"]}::timestamptz, {_P["actor"]}::uuid,
           {_P["action"]}::varchar, NULL, {_P["after"]}::jsonb, NULL,
           {_P["prev_hash"]}::varchar, {_P["tl_hash"]}::varchar
    FROM ev
), ob AS (
    INSERT INTO outbox_message (id, type, event_id, payload, created_at)
    SELECT m.id, m.type, ev.id, m.payload, {_P["at"]}::timestamptz
    FROM ev, unnest({_P["ob_ids"]}::uuid[], {_P["ob_types"]}::varchar[],
                    {_P["ob_payloads"]}::jsonb[]) AS m(id, type, payload)
)
SELECT ok FROM lk
"""
IDEMPOTENCY_CONFLICT: Final = "pk_idempotency_record"
EXTERNAL_REF_CONFLICT: Final = "uq_event_external_ref"
# JSON columns of event rows (`steps` is the get statement's aggregate of plan steps).
_JSON_COLUMNS: Final = (
    "impact",
    "grading",
    "routing",
    "steps",
    "reporter_feedback",
    "satisfaction",
)


def _decode(record: Any) -> dict[str, Any]:
    """A row as a dict, its JSON columns parsed (asyncpg hands json and jsonb over as text).
    orjson: twice as fast as `json` here; the columns hold only values validated on the way
    in (bounded numbers), so its 64-bit integers lose nothing."""
    row = dict(record.items())
    for column in _JSON_COLUMNS:
        value = row.get(column)
        if isinstance(value, str):
            row[column] = orjson.loads(value)
    return row


@dataclass(frozen=True, slots=True)
class StoredFirstResponse:
    """What an `Idempotency-Key` stores with the intake (the response, sent as it is)."""

    scope: str
    key: str
    request_hash: str
    headers: Mapping[str, str]
    body: bytes
    expires_at: datetime


async def insert_event(
    connection: Any,
    *,
    values: Mapping[str, Any],
    timeline: Mapping[str, Any],
    outbox: Sequence[Mapping[str, Any]],
    stored: StoredFirstResponse | None,
) -> bool:
    """Insert the event, its first timeline entry, its outbox messages and the key's stored
    response in ONE statement; False when the key is held by a request still running.

    Raises asyncpg's UniqueViolationError (`constraint_name` IDEMPOTENCY_CONFLICT or
    EXTERNAL_REF_CONFLICT) when the key or the external_ref is already known; nothing is
    written then."""
    ok: bool = await connection.fetchval(
        INTAKE_SQL,
        *(values[c] for c, _ in INTAKE_COLUMNS),
        None if stored is None else stored.scope + ":" + stored.key,
        None if stored is None else stored.scope,
        None if stored is None else stored.key,
        None if stored is None else stored.request_hash,
        None if stored is None else json.dumps(dict(stored.headers)),
        None if stored is None else stored.body,
        None if stored is None else stored.expires_at,
        timeline["id"],
        timeline["at"],
        timeline["actor_id"],
        timeline["action"],
        json.dumps(timeline["after"]),
        timeline["prev_hash"],
        timeline["hash"],
        [m["id"] for m in outbox],
        [m["type"] for m in outbox],
        [json.dumps(m["payload"]) for m in outbox],
    )
    return ok


EVENT_REF_BLOCK: Final = 50


class RefNumbers:
    """Event reference numbers (`EV-2026-000123`), taken from `event_ref_seq` a block at a
    time so that intake knows its ref before its single statement runs. Refs stay unique and
    increase within a process; across workers they interleave, and a restart leaves a gap.

    The next block is fetched in the background once half of the current one is used, so an
    intake waits for it only if the block runs dry (measured: refilling in the request, behind
    the requests queued for a connection, stalled every fiftieth intake and those after it)."""

    def __init__(self, block: int = EVENT_REF_BLOCK) -> None:
        self.block = block
        self._numbers: deque[int] = deque()
        self._refill: asyncio.Task[None] | None = None

    async def next(self, connection_source: Any, *, prefetch: bool = True) -> int:
        """The next number. `prefetch=False` where the source shares one connection with the
        caller (tests, the demo loader): a background refill must not use it meanwhile."""
        if prefetch and len(self._numbers) <= self.block // 2 and self._refill is None:
            self._refill = self._start(connection_source)
        while not self._numbers:
            refill = self._refill or self._start(connection_source)
            self._refill = refill
            await asyncio.shield(refill)
        return self._numbers.popleft()

    def _start(self, connection_source: Any) -> "asyncio.Task[None]":
        task = asyncio.create_task(self._fetch(connection_source))
        # A failed background refill is retried by the next caller; its error is not lost
        # for whoever awaited it, and not reported twice for nobody.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _fetch(self, connection_source: Any) -> None:
        try:
            async with connection_source() as connection:
                rows = await connection.fetch(
                    "SELECT nextval('event_ref_seq') FROM generate_series(1, $1)", self.block
                )
            self._numbers.extend(sorted(r[0] for r in rows))
        finally:
            self._refill = None


ref_numbers = RefNumbers()


def format_ref(year: int, number: int) -> str:
    return f"EV-{year}-{number:06d}"


async def event_id_by_external_ref(connection: Any, system: str, external_id: str) -> Any:
    return await connection.fetchval(
        "SELECT id FROM event WHERE external_system = $1 AND external_id = $2",
        system,
        external_id,
    )


class _Params:
    """Numbered parameters ($1, $2, ...) for a statement built from a whitelist of clauses."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


@dataclass(frozen=True, slots=True)
class _Seen:
    """How a principal sees events, as SQL over `event e` with numbered parameters."""

    where: str | None  # the visibility clause (`rules.permissions.may_see`); None: everything
    involved: str | None  # handlers and heads: they see it other than as its reporter


def _seen(principal: Principal, p: _Params) -> _Seen:
    """`rules.permissions.may_see` as SQL for lists and get by id (the rule of `visible_to`),
    and for handlers and heads whether they are involved (`rules.views.event_view`): no
    `where` is the staff view of every event, no `involved` the reporter view of one's own."""
    if sees_every_event(principal.roles):
        return _Seen(None, None)
    me = p(principal.user_id, "uuid")
    clauses = [f"e.created_by = {me}"]
    involved: list[str] = []
    if principal.has(Role.HANDLER, Role.DEPT_HEAD):
        step = f"EXISTS (SELECT 1 FROM plan_step s WHERE s.event_id = e.id AND s.owner_id = {me})"
        clauses.append(step)
        if principal.department:
            dept = p(principal.department, "varchar")
            department = [
                f"e.lead_department = {dept}",
                f"e.cooperating_departments @> ARRAY[{dept}]",
                "EXISTS (SELECT 1 FROM improvement_action a"
                f" WHERE a.event_id = e.id AND a.department = {dept})",
            ]
            clauses += department
            involved += department[:2]  # the cheap tests first: OR stops at the first true
            involved += [step, department[2]]
        else:
            involved.append(step)
    return _Seen(
        "(" + " OR ".join(clauses) + ")", "(" + " OR ".join(involved) + ")" if involved else None
    )


def _visibility(principal: Principal, p: _Params) -> str | None:
    return _seen(principal, p).where


_STEPS_JSON: Final = """(SELECT coalesce(json_agg(json_build_object(
                   'id', s.id, 'title', s.title, 'owner_id', s.owner_id, 'due_at', s.due_at,
                   'status', s.status, 'note', s.note) ORDER BY s.position), '[]'::json)
        FROM plan_step s WHERE s.event_id = e.id)"""
# What the reporter view adds (rules.views): the feedback given to them, their satisfaction.
_REPORTER_FEEDBACK_JSON: Final = f"""(SELECT coalesce(json_agg(json_build_object(
                   'id', f.id, 'result', f.result, 'measures', f.measures,
                   'prevention_advice', f.prevention_advice, 'created_at', f.created_at)
                   ORDER BY f.created_at, f.id), '[]'::json)
        FROM feedback f
        WHERE f.event_id = e.id AND f.audience = '{REPORTER_FEEDBACK_AUDIENCE}')"""
_SATISFACTION_JSON: Final = """(SELECT json_build_object(
                   'score', t.score, 'comment', t.comment, 'unreachable', t.unreachable)
        FROM satisfaction t WHERE t.event_id = e.id)"""
_GET_SQL: Final = f"""
SELECT {", ".join(f"e.{c}" for c in EVENT_COLUMNS)},
       {_STEPS_JSON} AS steps
FROM event e
WHERE """
# The columns the reporter view shows (app/rules/views.py: REPORTER_EVENT_FIELDS).
REPORTER_COLUMNS: Final = tuple(
    c
    for c in EVENT_COLUMNS
    if c in EventReporterRead.model_fields
    or c.startswith("reporter_")
    or c in ("external_system", "external_id")
)
_GET_REPORTER_SQL: Final = f"""
SELECT {", ".join(f"e.{c}" for c in REPORTER_COLUMNS)},
       {_REPORTER_FEEDBACK_JSON} AS reporter_feedback,
       {_SATISFACTION_JSON} AS satisfaction
FROM event e
WHERE """


def _get_handler_sql(involved: str) -> str:
    """A handler's or head's get: everything, and whether they are involved; when they are
    not (they reported it), what the reporter view adds."""
    return f"""
SELECT {", ".join(f"e.{c}" for c in EVENT_COLUMNS)},
       {_STEPS_JSON} AS steps,
       {involved} AS involved,
       CASE WHEN {involved} THEN NULL ELSE {_REPORTER_FEEDBACK_JSON} END AS reporter_feedback,
       CASE WHEN {involved} THEN NULL ELSE {_SATISFACTION_JSON} END AS satisfaction
FROM event e
WHERE """


def get_query(id_or_ref: str, principal: Principal) -> tuple[str, list[Any]]:
    """The SQL and arguments of one event by UUID or ref, when the principal may see it, with
    what the principal's view needs (rules.views): the plan steps for staff; the feedback
    given to the reporter and their satisfaction for the reporter view.

    The visibility clause is the list's (`_visibility`): its shape follows the caller's roles
    and holds no switch parameters, so each shape is one prepared statement whose generic plan
    PostgreSQL keeps. With `$n::boolean OR ...` switches every execution was planned afresh
    (the custom plan folds them), which cost about 0.1 ms of PostgreSQL CPU per get."""
    p = _Params()
    try:
        match = f"e.id = {p(uuid.UUID(id_or_ref), 'uuid')}"
    except ValueError:
        match = f"e.ref = {p(id_or_ref.upper(), 'varchar')}"
    seen = _seen(principal, p)
    if seen.where is None:  # sees every event: the staff view
        return _GET_SQL + match, p.values
    if seen.involved is None:  # sees only what they reported: the reporter view
        return _GET_REPORTER_SQL + f"{match} AND {seen.where}", p.values
    return _get_handler_sql(seen.involved) + f"{match} AND {seen.where}", p.values


async def get_visible(
    connection: Any, id_or_ref: str, principal: Principal
) -> dict[str, Any] | None:
    """One event row (with its plan steps), or None if absent or not visible."""
    sql, args = get_query(id_or_ref, principal)
    record = await connection.fetchrow(sql, *args)
    if record is None:
        return None
    return _decode(record)


async def sees_event(connection: Any, event_id: uuid.UUID, principal: Principal) -> bool:
    """Whether the principal may see this event (the reading rule, `_visibility`): a link to
    another event (`recurrence_of`, `duplicate_of`) may name only such an event, so that an
    event one may not see and an unknown id answer alike (issue 10, item 8)."""
    p = _Params()
    match = f"e.id = {p(event_id, 'uuid')}"
    visible = _visibility(principal, p)
    sql = "SELECT true FROM event e WHERE " + (f"{match} AND {visible}" if visible else match)
    return bool(await connection.fetchval(sql, *p.values))


async def visible_row(
    session: AsyncSession, id_or_ref: str, principal: Principal
) -> dict[str, Any] | None:
    """`get_visible` inside a session's transaction."""
    return await get_visible(await driver_connection(session), id_or_ref, principal)


async def lock_visible(session: AsyncSession, id_or_ref: str, principal: Principal) -> Event | None:
    """Lock-load the event row for a transition (SELECT ... FOR UPDATE)."""
    query = _visible(sa.select(Event).where(id_or_ref_clause(id_or_ref)), principal)
    return (await session.scalars(query.with_for_update())).one_or_none()


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFilter:
    status: Sequence[Status] = ()
    category: Sequence[Category] = ()
    severity: Sequence[Severity] = ()
    department: str | None = None
    assignee_id: uuid.UUID | None = None
    urgent: bool | None = None
    overdue: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    text: str | None = None
    external_system: str | None = None


# Overdue (product.md section 3): an open deadline of the event's current stage has passed.
_OVERDUE = (
    "((e.status IN ('reported', 'classified') AND e.respond_by < {now})"
    " OR (e.status IN ('assigned', 'in_progress') AND e.resolve_by < {now})"
    " OR (e.status = 'resolved' AND e.feedback_by < {now})"
    " OR (e.status = 'feedback_given' AND e.review_by < {now}))"
)
# What a list item shows (EventRead): fewer columns to read and decode than the whole row.
LIST_COLUMNS: Final = tuple(
    c
    for c in EVENT_COLUMNS
    if c in EventRead.model_fields
    or c.startswith("reporter_")
    or c in ("external_system", "external_id")
)


def list_query(
    principal: Principal,
    flt: EventFilter,
    *,
    cursor: Cursor | None,
    limit: int,
    now: datetime,
) -> tuple[str, list[Any]]:
    """The SQL and arguments of a keyset page, newest first: (created_at, id) strictly after
    the cursor, never OFFSET. Built from fixed clauses; every value is a parameter."""
    p = _Params()
    where: list[str] = []
    seen = _seen(principal, p)
    if seen.where:
        where.append(seen.where)
    if flt.status:
        where.append(f"e.status = ANY({p([str(v) for v in flt.status], 'varchar[]')})")
    if flt.category:
        where.append(f"e.category = ANY({p([str(v) for v in flt.category], 'varchar[]')})")
    if flt.severity:
        where.append(f"e.severity = ANY({p([str(v) for v in flt.severity], 'varchar[]')})")
    if flt.department:
        dept = p(flt.department, "varchar")
        where.append(f"(e.lead_department = {dept} OR e.cooperating_departments @> ARRAY[{dept}])")
    if flt.assignee_id:
        where.append(f"e.assignee_id = {p(flt.assignee_id, 'uuid')}")
    if flt.urgent is not None:
        where.append(f"e.urgent = {p(flt.urgent, 'boolean')}")
    if flt.overdue is not None:
        overdue = _OVERDUE.format(now=p(now, "timestamptz"))
        where.append(overdue if flt.overdue else f"NOT {overdue}")
    if flt.created_from:
        where.append(f"e.created_at >= {p(flt.created_from, 'timestamptz')}")
    if flt.created_to:
        where.append(f"e.created_at < {p(flt.created_to, 'timestamptz')}")
    if flt.text:
        text_search = TEXT_SEARCH.replace("(title)", "(e.title)").replace(
            "description)", "e.description)"
        )
        where.append(f"{text_search} @@ websearch_to_tsquery('simple', {p(flt.text, 'text')})")
    if flt.external_system:
        where.append(f"e.external_system = {p(flt.external_system, 'varchar')}")
    if cursor is not None:
        where.append(
            f"(e.created_at, e.id) < ({p(cursor.created_at, 'timestamptz')},"
            f" {p(cursor.id, 'uuid')})"
        )
    # The columns of the caller's view (rules.views), as in `get_query`.
    if seen.where is None:
        columns = ", ".join(f"e.{c}" for c in LIST_COLUMNS)
    elif seen.involved is None:
        columns = ", ".join(f"e.{c}" for c in REPORTER_COLUMNS)
    else:
        columns = ", ".join(f"e.{c}" for c in LIST_COLUMNS) + f", {seen.involved} AS involved"
    sql = (
        f"SELECT {columns} FROM event e"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY e.created_at DESC, e.id DESC LIMIT {p(limit + 1, 'integer')}"
    )
    return sql, p.values


async def list_visible(
    connection: Any,
    principal: Principal,
    flt: EventFilter,
    *,
    cursor: Cursor | None,
    limit: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A keyset page of the events the caller may see (up to limit + 1 rows)."""
    sql, args = list_query(principal, flt, cursor=cursor, limit=limit, now=now)
    return [_decode(r) for r in await connection.fetch(sql, *args)]
