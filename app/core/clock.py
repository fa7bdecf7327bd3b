"""The one place that reads the wall clock; rules receive `now` as an argument."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)
