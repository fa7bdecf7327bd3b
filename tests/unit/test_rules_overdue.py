"""Which due date makes an event overdue in which status (issue 11 item 4; R1.3.1, product.md
section 3): a table in `rules.deadlines` that the list's SQL renders (tests/api/test_overdue.py
holds the two equal)."""

from datetime import UTC, datetime, timedelta
from typing import Final

import pytest

from app.rules.deadlines import STAGE_DUE, DueDate, is_overdue
from app.rules.vocabulary import Status

NOW: Final = datetime(2026, 3, 2, 12, tzinfo=UTC)
PAST: Final = NOW - timedelta(minutes=1)


def test_each_open_status_waits_on_the_due_date_of_its_stage() -> None:
    assert dict(STAGE_DUE) == {
        Status.REPORTED: DueDate.RESPOND_BY,
        Status.CLASSIFIED: DueDate.RESPOND_BY,
        Status.ASSIGNED: DueDate.RESOLVE_BY,
        Status.IN_PROGRESS: DueDate.RESOLVE_BY,
        Status.RESOLVED: DueDate.FEEDBACK_BY,
        Status.FEEDBACK_GIVEN: DueDate.REVIEW_BY,
    }


@pytest.mark.parametrize("status", list(Status))
def test_only_the_stage_s_own_due_date_counts(status: Status) -> None:
    every_past = dict.fromkeys(DueDate, PAST)
    assert is_overdue(status, every_past, NOW) is (status in STAGE_DUE)
    if status in STAGE_DUE:
        others_past = every_past | {STAGE_DUE[status]: NOW + timedelta(minutes=1)}
        assert is_overdue(status, others_past, NOW) is False
        assert is_overdue(status, every_past | {STAGE_DUE[status]: None}, NOW) is False
        assert is_overdue(status, every_past | {STAGE_DUE[status]: NOW}, NOW) is False
