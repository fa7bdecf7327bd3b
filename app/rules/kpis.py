"""Appraisal indicators (R5.4): what they mean, who may read them, over what period.

The definitions are here, as data: which events a period counts (`PERIOD_FACT`), what counts as
on time (`ON_TIME`), the measures the database adds up per group (`MEASURES`), and each figure
of the report as a numerator and denominator of those measures, with an id and a version
(`INDICATORS`). `app/kpis/repository.py` renders the measures as one SQL statement; nothing
there decides what a figure means.

* **on-time handling rate** (R5.4): of the events resolved, the share resolved no later than
  their `resolve_by` deadline (product.md section 3 sets the deadlines);
* **satisfaction** (R5.4, R6.2): the mean of the recorded scores (1 to 5) and how many
  reporters could not be reached;
* **recurrence rate** (R5.4): the share of the period's events reported as a recurrence of an
  earlier event (`recurrence_of`): what summary and evaluation failed to prevent;
* **mean resolution time**: hours from report to resolution, over the events resolved.

Events count in the period they were reported in (`created_at`), so a period's figures do not
shift when an old event is finally closed. Facts are named as the event's fields.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from app.rules.vocabulary import Role, Status

MAX_PERIOD: Final = timedelta(days=732)  # two years, leap days included
DEFINITIONS_VERSION: Final = 1


class KpiGroup(StrEnum):
    # R5.4: indicators per lead department, assignee or category (no docstring: it would
    # become the enum's description in the OpenAPI document).
    DEPARTMENT = "department"  # the lead department
    ASSIGNEE = "assignee"
    CATEGORY = "category"


class KpiScope(StrEnum):
    """R5.1, R5.4: whose indicators a caller may read."""

    ALL = "all"
    OWN_DEPARTMENT = "own_department"
    NONE = "none"


# ---- the facts and conditions the database evaluates ---------------------------------------


@dataclass(frozen=True, slots=True)
class Equals:
    """A fact has this value (`status = closed`)."""

    fact: str
    value: str


@dataclass(frozen=True, slots=True)
class NotLater:
    """A time is no later than another (`resolved_at <= resolve_by`)."""

    fact: str
    deadline: str


@dataclass(frozen=True, slots=True)
class IsTrue:
    """A yes/no fact is yes."""

    fact: str


Condition = Equals | NotLater | IsTrue


@dataclass(frozen=True, slots=True)
class Span:
    """Seconds from one time to a later one (`resolved_at - created_at`)."""

    start: str
    end: str


class Aggregate(StrEnum):
    """R5.4: a measure counts events or adds a value up."""

    COUNT = "count"
    SUM = "sum"


@dataclass(frozen=True, slots=True)
class Measure:
    """One number the database computes per group over the period's events.

    COUNT without `of`: the events (those meeting `where`); COUNT of a fact: the events where it
    is set; SUM of a fact or span: its total over the events where it is set (None: none)."""

    name: str
    aggregate: Aggregate
    of: str | Span | None = None
    where: Condition | None = None


# R5.4: an event is resolved on time when it is resolved no later than its resolve_by deadline.
ON_TIME: Final = NotLater("resolved_at", "resolve_by")
# Events count in the period they were reported in; a department head's scope is what their
# department leads.
PERIOD_FACT: Final = "created_at"
SCOPE_FACT: Final = "lead_department"
GROUP_FACTS: Final[Mapping[KpiGroup, str]] = MappingProxyType(
    {
        KpiGroup.DEPARTMENT: "lead_department",
        KpiGroup.ASSIGNEE: "assignee_id",
        KpiGroup.CATEGORY: "category",
    }
)

MEASURES: Final = (
    Measure("events", Aggregate.COUNT),
    Measure("resolved", Aggregate.COUNT, of="resolved_at"),
    Measure("closed", Aggregate.COUNT, where=Equals("status", Status.CLOSED.value)),
    Measure("cancelled", Aggregate.COUNT, where=Equals("status", Status.CANCELLED.value)),
    Measure("resolved_on_time", Aggregate.COUNT, where=ON_TIME),
    Measure("resolution_seconds", Aggregate.SUM, of=Span("created_at", "resolved_at")),
    Measure("recurrences", Aggregate.COUNT, of="recurrence_of"),
    Measure("responses", Aggregate.COUNT, of="satisfaction_score"),
    Measure("score_sum", Aggregate.SUM, of="satisfaction_score"),
    Measure("unreachable", Aggregate.COUNT, where=IsTrue("satisfaction_unreachable")),
)


# ---- the figures of the report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Indicator:
    """A figure of the report: numerator / denominator / `divisor`, rounded to `digits`;
    None when the denominator is 0 (nothing to measure) or the numerator is unknown."""

    id: str
    version: int
    clause: str
    numerator: str
    denominator: str
    digits: int
    divisor: int = 1


@dataclass(frozen=True, slots=True)
class Remainder:
    """A count left after taking others away (open = events - closed - cancelled)."""

    id: str
    version: int
    clause: str
    whole: str
    minus: tuple[str, ...]


OPEN: Final = Remainder("open", 1, "R5.4", whole="events", minus=("closed", "cancelled"))
INDICATORS: Final = (
    Indicator("on_time_rate", 1, "R5.4", "resolved_on_time", "resolved", digits=4),
    Indicator(
        "mean_resolution_hours", 1, "R5.4", "resolution_seconds", "resolved", 2, divisor=3600
    ),
    Indicator("recurrence_rate", 1, "R5.4", "recurrences", "events", digits=4),
    Indicator("mean_score", 1, "R5.4, R6.2", "score_sum", "responses", digits=2),
)

Numbers = Mapping[str, int | float | None]


def ratio(indicator: Indicator, measures: Numbers) -> float | None:
    """R5.4: one figure from the group's measures; None when there is nothing to measure."""
    part, whole = measures[indicator.numerator], measures[indicator.denominator]
    if not whole or part is None:
        return None
    return round(float(part) / whole / indicator.divisor, indicator.digits)


def figures(measures: Numbers) -> dict[str, int | float | None]:
    """R5.4: every figure of one group (the measures it is made of stay as they are)."""
    remainder = int(measures[OPEN.whole] or 0) - sum(int(measures[m] or 0) for m in OPEN.minus)
    return {OPEN.id: remainder} | {i.id: ratio(i, measures) for i in INDICATORS}


def totals(groups: Iterable[Numbers]) -> dict[str, int | float]:
    """R5.4: the measures of every group added up (each is a count or a sum)."""
    total: dict[str, int | float] = dict.fromkeys((m.name for m in MEASURES), 0)
    for group in groups:
        for name in total:
            total[name] += group[name] or 0
    return total


def kpi_scope(roles: Collection[Role], department: str | None) -> KpiScope:
    """R5.1, R5.4: supervisors and admins read all; a head, what their department leads."""
    if Role.ADMIN in roles or Role.SUPERVISOR in roles:
        return KpiScope.ALL
    if Role.DEPT_HEAD in roles and department:
        return KpiScope.OWN_DEPARTMENT
    return KpiScope.NONE


def rate(part: int, whole: int) -> float | None:
    """R5.4: a share rounded to four places; None when there is nothing to measure."""
    return round(part / whole, 4) if whole else None


def period_problem(days: float) -> str | None:
    """R5.4: why a requested period is not acceptable, or None."""
    if days <= 0:
        return "`from` must be before `to`"
    if days > MAX_PERIOD.total_seconds() / 86_400:
        return f"The period may be at most {MAX_PERIOD.days} days"
    return None
