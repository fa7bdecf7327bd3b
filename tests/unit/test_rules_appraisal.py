"""The appraisal and trend rules (R5.4, R5.5, R7.2): figures, marks, buckets, backlog."""

from datetime import date

import pytest

from app.rules import appraisal as rules
from app.rules.appraisal import Backlog, Interval, Mark
from app.rules.policy import DEFAULT_APPRAISAL


@pytest.mark.parametrize(
    ("measures", "value"),
    [
        ({"on_time": 3, "counted": 4}, 0.75),
        ({"on_time": 0, "counted": 0}, None),  # nothing to measure
        ({}, None),
    ],
)
def test_a_figure_is_its_numerator_over_its_denominator(
    measures: dict[str, float], value: float | None
) -> None:
    figure = rules.figure("on_time_rate", measures)
    assert (figure.value, figure.id, figure.version) == (value, "on_time_rate", 1)


def test_mean_resolution_hours_divides_seconds() -> None:
    assert (
        rules.figure("mean_resolution_hours", {"resolution_seconds": 7200, "resolved": 2}).value
        == 1.0
    )


def test_stage_totals_count_overdue_as_late() -> None:
    totals = rules.stage_totals({"respond_met": 2, "respond_late": 1, "respond_overdue": 1})
    assert (totals["respond_on_time"], totals["respond_counted"]) == (2, 4)
    assert (totals["on_time"], totals["counted"]) == (2, 4)


@pytest.mark.parametrize(
    ("figures", "events", "mark", "reasons"),
    [
        ({"on_time_rate": 0.97, "satisfaction_mean": 4.6}, 10, Mark.RECOGNISED, 2),
        ({"on_time_rate": 0.5, "satisfaction_mean": 4.6}, 10, Mark.NEEDS_IMPROVEMENT, 1),
        ({"on_time_rate": 0.9, "satisfaction_mean": 4.0}, 10, Mark.NONE, 0),
        ({"on_time_rate": None, "satisfaction_mean": None}, 10, Mark.NONE, 0),
        ({"on_time_rate": 0.1}, 4, Mark.NOT_RATED, 1),
        ({"rectification_overdue_rate": 0.5, "on_time_rate": 1.0}, 10, Mark.NEEDS_IMPROVEMENT, 1),
    ],
)
def test_marks_follow_the_default_thresholds(
    figures: dict[str, float | None], events: int, mark: Mark, reasons: int
) -> None:
    found, why = rules.mark(figures, events=events, policy=DEFAULT_APPRAISAL)
    assert (found, len(why)) == (mark, reasons)


@pytest.mark.parametrize(
    ("day", "interval", "start"),
    [
        (date(2025, 1, 1), Interval.DAY, date(2025, 1, 1)),
        (date(2025, 1, 1), Interval.WEEK, date(2024, 12, 30)),  # Monday
        (date(2025, 1, 19), Interval.MONTH, date(2025, 1, 1)),
    ],
)
def test_bucket_of(day: date, interval: Interval, start: date) -> None:
    assert rules.bucket_of(day, interval) == start


def test_buckets_cover_the_period() -> None:
    assert rules.buckets(date(2025, 1, 15), date(2025, 4, 1), Interval.MONTH) == [
        date(2025, 1, 1),
        date(2025, 2, 1),
        date(2025, 3, 1),
    ]
    assert len(rules.buckets(date(2025, 1, 1), date(2026, 1, 1), Interval.WEEK)) == 53


@pytest.mark.parametrize(
    ("opening", "closing", "direction"),
    [(5, 7, Backlog.GROWING), (7, 5, Backlog.SHRINKING), (5, 5, Backlog.STEADY)],
)
def test_backlog_direction(opening: float, closing: float, direction: Backlog) -> None:
    assert rules.backlog(opening, closing) is direction


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (date(2025, 1, 2), date(2025, 1, 1), "before"),
        (date(2025, 1, 1), date(2027, 2, 1), "at most"),
        (date(2025, 1, 1), date(2025, 1, 2), None),
    ],
)
def test_period_problem(start: date, end: date, problem: str | None) -> None:
    found = rules.period_problem(start, end)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_top_keeps_the_most_frequent() -> None:
    assert rules.top({"a": 1, "b": 3, "c": 3, "d": 0}, 2) == [("b", 3), ("c", 3)]
