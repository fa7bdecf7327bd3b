"""What a person's work queue holds (R1.3.1, R3.3.2, R4.1): each duty, who has it, in which
statuses of the event it waits, and the action it waits for. `GET /v1/me/queue` reads these
tables; the repository only translates them to SQL."""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from app.rules.vocabulary import Role, Status

# R3.3.2, R3.4, R4.1: the assignee plans, resolves, gives the feedback and sees it reviewed.
ASSIGNEE_WAITS_FOR: Final[Mapping[Status, str]] = MappingProxyType(
    {
        Status.ASSIGNED: "plan",
        Status.IN_PROGRESS: "resolution",
        Status.RESOLVED: "feedback",
        Status.FEEDBACK_GIVEN: "review",
    }
)
# R1.3.1: the intake desk classifies and assigns what came in.
DESK_WAITS_FOR: Final[Mapping[Status, str]] = MappingProxyType(
    {Status.REPORTED: "classification", Status.CLASSIFIED: "assignment"}
)
# R3.3.2: a step's owner works on an open step while the event is in progress.
STEP_WHILE: Final = (Status.IN_PROGRESS,)
# R4.2: the department's improvement actions (and, for its head, their verification) while
# the event is under review.
ACTION_WHILE: Final = (Status.FEEDBACK_GIVEN, Status.REVIEWED)
# R3.4.1: the intake desk accepts or returns the feedback addressed to it.
FEEDBACK_DECISION_WHILE: Final = (Status.RESOLVED,)


@dataclass(frozen=True, slots=True)
class Duties:
    """Which of the queue's duties a caller has besides their own assignments and steps."""

    department_staff: bool  # improvement actions of their department
    department_head: bool  # verifications and escalations of their department
    intake_desk: bool  # classification, assignment and the feedback decision


def duties_of(roles: frozenset[Role], department: str | None) -> Duties:
    """R4.1, R4.2: the duties of `roles` (a department's need a department; the desk's not)."""
    in_department = department is not None
    return Duties(
        department_staff=in_department and bool(roles & {Role.HANDLER, Role.DEPT_HEAD}),
        department_head=in_department and Role.DEPT_HEAD in roles,
        intake_desk=Role.INTAKE_AGENT in roles,
    )
