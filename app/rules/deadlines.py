"""Due times from urgency, severity and the working calendar (R1.3.1, product.md section 3)."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from app.rules.policy import Policy, WorkingCalendar
from app.rules.vocabulary import Severity, Status


class DueDate(StrEnum):
    """The due dates an event carries (R1.3.1); the values are the event's fields."""

    RESPOND_BY = "respond_by"
    RESOLVE_BY = "resolve_by"
    FEEDBACK_BY = "feedback_by"
    REVIEW_BY = "review_by"


# Which due date a status is waiting on (product.md section 3: an event is overdue once the
# due date of its current stage has passed); later statuses have none.
STAGE_DUE: Final[Mapping[Status, DueDate]] = MappingProxyType(
    {
        Status.REPORTED: DueDate.RESPOND_BY,
        Status.CLASSIFIED: DueDate.RESPOND_BY,
        Status.ASSIGNED: DueDate.RESOLVE_BY,
        Status.IN_PROGRESS: DueDate.RESOLVE_BY,
        Status.RESOLVED: DueDate.FEEDBACK_BY,
        Status.FEEDBACK_GIVEN: DueDate.REVIEW_BY,
    }
)


def is_overdue(status: Status, due: Mapping[DueDate, datetime | None], now: datetime) -> bool:
    """R1.3.1 (product.md section 3): the due date of the event's current stage has passed."""
    which = STAGE_DUE.get(status)
    moment = None if which is None else due.get(which)
    return moment is not None and moment < now


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadlines:
    """The due times of an event (R1.3.1); feedback and review are due only once reached."""

    respond_by: datetime
    resolve_by: datetime
    feedback_by: datetime | None = None
    review_by: datetime | None = None


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("deadlines need a timezone-aware datetime")


def add_hours(start: datetime, hours: float, calendar: WorkingCalendar | None) -> datetime:
    """Add hours to start, counting only working time when a calendar is given (R1.3.1)."""
    _require_aware(start)
    if math.isnan(hours) or hours < 0:
        raise ValueError("hours must not be negative")
    begin = start.astimezone(UTC)
    if calendar is None or hours == 0:
        return begin + timedelta(hours=hours)
    zone = calendar.zone
    remaining = timedelta(hours=hours)
    cursor = begin
    day = cursor.astimezone(zone).date()
    while True:
        if calendar.is_working_day(day):
            # Windows are converted to UTC so elapsed working time is real time, also across DST.
            opens = datetime.combine(day, calendar.start, tzinfo=zone).astimezone(UTC)
            closes = datetime.combine(day, calendar.end, tzinfo=zone).astimezone(UTC)
            cursor = max(cursor, opens)
            if cursor < closes:
                available = closes - cursor
                if remaining <= available:
                    return cursor + remaining
                remaining -= available
        day += timedelta(days=1)


def respond_by(reported_at: datetime, *, urgent: bool, policy: Policy) -> datetime:
    """Respond (classify and assign) within the policy's response time (R1.3.1, R3.1.3)."""
    deadlines = policy.deadlines
    if urgent:
        # Emergency handling starts at once (R3.1.3): the clock runs outside working hours too.
        return add_hours(reported_at, deadlines.respond_urgent_hours, None)
    return add_hours(reported_at, deadlines.respond_normal_hours, deadlines.calendar)


def resolve_by(start: datetime, *, severity: Severity, policy: Policy) -> datetime:
    """Resolve within the policy's time for the severity (R1.3.1, R3.2.2)."""
    deadlines = policy.deadlines
    return add_hours(start, deadlines.resolve_hours[severity], deadlines.calendar)


def feedback_by(resolved_at: datetime, *, policy: Policy) -> datetime:
    """Give feedback within the policy's time after resolution (R3.4.1)."""
    deadlines = policy.deadlines
    return add_hours(resolved_at, deadlines.feedback_hours, deadlines.calendar)


def review_by(start: datetime, *, severity: Severity, policy: Policy) -> datetime:
    """Finish the summary and evaluation within the policy's time for the severity (R3.5.1)."""
    deadlines = policy.deadlines
    return add_hours(start, deadlines.review_hours[severity], deadlines.calendar)


def plan_deadlines(
    *, reported_at: datetime, urgent: bool, severity: Severity | None, policy: Policy
) -> Deadlines:
    """Deadlines known at intake or grading; ungraded events count as general (R1.3.1)."""
    return Deadlines(
        respond_by=respond_by(reported_at, urgent=urgent, policy=policy),
        resolve_by=resolve_by(reported_at, severity=severity or Severity.GENERAL, policy=policy),
    )
