"""A failing job is tried again after a backoff (issue 12, item 1): one poll, then twice as
long after each further failure in a row, capped."""

import pytest

from app.runner.runner import MAX_BACKOFF_SECONDS, backoff


@pytest.mark.parametrize(
    ("failures", "poll", "expected"),
    [
        (1, 15.0, 15.0),
        (2, 15.0, 30.0),
        (3, 15.0, 60.0),
        (5, 15.0, 240.0),
        (6, 15.0, MAX_BACKOFF_SECONDS),
        (1_000, 15.0, MAX_BACKOFF_SECONDS),
        (1, 900.0, 900.0),  # a poll longer than the cap is never shortened
        (4, 900.0, 900.0),
        (3, 0.5, 2.0),
    ],
)
def test_backoff_doubles_per_failure_up_to_the_cap(
    failures: int, poll: float, expected: float
) -> None:
    assert backoff(failures, poll) == expected
