"""The event aggregate's SQL inside the request's ORM session: the row lock every change takes
(through the one visibility builder), the child records the stages read and write, the
timeline's chain. Nothing here commits; the request does."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.core.auth import Principal
from app.core.db import Base
from app.events.models import (
    Event,
    EventNote,
    Feedback,
    ImprovementAction,
    PlanStep,
    Review,
    Satisfaction,
    SurveyToken,
    TimelineEntry,
)
from app.events.repository.hot import match_clause
from app.events.repository.visibility import NamedParams, seen
from app.rules.vocabulary import Audience

_e = aliased(Event, name="e")
C = TypeVar("C", bound=Base)


async def lock_visible(session: AsyncSession, id_or_ref: str, principal: Principal) -> Event | None:
    """Lock-load the event row for a change (SELECT ... FOR UPDATE) when the principal may see
    it: the same clause as every read (`visibility.seen`), bound by SQLAlchemy."""
    p = NamedParams()
    match = match_clause(id_or_ref, p)
    where = seen(principal, p).where
    clause = sa.text(match if where is None else f"{match} AND {where}").bindparams(**p.bound())
    return (await session.scalars(sa.select(_e).where(clause).with_for_update())).one_or_none()


async def lock_event(session: AsyncSession, event_id: uuid.UUID) -> Event:
    """Lock-load an event by id for a change made without a caller (a customer's survey)."""
    event = await session.scalar(sa.select(Event).where(Event.id == event_id).with_for_update())
    assert event is not None  # the caller holds a row that references it
    return event


async def event_by_id(session: AsyncSession, event_id: uuid.UUID) -> Event | None:
    return await session.get(Event, event_id)


def add(session: AsyncSession, row: object) -> None:
    """A new row, written at the next flush in the request's transaction."""
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


@dataclass(frozen=True, slots=True)
class LoopRecords:
    """The child records the lifecycle gates read (`app/events/snapshot.py`)."""

    steps: Sequence[PlanStep]
    feedback: Sequence[Feedback]  # of the current loop
    review: Review | None
    actions: Sequence[ImprovementAction]
    satisfaction: Satisfaction | None


async def loop_records(session: AsyncSession, event_id: uuid.UUID) -> LoopRecords:
    """What the gates read about an event besides its own row."""
    steps = await session.scalars(sa.select(PlanStep).where(PlanStep.event_id == event_id))
    feedback = await session.scalars(
        sa.select(Feedback).where(Feedback.event_id == event_id, Feedback.superseded_at.is_(None))
    )
    review = await session.get(Review, event_id)
    actions = await session.scalars(
        sa.select(ImprovementAction).where(ImprovementAction.event_id == event_id)
    )
    satisfaction = await session.scalar(
        sa.select(Satisfaction).where(Satisfaction.event_id == event_id)
    )
    return LoopRecords(steps.all(), feedback.all(), review, actions.all(), satisfaction)


async def _children(
    session: AsyncSession,
    model: type[C],
    event_id: uuid.UUID,
    order: InstrumentedAttribute[Any],
    *where: sa.ColumnElement[bool],
) -> list[C]:
    """The event's records of one kind, in `order`."""
    event_of: Any = model.event_id  # type: ignore[attr-defined]
    query = sa.select(model).where(event_of == event_id, *where).order_by(order)
    return list(await session.scalars(query))


async def plan_steps(session: AsyncSession, event_id: uuid.UUID) -> list[PlanStep]:
    """The event's plan steps in plan order."""
    return await _children(session, PlanStep, event_id, PlanStep.position)


async def replace_plan(
    session: AsyncSession, event_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> None:
    """The plan's steps are `rows` from now on (the old plan stays on the timeline)."""
    await session.execute(sa.delete(PlanStep).where(PlanStep.event_id == event_id))
    await session.execute(sa.insert(PlanStep), list(rows))


async def step_of(
    session: AsyncSession, event_id: uuid.UUID, step_id: uuid.UUID
) -> PlanStep | None:
    return await session.scalar(
        sa.select(PlanStep).where(PlanStep.id == step_id, PlanStep.event_id == event_id)
    )


async def notes_of(
    session: AsyncSession, event_id: uuid.UUID, visibilities: Collection[str] | None
) -> list[EventNote]:
    """The event's notes, oldest first; only those of `visibilities` unless None."""
    if visibilities is None:
        return await _children(session, EventNote, event_id, EventNote.id)
    shown = EventNote.visibility.in_(sorted(visibilities))
    return await _children(session, EventNote, event_id, EventNote.id, shown)


async def pending_intake_feedback(session: AsyncSession, event_id: uuid.UUID) -> Feedback | None:
    """Feedback to the intake desk of the current loop still waiting for its decision."""
    return await session.scalar(
        sa.select(Feedback).where(
            Feedback.event_id == event_id,
            Feedback.audience == Audience.INTAKE,
            Feedback.decision.is_(None),
            Feedback.superseded_at.is_(None),
        )
    )


async def feedback_of(
    session: AsyncSession, event_id: uuid.UUID, feedback_id: uuid.UUID
) -> Feedback | None:
    return await session.scalar(
        sa.select(Feedback).where(Feedback.id == feedback_id, Feedback.event_id == event_id)
    )


async def retire_loop_records(session: AsyncSession, event_id: uuid.UUID, now: datetime) -> None:
    """A new loop (`rules.lifecycle.LoopReset`): the current feedback is superseded, the
    satisfaction dropped and unused survey links expire (sent for the old loop, they must not
    answer for the new one)."""
    await session.execute(
        sa.update(Feedback)
        .where(Feedback.event_id == event_id, Feedback.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    await session.execute(sa.delete(Satisfaction).where(Satisfaction.event_id == event_id))
    await session.execute(
        sa.update(SurveyToken)
        .where(SurveyToken.event_id == event_id, SurveyToken.used_at.is_(None))
        .values(expires_at=now)
    )


async def has_satisfaction(session: AsyncSession, event_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(Satisfaction.id).where(Satisfaction.event_id == event_id)
    )
    return found is not None


async def survey(
    session: AsyncSession, token_hash: str, *, lock: bool
) -> tuple[SurveyToken, Event] | None:
    """A survey link by its token's hash, with its event (the link's row locked if `lock`)."""
    query = (
        sa.select(SurveyToken, Event)
        .join(Event, Event.id == SurveyToken.event_id)
        .where(SurveyToken.token_hash == token_hash)
    )
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def review_of(session: AsyncSession, event_id: uuid.UUID) -> Review | None:
    return await session.get(Review, event_id)


async def action_for_update(
    session: AsyncSession, event_id: uuid.UUID, action_id: uuid.UUID
) -> ImprovementAction | None:
    return await session.scalar(
        sa.select(ImprovementAction)
        .where(ImprovementAction.id == action_id, ImprovementAction.event_id == event_id)
        .with_for_update()
    )


async def actions_of(session: AsyncSession, event_id: uuid.UUID) -> list[ImprovementAction]:
    """The event's improvement actions, oldest first."""
    return await _children(session, ImprovementAction, event_id, ImprovementAction.id)


async def chain_head(session: AsyncSession, event_id: uuid.UUID) -> tuple[int, str] | None:
    """(seq, hash) of the event's last timeline entry; None before the first."""
    row = (
        await session.execute(
            sa.select(TimelineEntry.seq, TimelineEntry.hash)
            .where(TimelineEntry.event_id == event_id)
            .order_by(TimelineEntry.seq.desc())
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else (row.seq, row.hash)


async def insert_timeline_entry(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(TimelineEntry).values(**values))


async def timeline_entries(session: AsyncSession, event_id: uuid.UUID) -> list[TimelineEntry]:
    """The event's timeline in its order."""
    return await _children(session, TimelineEntry, event_id, TimelineEntry.seq)
