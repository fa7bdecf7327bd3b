"""All the SQL of supervision (R5.2, R5.3): the population of a spot check and the facts of
its sampled events (read-only over the event tables), spot checks and their items, orders and
their history."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import rows_of
from app.core.pagination import Cursor, newest_first
from app.directory.models import Department
from app.events.models import Event, PlanStep, TimelineEntry
from app.rules.vocabulary import OrderStatus
from app.supervision.models import (
    Rectification,
    RectificationEntry,
    SpotCheck,
    SpotCheckAnswer,
    SpotCheckItem,
)

# ---- reading events (read-only) ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PopulationFilter:
    """Which events a spot check is drawn from: reported in [start, end), and of the given
    categories, lead departments, severities and statuses (each: any when empty)."""

    start: datetime
    end: datetime
    statuses: Sequence[str]
    categories: Sequence[str] = ()
    departments: Sequence[str] = ()
    severities: Sequence[str] = ()


# The department an event's work belongs to: the lead, or the intake desk before assignment.
_DEPARTMENT = sa.func.coalesce(Event.lead_department, Event.intake_department)

_CLOCK_COLUMNS = (
    Event.status,
    Event.respond_by,
    Event.classified_at,
    Event.assigned_at,
    Event.cancelled_at,
    Event.resolve_by,
    Event.resolved_at,
    Event.feedback_by,
    Event.feedback_at,
    Event.review_by,
    Event.reviewed_at,
)


def _steps() -> Any:
    """Per event: plan steps finished after their due time, and the earliest due time of a
    step still open (the rules decide with `now` whether that is late)."""
    return (
        sa.select(
            sa.func.count()
            .filter(PlanStep.completed_at > PlanStep.due_at)
            .label("steps_finished_late"),
            sa.func.min(PlanStep.due_at).filter(PlanStep.status == "open").label("open_step_due"),
        )
        .where(PlanStep.event_id == Event.id)
        .lateral("steps")
    )


def _count_actions(action: str) -> Any:
    return (
        sa.select(sa.func.count())
        .where(TimelineEntry.event_id == Event.id, TimelineEntry.action == action)
        .scalar_subquery()
    )


async def population(session: AsyncSession, flt: PopulationFilter, *, limit: int) -> list[Any]:
    """The events of the filter in id order (at most `limit`), with what the sampler weighs:
    department, severity, the clocks, reopened or not, the satisfaction score."""
    steps = _steps()
    reopened = sa.exists().where(
        TimelineEntry.event_id == Event.id, TimelineEntry.action == "reopen"
    )
    statement = (
        sa.select(
            Event.id,
            Event.severity,
            _DEPARTMENT.label("department"),
            *_CLOCK_COLUMNS,
            Event.satisfaction_score,
            reopened.label("reopened"),
            steps.c.steps_finished_late,
            steps.c.open_step_due,
        )
        .select_from(Event)
        .join(steps, sa.true())
        .where(
            Event.created_at >= flt.start,
            Event.created_at < flt.end,
            Event.status.in_(flt.statuses),
        )
        .order_by(Event.id)
        .limit(limit)
    )
    if flt.categories:
        statement = statement.where(Event.category.in_(flt.categories))
    if flt.severities:
        statement = statement.where(Event.severity.in_(flt.severities))
    if flt.departments:
        statement = statement.where(_DEPARTMENT.in_(flt.departments))
    return list((await session.execute(statement)).mappings())


async def event_facts(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """The facts behind the pre-filled answers of the sampled events (R5.2), by event id."""
    if not event_ids:
        return {}
    steps = _steps()
    statement = (
        sa.select(
            Event.id,
            Event.ref,
            Event.title,
            Event.intake_department,
            Event.lead_department,
            *_CLOCK_COLUMNS,
            Event.satisfaction_score,
            Event.satisfaction_unreachable,
            sa.func.coalesce(Event.grading["overridden"].as_boolean(), False).label(
                "severity_overridden"
            ),
            sa.func.coalesce(Event.routing["overridden"].as_boolean(), False).label(
                "routing_overridden"
            ),
            _count_actions("reopen").label("reopened"),
            _count_actions("feedback_returned").label("feedback_returned"),
            steps.c.steps_finished_late,
            steps.c.open_step_due,
        )
        .select_from(Event)
        .join(steps, sa.true())
        .where(Event.id.in_(event_ids))
    )
    rows = {row["id"]: dict(row) for row in (await session.execute(statement)).mappings()}
    # The later events that recur each of them (R1.1, R5.4: linked to it by `recurrence_of`,
    # or matched to it at classification), each counted once, in one statement.
    linked = sa.select(Event.id, Event.recurrence_of.label("original")).where(
        Event.recurrence_of.in_(event_ids)
    )
    matched = sa.select(Event.id, Event.recurrence_match_id.label("original")).where(
        Event.recurrence_match_id.in_(event_ids)
    )
    later = sa.union(linked, matched).subquery()
    recurrences = await session.execute(
        sa.select(later.c.original, sa.func.count()).group_by(later.c.original)
    )
    counts = {row[0]: row[1] for row in recurrences}
    for event_id, row in rows.items():
        row["recurrences"] = counts.get(event_id, 0)
    return rows


async def events_brief(
    session: AsyncSession, event_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Ref, title and departments of events, by id."""
    ids = list(event_ids)
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(
            Event.id, Event.ref, Event.title, Event.intake_department, Event.lead_department
        ).where(Event.id.in_(ids))
    )
    return {row["id"]: row for row in rows.mappings()}


async def event_exists(session: AsyncSession, event_id: uuid.UUID) -> bool:
    return bool(await session.scalar(sa.select(sa.exists().where(Event.id == event_id))))


async def department_exists(session: AsyncSession, code: str) -> bool:
    return bool(
        await session.scalar(
            sa.select(sa.exists().where(Department.code == code, Department.active))
        )
    )


# ---- spot checks ---------------------------------------------------------------------------


async def freeze_population(
    session: AsyncSession, spot_check_id: uuid.UUID, members: Sequence[Any]
) -> None:
    """Keep the population a check was drawn from (one statement, however large)."""
    await session.execute(
        sa.text(
            "INSERT INTO spot_check_member "
            "(spot_check_id, event_id, department, severity, weight, risk) "
            "SELECT :spot_check_id, m.event_id, m.department, m.severity, m.weight, "
            "CASE WHEN m.risk = '' THEN ARRAY[]::varchar[] "
            "ELSE string_to_array(m.risk, ',')::varchar[] END "
            "FROM unnest(CAST(:event_ids AS uuid[]), CAST(:departments AS varchar[]), "
            "CAST(:severities AS varchar[]), CAST(:weights AS float8[]), "
            "CAST(:risks AS varchar[])) AS m(event_id, department, severity, weight, risk)"
        ),
        {
            "spot_check_id": spot_check_id,
            "event_ids": [m.event_id for m in members],
            "departments": [m.department for m in members],
            "severities": [m.severity for m in members],
            "weights": [m.weight for m in members],
            "risks": [",".join(m.risk) for m in members],
        },
    )


async def get_spot_check(
    session: AsyncSession, spot_check_id: uuid.UUID, *, for_update: bool = False
) -> SpotCheck | None:
    return await session.get(SpotCheck, spot_check_id, with_for_update=for_update or None)


async def list_spot_checks(
    session: AsyncSession, *, cursor: Cursor | None, limit: int
) -> list[SpotCheck]:
    """Newest first, one keyset page (one more row than `limit` tells there is another)."""
    statement = sa.select(SpotCheck)
    page = newest_first(statement, cursor, limit, SpotCheck.created_at, SpotCheck.id)
    return list(await session.scalars(page))


async def items_of(session: AsyncSession, spot_check_id: uuid.UUID) -> list[SpotCheckItem]:
    where = SpotCheckItem.spot_check_id == spot_check_id
    return await rows_of(session, SpotCheckItem, where, SpotCheckItem.position)


async def item_of(
    session: AsyncSession, spot_check_id: uuid.UUID, item_id: uuid.UUID
) -> SpotCheckItem | None:
    return await session.scalar(
        sa.select(SpotCheckItem).where(
            SpotCheckItem.id == item_id, SpotCheckItem.spot_check_id == spot_check_id
        )
    )


async def answers_of(
    session: AsyncSession, item_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SpotCheckAnswer]]:
    """The answers of the items, by item id."""
    found: dict[uuid.UUID, list[SpotCheckAnswer]] = {item_id: [] for item_id in item_ids}
    if not item_ids:
        return found
    for answer in await session.scalars(
        sa.select(SpotCheckAnswer).where(SpotCheckAnswer.item_id.in_(item_ids))
    ):
        found[answer.item_id].append(answer)
    return found


# ---- rectification orders ------------------------------------------------------------------


async def get_order(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> Rectification | None:
    return await session.get(Rectification, order_id, with_for_update=for_update or None)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilter:
    statuses: Sequence[OrderStatus] = ()
    department: str | None = None
    spot_check_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None


async def list_orders(
    session: AsyncSession,
    flt: OrderFilter,
    *,
    only_department: str | None,
    cursor: Cursor | None,
    limit: int,
) -> list[Rectification]:
    """Orders newest first, one keyset page; `only_department`: the caller's own only."""
    statement = sa.select(Rectification)
    if only_department is not None:
        statement = statement.where(Rectification.department == only_department)
    if flt.department is not None:
        statement = statement.where(Rectification.department == flt.department)
    if flt.statuses:
        statement = statement.where(Rectification.status.in_(flt.statuses))
    if flt.spot_check_id is not None:
        statement = statement.where(Rectification.spot_check_id == flt.spot_check_id)
    if flt.event_id is not None:
        statement = statement.where(Rectification.event_id == flt.event_id)
    page = newest_first(statement, cursor, limit, Rectification.created_at, Rectification.id)
    return list(await session.scalars(page))


async def order_ids_of_check(session: AsyncSession, spot_check_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await session.scalars(
            sa.select(Rectification.id)
            .where(Rectification.spot_check_id == spot_check_id)
            .order_by(Rectification.id)
        )
    )


async def last_entry_seq(session: AsyncSession, order_id: uuid.UUID) -> int:
    """The seq of the order's latest history entry (0 when none); the order row is locked."""
    seq = await session.scalar(
        sa.select(sa.func.max(RectificationEntry.seq)).where(
            RectificationEntry.rectification_id == order_id
        )
    )
    return int(seq or 0)


async def add_entry(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(RectificationEntry).values(**values))


async def entries_of(session: AsyncSession, order_id: uuid.UUID) -> list[RectificationEntry]:
    where = RectificationEntry.rectification_id == order_id
    return await rows_of(session, RectificationEntry, where, RectificationEntry.seq)
