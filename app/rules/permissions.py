"""Who may do what on an event (product.md sections 1 and 2; R3.3.2, R4, R5.1).

A role grants an action either anywhere (`ANY`), only on events its department leads (`LEAD`),
or on events its department leads or cooperates on (`INVOLVED`). Admin may do everything.
Visibility is separate: an event one may not see answers 404 before any of this is asked.
"""

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


def may(
    action: EventAction,
    roles: Collection[Role],
    *,
    department: str | None,
    lead: str | None,
    cooperating: Collection[str] = (),
) -> bool:
    """True when one of `roles` grants `action` on an event led by `lead` (R1.3.3)."""
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


def sees_every_event(roles: Collection[Role]) -> bool:
    """Product.md section 1: admin, supervisors and the intake desk see every event."""
    return not {Role.ADMIN, Role.SUPERVISOR, Role.INTAKE_AGENT}.isdisjoint(roles)


def may_see(
    roles: Collection[Role],
    *,
    department: str | None,
    is_reporter: bool,
    lead: str | None,
    cooperating: Collection[str],
    owns_step: bool = False,
    action_departments: Collection[str] = (),
) -> bool:
    """Handlers and heads see events their department leads or cooperates on, or owns an
    improvement action of (R3.5.2, R4.3), and events with a plan step they own (R3.3.1);
    anyone sees the events they reported (product.md section 1)."""
    if sees_every_event(roles) or is_reporter:
        return True
    if {Role.HANDLER, Role.DEPT_HEAD}.isdisjoint(roles):
        return False
    if owns_step:
        return True
    return department is not None and (
        department == lead or department in cooperating or department in action_departments
    )


def matrix_markdown() -> str:
    """The matrix as the Markdown table the README shows (a test keeps them equal)."""
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
