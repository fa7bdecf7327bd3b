"""Due times from urgency, severity and the working calendar (R1.3.1, product.md section 3)."""

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rules import (
    Deadlines,
    Policy,
    Severity,
    add_hours,
    default_policy,
    feedback_by,
    plan_deadlines,
    resolve_by,
    respond_by,
    review_by,
)
from app.rules.policy import WorkingCalendar

BERLIN: Final = ZoneInfo("Europe/Berlin")
POLICY: Final = default_policy()
CALENDAR: Final = WorkingCalendar(
    timezone="Europe/Berlin",
    workdays=frozenset(range(5)),
    start=time(9, 0),
    end=time(17, 0),
    holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}),
)
CALENDAR_POLICY: Final = replace(POLICY, deadlines=replace(POLICY.deadlines, calendar=CALENDAR))


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


T0: Final = datetime(2026, 12, 21, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # Friday afternoon: the weekend is skipped
        (berlin("2026-12-18 16:00"), 2, berlin("2026-12-21 10:00")),
        # Wednesday afternoon before two holidays and a weekend
        (berlin("2026-12-23 16:00"), 2, berlin("2026-12-28 10:00")),
        # reported on a Saturday: counting starts Monday morning
        (berlin("2026-12-19 12:00"), 1, berlin("2026-12-21 10:00")),
        # before opening hours
        (berlin("2026-12-21 07:00"), 1, berlin("2026-12-21 10:00")),
        # after closing: a full working day ends at the next closing time
        (berlin("2026-12-21 18:00"), 8, berlin("2026-12-22 17:00")),
        (berlin("2026-12-21 09:00"), 16, berlin("2026-12-22 17:00")),
        (berlin("2026-12-21 10:30"), 0.5, berlin("2026-12-21 11:00")),
        # a working week across the holidays
        (berlin("2026-12-21 09:00"), 40, berlin("2026-12-29 17:00")),
        # zero hours change nothing, even outside working time
        (berlin("2026-12-19 12:00"), 0, berlin("2026-12-19 12:00")),
        # across the switch to summer time (29 March 2026)
        (berlin("2026-03-27 16:00"), 2, berlin("2026-03-30 10:00")),
        # a start given in UTC is counted in the calendar's timezone
        (datetime(2026, 12, 18, 15, 30, tzinfo=UTC), 1, berlin("2026-12-21 09:30")),
    ],
)
def test_working_hours_calendar_table(start: datetime, hours: float, expected: datetime) -> None:
    assert add_hours(start, hours, CALENDAR) == expected


def test_summer_time_result_is_in_utc() -> None:
    result = add_hours(berlin("2026-03-27 16:00"), 2, CALENDAR)
    assert result == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (T0, 0.5, T0 + timedelta(minutes=30)),
        (T0, 120, T0 + timedelta(days=5)),
        (berlin("2026-12-19 12:00"), 1, datetime(2026, 12, 19, 12, 0, tzinfo=UTC)),
    ],
)
def test_without_calendar_hours_are_clock_hours(
    start: datetime, hours: float, expected: datetime
) -> None:
    result = add_hours(start, hours, None)
    assert result == expected
    assert result.tzinfo is UTC


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_hours(datetime(2026, 12, 21, 10, 0), 1, None)  # noqa: DTZ001


@pytest.mark.parametrize("hours", [-1.0, float("nan")])
def test_negative_hours_are_refused(hours: float) -> None:
    with pytest.raises(ValueError, match="negative"):
        add_hours(T0, hours, CALENDAR)


@pytest.mark.parametrize(
    ("urgent", "expected"),
    [(True, T0 + timedelta(minutes=30)), (False, T0 + timedelta(hours=8))],
)
def test_respond_by(urgent: bool, expected: datetime) -> None:
    assert respond_by(T0, urgent=urgent, policy=POLICY) == expected


@pytest.mark.parametrize(
    ("severity", "hours"),
    [(Severity.MAJOR, 24), (Severity.IMPORTANT, 72), (Severity.GENERAL, 120)],
)
def test_resolve_by(severity: Severity, hours: float) -> None:
    assert resolve_by(T0, severity=severity, policy=POLICY) == T0 + timedelta(hours=hours)


def test_feedback_by_is_a_day_after_resolution() -> None:
    assert feedback_by(T0, policy=POLICY) == T0 + timedelta(hours=24)


@pytest.mark.parametrize(
    ("severity", "days"),
    [(Severity.MAJOR, 3), (Severity.IMPORTANT, 7), (Severity.GENERAL, 7)],
)
def test_review_by(severity: Severity, days: int) -> None:
    assert review_by(T0, severity=severity, policy=POLICY) == T0 + timedelta(days=days)


def test_urgent_response_runs_outside_working_hours() -> None:
    saturday = berlin("2026-12-19 12:00")
    assert respond_by(saturday, urgent=True, policy=CALENDAR_POLICY) == berlin("2026-12-19 12:30")


def test_normal_response_counts_working_hours() -> None:
    saturday = berlin("2026-12-19 12:00")
    assert respond_by(saturday, urgent=False, policy=CALENDAR_POLICY) == berlin("2026-12-21 17:00")


def test_resolution_with_calendar_counts_working_hours() -> None:
    friday = berlin("2026-12-18 09:00")
    # 24 working hours: Friday, Monday, Tuesday
    assert resolve_by(friday, severity=Severity.MAJOR, policy=CALENDAR_POLICY) == berlin(
        "2026-12-22 17:00"
    )


@pytest.mark.parametrize(
    ("urgent", "severity", "expected"),
    [
        (
            True,
            Severity.MAJOR,
            Deadlines(respond_by=T0 + timedelta(hours=0.5), resolve_by=T0 + timedelta(hours=24)),
        ),
        (
            False,
            Severity.IMPORTANT,
            Deadlines(respond_by=T0 + timedelta(hours=8), resolve_by=T0 + timedelta(hours=72)),
        ),
        (
            False,
            None,
            Deadlines(respond_by=T0 + timedelta(hours=8), resolve_by=T0 + timedelta(hours=120)),
        ),
    ],
)
def test_plan_deadlines(urgent: bool, severity: Severity | None, expected: Deadlines) -> None:
    deadlines = plan_deadlines(reported_at=T0, urgent=urgent, severity=severity, policy=POLICY)
    assert deadlines == expected
    assert (deadlines.feedback_by, deadlines.review_by) == (None, None)


NIGHT_SHIFT: Final = WorkingCalendar(
    timezone="America/New_York",
    workdays=frozenset({5}),
    start=time(1, 30),
    end=time(3, 0),
)
CALENDARS: Final = st.sampled_from([None, CALENDAR, NIGHT_SHIFT])
STARTS: Final = st.datetimes(
    min_value=datetime(2020, 1, 1),  # noqa: DTZ001
    max_value=datetime(2035, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")]),
    allow_imaginary=False,
)
HOURS: Final = st.floats(min_value=0, max_value=400, allow_nan=False)


@given(start=STARTS, hours=HOURS, calendar=CALENDARS)
def test_deadline_never_comes_before_the_start(
    start: datetime, hours: float, calendar: WorkingCalendar | None
) -> None:
    assert add_hours(start, hours, calendar) >= start


@given(start=STARTS, hours=st.tuples(HOURS, HOURS), calendar=CALENDARS)
def test_add_hours_is_monotonic_in_hours(
    start: datetime, hours: tuple[float, float], calendar: WorkingCalendar | None
) -> None:
    fewer, more = sorted(hours)
    assert add_hours(start, fewer, calendar) <= add_hours(start, more, calendar)


@given(
    start=STARTS,
    urgent=st.booleans(),
    severity=st.sampled_from([None, *Severity]),
    policy=st.sampled_from([POLICY, CALENDAR_POLICY]),
)
def test_planned_deadlines_never_come_before_the_report(
    start: datetime, urgent: bool, severity: Severity | None, policy: Policy
) -> None:
    deadlines = plan_deadlines(reported_at=start, urgent=urgent, severity=severity, policy=policy)
    assert deadlines.respond_by >= start
    assert deadlines.resolve_by >= start
