"""SQL of the stage clocks (issue 12): due clocks claimed for the runner, the ledger of fired
levels, finished cycles, the people a firing names, and the caller's work queue."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import rows_of
from app.directory.models import Department, User
from app.events.models import Event, PlanStep, SlaFiring, StageCycle
from app.rules import queue as queue_rules
from app.rules.clocks import Stage
from app.rules.vocabulary import Status

# The runner's poll: only clocks whose next level is due, through the partial index on
# `sla_next_at` (never a scan of the open events); SKIP LOCKED so that replicas share the work
# and an event a request holds is taken at the next poll.
CLAIM_DUE_SQL = (
    "SELECT id FROM event WHERE sla_next_at <= :now"
    " ORDER BY sla_next_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_CLAIM_DUE = sa.text(CLAIM_DUE_SQL)


async def claim_due_clocks(session: AsyncSession, *, now: datetime, limit: int) -> list[Event]:
    """Lock up to `limit` events whose clock has a level due by `now`, soonest first."""
    ids = list(await session.scalars(_CLAIM_DUE, {"now": now, "limit": limit}))
    if not ids:
        return []
    events = await session.scalars(sa.select(Event).where(Event.id.in_(ids)))
    by_id = {event.id: event for event in events}
    return [by_id[i] for i in ids]


async def fired_levels_of(
    session: AsyncSession, cycles: Sequence[tuple[uuid.UUID, Stage, int]]
) -> dict[uuid.UUID, set[str]]:
    """The levels fired in each of several clock cycles (event, stage, cycle), by event."""
    if not cycles:
        return {}
    rows = await session.execute(
        sa.select(SlaFiring.event_id, SlaFiring.level).where(
            sa.tuple_(SlaFiring.event_id, SlaFiring.stage, SlaFiring.cycle).in_(cycles)
        )
    )
    found: dict[uuid.UUID, set[str]] = {}
    for event_id, level in rows:
        found.setdefault(event_id, set()).add(level)
    return found


async def open_step_owners_of(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, ...]]:
    """The owners of each event's plan steps that are not done or dropped, in plan order."""
    rows = await session.execute(
        sa.select(PlanStep.event_id, PlanStep.owner_id)
        .where(PlanStep.event_id.in_(event_ids), PlanStep.status == "open")
        .order_by(PlanStep.event_id, PlanStep.position)
    )
    found: dict[uuid.UUID, dict[str, None]] = {}
    for event_id, owner in rows:
        found.setdefault(event_id, {})[str(owner)] = None
    return {event_id: tuple(owners) for event_id, owners in found.items()}


_CHAIN_HEADS = sa.text(
    "SELECT DISTINCT ON (event_id) event_id, seq, hash FROM timeline_entry"
    " WHERE event_id = ANY(:ids) ORDER BY event_id, seq DESC"
)


async def chain_heads(
    session: AsyncSession, event_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, str]]:
    """The last timeline entry (seq, hash) of each event, to chain the next one to."""
    rows = await session.execute(_CHAIN_HEADS, {"ids": list(event_ids)})
    return {event_id: (seq, digest) for event_id, seq, digest in rows}


async def fired_levels(
    session: AsyncSession, event_id: uuid.UUID, stage: Stage, cycle: int
) -> set[str]:
    """The levels of one clock cycle that have fired."""
    rows = await session.scalars(
        sa.select(SlaFiring.level).where(
            SlaFiring.event_id == event_id, SlaFiring.stage == stage, SlaFiring.cycle == cycle
        )
    )
    return set(rows)


async def record_firing(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Write one fired level; False when that level of that cycle had fired already."""
    inserted = await session.scalar(
        pg_insert(SlaFiring)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id", "stage", "cycle", "level"])
        .returning(SlaFiring.id)
    )
    return inserted is not None


async def finish_cycle(session: AsyncSession, values: dict[str, Any]) -> None:
    """Write a finished cycle of a stage clock."""
    await session.execute(
        pg_insert(StageCycle)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id", "stage", "cycle"])
    )


async def users_with_roles(
    session: AsyncSession, roles: Sequence[str], department: str | None
) -> list[str]:
    """Active users holding one of `roles`, in `department` when given."""
    query = sa.select(User.id).where(User.active, User.roles.overlap(list(roles)))
    if department is not None:
        query = query.join(Department, Department.id == User.department_id).where(
            Department.code == department
        )
    return [str(user) for user in await session.scalars(query.order_by(User.id))]


async def cycles(session: AsyncSession, event_id: uuid.UUID) -> list[StageCycle]:
    """The finished cycles of an event's clocks, oldest first."""
    return await rows_of(
        session,
        StageCycle,
        StageCycle.event_id == event_id,
        StageCycle.started_at,
        StageCycle.cycle,
    )


async def firings(session: AsyncSession, event_id: uuid.UUID) -> list[SlaFiring]:
    """Every level fired for an event, in firing order."""
    return await rows_of(
        session, SlaFiring, SlaFiring.event_id == event_id, SlaFiring.fired_at, SlaFiring.id
    )


async def set_next_fires(
    session: AsyncSession, next_fires: Sequence[tuple[uuid.UUID, datetime | None]]
) -> None:
    """When the runner must look at each clock next (one statement for the batch). Not a
    change of the events: their version and `updated_at` stay as they are."""
    if not next_fires:
        return
    table = cast(sa.Table, Event.__table__)
    connection = await session.connection()
    await connection.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("event_id"))
        .values(sla_next_at=sa.bindparam("next_at"), updated_at=table.c.updated_at),
        [{"event_id": event_id, "next_at": at} for event_id, at in next_fires],
    )


# What a caller must do now (GET /v1/me/queue), one branch per duty: the assignee's next
# stage, their open plan steps, their department's open improvement actions and those it
# must verify, the escalated events their department leads (heads), and the intake desk's
# classifications, assignments and feedback to accept. Each branch is switched on by a
# parameter so that one statement serves every caller.
def _in(statuses: Iterable[Status]) -> str:
    return "(" + ", ".join(f"'{status.value}'" for status in statuses) + ")"


def _waits_for(table: Mapping[Status, str]) -> str:
    """A CASE over `e.status` from one of `rules.queue`'s tables (enum values: no input)."""
    whens = " ".join(f"WHEN '{status.value}' THEN '{what}'" for status, what in table.items())
    return f"CASE e.status {whens} END"


# The duties of `rules.queue`, as one statement (each branch a duty, `:staff`, `:head` and
# `:desk` from `rules.queue.duties_of`).
_QUEUE = sa.text(
    f"""
    SELECT * FROM (
      SELECT e.id AS event_id, e.ref, e.title,
             {_waits_for(queue_rules.ASSIGNEE_WAITS_FOR)} AS waiting_for,
             e.sla_due_at AS due_at, NULL::uuid AS item_id
      FROM event e
      WHERE e.assignee_id = :me AND e.status IN {_in(queue_rules.ASSIGNEE_WAITS_FOR)}
      UNION ALL
      SELECT e.id, e.ref, e.title, 'step', s.due_at, s.id
      FROM plan_step s JOIN event e ON e.id = s.event_id
      WHERE s.owner_id = :me AND s.status = 'open' AND e.status IN {_in(queue_rules.STEP_WHILE)}
      UNION ALL
      SELECT e.id, e.ref, e.title,
             CASE a.status WHEN 'open' THEN 'action' ELSE 'verification' END, a.due_at, a.id
      FROM improvement_action a JOIN event e ON e.id = a.event_id
      WHERE :staff AND a.department = :department
        AND (a.status = 'open' OR (:head AND a.verified_at IS NULL AND a.completed_by <> :me))
        AND e.status IN {_in(queue_rules.ACTION_WHILE)}
      UNION ALL
      SELECT e.id, e.ref, e.title, 'escalation', e.sla_due_at, NULL
      FROM event e
      WHERE :head AND e.lead_department = :department AND e.sla_stage IS NOT NULL
        AND EXISTS (SELECT 1 FROM sla_firing f
                    WHERE f.event_id = e.id AND f.stage = e.sla_stage AND f.cycle = e.sla_cycle
                      AND f.kind IN ('breach', 'escalation'))
      UNION ALL
      SELECT e.id, e.ref, e.title, {_waits_for(queue_rules.DESK_WAITS_FOR)}, e.respond_by, NULL
      FROM event e
      WHERE :desk AND e.status IN {_in(queue_rules.DESK_WAITS_FOR)}
      UNION ALL
      SELECT e.id, e.ref, e.title, 'feedback_decision', e.sla_due_at, f.id
      FROM feedback f JOIN event e ON e.id = f.event_id
      WHERE :desk AND f.audience = 'intake' AND f.decision IS NULL
        AND f.superseded_at IS NULL AND e.status IN {_in(queue_rules.FEEDBACK_DECISION_WHILE)}
    ) AS q
    ORDER BY q.due_at NULLS LAST, q.ref
    LIMIT :limit
    """
)


async def queue(
    session: AsyncSession,
    *,
    me: uuid.UUID,
    department: str | None,
    duties: queue_rules.Duties,
    limit: int,
) -> list[dict[str, Any]]:
    """The caller's work queue, soonest due first (R1.3.1, R3.3.2, R4.1)."""
    rows = await session.execute(
        _QUEUE,
        {
            "me": me,
            "department": department,
            "staff": duties.department_staff,
            "head": duties.department_head,
            "desk": duties.intake_desk,
            "limit": limit,
        },
    )
    return [dict(row) for row in rows.mappings()]
