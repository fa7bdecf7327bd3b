"""Appraisal and trend figures (R5.4, R5.5, R7.2): what each figure means, as data.

Every figure of `GET /v1/appraisals` and `GET /v1/trends` is a numerator over a denominator of
named measures, with the id and version of its definition (`DEFINITIONS`); the service shows
the three together so that a figure can always be recomputed and explained. The measures are
sums kept per day in the reporting rollup (migration `2b7d1f3a4c82`, `report_cells`), counted
on these days:

* the **reporting day** (`created_at`) for the cohort measures: events, resolved, closed,
  satisfaction scores (the KPIs' convention: a period's cohort does not shift later);
* the **due day** of each stage for the on-time handling rate (R5.4; product.md section 3): a
  stage due in the period counts as on time when it finished by its due time, late when it
  finished after it or is still unfinished; an unfinished stage counts late from the day after
  its due day (UTC), so that a past day's figure never moves; stages not yet due, and stages
  stopped by a cancel, are not counted. The stages are the event's current cycle (respond:
  classified and assigned; resolve; feedback; review);
* recurrences (R1.1, R5.4; what counts as one: `app/rules/recurrence.py`) by the day the new
  event was reported, against the department that led (closed) the original, over the events
  that department closed in the period (their closing day);
* spot checks (R5.2) by the day the check was completed, rectification orders (R5.3) by the
  day they were issued.

Thresholds of the policy (`AppraisalPolicy`) mark a department or employee `recognised` or
`needs_improvement`, with the reasons (R5.5).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from app.rules.policy import AppraisalPolicy, Threshold

STAGES: Final = ("respond", "resolve", "feedback", "review")
SCORES: Final = (1, 2, 3, 4, 5)
MAX_PERIOD_DAYS: Final = 732  # two years, as the KPIs (app/rules/kpis.py)


class AppraisalGroup(StrEnum):
    # R5.4: per department (the lead department) or per employee (the assignee).
    DEPARTMENT = "department"
    EMPLOYEE = "employee"


class Interval(StrEnum):
    # R7.2: the width of a trend bucket (weeks start on Monday, UTC).
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class TrendBy(StrEnum):
    # R7.2: what a trend series is split by.
    CATEGORY = "category"
    SEVERITY = "severity"
    DEPARTMENT = "department"
    ROOT_CAUSE = "root_cause"


class Mark(StrEnum):
    """R5.5: the outcome of the thresholds."""

    RECOGNISED = "recognised"
    NEEDS_IMPROVEMENT = "needs_improvement"
    NONE = "none"
    NOT_RATED = "not_rated"  # too few events to judge


class Backlog(StrEnum):
    """R7.2: open events at the end against the start of the period."""

    GROWING = "growing"
    SHRINKING = "shrinking"
    STEADY = "steady"


@dataclass(frozen=True, slots=True)
class Definition:
    """A figure: numerator / denominator (/ `divisor`), rounded to `digits`; None when the
    denominator is 0 (nothing to measure)."""

    id: str
    version: int
    clause: str
    numerator: str
    denominator: str
    digits: int = 4
    divisor: int = 1
    text: str = ""


def _stage(stage: str) -> Definition:
    return Definition(
        f"on_time_rate.{stage}",
        1,
        "R5.4",
        f"{stage}_on_time",
        f"{stage}_counted",
        text=f"Of the {stage} stages due in the period: finished by their due time / finished "
        "or overdue (unfinished ones from the day after their due day)",
    )


DEFINITIONS: Final[Mapping[str, Definition]] = MappingProxyType(
    {
        d.id: d
        for d in (
            Definition(
                "on_time_rate",
                1,
                "R5.4",
                "on_time",
                "counted",
                text="Every stage due in the period: on time / counted",
            ),
            *(_stage(stage) for stage in STAGES),
            Definition(
                "satisfaction_mean",
                1,
                "R5.4, R6.2",
                "score_sum",
                "responses",
                digits=2,
                text="Mean score (1 to 5) of the events reported in the period",
            ),
            Definition(
                "satisfaction_response_rate",
                1,
                "R5.4, R6.2",
                "responses",
                "closed",
                text="Scores recorded / events reported in the period and closed",
            ),
            *(
                Definition(
                    f"satisfaction_share.{k}",
                    1,
                    "R5.4",
                    f"score_{k}",
                    "responses",
                    text=f"Share of the scores that are {k}",
                )
                for k in SCORES
            ),
            Definition(
                "recurrence_rate",
                1,
                "R1.1, R5.4",
                "recurrences_charged",
                "closed_on",
                text="Recurrences reported in the period of originals this department (or "
                "employee) closed / events it closed in the period",
            ),
            Definition(
                "rectification_overdue_rate",
                1,
                "R5.3",
                "rectifications_overdue",
                "rectifications_issued",
                text="Orders issued in the period still unanswered after their due time / "
                "orders issued in the period",
            ),
            Definition(
                "spot_check_pass_rate",
                1,
                "R5.2",
                "checks_passed",
                "checks_judged",
                text="Answers `pass` / answers `pass` or `fail` of the spot checks completed "
                "in the period",
            ),
            Definition(
                "mean_resolution_hours",
                1,
                "R5.4, R7.2",
                "resolution_seconds",
                "resolved",
                digits=2,
                divisor=3600,
                text="Hours from report to resolution of the events reported in the bucket",
            ),
        )
    }
)
APPRAISAL_FIGURES: Final = (
    "on_time_rate",
    *(f"on_time_rate.{stage}" for stage in STAGES),
    "satisfaction_mean",
    "satisfaction_response_rate",
    "recurrence_rate",
    "rectification_overdue_rate",
    "spot_check_pass_rate",
)


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure with what it is made of (product.md section 8)."""

    id: str
    version: int
    value: float | None
    numerator: float
    denominator: float


Numbers = Mapping[str, float]


def figure(definition_id: str, measures: Numbers) -> Figure:
    """R5.4: one figure from a group's measures (a missing measure is 0)."""
    definition = DEFINITIONS[definition_id]
    part = measures.get(definition.numerator, 0)
    whole = measures.get(definition.denominator, 0)
    value = round(part / whole / definition.divisor, definition.digits) if whole else None
    return Figure(definition.id, definition.version, value, part, whole)


def stage_totals(measures: Numbers) -> dict[str, float]:
    """R5.4: on-time numerators and denominators per stage and overall, from met/late/overdue."""
    found: dict[str, float] = {"on_time": 0, "counted": 0}
    for stage in STAGES:
        met = measures.get(f"{stage}_met", 0)
        counted = met + measures.get(f"{stage}_late", 0) + measures.get(f"{stage}_overdue", 0)
        found[f"{stage}_on_time"], found[f"{stage}_counted"] = met, counted
        found["on_time"] += met
        found["counted"] += counted
    return found


def counts_late(due_day: date, today: date) -> bool:
    """R5.4: an unfinished stage counts as late from the day after its due day (UTC)."""
    return due_day < today


def _holds(threshold: Threshold, value: float | None) -> bool:
    if value is None:
        return False
    if threshold.op == "gte":
        return value >= threshold.value
    if threshold.op == "lte":
        return value <= threshold.value
    if threshold.op == "gt":
        return value > threshold.value
    return value < threshold.value


def _reason(threshold: Threshold, value: float | None) -> str:
    words = {"gte": ">=", "lte": "<=", "gt": ">", "lt": "<"}[threshold.op]
    shown = "none" if value is None else f"{value:g}"
    return f"{threshold.figure} {shown} {words} {threshold.value:g}"


def mark(
    figures: Mapping[str, float | None], *, events: float, policy: AppraisalPolicy
) -> tuple[Mark, tuple[str, ...]]:
    """R5.5: the mark the policy's thresholds give, with the thresholds behind it as reasons."""
    # needs_improvement when any of its thresholds holds; recognised when every one of its
    # thresholds holds (and none of the others); not_rated below the minimum of events.
    if events < policy.min_events:
        return Mark.NOT_RATED, (f"events {events:g} < {policy.min_events}",)
    failing = tuple(
        _reason(t, figures.get(t.figure))
        for t in policy.needs_improvement
        if _holds(t, figures.get(t.figure))
    )
    if failing:
        return Mark.NEEDS_IMPROVEMENT, failing
    if policy.recognised and all(_holds(t, figures.get(t.figure)) for t in policy.recognised):
        return Mark.RECOGNISED, tuple(_reason(t, figures.get(t.figure)) for t in policy.recognised)
    return Mark.NONE, ()


# The years a period may span: any real record, and room for a month's bucket after it.
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2200


def period_problem(start: date, end: date) -> str | None:
    """R5.4, R7.2: why a period of whole days is not acceptable, or None."""
    if end <= start:
        return "`from` must be before `to`"
    if not (start.year >= FIRST_YEAR and end.year <= LAST_YEAR):
        return f"The period must lie within the years {FIRST_YEAR} to {LAST_YEAR}"
    if (end - start).days > MAX_PERIOD_DAYS:
        return f"The period may be at most {MAX_PERIOD_DAYS} days"
    return None


def bucket_of(day: date, interval: Interval) -> date:
    """R7.2: the first day of the bucket `day` falls in."""
    if interval is Interval.DAY:
        return day
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def buckets(start: date, end: date, interval: Interval) -> list[date]:
    """R7.2: the first days of the buckets covering [start, end), in order."""
    found: list[date] = []
    current = bucket_of(start, interval)
    while current < end:
        found.append(current)
        if interval is Interval.DAY:
            current += timedelta(days=1)
        elif interval is Interval.WEEK:
            current += timedelta(days=7)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return found


def backlog(opening: float, closing: float) -> Backlog:
    """R7.2: the backlog grows when more events are open at the end than at the start."""
    if math.isclose(opening, closing):
        return Backlog.STEADY
    return Backlog.GROWING if closing > opening else Backlog.SHRINKING


def top(counts: Mapping[str, float], limit: int) -> Sequence[tuple[str, float]]:
    """R7.2: the most frequent keys, most first, ties by key."""
    return sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))[:limit]
