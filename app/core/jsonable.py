"""JSON-ready values for JSONB columns and outbox payloads (one definition for every domain)."""

from typing import Any

from pydantic_core import to_jsonable_python


def jsonable(value: Any) -> Any:
    """Plain JSON values (strings for times, UUIDs and decimals), as stored in JSONB."""
    return to_jsonable_python(value)
