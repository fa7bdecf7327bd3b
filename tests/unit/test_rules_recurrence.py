"""What counts as a recurrence (R1.1, R5.4; app/rules/recurrence.py)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.rules.recurrence import (
    DEFAULT_RECURRENCE,
    Original,
    best_match,
    charged_department,
    in_window,
    matches,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _original(
    days_ago: float | None = 10, category: str = "customer_complaint", lead: str = "CS"
) -> Original:
    return Original(
        event_id=uuid.uuid4(),
        category=category,
        closed_at=None if days_ago is None else NOW - timedelta(days=days_ago),
        lead_department=lead,
    )


@pytest.mark.parametrize(
    ("original", "category", "expected"),
    [
        (_original(10), "customer_complaint", True),
        (_original(90), "customer_complaint", True),  # the window's first moment
        (_original(90.01), "customer_complaint", False),
        (_original(-1), "customer_complaint", False),  # closed after the report
        (_original(None), "customer_complaint", False),  # never closed
        (_original(10), "business_issue", False),  # another category
        (_original(10), None, False),  # not classified
    ],
)
def test_in_window(original: Original, category: str | None, expected: bool) -> None:
    assert in_window(original, category=category, reported_at=NOW, policy=DEFAULT_RECURRENCE) is (
        expected
    )


def test_the_threshold_is_inclusive() -> None:
    assert matches(0.6, DEFAULT_RECURRENCE)
    assert not matches(0.59, DEFAULT_RECURRENCE)


def test_best_match_is_the_most_similar_in_the_window() -> None:
    near, nearer, outside = _original(5), _original(20), _original(200)
    scored = [(near, 0.7), (nearer, 0.9), (outside, 1.0), (_original(1), 0.5)]
    found = best_match(
        scored, category="customer_complaint", reported_at=NOW, policy=DEFAULT_RECURRENCE
    )
    assert found == (nearer, 0.9)
    tie = best_match(
        [(nearer, 0.9), (near, 0.9)],
        category="customer_complaint",
        reported_at=NOW,
        policy=DEFAULT_RECURRENCE,
    )
    assert tie == (near, 0.9)  # the most recently closed
    assert best_match([], category="x", reported_at=NOW, policy=DEFAULT_RECURRENCE) is None


def test_a_recurrence_counts_against_the_lead_department_of_the_original() -> None:
    linked, matched = _original(10, lead="LOG"), _original(10, lead="IT")
    common = {"category": "customer_complaint", "reported_at": NOW, "policy": DEFAULT_RECURRENCE}
    assert charged_department(linked=linked, matched=matched, **common) == "LOG"  # type: ignore[arg-type]
    assert charged_department(linked=None, matched=matched, **common) == "IT"  # type: ignore[arg-type]
    stale = _original(120, lead="LOG")
    assert charged_department(linked=stale, matched=matched, **common) == "IT"  # type: ignore[arg-type]
    assert charged_department(linked=stale, matched=None, **common) is None  # type: ignore[arg-type]
