"""Which list filters each view may use (app/rules/views.py; review of issue 10, item 1; R6.1)."""

import pytest

from app.rules.views import (
    LIST_FILTER_FIELDS,
    LIST_SORT_FIELDS,
    STAFF_ONLY_FILTERS,
    STAFF_ONLY_SORTS,
    EventView,
    list_filters,
    list_sorts,
    refused_list_filters,
)

STAFF, REPORTER = EventView.STAFF, EventView.REPORTER


def test_the_reporter_view_filters_only_on_what_it_shows() -> None:
    assert list_filters(REPORTER) == {
        "status",
        "category",
        "urgent",
        "created_from",
        "created_to",
        "q",
        "external_system",
        "updated_since",
    }
    assert list_sorts(REPORTER) == {"created_at", "updated_at", "relevance"}
    # Severity, lead/cooperating departments, assignee, and every stage's due time (the
    # review's is not in the reporter view).
    staff_only = {"severity", "department", "assignee_id", "overdue", "due_before", "breached"}
    assert staff_only == STAFF_ONLY_FILTERS
    assert {"due_at"} == STAFF_ONLY_SORTS


def test_the_staff_view_filters_on_everything() -> None:
    assert list_filters(STAFF) == set(LIST_FILTER_FIELDS)
    assert list_sorts(STAFF) == set(LIST_SORT_FIELDS)


@pytest.mark.parametrize(
    ("view", "used", "sort", "refused"),
    [
        (REPORTER, ["status", "q"], "created_at", []),
        (REPORTER, ["severity", "status"], "created_at", ["severity"]),
        (REPORTER, ["department", "assignee_id"], "updated_at", ["assignee_id", "department"]),
        (REPORTER, [], "due_at", ["sort"]),
        (REPORTER, ["breached"], "due_at", ["breached", "sort"]),
        (STAFF, ["severity", "breached", "overdue"], "due_at", []),
    ],
)
def test_refused_filters_are_named(
    view: EventView, used: list[str], sort: str, refused: list[str]
) -> None:
    assert refused_list_filters(view, used, sort) == refused
