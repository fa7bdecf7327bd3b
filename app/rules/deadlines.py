"""Due times from urgency, severity and the working calendar (R1.3.1, product.md section 3)."""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.rules.policy import Policy, WorkingCalendar
from app.rules.vocabulary import Severity


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
