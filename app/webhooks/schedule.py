"""When a failed delivery is tried again, and when an endpoint is given up on (item 2).

Attempts at 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h after the previous
one, each with up to 10 % jitter either way so that retries of many messages spread out;
a 429 or 503 with `Retry-After` waits at least that long (at most a day). After the tenth
failure the message is given up on (about three days and three hours after the first try).
An endpoint whose every attempt failed for five days is disabled.
"""

import email.utils
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

RETRY_DELAYS: Final = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS: Final = len(RETRY_DELAYS) + 1
JITTER: Final = 0.1
MAX_RETRY_AFTER: Final = timedelta(hours=24)
DISABLE_AFTER: Final = timedelta(days=5)
RETRY_AFTER_STATUSES: Final = frozenset({429, 503})


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """`Retry-After` as a delay (delta-seconds or an HTTP date, RFC 9110 section 10.2.3),
    bounded to a day; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which isdigit() but int() refuses
        delay = timedelta(seconds=int(value[:9]))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError, IndexError):  # whatever a receiver sends
            return None
        if when.tzinfo is None:
            return None
        delay = when - now
    return min(max(delay, timedelta(0)), MAX_RETRY_AFTER)


def next_attempt(
    attempts: int,
    now: datetime,
    *,
    wait_at_least: timedelta | None = None,
    jitter: Callable[[float, float], float] = random.uniform,
) -> datetime | None:
    """When to try again after `attempts` failed attempts (1 after the first), or None when
    that was the last one."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = RETRY_DELAYS[attempts - 1] * jitter(1 - JITTER, 1 + JITTER)
    if wait_at_least is not None:
        delay = max(delay, wait_at_least)
    return now + delay


def gives_up_on_endpoint(failing_since: datetime | None, now: datetime) -> bool:
    """Every attempt to the endpoint has failed for five days: disable it."""
    return failing_since is not None and now - failing_since >= DISABLE_AFTER
