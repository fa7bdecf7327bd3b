"""Stage clocks and the escalation ladder at work (R1.1, R1.3.1, R3.3.2, R4.1; issue 12).

`sync` runs after every change of an event, in its transaction: it finishes the running cycle
when the stage is done, starts the next, and keeps `sla_next_at`, the next time one of the
ladder's levels is due, so that the runner's poll reads only clocks that need it. `fire_due` is
the runner's job: it claims the due clocks (`FOR UPDATE SKIP LOCKED`), fires each due level
once (a ledger row unique per event, stage, cycle and level), and writes its timeline entry and
its outbox message (`event.sla_warning`, `event.sla_breached`, `event.escalated`) in the same
transaction, naming who must act.

The ladder is that of the policy version the event was graded under (the version in force at
intake until it is graded): a policy change never moves the clocks of events already graded.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import metrics
from app.core.auth import Principal
from app.core.responses import from_row
from app.events import clock_repository as repository
from app.events import timeline
from app.events.clock_schemas import (
    LevelFiredRead,
    QueueItem,
    QueueRead,
    SlaCycleRead,
    SlaCyclesRead,
)
from app.events.models import Event
from app.events.views import message_head
from app.outbox.writer import publish
from app.policy.service import current_policy, policy_version
from app.rules import clocks, deadlines
from app.rules.clocks import Audience, ClockFacts, Rung, Stage
from app.rules.policy import Policy
from app.rules.queue import duties_of
from app.rules.vocabulary import Severity, Status

# Events handled per piece of the runner's job (one transaction).
BATCH: Final = 100
# The longest queue a caller is shown.
QUEUE_LIMIT: Final = 200
# The timeline action of each kind of level.
TIMELINE_ACTION: Final = {
    "warning": "sla_warning",
    "breach": "sla_breached",
    "escalation": "escalated",
}


def _ladder(event: Event, policy: Policy) -> tuple[Rung, ...]:
    if event.sla_started_at is None or event.sla_due_at is None:
        return ()
    return clocks.rungs(
        policy.escalation,
        started_at=event.sla_started_at,
        due_at=event.sla_due_at,
        urgent=event.urgent,
        severity=event.severity,
    )


async def policy_of(session: AsyncSession, event: Event, current: Policy) -> Policy:
    """The policy an event's clocks follow: the version it was graded under (R7.2)."""
    version = (event.grading or {}).get("policy_version")
    if not isinstance(version, int) or version == current.version:
        return current
    return await policy_version(session, version)


async def sync(session: AsyncSession, event: Event, *, now: datetime, policy: Policy) -> None:
    """Finish and start the event's stage clock after a change; keep its next firing (R1.3.1)."""
    running = Stage(event.sla_stage) if event.sla_stage else None
    change = clocks.clock_change(running, event.sla_cycle, status=event.status)
    followed = await policy_of(session, event, policy)
    if change.finish and running is not None and event.sla_started_at is not None:
        await _finish(session, event, running, now=now, stopped=change.cycle != event.sla_cycle)
    if change.restart:
        event.sla_started_at = now
        if change.cycle != event.sla_cycle and change.stage is Stage.RESOLVE:
            # Back to work: the new cycle has the whole resolution time again (R1.3.1).
            event.resolve_by = deadlines.resolve_by(
                now, severity=event.severity or Severity.GENERAL, policy=followed
            )
    event.sla_stage = change.stage
    event.sla_cycle = change.cycle
    if change.stage is None:
        event.sla_started_at = event.sla_due_at = event.sla_next_at = None
        return
    event.sla_due_at = getattr(event, clocks.DUE_COLUMN[change.stage])
    fired: set[str] = set()
    if not change.restart:
        fired = await repository.fired_levels(session, event.id, change.stage, change.cycle)
    event.sla_next_at = clocks.next_fire_at(_ladder(event, followed), fired=fired)


async def _finish(
    session: AsyncSession, event: Event, stage: Stage, *, now: datetime, stopped: bool
) -> None:
    """Write the running cycle as finished; a cycle stopped by a cancel or left for a new one
    was neither met nor missed."""
    due = event.sla_due_at
    stopped = stopped or event.status is Status.CANCELLED
    await repository.finish_cycle(
        session,
        {
            "event_id": event.id,
            "stage": stage,
            "cycle": event.sla_cycle,
            "started_at": event.sla_started_at,
            "due_at": due,
            "finished_at": now,
            "met": None if stopped or due is None else clocks.met(finished_at=now, due_at=due),
        },
    )


async def fire_due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int = BATCH,
    on_commit: list[Callable[[], None]] | None = None,
) -> int:
    """The runner's job: fire every level due by `now` once, in order (R1.1, R1.3.1, R3.3.2).
    The levels fired are counted in the metrics once `on_commit` is called (the runner's piece
    calls it after its commit), or at once without it."""
    events = await repository.claim_due_clocks(session, now=now, limit=limit)
    if not events:
        return 0
    piece = _Piece(session, now=now, current=await current_policy(session))
    await piece.prefetch(events)
    for event in events:
        await piece.fire(event)
    await repository.set_next_fires(session, piece.next_fires)
    fired = piece.fired_now
    if fired:
        metrics.after_commit(on_commit, lambda: metrics.levels_fired(fired))
    return len(events)


class _Piece:
    """One piece of the firing job: what every event of the batch needs, read once (fired
    levels, open step owners, timeline heads), and the people named, looked up once per role
    and department; the events' next firing times written together at the end."""

    def __init__(self, session: AsyncSession, *, now: datetime, current: Policy) -> None:
        self.session = session
        self.now = now
        self.current = current
        self.fired: dict[uuid.UUID, set[str]] = {}
        self.owners: dict[uuid.UUID, tuple[str, ...]] = {}
        self.heads: dict[uuid.UUID, timeline.ChainHead] = {}
        self.people: dict[tuple[tuple[str, ...], str | None], list[str]] = {}
        self.next_fires: list[tuple[uuid.UUID, datetime | None]] = []
        self.fired_now: list[tuple[str, str]] = []  # (level id, kind) fired by this piece

    async def prefetch(self, events: list[Event]) -> None:
        cycles = [
            (event.id, Stage(event.sla_stage), event.sla_cycle)
            for event in events
            if event.sla_stage is not None
        ]
        self.fired = await repository.fired_levels_of(self.session, cycles)
        ids = [event.id for event in events]
        self.owners = await repository.open_step_owners_of(self.session, ids)
        self.heads = {
            event_id: timeline.ChainHead(seq, digest)
            for event_id, (seq, digest) in (await repository.chain_heads(self.session, ids)).items()
        }

    async def fire(self, event: Event) -> None:
        ladder = _ladder(event, await policy_of(self.session, event, self.current))
        if event.sla_stage is None or not ladder:
            self.next_fires.append((event.id, None))
            return
        stage = Stage(event.sla_stage)
        fired = self.fired.get(event.id, set())
        due = clocks.due_levels(ladder, fired=fired, now=self.now)
        if due:
            facts = ClockFacts(
                stage=stage,
                assignee_id=None if event.assignee_id is None else str(event.assignee_id),
                step_owner_ids=self.owners.get(event.id, ()),
                lead_department=event.lead_department,
                intake_department=event.intake_department,
            )
            head = self.heads.get(event.id, timeline.ChainHead(0, timeline.GENESIS))
            recorder = timeline.Recorder(self.session, event.id, head)
            for rung in due:
                named = [await self.named(a) for a in clocks.audiences(rung.level.notify, facts)]
                if await _fire_level(
                    self.session, event, stage, rung, named, recorder, now=self.now
                ):
                    self.fired_now.append((rung.level.id, rung.level.kind.value))
                fired = fired | {rung.level.id}
        self.next_fires.append((event.id, clocks.next_fire_at(ladder, fired=fired)))

    async def named(self, audience: Audience) -> dict[str, Any]:
        """Who an audience is: its named users plus the users holding its roles (in its
        department), with the roles and department themselves for receivers that route by
        them."""
        users = list(audience.user_ids)
        if audience.roles:
            key = (audience.roles, audience.department)
            if key not in self.people:
                self.people[key] = await repository.users_with_roles(
                    self.session, audience.roles, audience.department
                )
            users += self.people[key]
        return {
            "user_ids": list(dict.fromkeys(users)),
            "roles": list(audience.roles),
            "department": audience.department,
        }


async def _fire_level(
    session: AsyncSession,
    event: Event,
    stage: Stage,
    rung: Rung,
    named: list[dict[str, Any]],
    recorder: timeline.Recorder,
    *,
    now: datetime,
) -> bool:
    """One level: its ledger row, timeline entry and outbox message, or nothing when that
    level of that cycle has fired already (another runner got here first); True when fired."""
    record = {
        "stage": stage,
        "cycle": event.sla_cycle,
        "level": rung.level.id,
        "kind": rung.level.kind,
        "due_at": rung.at,
    }
    written = await repository.record_firing(
        session, {"event_id": event.id, **record, "fired_at": now, "notify": named}
    )
    if not written:
        return False
    await recorder.record(
        timeline.Entry(
            at=now,
            actor_id=None,
            action=TIMELINE_ACTION[rung.level.kind],
            after={**record, "sla_due_at": event.sla_due_at, "notify": named},
        )
    )
    await publish(
        session,
        clocks.MESSAGE_TYPE[rung.level.kind],
        event_id=event.id,
        at=now,
        data={
            **message_head(event),
            **record,
            "sla_due_at": event.sla_due_at,
            "notify": named,
        },
    )
    return True


async def cycles_of(
    session: AsyncSession, event: Event, *, now: datetime, internal: bool
) -> SlaCyclesRead:
    """Every cycle of the event's clocks with the levels fired (R1.3.1, R7.1); the reporter
    view (`internal` False) keeps the times and leaves out whom the levels named."""
    fired: dict[tuple[str, int], list[LevelFiredRead]] = {}
    if internal:
        for firing in await repository.firings(session, event.id):
            fired.setdefault((firing.stage, firing.cycle), []).append(
                LevelFiredRead.model_validate(firing)
            )
    found = [
        from_row(
            SlaCycleRead,
            cycle,
            breached=cycle.due_at is not None and cycle.finished_at > cycle.due_at,
            levels_fired=fired.get((cycle.stage, cycle.cycle), []),
        )
        for cycle in await repository.cycles(session, event.id)
    ]
    if event.sla_stage is not None and event.sla_started_at is not None:
        stage = Stage(event.sla_stage)
        found.append(
            SlaCycleRead(
                stage=stage,
                cycle=event.sla_cycle,
                started_at=event.sla_started_at,
                due_at=event.sla_due_at,
                finished_at=None,
                met=None,
                breached=event.sla_due_at is not None and now > event.sla_due_at,
                levels_fired=fired.get((stage, event.sla_cycle), []),
            )
        )
    return SlaCyclesRead(cycles=found)


async def queue_of(session: AsyncSession, actor: Principal, *, now: datetime) -> QueueRead:
    """What the caller must do now, soonest due first (R1.3.1, R3.3.2, R4.1)."""
    rows = await repository.queue(
        session,
        me=actor.user_id,
        department=actor.department,
        duties=duties_of(actor.roles, actor.department),
        limit=QUEUE_LIMIT,
    )
    return QueueRead(
        items=[
            QueueItem(**row, breached=row["due_at"] is not None and row["due_at"] < now)
            for row in rows
        ]
    )
