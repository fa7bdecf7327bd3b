"""Appraisal indicators (R5.4): what they mean, who may read them, over what period.

The database counts (app/kpis); the definitions are here, in one place:

* **on-time handling rate** (R5.4): of the events resolved, the share resolved no later than
  their `resolve_by` deadline (product.md section 3 sets the deadlines);
* **satisfaction** (R5.4, R6.2): the mean of the recorded scores (1 to 5) and how many
  reporters could not be reached;
* **recurrence rate** (R5.4): the share of the period's events reported as a recurrence of an
  earlier event (`recurrence_of`): what summary and evaluation failed to prevent;
* **mean resolution time**: hours from report to resolution, over the events resolved.

Events count in the period they were reported in (`created_at`), so a period's figures do not
shift when an old event is finally closed.
"""

from collections.abc import Collection
from datetime import timedelta
from enum import StrEnum
from typing import Final

from app.rules.vocabulary import Role

MAX_PERIOD: Final = timedelta(days=732)  # two years, leap days included


class KpiGroup(StrEnum):
    DEPARTMENT = "department"  # the lead department
    ASSIGNEE = "assignee"
    CATEGORY = "category"


class KpiScope(StrEnum):
    ALL = "all"
    OWN_DEPARTMENT = "own_department"
    NONE = "none"


def kpi_scope(roles: Collection[Role], department: str | None) -> KpiScope:
    """R5.1, R5.4: supervisors and admins read every department's indicators; a department
    head reads those of events their department leads; nobody else reads them."""
    if Role.ADMIN in roles or Role.SUPERVISOR in roles:
        return KpiScope.ALL
    if Role.DEPT_HEAD in roles and department:
        return KpiScope.OWN_DEPARTMENT
    return KpiScope.NONE


def rate(part: int, whole: int) -> float | None:
    """A share rounded to four places; None when there is nothing to measure."""
    return round(part / whole, 4) if whole else None


def period_problem(days: float) -> str | None:
    """Why a requested period is not acceptable, or None."""
    if days <= 0:
        return "`from` must be before `to`"
    if days > MAX_PERIOD.total_seconds() / 86_400:
        return f"The period may be at most {MAX_PERIOD.days} days"
    return None
