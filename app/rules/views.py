"""What a caller's view of an event includes (issue 10, item 7; R3.4.1, R6.1, R6.2;
product.md section 1).

Two views. **Staff** (admin, supervisors and the intake desk, who see every event, and
handlers and heads whose department leads, cooperates on or owns an improvement action of the
event, or who own one of its plan steps) see everything. **Reporter**: whoever sees an event
only because they reported it (reporters, integrations, and staff of an uninvolved department)
sees their report, where it stands, its public due dates, the feedback given to them and their
satisfaction; not the internal work: grading, routing, the assignee, plan steps, internal notes,
feedback to the intake desk, the review and the improvement actions (R3.4.1: the result reaches
the reporter through the intake desk; R6.1: internal communication stays among the departments
involved; R6.2: the outsider hears the result and is asked for satisfaction).

The view follows from why the caller sees the event, so it is decided with visibility: from the
roles alone, except for handlers and heads, whose reading statement says whether they are
involved (no extra round trip).
"""

from collections.abc import Collection
from enum import StrEnum
from typing import Final

from app.rules.permissions import sees_every_event
from app.rules.vocabulary import Role


class EventView(StrEnum):
    """The two views of an event (the `view` field of every event response)."""

    STAFF = "staff"
    REPORTER = "reporter"


def view_by_roles(roles: Collection[Role]) -> EventView | None:
    """The view when the roles alone decide it (R6.1; product.md section 1): staff for those
    who see every event, reporter for those who see only what they reported; None for handlers
    and heads, who see some events through their department and others as their reporter."""
    if sees_every_event(roles):
        return EventView.STAFF
    if {Role.HANDLER, Role.DEPT_HEAD}.isdisjoint(roles):
        return EventView.REPORTER
    return None


def event_view(roles: Collection[Role], *, involved: bool) -> EventView:
    """The caller's view of one event (R6.1, R6.2). `involved`: the caller sees it other than
    as its reporter, i.e. `permissions.may_see(..., is_reporter=False)` holds (their
    department leads, cooperates on or owns an improvement action of it, or they own a step)."""
    return view_by_roles(roles) or (EventView.STAFF if involved else EventView.REPORTER)


# The fields of an event in the reporter view: their report as they gave it, where it stands,
# the public due dates (respond, resolve, feedback: R1.3.1), the links to other events and the
# intake department, which gives them the result (R3.4.1, R4.1).
# Left out: severity, impact and grading (R3.2.2), lead and cooperating departments, routing
# and the assignee (R3.2.3), the review deadline (R3.5), the cancel reason (an internal note),
# and in the detail the plan, its steps and the department's resolution text (R3.3, R3.4.1).
REPORTER_EVENT_FIELDS: Final = frozenset(
    {
        "id",
        "ref",
        "status",
        "version",
        "title",
        "description",
        "channel",
        "occurred_at",
        "reported_at",
        "urgent",
        "reporter",
        "external_ref",
        "involved_departments",
        "involved_people",
        "recurrence_of",
        "duplicate_of",
        "category",
        "subcategory",
        "intake_department",
        "respond_by",
        "resolve_by",
        "feedback_by",
        "resolved_at",
        "closed_at",
        "created_by",
        "created_at",
        "updated_at",
    }
)
# What the reporter's detail adds: the feedback given to them (`audience` reporter, R3.4.1-2)
# and their satisfaction (R6.2).
REPORTER_FEEDBACK_AUDIENCE: Final = "reporter"
# Notes: only those written for the reporter (customer contacts, R6.2).
REPORTER_NOTE_VISIBILITY: Final = "reporter"
# The checklist: only the gates about their report, the feedback to them and their satisfaction.
REPORTER_CHECKLIST_CODES: Final = frozenset(
    {
        "title",
        "description",
        "channel",
        "reporter.name",
        "reporter.contact",
        "feedback.reporter",
        "satisfaction",
    }
)


def note_visibilities(view: EventView) -> frozenset[str] | None:
    """The note visibilities a view reads (R6.1, R6.2); None: all of them."""
    return None if view is EventView.STAFF else frozenset({REPORTER_NOTE_VISIBILITY})


def shows_checklist_item(view: EventView, code: str) -> bool:
    """Whether a view's checklist shows the gate `code` (R6.2)."""
    return view is EventView.STAFF or code in REPORTER_CHECKLIST_CODES


def shows_improvement_actions(view: EventView) -> bool:
    """Improvement actions are the departments' own follow-up (R3.5.2): staff only."""
    return view is EventView.STAFF


def shows_timeline_details(view: EventView) -> bool:
    """Timeline entries' before/after and notes are internal texts (R6.1, R7.1): the reporter
    view keeps what happened and when, and who did it only when it was the caller."""
    return view is EventView.STAFF
