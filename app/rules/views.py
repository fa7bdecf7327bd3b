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

from collections.abc import Collection, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from app.rules.deadlines import DueDate
from app.rules.permissions import sees_every_event
from app.rules.vocabulary import Audience, NoteVisibility, Role


class EventView(StrEnum):
    """The two views of an event (the `view` field of every event response)."""

    STAFF = "staff"
    REPORTER = "reporter"


def view_by_roles(roles: Collection[Role]) -> EventView | None:
    """R6.1: the view when the roles alone decide it; None for handlers and department heads."""
    # Staff for those who see every event, reporter for those who see only what they
    # reported; handlers and heads see some events through their department and others as
    # their reporter.
    if sees_every_event(roles):
        return EventView.STAFF
    if {Role.HANDLER, Role.DEPT_HEAD}.isdisjoint(roles):
        return EventView.REPORTER
    return None


def event_view(roles: Collection[Role], *, involved: bool) -> EventView:
    """R6.1, R6.2: the caller's view of one event; `involved`: seen other than as reporter."""
    # `involved`: `permissions.may_see(..., is_reporter=False)` holds, i.e. one of the
    # `permissions.INVOLVING` grounds (their department leads, cooperates on or owns an
    # improvement action of it, or they own a step).
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
        "sla",
        "resolved_at",
        "closed_at",
        "created_by",
        "created_at",
        "updated_at",
    }
)
# What the reporter's detail adds: the feedback given to them (`audience` reporter, R3.4.1-2)
# and their satisfaction (R6.2).
REPORTER_FEEDBACK_AUDIENCE: Final = Audience.REPORTER
# Notes: only those written for the reporter (customer contacts, R6.2).
REPORTER_NOTE_VISIBILITY: Final = NoteVisibility.REPORTER
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


def note_visibilities(view: EventView) -> frozenset[NoteVisibility] | None:
    """The note visibilities a view reads (R6.1, R6.2); None: all of them."""
    return None if view is EventView.STAFF else frozenset({REPORTER_NOTE_VISIBILITY})


def shows_checklist_item(view: EventView, code: str) -> bool:
    """Whether a view's checklist shows the gate `code` (R6.2)."""
    return view is EventView.STAFF or code in REPORTER_CHECKLIST_CODES


def shows_improvement_actions(view: EventView) -> bool:
    """Improvement actions are the departments' own follow-up (R3.5.2): staff only."""
    return view is EventView.STAFF


def shows_timeline_details(view: EventView) -> bool:
    """R6.1, R7.1: whether a view shows the timeline entries' before/after and notes."""
    # They are internal texts: the reporter view keeps what happened and when, and who did it
    # only when it was the caller.
    return view is EventView.STAFF


# ---- the list's filters (review of issue 10, item 1; R6.1) ----------------------------------
# A filter of `GET /v1/events` (its query parameter) matches on fields of the event, so it may
# be used only in a view that shows every field it reads: a filter on a hidden field would
# answer "is this event's severity major?" about a field the caller may not see. Each filter
# and sort with the fields it reads; a view may use those whose fields it shows.
# The due filters (`overdue`, `due_before`, `breached`, `sort=due_at`) read the running stage's
# due time, which for the review stage is `review_by`: not in the reporter view (R3.5), whose
# `sla` shows the respond, resolve and feedback clocks only. So they are staff filters; a
# reporter reads the clock of each of their events in its `sla`.
_DUE_TIMES: Final = frozenset(due.value for due in DueDate)
# The filters that read the field of their own name, and what the others read.
_OWN_FIELD: Final = ("status", "category", "severity", "assignee_id", "urgent")
LIST_FILTER_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        **{name: frozenset({name}) for name in _OWN_FIELD},
        "department": frozenset({"lead_department", "cooperating_departments"}),
        "overdue": _DUE_TIMES,
        "created_from": frozenset({"created_at"}),
        "created_to": frozenset({"created_at"}),
        "q": frozenset({"title", "description"}),
        "external_system": frozenset({"external_ref"}),
        "updated_since": frozenset({"updated_at"}),
        "due_before": _DUE_TIMES,
        "breached": _DUE_TIMES,
    }
)
LIST_SORT_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "created_at": frozenset({"created_at"}),
        "updated_at": frozenset({"updated_at"}),
        "due_at": _DUE_TIMES,
        # The matches of `q`, best first (README, Search).
        "relevance": frozenset({"title", "description", "created_at"}),
    }
)


def _shown(view: EventView, fields: frozenset[str]) -> bool:
    return view is EventView.STAFF or fields <= REPORTER_EVENT_FIELDS


def list_filters(view: EventView) -> frozenset[str]:
    """R6.1: the list filters a view may use (those reading only fields the view shows)."""
    return frozenset(name for name, fields in LIST_FILTER_FIELDS.items() if _shown(view, fields))


def list_sorts(view: EventView) -> frozenset[str]:
    """R6.1: the list orders a view may use."""
    return frozenset(name for name, fields in LIST_SORT_FIELDS.items() if _shown(view, fields))


# What only the staff view may filter or sort on: for a handler or head, whose view differs
# per event, such a condition holds only on the events they see in the staff view.
STAFF_ONLY_FILTERS: Final = frozenset(LIST_FILTER_FIELDS) - list_filters(EventView.REPORTER)
STAFF_ONLY_SORTS: Final = frozenset(LIST_SORT_FIELDS) - list_sorts(EventView.REPORTER)


def refused_list_filters(view: EventView, used: Collection[str], sort: str) -> list[str]:
    """R6.1: the filters among `used` (and `sort`) that `view` may not use, sorted."""
    refused = set(used) - list_filters(view)
    if sort not in list_sorts(view):
        refused.add("sort")
    return sorted(refused)
