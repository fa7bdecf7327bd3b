"""Which errors mean "PostgreSQL cannot be reached" (`app.core.unavailable`), for the cases
found by the fault tests (issue 15 item 6); the rest is covered end to end in tests/e2e."""

import asyncpg

from app.core.unavailable import database_unavailable


def test_a_protocol_left_consuming_a_shutdown_error_is_unavailable() -> None:
    """A pooled connection whose server sent an error as it shut down: asyncpg's protocol
    still waits for the end of it (state 2) or gave up, and the next statement fails."""
    for message in (
        "cannot switch to state 12; another operation (2) is in progress",
        'cannot switch to state 12; protocol is in the "failed" state',
    ):
        error = asyncpg.InternalClientError(message)
        assert database_unavailable(error) is error


def test_other_internal_client_errors_are_bugs_not_outages() -> None:
    error = asyncpg.InternalClientError(
        "cannot switch to state 12; another operation (11) is in progress"
    )
    assert database_unavailable(error) is None
