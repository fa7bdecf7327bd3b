"""Stage clocks and the escalation ladder (R1.1, R1.3.1, R3.3.2, R4.1; issue 12).

Every open event has one running clock: the stage it is in and that stage's due time. A stage
runs from the transition that starts it to the one that finishes it; reopening starts a new
cycle of the resolve stage (and of the stages after it). Each clock fires the policy's ladder
once per cycle: warnings at fractions of the stage's time, the breach at the due time, and
escalations hours after it (shorter for urgent and the policy's fast severities). Everything
here is pure: the service stores the clock, and the runner fires what `due_levels` returns.

When the due time moves (a reclassification changes the severity), the levels not yet fired
follow it; a fired level never fires again in the same cycle. A level whose time passed while
nothing ran fires once, when the runner next looks.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from app.rules.policy import EscalationLevel, EscalationPolicy, LevelKind, Notify
from app.rules.vocabulary import Severity, Status


class Stage(StrEnum):
    """The timed stages of the lifecycle (R1.3.1)."""

    RESPOND = "respond"  # classify and assign (R3.1, R3.2)
    RESOLVE = "resolve"  # plan and carry it out (R3.3)
    FEEDBACK = "feedback"  # feed the result back (R3.4)
    REVIEW = "review"  # sum up and evaluate (R3.5)


# In the order an event goes through them.
STAGES: Final = (Stage.RESPOND, Stage.RESOLVE, Stage.FEEDBACK, Stage.REVIEW)
STAGE_OF_STATUS: Final[Mapping[Status, Stage]] = MappingProxyType(
    {
        Status.REPORTED: Stage.RESPOND,
        Status.CLASSIFIED: Stage.RESPOND,
        Status.ASSIGNED: Stage.RESOLVE,
        Status.IN_PROGRESS: Stage.RESOLVE,
        Status.RESOLVED: Stage.FEEDBACK,
        Status.FEEDBACK_GIVEN: Stage.REVIEW,
    }
)
# The event's column holding each stage's due time.
DUE_COLUMN: Final[Mapping[Stage, str]] = MappingProxyType(
    {
        Stage.RESPOND: "respond_by",
        Stage.RESOLVE: "resolve_by",
        Stage.FEEDBACK: "feedback_by",
        Stage.REVIEW: "review_by",
    }
)


def stage_of(status: Status) -> Stage | None:
    """The stage whose clock runs in `status`; None when nothing is timed (R1.3.1)."""
    return STAGE_OF_STATUS.get(status)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rung:
    """One level of one clock with the moment it fires."""

    level: EscalationLevel
    at: datetime


def is_fast(ladder: EscalationPolicy, *, urgent: bool, severity: Severity | None) -> bool:
    """Urgent events and the fast severities escalate sooner (R3.1.3)."""
    return (ladder.fast_urgent and urgent) or severity in ladder.fast_severities


def rungs(
    ladder: EscalationPolicy,
    *,
    started_at: datetime,
    due_at: datetime,
    urgent: bool,
    severity: Severity | None,
) -> tuple[Rung, ...]:
    """When each level of a clock fires, in firing order (R1.3.1)."""
    # Warnings at their fraction of the time from start to due (wall time, so a working
    # calendar's nights count as they pass), the breach at the due time, escalations at clock
    # hours after it.
    span = max(due_at - started_at, timedelta(0))
    factor = ladder.fast_factor if is_fast(ladder, urgent=urgent, severity=severity) else 1.0
    found: list[Rung] = []
    for level in ladder.levels:
        if level.kind is LevelKind.WARNING:
            at = started_at + span * (level.at_fraction or 0.0)
        elif level.kind is LevelKind.BREACH:
            at = due_at
        else:
            at = due_at + timedelta(hours=(level.after_breach_hours or 0.0) * factor)
        found.append(Rung(level=level, at=at))
    return tuple(sorted(found, key=lambda rung: rung.at))


def due_levels(
    ladder: tuple[Rung, ...], *, fired: Collection[str], now: datetime
) -> tuple[Rung, ...]:
    """The levels to fire now, in order: due and not fired in this cycle (R1.3.1)."""
    # After downtime every level whose time passed fires once, not once per missed poll.
    return tuple(rung for rung in ladder if rung.at <= now and rung.level.id not in fired)


def next_fire_at(ladder: tuple[Rung, ...], *, fired: Collection[str]) -> datetime | None:
    """When the clock next needs the runner: its first level not yet fired (R1.3.1)."""
    pending = [rung.at for rung in ladder if rung.level.id not in fired]
    return min(pending) if pending else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Audience:
    """Who must act on a firing: named users, and roles within a department (or everywhere)."""

    user_ids: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    department: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockFacts:
    """What an event says about who acts in its current stage."""

    stage: Stage
    assignee_id: str | None
    step_owner_ids: tuple[str, ...]
    lead_department: str | None
    intake_department: str


def audiences(notify: Collection[Notify], facts: ClockFacts) -> tuple[Audience, ...]:
    """Whom a level names (R1.3.3, R3.3.2, R4.1, R5.1)."""
    # Before an event is assigned (the respond stage) the intake desk acts and its head answers
    # for it.
    found: list[Audience] = []
    desk = Audience(roles=("intake_agent",), department=facts.intake_department)
    for target in notify:
        if target is Notify.ASSIGNEE:
            if facts.stage is Stage.RESPOND or facts.assignee_id is None:
                found.append(desk)
            else:
                found.append(Audience(user_ids=(facts.assignee_id,)))
        elif target is Notify.STEP_OWNERS:
            if facts.step_owner_ids:
                found.append(Audience(user_ids=facts.step_owner_ids))
        elif target is Notify.LEAD_HEAD:
            department = facts.lead_department or facts.intake_department
            found.append(Audience(roles=("dept_head",), department=department))
        elif target is Notify.INTAKE_DESK:
            found.append(desk)
        else:
            found.append(Audience(roles=("supervisor",)))
    return tuple(dict.fromkeys(found))


# Outbox message type of each kind of level (product.md section 4).
MESSAGE_TYPE: Final[Mapping[LevelKind, str]] = MappingProxyType(
    {
        LevelKind.WARNING: "event.sla_warning",
        LevelKind.BREACH: "event.sla_breached",
        LevelKind.ESCALATION: "event.escalated",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaView:
    """The running clock as an event shows it (product.md section 8)."""

    stage: Stage
    due_at: datetime
    remaining_seconds: int
    breached: bool
    breached_at: datetime | None


def sla_view(
    stage: Stage | None, *, due_at: datetime | None, breached_at: datetime | None, now: datetime
) -> SlaView | None:
    """The event's `sla`: stage, due time, seconds left, breached and since when (R1.3.1)."""
    # Seconds left are negative once overdue. Breached means past the due time, whether or not
    # the runner has fired the breach yet. None when nothing is timed.
    if stage is None or due_at is None:
        return None
    remaining = int((due_at - now).total_seconds())
    breached = remaining < 0
    return SlaView(
        stage=stage,
        due_at=due_at,
        remaining_seconds=remaining,
        breached=breached,
        breached_at=breached_at or (due_at if breached else None),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClockChange:
    """What a change of an event does to its running clock (R1.3.1)."""

    finish: bool  # the running clock's cycle ends now (its stage is done, or left)
    stage: Stage | None  # the stage whose clock runs afterwards (None: nothing is timed)
    cycle: int  # that clock's cycle
    restart: bool  # a new clock starts now (a new stage, or a new cycle of one)


def clock_change(running: Stage | None, cycle: int, *, status: Status) -> ClockChange:
    """How an event's clock moves when it reaches `status` (R1.3.1)."""
    # A new stage finishes the running cycle and starts the next. Going back to an earlier
    # stage (a reopen, or feedback returned by the intake desk), or to a timed stage from none
    # (reopened after review), starts a new cycle numbered after the last. Anything else
    # leaves the clock running: its due time may still move, for example when a
    # reclassification changes the severity.
    stage = stage_of(status)
    if stage == running:
        return ClockChange(finish=False, stage=stage, cycle=cycle, restart=False)
    back = stage is not None and (running is None or STAGES.index(stage) < STAGES.index(running))
    return ClockChange(
        finish=running is not None,
        stage=stage,
        cycle=cycle + 1 if back else cycle,
        restart=stage is not None,
    )


def met(*, finished_at: datetime, due_at: datetime) -> bool:
    """A stage is on time when it finished by its due time (R5.4; product.md section 3)."""
    return finished_at <= due_at
