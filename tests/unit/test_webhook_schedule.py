"""`Retry-After` as a receiver sends it (issue 13, item 2: honoured on 429 and 503), read by
`app/webhooks/schedule.retry_after`: a delay bounded to a day, or None when unreadable, and
never an exception (one would roll back a whole delivery piece already sent)."""

from datetime import UTC, datetime, timedelta

import pytest

from app.webhooks.schedule import MAX_RETRY_AFTER, retry_after

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "delay"),
    [
        ("120", timedelta(minutes=2)),
        (" 7 ", timedelta(seconds=7)),
        ("0", timedelta(0)),
        ("999999999999", MAX_RETRY_AFTER),
        ("Wed, 02 Dec 2026 12:05:00 GMT", timedelta(minutes=5)),
        ("Wed, 02 Dec 2026 11:00:00 GMT", timedelta(0)),  # already past
        (None, None),
        ("", None),
        ("soon", None),
        ("\xb2", None),  # a superscript two: str.isdigit() says yes, int() refuses
        ("١٢", None),  # Arabic-Indic digits
        ("-5", None),
        ("Wed, 02 Dec 99999 12:05:00 GMT", None),
        ("Wed, 02 Dec 2026 12:05:00", None),  # no zone
    ],
)
def test_retry_after_reads_seconds_or_a_date_and_nothing_else(
    value: str | None, delay: timedelta | None
) -> None:
    assert retry_after(value, NOW) == delay
