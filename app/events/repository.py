"""SQL for the event aggregate (SQLAlchemy Core on the hot paths: intake, get, list)."""

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import driver_connection
from app.core.pagination import Cursor
from app.events.models import TEXT_SEARCH, Event, ImprovementAction, PlanStep
from app.rules.permissions import sees_every_event
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
_INTAKE_COLUMNS: Final = (
    "id",
    "status",
    "title",
    "description",
    "channel",
    "occurred_at",
    "reported_at",
    "urgent",
    "reporter_name",
    "reporter_email",
    "reporter_phone",
    "reporter_external_id",
    "created_by",
    "external_system",
    "external_id",
    "involved_departments",
    "involved_people",
    "recurrence_of",
    "intake_department",
    "cooperating_departments",
    "plan_discussed_with",
    "respond_by",
    "version",
    "created_at",
    "updated_at",
)
_N = len(_INTAKE_COLUMNS)
# Intake is the hottest write: one prepared statement (data-modifying CTEs) inserts the event,
# its first timeline entry and its outbox messages in a single round trip. It is plain SQL
# run on the request's own connection and transaction, because building the equivalent
# SQLAlchemy construct per request cost more CPU than everything else in the request.
INTAKE_SQL: Final = f"""
WITH ev AS (
    INSERT INTO event ({", ".join(_INTAKE_COLUMNS)}, ref)
    VALUES ({", ".join(f"${n}" for n in range(1, _N + 1))},
            'EV-' || ${_N + 1}::text || '-' ||
            (SELECT lpad(v::text, greatest(6, length(v::text)), '0')
             FROM nextval('event_ref_seq') AS v))
    ON CONFLICT (external_system, external_id) WHERE external_system IS NOT NULL DO NOTHING
    RETURNING *
), tl AS (
    INSERT INTO timeline_entry (id, event_id, seq, at, actor_id, action, before, after, note,
                                prev_hash, hash)
    SELECT ${_N + 2}, ev.id, 1, ${_N + 3}, ${_N + 4}, ${_N + 5}, NULL, ${_N + 6}::jsonb, NULL,
           ${_N + 7}, ${_N + 8}
    FROM ev
), ob AS (
    INSERT INTO outbox_message (id, type, event_id, payload, created_at)
    SELECT m.id, m.type, ev.id, m.payload, ${_N + 3}
    FROM ev, unnest(${_N + 9}::uuid[], ${_N + 10}::varchar[], ${_N + 11}::jsonb[])
         AS m(id, type, payload)
)
SELECT {", ".join(EVENT_COLUMNS)} FROM ev
"""
_JSONB_COLUMNS: Final = ("impact", "grading", "routing")


def _decode(record: Any) -> dict[str, Any]:
    row = dict(record.items())
    for column in _JSONB_COLUMNS:
        if isinstance(row[column], str):
            row[column] = json.loads(row[column])
    return row


async def insert_event(
    session: AsyncSession,
    *,
    values: Mapping[str, Any],
    timeline: Mapping[str, Any],
    outbox: Sequence[Mapping[str, Any]],
    ref_year: int,
) -> dict[str, Any] | None:
    """Insert the event, its first timeline entry and outbox messages in ONE statement.

    With an `external_ref` already known the insert does nothing and None is returned (the
    caller then reads that event)."""
    connection = await driver_connection(session)
    record = await connection.fetchrow(
        INTAKE_SQL,
        *(values[c] for c in _INTAKE_COLUMNS),
        str(ref_year),
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
    return None if record is None else _decode(record)


async def by_external_ref(
    session: AsyncSession, system: str, external_id: str
) -> sa.RowMapping | None:
    return (
        (
            await session.execute(
                sa.select(event_table, _steps_json).where(
                    Event.external_system == system, Event.external_id == external_id
                )
            )
        )
        .mappings()
        .one_or_none()
    )


_GET_SQL: Final = f"""
SELECT {", ".join(f"e.{c}" for c in EVENT_COLUMNS)},
       (SELECT coalesce(json_agg(json_build_object(
                   'id', s.id, 'title', s.title, 'owner_id', s.owner_id, 'due_at', s.due_at,
                   'status', s.status, 'note', s.note) ORDER BY s.position), '[]'::json)
        FROM plan_step s WHERE s.event_id = e.id) AS steps
FROM event e
WHERE {{match}} AND ($2::boolean OR e.created_by = $3
       OR ($4::boolean AND EXISTS (SELECT 1 FROM plan_step p
                                   WHERE p.event_id = e.id AND p.owner_id = $3))
       OR ($4::boolean AND $5::varchar IS NOT NULL AND (
             e.lead_department = $5 OR e.cooperating_departments @> ARRAY[$5::varchar]
             OR EXISTS (SELECT 1 FROM improvement_action a
                        WHERE a.event_id = e.id AND a.department = $5))))
"""
# The visibility rule of `visible_to`, as plain SQL for the hottest read (get by id or ref).
GET_BY_ID_SQL: Final = _GET_SQL.format(match="e.id = $1::uuid")
GET_BY_REF_SQL: Final = _GET_SQL.format(match="e.ref = $1::varchar")


async def get_visible(
    session: AsyncSession, id_or_ref: str, principal: Principal
) -> dict[str, Any] | None:
    """One event row (with its plan steps), or None if absent or not visible."""
    try:
        key: Any = uuid.UUID(id_or_ref)
        sql = GET_BY_ID_SQL
    except ValueError:
        key, sql = id_or_ref.upper(), GET_BY_REF_SQL
    connection = await driver_connection(session)
    record = await connection.fetchrow(
        sql,
        key,
        sees_every_event(principal.roles),
        principal.user_id,
        principal.has(Role.HANDLER, Role.DEPT_HEAD),
        principal.department,
    )
    if record is None:
        return None
    row = _decode(record)
    if isinstance(row["steps"], str):
        row["steps"] = json.loads(row["steps"])
    return row


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


def overdue_clause(now: datetime) -> sa.ColumnElement[bool]:
    """An open deadline of the event's current stage has passed (product.md section 3)."""
    return sa.or_(
        sa.and_(Event.status.in_([Status.REPORTED, Status.CLASSIFIED]), Event.respond_by < now),
        sa.and_(Event.status.in_([Status.ASSIGNED, Status.IN_PROGRESS]), Event.resolve_by < now),
        sa.and_(Event.status == Status.RESOLVED, Event.feedback_by < now),
        sa.and_(Event.status == Status.FEEDBACK_GIVEN, Event.review_by < now),
    )


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    flt: EventFilter,
    *,
    cursor: Cursor | None,
    limit: int,
    now: datetime,
) -> list[sa.RowMapping]:
    """A keyset page, newest first: (created_at, id) strictly after the cursor; never OFFSET."""
    query = _visible(sa.select(event_table), principal)
    if flt.status:
        query = query.where(Event.status.in_(flt.status))
    if flt.category:
        query = query.where(Event.category.in_(flt.category))
    if flt.severity:
        query = query.where(Event.severity.in_(flt.severity))
    if flt.department:
        query = query.where(
            sa.or_(
                Event.lead_department == flt.department,
                Event.cooperating_departments.contains(
                    sa.cast([flt.department], pg.ARRAY(sa.String))
                ),
            )
        )
    if flt.assignee_id:
        query = query.where(Event.assignee_id == flt.assignee_id)
    if flt.urgent is not None:
        query = query.where(Event.urgent.is_(flt.urgent))
    if flt.overdue is not None:
        clause = overdue_clause(now)
        query = query.where(clause if flt.overdue else sa.not_(clause))
    if flt.created_from:
        query = query.where(Event.created_at >= flt.created_from)
    if flt.created_to:
        query = query.where(Event.created_at < flt.created_to)
    if flt.text:
        query = query.where(
            sa.literal_column(TEXT_SEARCH).op("@@")(
                sa.func.websearch_to_tsquery("simple", flt.text)
            )
        )
    if flt.external_system:
        query = query.where(Event.external_system == flt.external_system)
    if cursor is not None:
        query = query.where(
            sa.tuple_(Event.created_at, Event.id)
            < sa.tuple_(sa.literal(cursor.created_at), sa.literal(cursor.id))
        )
    query = query.order_by(Event.created_at.desc(), Event.id.desc()).limit(limit + 1)
    return list((await session.execute(query)).mappings().all())
