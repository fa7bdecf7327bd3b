"""Which endpoint receives which message, and in which view (items 1 and 2). Pure: the facts
come in, a decision goes out.

An endpoint receives a message about an event when the type and department filters let it
through and its owner may see the event (`rules.permissions.may_see`, the rule of reading);
what it receives follows the owner's view of that event (`rules.views.event_view`). A message
about no event (`endpoint.disabled`) goes to endpoints of admins only.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from app.rules.permissions import may_see
from app.rules.views import EventView, event_view
from app.rules.vocabulary import Role

# The messages written with the event at intake carry no version: it is 1.
INTAKE_TYPES: Final = frozenset({"event.reported", "event.urgent"})
TEST_TYPE: Final = "webhook.test"
DISABLED_TYPE: Final = "endpoint.disabled"
# The types an endpoint may subscribe to (`event_types`).
MESSAGE_TYPES: Final = (
    "event.reported",
    "event.urgent",
    "event.classified",
    "event.assigned",
    "event.plan_set",
    "event.step_updated",
    "event.note_added",
    "event.resolved",
    "event.feedback_submitted",
    "event.feedback_accepted",
    "event.feedback_returned",
    "event.feedback_given",
    "event.satisfaction_recorded",
    "event.reviewed",
    "event.action_added",
    "event.action_done",
    "event.action_verified",
    "event.closed",
    "event.cancelled",
    "event.reopened",
    "event.sla_warning",
    "event.sla_breached",
    "event.escalated",
    DISABLED_TYPE,
    TEST_TYPE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Receiver:
    """An enabled endpoint and what its owner is now."""

    endpoint_id: uuid.UUID
    owner_id: uuid.UUID
    roles: frozenset[Role]
    department: str | None
    event_types: frozenset[str] | None
    departments: frozenset[str] | None
    created_at: datetime
    person: bool = False  # not a service account: sees what names them as its reporter


@dataclass(frozen=True, slots=True, kw_only=True)
class EventFacts:
    """What the visibility rule and the department filter ask of an event, and what a
    message's body names it by (`ref`, `title`)."""

    id: uuid.UUID
    version: int
    created_by: uuid.UUID
    lead: str | None
    cooperating: tuple[str, ...]
    involved: tuple[str, ...]
    step_owners: frozenset[uuid.UUID]
    action_departments: frozenset[str]
    reporter_user: uuid.UUID | None = None  # `reporter.user_id`
    ref: str | None = None
    title: str | None = None

    @property
    def departments(self) -> frozenset[str]:
        """The departments a `departments` filter matches: lead, cooperating, or named at
        intake as involved."""
        lead = (self.lead,) if self.lead else ()
        return frozenset((*lead, *self.cooperating, *self.involved))


def view_for(receiver: Receiver, message_type: str, facts: EventFacts | None) -> EventView | None:
    """The view in which `receiver` gets the message, or None when it does not get it."""
    if receiver.event_types is not None and message_type not in receiver.event_types:
        return None
    if facts is None:
        return EventView.STAFF if Role.ADMIN in receiver.roles else None
    if receiver.departments is not None and receiver.departments.isdisjoint(facts.departments):
        return None
    involved = may_see(
        receiver.roles,
        department=receiver.department,
        is_reporter=False,
        lead=facts.lead,
        cooperating=facts.cooperating,
        owns_step=receiver.owner_id in facts.step_owners,
        action_departments=facts.action_departments,
    )
    named = receiver.person and facts.reporter_user == receiver.owner_id
    if not involved and facts.created_by != receiver.owner_id and not named:
        return None
    return event_view(receiver.roles, involved=involved)


def order_version(message_type: str, version: object, facts: EventFacts) -> int:
    """The event version a message was written at, its place among the event's messages:
    the `version` it carries; 1 for the intake messages; otherwise (a message that changed
    nothing on the event) the event's version when it is fanned out."""
    if isinstance(version, int) and not isinstance(version, bool):
        return version
    if message_type in INTAKE_TYPES:
        return 1
    return facts.version
