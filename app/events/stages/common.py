"""What every stage of the event lifecycle shares: lock-load, authorise, gate, record."""

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.errors import (
    Forbidden,
    GateNotMet,
    NotFound,
    PreconditionFailed,
    TransitionNotAllowedError,
)
from app.directory.models import Department, User
from app.events import repository, timeline
from app.events.models import (
    Event,
    Feedback,
    ImprovementAction,
    PlanStep,
    Review,
    Satisfaction,
)
from app.events.schemas import EventDetail
from app.events.views import event_detail, orm_row
from app.outbox.writer import publish
from app.rules import lifecycle
from app.rules.lifecycle import (
    ActionFacts,
    EventSnapshot,
    FeedbackFacts,
    ReviewFacts,
    StepFacts,
)
from app.rules.permissions import EventAction, may
from app.rules.policy import Policy
from app.rules.vocabulary import Action, Status


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The versions an `If-Match` header accepts (RFC 9110: a list of strong ETags such as
    `"v3"`, or `*`); None when any version will do. Weak ETags never match."""
    if header is None or header.strip() == "*":
        return None
    versions: set[int] = set()
    for tag in header.split(","):
        value = tag.strip()
        if value.startswith("W/"):
            continue
        value = value.strip('"').removeprefix("v")
        if value.isdigit() and len(value) < 10:
            versions.add(int(value))
    return frozenset(versions)


@dataclass
class Stage:
    """One locked event inside the request's transaction, ready to change."""

    session: AsyncSession
    event: Event
    actor: Principal
    policy: Policy
    now: datetime
    recorder: timeline.Recorder

    def require(self, action: EventAction) -> None:
        """R1.3.3: the caller's role must grant `action` on this event (else 403)."""
        if not may(
            action,
            self.actor.roles,
            department=self.actor.department,
            lead=self.event.lead_department,
            cooperating=self.event.cooperating_departments,
        ):
            raise Forbidden(f"Your roles may not {action.value.replace('_', ' ')} on this event")

    def next_status(self, action: Action) -> Status:
        """The lifecycle table decides; an illegal transition lists what is allowed (409)."""
        try:
            return lifecycle.next_status(self.event.status, action)
        except lifecycle.TransitionNotAllowed as exc:
            raise TransitionNotAllowedError(
                exc.current.value, exc.action.value, [a.value for a in exc.allowed]
            ) from None

    def require_status(self, *statuses: Status, action: str) -> None:
        if self.event.status not in statuses:
            raise TransitionNotAllowedError(
                self.event.status.value,
                action,
                [a.value for a in lifecycle.actions_from(self.event.status)],
            )

    async def snapshot(self, **overrides: Any) -> EventSnapshot:
        """The gates' view of the event, with `overrides` showing it after the change."""
        return dataclasses.replace(await build_snapshot(self.session, self.event), **overrides)

    def check_gate(self, target: Status, snapshot: EventSnapshot) -> None:
        missing = lifecycle.gate(target, snapshot, self.policy)
        if missing:
            raise GateNotMet(missing)

    async def record(
        self,
        action: str,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        note: str | None = None,
        outbox_type: str | None = None,
        outbox_data: Mapping[str, Any] | None = None,
    ) -> None:
        """Bump the version; write the timeline entry and outbox message in this transaction."""
        self.event.version += 1
        self.event.updated_at = self.now
        await self.session.flush()
        await self.recorder.record(
            at=self.now,
            actor_id=self.actor.user_id,
            action=action,
            before=before,
            after=after,
            note=note,
        )
        if outbox_type:
            await publish(
                self.session,
                outbox_type,
                event_id=self.event.id,
                at=self.now,
                data={
                    "id": self.event.id,
                    "ref": self.event.ref,
                    "status": self.event.status,
                    "version": self.event.version,
                    **(outbox_data or {}),
                },
            )

    async def detail(self) -> EventDetail:
        return await detail_of(self.session, self.event)


async def open_stage(
    session: AsyncSession,
    id_or_ref: str,
    *,
    actor: Principal,
    policy: Policy,
    now: datetime,
    if_match: str | None = None,
) -> Stage:
    """Lock the event row (FOR UPDATE) so concurrent transitions serialise; 404 if not visible,
    412 if `If-Match` names another version."""
    expected = parse_if_match(if_match)
    event = await repository.lock_visible(session, id_or_ref, actor)
    if event is None:
        raise NotFound(f"No event {id_or_ref}")
    if expected is not None and event.version not in expected:
        raise PreconditionFailed(
            f'The event is at version {event.version} (ETag "v{event.version}")',
            current_version=event.version,
        )
    head = await timeline.chain_head(session, event.id)
    return Stage(session, event, actor, policy, now, timeline.Recorder(session, event.id, head))


async def detail_of(session: AsyncSession, event: Event) -> EventDetail:
    steps = (
        await session.scalars(
            sa.select(PlanStep).where(PlanStep.event_id == event.id).order_by(PlanStep.position)
        )
    ).all()
    return event_detail(orm_row(event), steps=list(steps))


async def build_snapshot(session: AsyncSession, event: Event) -> EventSnapshot:
    """The pure facts the lifecycle gates read (app/rules/lifecycle.py)."""
    steps = (await session.scalars(sa.select(PlanStep).where(PlanStep.event_id == event.id))).all()
    feedback = (
        await session.scalars(
            sa.select(Feedback).where(
                Feedback.event_id == event.id, Feedback.superseded_at.is_(None)
            )
        )
    ).all()
    review = await session.get(Review, event.id)
    actions = (
        await session.scalars(
            sa.select(ImprovementAction).where(ImprovementAction.event_id == event.id)
        )
    ).all()
    satisfaction = await session.scalar(
        sa.select(Satisfaction).where(Satisfaction.event_id == event.id)
    )
    grading = event.grading or {}
    routing = event.routing or {}
    assignee_in_lead = True
    if event.assignee_id is not None:
        assignee_in_lead = routing.get("assignee_department") == event.lead_department
    return EventSnapshot(
        status=event.status,
        urgent=event.urgent,
        reporter_reachable=bool(
            event.reporter_email or event.reporter_phone or event.reporter_external_id
        ),
        category=event.category,
        subcategory=event.subcategory,
        severity=event.severity,
        impact_recorded=event.impact is not None,
        severity_overridden=bool(grading.get("overridden")),
        override_reason=bool(grading.get("reason")),
        lead_department=event.lead_department,
        cooperating_departments=tuple(event.cooperating_departments),
        routing_overridden=bool(routing.get("overridden")),
        routing_override_reason=bool(routing.get("reason")),
        assignee_set=event.assignee_id is not None,
        assignee_in_lead=assignee_in_lead,
        steps=tuple(
            StepFacts(status=s.status, has_owner=True, has_due=True, drop_reason=bool(s.note))
            for s in steps
        ),
        plan_discussed_with=tuple(event.plan_discussed_with),
        resolution_result=bool(event.resolution_result),
        resolution_measures=bool(event.resolution_measures),
        feedback=tuple(
            FeedbackFacts(
                audience=f.audience,
                decision=f.decision,
                complete=bool(f.result and f.measures and f.prevention_advice),
            )
            for f in feedback
        ),
        review=None
        if review is None
        else ReviewFacts(
            causes=bool(review.causes),
            handling=bool(review.handling),
            result=bool(review.result),
            lessons=bool(review.lessons),
            root_cause_code=review.root_cause_code,
            meeting=bool(review.meeting),
        ),
        actions=tuple(
            ActionFacts(
                status=a.status,
                verified_effective=a.verified_effective,
                verifier_is_completer=a.verified_by is not None and a.verified_by == a.completed_by,
            )
            for a in actions
        ),
        satisfaction=None
        if satisfaction is None
        else ("unreachable" if satisfaction.unreachable else "recorded"),
        satisfaction_attempts=satisfaction.attempts if satisfaction else 0,
    )


async def user_department(session: AsyncSession, user_id: uuid.UUID) -> tuple[bool, str | None]:
    """(exists and active, department code) of a user."""
    row = (
        await session.execute(
            sa.select(User.active, Department.code)
            .outerjoin(Department, Department.id == User.department_id)
            .where(User.id == user_id)
        )
    ).one_or_none()
    if row is None:
        return False, None
    return bool(row.active), row.code
