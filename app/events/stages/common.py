"""The one shape of every change to an event (R1.3, R7.1): open and lock it (`open_stage`),
check the rules (`Stage.require`, `next_status`, `allow`, `check_gate`), change it through the
repository, then `Stage.record` the timeline entry and the outbox message in the same
transaction. A stage module holds only what is its own between the opening and the record."""

import dataclasses
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import Base, uuid7
from app.core.errors import (
    Forbidden,
    GateNotMet,
    NotFound,
    TransitionNotAllowedError,
)
from app.core.preconditions import check_if_match
from app.directory import repository as directory
from app.events import checks, clocks, repository, timeline
from app.events.models import Event
from app.events.schemas import EventDetail
from app.events.snapshot import snapshot_of
from app.events.views import event_detail, message_head, orm_row
from app.outbox.writer import publish
from app.rules import lifecycle
from app.rules.lifecycle import EventSnapshot
from app.rules.permissions import EventAction, may
from app.rules.policy import Policy
from app.rules.vocabulary import Action, Activity, Status

R = TypeVar("R", bound=Base)


@dataclass(frozen=True, slots=True, kw_only=True)
class StageContext:
    """What every change to an event is made with: the request's session, the caller, the
    policy in force, the moment, and the `If-Match` precondition."""

    session: AsyncSession
    actor: Principal
    policy: Policy
    now: datetime
    if_match: str | None = None
    base_url: str = "/"  # where the API is served (links the response hands out)


def _refused(exc: lifecycle.TransitionNotAllowed) -> TransitionNotAllowedError:
    return TransitionNotAllowedError(
        exc.current.value, exc.action.value, [a.value for a in exc.allowed]
    )


async def record_change(
    session: AsyncSession,
    event: Event,
    recorder: timeline.Recorder,
    entry: timeline.Entry,
    *,
    policy: Policy,
) -> None:
    """Move the stage clock, bump the version and write the timeline entry in this
    transaction (R1.3.1, R7.1); the caller publishes the outbox message after it."""
    await clocks.sync(session, event, now=entry.at, policy=policy)
    event.version += 1
    event.updated_at = entry.at
    await repository.flush(session)
    await recorder.record(entry)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage(StageContext):
    """One event, locked inside the request's transaction, ready to change."""

    event: Event
    recorder: timeline.Recorder

    def require(
        self,
        action: EventAction,
        *,
        owns_step: bool = False,
        action_department: str | None = None,
    ) -> None:
        """R1.3.3: the caller's role must grant `action` on this event (else 403)."""
        if not may(
            action,
            self.actor.roles,
            department=self.actor.department,
            lead=self.event.lead_department,
            cooperating=self.event.cooperating_departments,
            owns_step=owns_step,
            action_department=action_department,
        ):
            raise Forbidden(f"Your roles may not {action.value.replace('_', ' ')} on this event")

    def next_status(self, action: Action) -> Status:
        """The lifecycle table decides; an illegal transition lists what is allowed (409)."""
        try:
            return lifecycle.next_status(self.event.status, action)
        except lifecycle.TransitionNotAllowed as exc:
            raise _refused(exc) from None

    def allow(self, activity: Activity) -> None:
        """The lifecycle's table of what keeps the status decides (409 with what is allowed)."""
        try:
            lifecycle.require_activity(self.event.status, activity)
        except lifecycle.TransitionNotAllowed as exc:
            raise _refused(exc) from None

    async def snapshot(self, **overrides: Any) -> EventSnapshot:
        """The gates' view of the event, with `overrides` showing it after the change."""
        records = await repository.loop_records(self.session, self.event.id)
        return dataclasses.replace(snapshot_of(self.event, records), **overrides)

    def check_gate(self, target: Status, snapshot: EventSnapshot) -> None:
        missing = lifecycle.gate(target, snapshot, self.policy)
        if missing:
            raise GateNotMet(missing)

    async def check_departments(self, codes: Collection[str], field: str) -> None:
        await checks.check_departments(self.session, codes, field)

    async def check_linked_event(self, event_id: uuid.UUID, field: str) -> None:
        await checks.check_linked_event(self.session, event_id, field, actor=self.actor)

    async def user_department(self, user_id: uuid.UUID) -> tuple[bool, str | None]:
        """(exists and active, department code) of a user the change names."""
        found = await directory.user_with_department(self.session, user_id)
        if found is None:
            return False, None
        user, department = found
        return bool(user.active), department

    def add_child(self, model: type[R], **values: Any) -> R:
        """A new record of the event (a note, feedback, an action...), written with the change."""
        row = model(id=uuid7(), event_id=self.event.id, **values)
        repository.add(self.session, row)
        return row

    async def back_to_work(self, action: Action) -> None:
        """Return or reopen (`rules.lifecycle.back_to_work`): a new loop, the old one's records
        retired (they stay on the timeline)."""
        try:
            reset = lifecycle.back_to_work(self.event.status, action)
        except lifecycle.TransitionNotAllowed as exc:
            raise _refused(exc) from None
        self.event.status = reset.status
        for field in reset.cleared:
            setattr(self.event, field, None)
        await repository.retire_loop_records(self.session, self.event.id, self.now)

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
        """`record_change` by the caller; the message carries the event's id, ref, status and
        version besides `outbox_data`."""
        event = self.event
        entry = timeline.Entry(
            at=self.now,
            actor_id=self.actor.user_id,
            action=action,
            before=before,
            after=after,
            note=note,
        )
        await record_change(self.session, event, self.recorder, entry, policy=self.policy)
        if outbox_type:
            data = message_head(event) | dict(outbox_data or {})
            await publish(self.session, outbox_type, event_id=event.id, at=self.now, data=data)

    async def detail(self) -> EventDetail:
        steps = await repository.plan_steps(self.session, self.event.id)
        return event_detail(orm_row(self.event), steps=steps)


async def open_stage(context: StageContext, id_or_ref: str) -> Stage:
    """Lock the event row (FOR UPDATE) so concurrent changes serialise; 404 if not visible,
    412 if `If-Match` names another version."""
    event = await repository.lock_visible(context.session, id_or_ref, context.actor)
    if event is None:
        raise NotFound(f"No event {id_or_ref}")
    check_if_match(context.if_match, event.version, what="event")
    head = await timeline.chain_head(context.session, event.id)
    recorder = timeline.Recorder(context.session, event.id, head)
    shared = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    return Stage(**shared, event=event, recorder=recorder)
