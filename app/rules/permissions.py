"""Who may see and do what on an event (product.md sections 1 and 2; R3.3.2, R4, R5.1).

A role grants an action either anywhere (`ANY`), only on events its department leads (`LEAD`),
or on events its department leads or cooperates on (`INVOLVED`). Admin may do everything.
Visibility is separate: an event one may not see answers 404 before any of this is asked. It
is decided here once (`sight_grounds`, `may_see`); `app/events/repository/visibility.py` is
its only translation to SQL, and a property test holds the two equal.
"""

import functools
import uuid
from collections.abc import Collection, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from app.rules.vocabulary import Role


class Grant(StrEnum):
    """Where a role's grant applies."""

    ANY = "any"
    LEAD = "lead"
    INVOLVED = "involved"


class EventAction(StrEnum):
    INTAKE = "intake"
    CLASSIFY = "classify"
    ASSIGN = "assign"
    PLAN = "plan"
    UPDATE_STEP = "update_step"
    ADD_NOTE = "add_note"
    RESOLVE = "resolve"
    FEEDBACK_TO_INTAKE = "feedback_to_intake"
    DECIDE_FEEDBACK = "decide_feedback"
    FEEDBACK_TO_REPORTER = "feedback_to_reporter"
    RECORD_SATISFACTION = "record_satisfaction"
    REVIEW = "review"
    ADD_ACTION = "add_action"
    COMPLETE_ACTION = "complete_action"
    VERIFY_ACTION = "verify_action"
    CLOSE = "close"
    CANCEL = "cancel"
    REOPEN = "reopen"


_A, _L, _I = Grant.ANY, Grant.LEAD, Grant.INVOLVED
_DESK: Final = {Role.INTAKE_AGENT: _A}
_LEAD_STAFF: Final = {Role.HANDLER: _L, Role.DEPT_HEAD: _L}

MATRIX: Final[Mapping[EventAction, Mapping[Role, Grant]]] = MappingProxyType(
    {
        EventAction.INTAKE: dict.fromkeys(Role, _A),
        EventAction.CLASSIFY: {**_DESK, Role.SUPERVISOR: _A},
        EventAction.ASSIGN: {**_DESK, Role.SUPERVISOR: _A},
        EventAction.PLAN: {**_LEAD_STAFF},
        EventAction.UPDATE_STEP: {**_LEAD_STAFF},
        EventAction.ADD_NOTE: {
            Role.HANDLER: _I,
            Role.DEPT_HEAD: _I,
            Role.INTAKE_AGENT: _A,
            Role.SUPERVISOR: _A,
        },
        EventAction.RESOLVE: {**_LEAD_STAFF},
        EventAction.FEEDBACK_TO_INTAKE: {**_LEAD_STAFF},
        EventAction.DECIDE_FEEDBACK: {**_DESK},
        EventAction.FEEDBACK_TO_REPORTER: {**_DESK},
        EventAction.RECORD_SATISFACTION: {**_DESK},
        EventAction.REVIEW: {**_LEAD_STAFF},
        EventAction.ADD_ACTION: {**_LEAD_STAFF, Role.SUPERVISOR: _A},
        EventAction.COMPLETE_ACTION: {Role.HANDLER: _I, Role.DEPT_HEAD: _I},
        EventAction.VERIFY_ACTION: {Role.DEPT_HEAD: _I, Role.SUPERVISOR: _A, Role.INTAKE_AGENT: _A},
        EventAction.CLOSE: {**_DESK, Role.SUPERVISOR: _A},
        EventAction.CANCEL: {**_DESK, Role.SUPERVISOR: _A},
        EventAction.REOPEN: {**_DESK, Role.SUPERVISOR: _A, Role.DEPT_HEAD: _L},
    }
)


# Outside the matrix (R3.3.2, R3.5.2): a plan step's owner may update their own step, and an
# improvement action's own department counts as the lead for completing and verifying it.
STEP_OWNER_MAY: Final = frozenset({EventAction.UPDATE_STEP})
ACTION_DEPARTMENT_LEADS: Final = frozenset({EventAction.COMPLETE_ACTION, EventAction.VERIFY_ACTION})


def _granted(
    action: EventAction,
    roles: Collection[Role],
    department: str | None,
    lead: str | None,
    cooperating: Collection[str],
) -> bool:
    if Role.ADMIN in roles:
        return True
    grants = MATRIX[action]
    for role in roles:
        scope = grants.get(role)
        if scope is Grant.ANY:
            return True
        if scope is Grant.LEAD and department is not None and department == lead:
            return True
        if (
            scope is Grant.INVOLVED
            and department is not None
            and (department == lead or department in cooperating)
        ):
            return True
    return False


def may(
    action: EventAction,
    roles: Collection[Role],
    *,
    department: str | None,
    lead: str | None,
    cooperating: Collection[str] = (),
    owns_step: bool = False,
    action_department: str | None = None,
) -> bool:
    """R1.3.3, R3.3.2, R3.5.2: whether one of `roles` grants `action` on this event."""
    if owns_step and action in STEP_OWNER_MAY:
        return True
    if (
        action_department is not None
        and action in ACTION_DEPARTMENT_LEADS
        and _granted(action, roles, department, action_department, ())
    ):
        return True
    return _granted(action, roles, department, lead, cooperating)


def sees_every_event(roles: Collection[Role]) -> bool:
    """R4.1, R5.1 (product.md section 1): admin, supervisors and the intake desk see all."""
    return not {Role.ADMIN, Role.SUPERVISOR, Role.INTAKE_AGENT}.isdisjoint(roles)


class Sight(StrEnum):
    """Why a caller sees an event (product.md section 1): any one ground is enough."""

    EVERY_EVENT = "every_event"  # admin, supervisors and the intake desk (R4.1, R5.1)
    REPORTED = "reported"  # they reported it (took it in)
    # A person named as its reporter (`reporter.user_id`): they see it and the feedback given
    # to them (R3.4.1, R6.2; issue 16 item 3). People only: a service account sees what it
    # took in, no more.
    NAMED_REPORTER = "named_reporter"
    LEADS = "leads"  # their department leads it (R3.2.3)
    COOPERATES = "cooperates"  # their department cooperates on it (R3.2.3, R4.3)
    OWNS_STEP = "owns_step"  # they own a step of its plan (R3.3.1)
    OWNS_ACTION = "owns_action"  # their department owns one of its improvement actions (R3.5.2)


# The grounds that involve a handler or head in the event: they see it other than as its
# reporter, so in the staff view (app/rules/views.py).
INVOLVING: Final = frozenset({Sight.LEADS, Sight.COOPERATES, Sight.OWNS_STEP, Sight.OWNS_ACTION})


@functools.cache
def _grounds(roles: frozenset[Role], has_department: bool, person: bool) -> tuple[Sight, ...]:
    if sees_every_event(roles):
        return (Sight.EVERY_EVENT,)
    reported = (Sight.REPORTED, Sight.NAMED_REPORTER) if person else (Sight.REPORTED,)
    if {Role.HANDLER, Role.DEPT_HEAD}.isdisjoint(roles):
        return reported
    if not has_department:
        return (*reported, Sight.OWNS_STEP)
    # The cheap tests of the event's own columns before those of its plan and actions.
    return (*reported, Sight.LEADS, Sight.COOPERATES, Sight.OWNS_STEP, Sight.OWNS_ACTION)


def sight_grounds(
    roles: Collection[Role], *, has_department: bool, person: bool = False
) -> tuple[Sight, ...]:
    """R3.3.1, R3.4.1, R3.5.2, R4 (product.md section 1): the grounds the caller sees on."""
    # `person`: a person, not a service account; only people see what names them as its
    # reporter (issue 16 item 3).
    return _grounds(frozenset(roles), has_department, person)


def may_see(
    roles: Collection[Role],
    *,
    department: str | None,
    is_reporter: bool,
    lead: str | None,
    cooperating: Collection[str],
    owns_step: bool = False,
    action_departments: Collection[str] = (),
    is_named_reporter: bool = False,
    person: bool = False,
) -> bool:
    """R3.3.1, R3.4.1, R3.5.2, R4.3 (product.md section 1): whether a caller's ground holds."""
    # `is_reporter`: they took it in; `is_named_reporter`: its `reporter.user_id` is theirs,
    # which counts for a `person` only (issue 16 item 3).
    holds = {
        Sight.EVERY_EVENT: True,
        Sight.REPORTED: is_reporter,
        Sight.NAMED_REPORTER: is_named_reporter,
        Sight.LEADS: department is not None and department == lead,
        Sight.COOPERATES: department is not None and department in cooperating,
        Sight.OWNS_STEP: owns_step,
        Sight.OWNS_ACTION: department is not None and department in action_departments,
    }
    grounds = sight_grounds(roles, has_department=department is not None, person=person)
    return any(holds[ground] for ground in grounds)


# Who records a report on someone else's behalf, naming them as its reporter (R3.1.2, R4.1):
# the intake desk takes reports for anyone; admins and integrations (helpdesk tools) too.
NAMES_ANY_REPORTER: Final = frozenset({Role.INTAKE_AGENT, Role.ADMIN, Role.INTEGRATION})


def may_name_reporter(roles: Collection[Role], *, caller: uuid.UUID, named: uuid.UUID) -> bool:
    """R3.1.2, R4.1: whether the caller may name `named` as a report's reporter (self: yes)."""
    return named == caller or not NAMES_ANY_REPORTER.isdisjoint(roles)


def matrix_markdown() -> str:
    """R1.3.3: the matrix as the Markdown table the README shows (a test keeps them equal)."""
    roles = list(Role)
    lines = [
        "| action | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for action, grants in MATRIX.items():
        cells = [
            Grant.ANY.value if r is Role.ADMIN else (grants[r].value if r in grants else "—")
            for r in roles
        ]
        lines.append(f"| `{action.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
